#!/usr/bin/env python3
"""CPU of the PostgreSQL backends that serve pgbench, per transaction, directly and through the
gateway (policy on, audit off): which side of the proxy spends the extra PostgreSQL CPU.

Usage: /usr/bin/python3 bench/pg_backend_cpu.py   (gateway binary: build/tools/pgbastion or
$PGB_BINARY). Starts its own PostgreSQL 15 and gateway on loopback; takes about a minute.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness as h  # noqa: E402
TCK = os.sysconf("SC_CLK_TCK")
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        p = f.read().rsplit(")", 1)[1].split()
    return int(p[1]), int(p[11]) + int(p[12]), int(p[13]) + int(p[14])  # ppid, self, children
def children(pm):
    out = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                pp, c, _ = stat(int(e))
            except Exception:
                continue
            if pp == pm:
                out[int(e)] = c
    return out
pg = h.PostgresCluster().start()
try:
    pg.create_standard_roles()
    h.pgbench(["-i", "-s", "10", "-q"], port=pg.port, user="gateway_login", dbname="app", password=pg.passwords["gateway_login"])
    pw = h.random_password()
    gw = h.Gateway(pg, users={"rob": pw}, user_groups={"rob": ["read-only"]},
                   scopes=[{"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only"}]).start()
    pm = int(open(os.path.join(pg.data, "postmaster.pid")).readline())
    try:
        for target in ["direct", "gateway", "direct", "gateway"]:
            port, user, pwd = (pg.port, "gateway_login", pg.passwords["gateway_login"]) if target == "direct" else (gw.port, "rob", pw)
            before = children(pm)
            _, pm0, _ = stat(pm)
            samples = {}
            stop = False
            def sampler():
                while not stop:
                    for pid, c in children(pm).items():
                        if pid not in before:
                            samples[pid] = c
                    time.sleep(0.2)
            t = threading.Thread(target=sampler); t.start()
            r = h.pgbench(["-n", "-S", "-M", "extended", "-c", "8", "-j", "2", "-T", "10"], port=port, user=user, dbname="app", password=pwd)
            stop = True; t.join()
            after = children(pm)
            _, pm1, _ = stat(pm)
            tx = int(re.search(r"actually processed: (\d+)", r.stdout.decode()).group(1))
            newb = sum(samples.values())
            old = sum(after.get(p, c) - c for p, c in before.items())
            # Backends that exit before the last sample are counted up to it (within 200 ms).
            print(f"{target:8s} {tx} transactions, {tx / 10:.0f} TPS; the {len(samples)} serving "
                  f"backends: {newb / TCK * 1e6 / tx:.1f} us/txn; every other process: "
                  f"{(old + pm1 - pm0) / TCK * 1e6 / tx:.1f} us/txn")
            time.sleep(1)
    finally:
        gw.stop()
finally:
    pg.stop()
