"""Load: 1,000 concurrent client connections through the gateway, all open at once,
each running a query; then all closed; the gateway stays healthy. The same is done
directly first, which proves the harness (max_connections, file limits) can do it.
"""

import threading
import time
import unittest

import psycopg
import psycopg.waiting

from harness import ClusterTestCase, raise_nofile_limit, pgbench

# psycopg 3.1's pure-Python build waits on queries with select(), which cannot take
# file descriptors >= 1024; with 1,000 connections open we pass that. epoll can.
psycopg.waiting.wait = psycopg.waiting.wait_epoll

N = 1000
CONNECT_PARALLELISM = 64  # connects in flight at once; all N stay open together


class LoadTest(ClusterTestCase):
    cluster_kwargs = {"max_connections": N + 100}

    @classmethod
    def setUpClass(cls):
        # Raised before anything starts, so the gateway (a child) inherits it too.
        limit = raise_nofile_limit(4 * N + 1000)
        assert limit >= 2 * N + 100, f"RLIMIT_NOFILE {limit} too low for {N} connections"
        super().setUpClass()

    def hold_many(self, conninfo, password, label, log=lambda: ""):
        barrier = threading.Barrier(N + 1, timeout=300)
        gate = threading.Semaphore(CONNECT_PARALLELISM)
        release = threading.Event()
        errors = []
        results = []
        lock = threading.Lock()

        def client(i):
            conn = None
            try:
                with gate:
                    conn = psycopg.connect(conninfo, password=password, connect_timeout=60, autocommit=True)
                row = conn.execute("SELECT %s::int * 2, pg_backend_pid()", (i,)).fetchone()
                with lock:
                    results.append(row)
            except Exception as e:  # noqa: BLE001: every failure is reported below
                with lock:
                    errors.append(f"{i}: {e!r}")
            try:
                barrier.wait()
                release.wait(timeout=300)
                if conn is not None:
                    # Still usable while all the others are open.
                    conn.execute("SELECT 1")
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{i} (held): {e!r}")
            finally:
                if conn is not None:
                    conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(N)]
        start = time.monotonic()
        for t in threads:
            t.start()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            self.fail(f"{label}: clients did not all get through in time; errors: {errors[:10]}")
        opened = time.monotonic() - start
        try:
            self.assertEqual(errors, [], f"{label}: {len(errors)} failed, first: {errors[:10]}\n"
                                         f"gateway log (without 'session established' lines):\n"
                                         + "\n".join(l for l in log().splitlines()
                                                     if "session established" not in l)[-5000:])
            self.assertEqual(sorted(r[0] for r in results), [2 * i for i in range(N)])
            # All N really are open at PostgreSQL at the same time.
            active = int(self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gateway_login'"))
            self.assertGreaterEqual(active, N)
            self.assertEqual(len({r[1] for r in results}), N, "two clients share a backend")
        finally:
            release.set()
            for t in threads:
                t.join(timeout=120)
        self.assertEqual(errors, [], f"{label}: {errors[:10]}")
        # All closed: PostgreSQL sees the backends go away.
        deadline = time.monotonic() + 60
        left = None
        while time.monotonic() < deadline:
            left = int(self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gateway_login'"))
            if left == 0:
                break
            time.sleep(0.2)
        self.assertEqual(left, 0, f"{label}: backends left open after all clients closed")
        print(f"\n{label}: {N} connections opened in {opened:.1f}s", flush=True)

    def test_thousand_connections(self):
        self.hold_many(self.direct(), self.pg.passwords["gateway_login"], "direct")
        gw = self.gateway(workers=2)
        self.hold_many(gw.conninfo("alice"), gw.users["alice"], "gateway", log=gw.log)
        # Healthy afterwards: a fresh session works, and a short pgbench has no failures.
        with psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"]) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        pgbench(["-i", "-s", "1", "-q"], port=gw.port, user="alice", dbname="app", password=gw.users["alice"])
        res = pgbench(["-S", "-c", "32", "-j", "2", "-t", "100", "-n"], port=gw.port, user="alice",
                      dbname="app", password=gw.users["alice"])
        self.assertIn("number of failed transactions: 0 ", res.stdout.decode())


if __name__ == "__main__":
    unittest.main()
