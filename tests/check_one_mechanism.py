#!/usr/bin/env python3
"""Fails where our sources use a second mechanism for a job that has one (STYLE.md rule 11).

Each rule names a spelling that must not appear in code (comments do not
count), the one mechanism to use instead, and the files that are that
mechanism (they may use the spelling). Every .h/.cc under base, proto,
policy, core, tools, bench and tests is read.

    python3 tests/check_one_mechanism.py <repository root>   # exit 0: clean, 1: a second mechanism
"""
import re
import sys

from source_checks import run, sources

FOLDERS = ["base", "proto", "policy", "core", "tools", "bench", "tests"]
STR_CAT = "pgb::Cat, Append or Join (base/str_cat.h)"
RULES = [
    # Debian 12's Abseil refuses std::string_view here; see base/str_cat.h.
    (re.compile(r"\babsl::Str(Cat|Append|Join)\b"), STR_CAT, {"base/str_cat.h"}),
    (re.compile(r'#\s*include\s*"absl/strings/str_(cat|join)\.h"'), STR_CAT, {"base/str_cat.h"}),
]


def code_of(line):
    """The line without its // comment (a // inside a string literal stays)."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def check(root):
    problems = []
    for rel, text in sources(root, FOLDERS):
        for number, line in enumerate(text.splitlines(), 1):
            code = code_of(line)
            for pattern, instead, owners in RULES:
                match = pattern.search(code)
                if match and rel not in owners:
                    problems.append(f"{rel}:{number}: {match.group(0)}: use {instead}")
    return problems


if __name__ == "__main__":
    sys.exit(run(check, "one mechanism per job: no second one found",
                 "use(s) of a second mechanism"))
