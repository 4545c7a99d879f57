#!/usr/bin/env bash
# Installs every package pgbastion needs to build, test and benchmark, from
# Debian 12's archive. Idempotent: safe to run again; skips apt when all present.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates
  liburing-dev libssl-dev libabsl-dev libtomlplusplus-dev libpg-query-dev
  libsimdjson-dev libcurl4-openssl-dev libzstd-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format
  clang-14 libclang-rt-14-dev  # the Fuzz build type (libFuzzer)
  # run and test: a real PostgreSQL, real clients, PgBouncer for the comparison
  postgresql-15 postgresql-client-15 pgbouncer python3 python3-psycopg openssl
  procps iproute2 util-linux gnuplot-nox
  rpm  # rpmbuild, for the .rpm that `cmake --build build --target package` makes
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

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
echo "install-deps: all ${#packages[@]} packages present"
