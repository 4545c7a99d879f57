#!/usr/bin/env bash
# Installs every package pgbastion needs to build, test and benchmark, from
# Debian 12's archive. Idempotent: safe to run again; skips apt when all present.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates
  liburing-dev libssl-dev libabsl-dev libtomlplusplus-dev libpg-query-dev
  libsimdjson-dev libcurl4-openssl-dev libzstd-dev
  libpq-dev  # the audit database sink (its own thread, off the data path)
  libcpp-httplib-dev  # the control-plane HTTP server (metrics, health; its own threads)
  libgtest-dev libgmock-dev libbenchmark-dev clang-format
  clang-14 libclang-rt-14-dev  # the Fuzz build type (libFuzzer)
  # run and test: a real PostgreSQL, real clients, PgBouncer for the comparison
  postgresql-15 postgresql-client-15 pgbouncer python3 python3-psycopg openssl
  procps iproute2 util-linux gnuplot-nox
  rpm  # rpmbuild, for the .rpm that `cmake --build build --target package` makes
  nodejs  # the test identity provider (tests/identity_provider, npm oidc-provider)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm: Debian ships it as its own package; NodeSource's nodejs bundles it (and
# conflicts with Debian's npm), so ask for it only when there is none.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # PgBouncer's and PostgreSQL's packages would start system-wide services; we
  # start our own throwaway servers, so keep package scripts from starting any.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi
# The test identity provider's npm packages (test tooling only), exactly as
# locked; reinstalled only when package-lock.json changed.
provider_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/identity_provider"
lock_sum="$(sha256sum "$provider_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$provider_dir/node_modules/.pgb-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  (cd "$provider_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi

echo "install-deps: all ${#packages[@]} packages present (and the test identity provider's npm packages)"
