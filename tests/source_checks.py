"""What the source checks share (check_layers.py, check_one_mechanism.py): reading
our sources and the command line. A check is a function from the repository root
to a list of problems, one line each, naming file and line."""
import pathlib
import sys


def sources(root, folders):
    """(repository-relative path, text) of every .h/.cc under `folders`, in order."""
    for folder in folders:
        for source in sorted((root / folder).rglob("*")):
            if source.suffix in (".h", ".cc") and source.is_file():
                yield (source.relative_to(root).as_posix(),
                       source.read_text(encoding="utf-8", errors="replace"))


def run(check, clean, found):
    """Runs `check` on the root named by argv[1] (default: here) and prints its problems.

    Exit status: 0 clean (prints `clean`), 1 problems (then "<count> <found>"), 2 not the root.
    """
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    if not (root / "base").is_dir():
        print(f"{root}: not the repository root (no base/)", file=sys.stderr)
        return 2
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} {found}", file=sys.stderr)
        return 1
    print(clean)
    return 0
