"""Cancel: libpq's cancel through the gateway stops a query within 1 s with 57014;
a wrong key cancels nothing; the client sees the backend's real process id, never its key.

The gateway runs two workers and the test holds many connections, so CancelRequests
(each on a new connection) land on either shard and must be routed across.
"""

import os
import random
import signal
import struct
import subprocess
import threading
import time
import unittest

import psycopg
from psycopg import errors

from harness import ClusterTestCase, PSQL, RawConnection, cancel_request, message


class CancelTest(ClusterTestCase):
    def gw(self):
        return self.gateway(workers=2)

    def connect_gw(self, **kw):
        gw = self.gw()
        return psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], autocommit=True, **kw)

    def connect_direct(self, **kw):
        return psycopg.connect(self.direct(), password=self.pg.passwords["gateway_login"],
                               autocommit=True, **kw)

    def sleep_in_thread(self, conn, seconds):
        """Starts SELECT pg_sleep(seconds) on conn; returns a dict filled when it ends."""
        result = {}

        def body():
            start = time.monotonic()
            try:
                conn.execute(f"SELECT pg_sleep({seconds})")
                result["outcome"] = "completed"
            except psycopg.Error as e:
                result["outcome"] = e
            result["ended"] = time.monotonic()
            result["elapsed"] = result["ended"] - start

        t = threading.Thread(target=body, daemon=True)
        t.start()
        result["thread"] = t
        return result

    def wait_until_sleeping(self, backend_pid, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pg.sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend_pid} "
                           "AND state = 'active' AND query LIKE 'SELECT pg_sleep%'") == "1":
                return
            time.sleep(0.05)
        self.fail(f"backend {backend_pid} never started sleeping")

    def cancel_and_check(self, conn, backend_pid):
        result = self.sleep_in_thread(conn, 30)
        self.wait_until_sleeping(backend_pid)
        sent = time.monotonic()
        conn.cancel()  # libpq PQcancel: a CancelRequest on a new connection
        result["thread"].join(timeout=10)
        self.assertIn("outcome", result, "query still running 10 s after cancel")
        self.assertIsInstance(result["outcome"], errors.QueryCanceled, result["outcome"])
        self.assertEqual(result["outcome"].sqlstate, "57014")
        self.assertLess(result["ended"] - sent, 1.0, "cancel took more than 1 s")
        # The session is usable afterwards.
        self.assertEqual(conn.execute("SELECT 7").fetchone(), (7,))

    def test_cancel_direct_then_gateway(self):
        with self.connect_direct() as conn:
            self.cancel_and_check(conn, conn.info.backend_pid)
        # Many open sessions, cancels issued on several of them: with two shards and
        # SO_REUSEPORT some CancelRequests arrive on the shard that does not own the session.
        conns = [self.connect_gw() for _ in range(24)]
        try:
            for conn in conns[::3]:
                real_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                self.cancel_and_check(conn, real_pid)
            for conn in conns:
                self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        finally:
            for conn in conns:
                conn.close()

    def test_psql_sigint_cancels(self):
        """psql's Ctrl-C sends a CancelRequest with the key it got at startup."""
        gw = self.gw()
        env = dict(os.environ, PGPASSWORD=gw.users["alice"])
        proc = subprocess.Popen([PSQL, "-X", "-d", gw.conninfo("alice"), "-c", "SELECT pg_sleep(30)"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gateway_login' "
                               "AND state = 'active' AND query = 'SELECT pg_sleep(30)'") != "0":
                    break
                time.sleep(0.05)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
            self.assertLess(time.monotonic() - sent, 1.0)
            self.assertIn("canceling statement due to user request", err.decode())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_wrong_key_cancels_nothing(self):
        gw = self.gw()
        with self.connect_gw() as conn:
            client_pid = conn.info.backend_pid
            # We cannot read libpq's secret key, so learn a real pair from a raw session.
            with RawConnection(gw.port) as raw:
                raw.login("alice", gw.users["alice"], "app")
                raw_pid, raw_key = raw.backend_key
                result = self.sleep_in_thread(conn, 3)
                real_pid = None
                deadline = time.monotonic() + 10
                while real_pid is None and time.monotonic() < deadline:
                    real_pid = self.pg.sql("SELECT pid FROM pg_stat_activity WHERE usename='gateway_login' "
                                           "AND query = 'SELECT pg_sleep(3)' AND state = 'active'") or None
                    time.sleep(0.05)
                self.assertIsNotNone(real_pid)
                # Wrong keys: conn's pid with the raw session's key, a guessed key, the
                # raw session's pid with a wrong key, and the backend's real pid.
                for pid, key in ((client_pid, raw_key), (client_pid, 0), (client_pid, 0xFFFFFFFF),
                                 (raw_pid, raw_key ^ 1), (int(real_pid), raw_key)):
                    with RawConnection(gw.port) as c:
                        c.send(cancel_request(pid, key))
                        # The gateway answers a CancelRequest by closing, with nothing sent.
                        self.assertEqual(c.read_until_eof(timeout=5), [])
                result["thread"].join(timeout=10)
                self.assertEqual(result.get("outcome"), "completed", "a wrong cancel key cancelled the query")
                self.assertGreater(result["elapsed"], 2.5)
                # The raw session survived cancels aimed at it with the wrong key.
                self.assertEqual(raw.simple_query("SELECT 1")[-1][0], b"Z")

    def test_client_sees_the_backend_pid_and_not_its_key(self):
        """BackendKeyData carries the backend's real pid, as from PostgreSQL, so
        pg_backend_pid(), pg_stat_activity and pg_terminate_backend agree with what the driver
        knows; the secret is the gateway's own, so it cancels nothing sent to the database
        directly."""
        conns = [self.connect_gw() for _ in range(10)]
        try:
            for conn in conns:
                self.assertEqual(conn.info.backend_pid,
                                 conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            victim = conns[3]
            terminated = self.pg.sql(f"SELECT pg_terminate_backend({victim.info.backend_pid})")
            self.assertEqual(terminated, "t")
            with self.assertRaises(psycopg.OperationalError) as caught:
                victim.execute("SELECT 1")
            self.assertIn("terminating connection due to administrator command", str(caught.exception))
            for conn in conns[:3] + conns[4:]:
                self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        finally:
            for conn in conns:
                conn.close()
        gw = self.gw()
        with RawConnection(gw.port) as raw:
            msgs = raw.login("alice", gw.users["alice"], "app")
            keys = [body for kind, body in msgs if kind == b"K"]
            self.assertEqual(len(keys), 1)
            self.assertEqual(len(keys[0]), 8)
            pid, key = struct.unpack("!iI", keys[0])
            rows = raw.simple_query("SELECT pg_backend_pid()")
            self.assertEqual(pid, int([b for k, b in rows if k == b"D"][0][6:].decode()))
            # The gateway's key sent straight to the database cancels nothing.
            raw.send(message(b"Q", b"SELECT pg_sleep(1.5)\0"))
            self.wait_until_sleeping(pid)
            with RawConnection(self.pg.port) as direct:
                direct.send(cancel_request(pid, key))
                direct.read_until_eof(timeout=5)
            answer = raw.read_until_ready()
            self.assertNotIn(b"E", [k for k, _ in answer], answer)

    def test_guessed_keys_cancel_nothing(self):
        """With the real pid known (it is no secret now), 300 guessed keys, half of them with
        the low bit that names the right shard, cancel nothing."""
        gw = self.gw()
        with RawConnection(gw.port) as raw:
            msgs = raw.login("alice", gw.users["alice"], "app")
            pid, key = struct.unpack("!iI", [b for k, b in msgs if k == b"K"][0])
            raw.send(message(b"Q", b"SELECT pg_sleep(2)\0"))
            self.wait_until_sleeping(pid)
            for guess in random.sample(range(1 << 32), 300):
                if guess == key:
                    continue
                with RawConnection(gw.port) as c:
                    c.send(cancel_request(pid, guess))
                    self.assertEqual(c.read_until_eof(timeout=5), [])
            answer = raw.read_until_ready()
            self.assertNotIn(b"E", [k for k, _ in answer], answer)

    def test_cancel_for_a_session_on_another_target(self):
        """Two targets, sessions on both, cancels arriving on either shard: each reaches its own
        session's backend, on its own target."""
        targets = [{"name": name, "host": "127.0.0.1", "port": self.pg.port, "database": "app",
                    "user": "gateway_login", "password": self.pg.passwords["gateway_login"],
                    "tls": "disable"} for name in ("app", "reports")]
        gw = self.gateway("two-targets", workers=2, targets=targets)
        conns = []
        try:
            for i in range(12):
                dbname = "reports" if i % 2 else "app"
                conns.append(psycopg.connect(gw.conninfo("alice", dbname=dbname),
                                             password=gw.users["alice"], autocommit=True))
            for conn in conns[:6]:
                self.cancel_and_check(conn, conn.info.backend_pid)
        finally:
            for conn in conns:
                conn.close()


if __name__ == "__main__":
    unittest.main()
