#!/usr/bin/env bash
# Installs every package pgbastion needs to build, test and benchmark, from
# Debian 12's archive. Idempotent: safe to run again; skips apt when all present.
#   PGB_DEPS=build  only what building the binaries and the .deb needs (the
#                   build stage of packaging/docker/Dockerfile); no test tools.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  liburing-dev libssl-dev libabsl-dev libtomlplusplus-dev libpg-query-dev
  libsimdjson-dev libcurl4-openssl-dev libzstd-dev
  libpq-dev  # the audit database sink and the role provisioner (their own threads, off the data path)
  libcpp-httplib-dev  # the control-plane HTTP server (metrics, health; its own threads)
  libsqlite3-dev  # the approvals control store (embedded, its own thread; core/approvals)
  libgtest-dev libgmock-dev libbenchmark-dev  # CMakeLists.txt finds them even for a package build
)
packages=(
  "${build_packages[@]}"
  clang-format
  clang-14 libclang-rt-14-dev  # the Fuzz build type (libFuzzer)
  # run and test: a real PostgreSQL, real clients, PgBouncer for the comparison
  postgresql-15 postgresql-client-15 pgbouncer python3 python3-psycopg openssl
  haproxy  # bench/compare's floor: a TCP relay that parses nothing
  procps iproute2 util-linux gnuplot-nox
  rpm  # rpmbuild, for the .rpm that `cmake --build build --target package` makes
  nodejs  # the test identity provider (tests/identity_provider, npm oidc-provider)
  # package and deployment checks (tests/integration/test_packages.py, test_deploy.py)
  lintian rpmlint  # the .deb's and the .rpm's policy checkers
  docker-compose   # `docker-compose config` checks packaging/compose/compose.yaml (no engine needed)
  python3-yaml     # parses the Kubernetes manifests in packaging/kubernetes
  systemd adduser  # systemd-analyze verify on the unit; the .deb's postinst (Depends: adduser)
)

if [[ "${PGB_DEPS:-all}" == build ]]; then
  packages=("${build_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm: Debian ships it as its own package; NodeSource's nodejs bundles it (and
# conflicts with Debian's npm), so ask for it only when there is none.
if [[ "${PGB_DEPS:-all}" != build ]] && ! command -v npm >/dev/null 2>&1; then
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
if [[ "${PGB_DEPS:-all}" == build ]]; then
  echo "install-deps: all ${#packages[@]} build packages present"
  exit 0
fi
# The npm packages of the test tooling (the test identity provider, the
# node-postgres driver the integration tests drive), exactly as locked;
# each reinstalled only when its package-lock.json changed.
repo_dir="$(cd "$(dirname "$0")/.." && pwd)"
for npm_dir in "$repo_dir/tests/identity_provider" "$repo_dir/tests/drivers"; do
  lock_sum="$(sha256sum "$npm_dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$npm_dir/node_modules/.pgb-lock-sha256"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
    (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
done

echo "install-deps: all ${#packages[@]} packages present (and the test tooling's npm packages)"
