#!/usr/bin/env bash
# The README's first command: install dependencies, build (Release), start a
# throwaway PostgreSQL and the gateway in front of it, and print one psql line
# that connects through the gateway. Stays in the foreground; Ctrl-C (or SIGTERM)
# stops both and removes every temp file. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

bash packaging/install-deps.sh >&2
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
ninja -C build-release pgbastion >&2

# Debian's python3 (it has python3-psycopg), not whatever python is first on PATH.
exec /usr/bin/python3 tests/integration/harness.py demo --binary build-release/tools/pgbastion
