#!/usr/bin/env bash
# The README's second command: install dependencies, build, run every test
# (unit and integration) with ctest; exits with ctest's code. .ci/run runs this.
#   PGB_SANITIZE=1  also builds the unit tests with ASan+UBSan (build-sanitize/) and runs them.
#   PGB_JOBS=N      build parallelism (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."

bash packaging/install-deps.sh

jobs="${PGB_JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C build -j "$jobs"

rc=0
# Unit tests are quick and independent: run them in parallel. Integration tests
# each start their own PostgreSQL and gateway and some measure time (cancel within
# 1 s, auth timeout), so they run one at a time on a 2-core machine.
ctest --test-dir build --output-on-failure -L unit -j "$jobs" || rc=$?
ctest --test-dir build --output-on-failure -L integration || rc=$?
# Anything not labelled (should be nothing) still runs.
ctest --test-dir build --output-on-failure -LE 'unit|integration' --no-tests=ignore || rc=$?

if [[ "${PGB_SANITIZE:-0}" == 1 ]]; then
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Sanitize
  ninja -C build-sanitize -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-sanitize --output-on-failure -L unit -j "$jobs" || rc=$?
fi

if ((rc == 0)); then echo "tests/run.sh: all tests passed"; else echo "tests/run.sh: FAILED ($rc)" >&2; fi
exit "$rc"
