#!/usr/bin/env bash
# The README's second command: install dependencies, build, run every test
# (unit and integration) with ctest; exits with ctest's code. .ci/run runs this.
#   PGB_SANITIZE=1  also builds with ASan+UBSan (build-sanitize/) and runs everything again there
#                   (CI sets it).
#   PGB_JOBS=N      build parallelism (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."

bash packaging/install-deps.sh

jobs="${PGB_JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C build -j "$jobs"

rc=0
# One ctest run: unit tests in parallel, integration suites one at a time
# (they are RUN_SERIAL). With PGB_SANITIZE=1 the whole suite runs again against
# the ASan+UBSan build, integration tests included: the gateway under test is
# then the sanitized binary, and a leak or UB report fails its suite.
ctest --test-dir build --output-on-failure -j "$jobs" || rc=$?

if [[ "${PGB_SANITIZE:-0}" == 1 ]]; then
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Sanitize
  ninja -C build-sanitize -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-sanitize --output-on-failure -j "$jobs" || rc=$?
fi

if ((rc == 0)); then echo "tests/run.sh: all tests passed"; else echo "tests/run.sh: FAILED ($rc)" >&2; fi
exit "$rc"
