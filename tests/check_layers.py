#!/usr/bin/env python3
"""Fails on any #include that goes up the layer order (STYLE.md rule 12).

    base -> proto -> policy -> core/audit (audit) -> core/recording -> core (gateway)
    -> tools

Each layer may include its own headers and those of the layers below it.
bench/ sits beside tools (it may include every library) and may take from
tests/ only tests/support/. Every .h/.cc under those folders is read; each
`#include "x/..."` whose first folder names a layer (or tests/) is checked.
The build enforces the same order through per-layer include roots
(cmake/PgbastionTargets.cmake); this check also covers headers no target
compiles and says which line is wrong.

    python3 tests/check_layers.py <repository root>   # exit 0: clean, 1: upward includes
"""
import re
import sys

from source_checks import run, sources

LAYERS = ["base", "proto", "policy", "core/audit", "core/recording", "core", "tools"]
# Folders that are checked as includers, and what they may include beyond
# the layers: bench uses the libraries (not tools) and the shared test support.
EXTRA_SOURCES = {"bench": (LAYERS.index("core"), ["tests/support"])}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def layer_of(path):
    """The layer a repository-relative path belongs to, or None."""
    for layer in sorted(LAYERS, key=len, reverse=True):
        if path == layer or path.startswith(layer + "/"):
            return layer
    return None


def check(root):
    problems = []
    for rel, text in sources(root, LAYERS + list(EXTRA_SOURCES)):
        own = layer_of(rel)
        if own is not None:
            highest, allowed_extra = LAYERS.index(own), []
        else:
            highest, allowed_extra = EXTRA_SOURCES[rel.split("/")[0]]
        for number, line in enumerate(text.splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = match.group(1)
            if any(target.startswith(extra + "/") for extra in allowed_extra):
                continue
            if target.startswith("tests/") or target.startswith("bench/"):
                problems.append(f"{rel}:{number}: includes \"{target}\", "
                                "which is not part of any library")
                continue
            target_layer = layer_of(target)
            if target_layer is None:
                continue  # a third-party header (absl/..., gtest/...)
            if LAYERS.index(target_layer) > highest:
                problems.append(
                    f"{rel}:{number}: includes \"{target}\": layer {target_layer} is above "
                    f"{own or rel.split('/')[0]} (order: {' -> '.join(LAYERS)})")
    return problems


if __name__ == "__main__":
    sys.exit(run(check, "layers: no upward include", "include(s) go up the layer order"))
