#!/usr/bin/python3
"""Connection setup with and without just-in-time database roles (issue 17).

Starts a throwaway PostgreSQL 15 (tests/integration/harness.py) and two
gateways (one worker each): `plain`, whose scope logs in as the target's user,
and `jit`, whose scope has a role template (a temporary role created before
and dropped after every session). Then runs pgbastion-bench's churn workload
(TCP connect, SCRAM login, one select, Terminate, close) against each in
turn, `--rounds` times, and prints one Markdown row per run plus the gateway's
own "created role ... (N ms)" times.

    /usr/bin/python3 bench/jit_roles_churn.py --transactions 200 --clients 1 --rounds 2
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import Gateway, PostgresCluster, pgbench, random_password  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=200)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bench", default=str(ROOT / "build" / "tools" / "pgbastion-bench"))
    args = ap.parse_args()

    pg = PostgresCluster().start()
    try:
        pg.create_standard_roles()
        pg.create_role("pgb_provisioner", random_password(), attrs="LOGIN CREATEROLE")
        pg.sql("CREATE ROLE app_reader NOLOGIN")
        # churn's select reads pgbench_accounts.
        pgbench(["-i", "-s", "1", "-q"], port=pg.port, user="gateway_login", dbname="app",
                password=pg.passwords["gateway_login"])
        pg.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_reader", db="app")
        env = {"PGB_BENCH_PROVISION": pg.passwords["pgb_provisioner"]}
        target = {"name": "app", "host": "127.0.0.1", "port": pg.port, "database": "app",
                  "user": "gateway_login", "password": pg.passwords["gateway_login"],
                  "tls": "disable", "provision_user": "pgb_provisioner",
                  "provision_password_env": "PGB_BENCH_PROVISION"}
        users = {"plain": random_password(), "jit": random_password()}
        gw = Gateway(pg, users=users, targets=[target], workers=1, extra_env=env,
                     scopes=[{"name": "plain", "sources": ["local"], "subjects": ["plain"], "profile": "admin"},
                             {"name": "jit", "sources": ["local"], "subjects": ["jit"], "profile": "admin",
                              "role": {"member_of": ["app_reader"]}}],
                     log_level="info").start()
        try:
            rows = []
            for _ in range(args.rounds):
                for user in ("plain", "jit"):
                    cmd = [args.bench, "--host", "127.0.0.1", "--port", str(gw.port),
                           "--user", user, "--dbname", "app", "--workload", "churn",
                           "--clients", str(args.clients), "--transactions",
                           str(args.transactions), "--json"]
                    out = subprocess.run(cmd, env={**os.environ, "PGPASSWORD": users[user]},
                                         capture_output=True, check=True, timeout=600)
                    r = json.loads(out.stdout)
                    if r["error_total"]:
                        print(f"{user}: errors {r['errors']}", file=sys.stderr)
                    rows.append((user, r))
            print("| scope | transactions | TPS | mean ms | p50 ms | p99 ms | errors |")
            print("|---|---|---|---|---|---|---|")
            for user, r in rows:
                lat = r["latency_us"]
                print(f"| {user} | {r['transactions']} | {r['tps']:.1f} | {lat['mean'] / 1000:.2f} "
                      f"| {lat['p50'] / 1000:.2f} | {lat['p99'] / 1000:.2f} | {r['error_total']} |")
            created = [int(m) for m in re.findall(r"created role \S+ on target \"app\" for session "
                                                  r"\d+ \((\d+) ms\)", Path(gw.logfile).read_text())]
            if created:
                created.sort()
                print(f"\nCREATE ROLE on the provisioning thread: {len(created)} roles, "
                      f"median {statistics.median(created)} ms, "
                      f"p99 {created[int(len(created) * 0.99) - 1]} ms, max {created[-1]} ms")
        finally:
            gw.stop()
    finally:
        pg.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
