"""A target on PostgreSQL's Unix-domain socket: `host` is the socket directory, as libpq reads
it (`host = "/var/run/postgresql"`), for a gateway that runs next to its database.

The gateway logs in with SCRAM over the socket (pg_hba's `local` line asks for it here), the
session works, the database sees a local client, and a CancelRequest is forwarded over the
same socket. A socket directory with TLS, a relative path or a path too long for a socket
address is a configuration error naming the key.
"""

import os
import subprocess
import threading
import time
import unittest

import psycopg
from psycopg import errors

from harness import ClusterTestCase, Gateway, gateway_binary, make_temp_dir, _rmtree


class BackendSocketTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The gateway's role must prove its password over the socket too (the harness
        # trusts local connections for its own superuser work).
        hba = os.path.join(cls.pg.data, "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("local all gateway_login scram-sha-256\n" + rules)
        cls.pg.sql("SELECT pg_reload_conf()")

    def socket_target(self, **extra) -> dict:
        return {"name": "app", "host": self.pg.socket_dir, "port": self.pg.port, "database": "app",
                "user": "gateway_login", "password": self.pg.passwords["gateway_login"],
                "tls": "disable", **extra}

    def connect(self):
        gw = self.gateway(targets=[self.socket_target()])
        return psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], autocommit=True)

    def test_session_runs_over_the_socket(self):
        with self.connect() as conn:
            pid = conn.info.backend_pid
            self.assertEqual(conn.execute("SELECT current_user").fetchone(), ("gateway_login",))
            # A Unix-domain client has no address: NULL, where TCP would say 127.0.0.1.
            self.assertEqual(conn.execute("SELECT inet_server_addr() IS NULL").fetchone(), (True,))
            self.assertEqual(
                self.pg.sql(f"SELECT client_addr IS NULL AND client_port = -1 "
                            f"FROM pg_stat_activity WHERE pid = {pid}"), "t")
            self.assertEqual(conn.execute("SELECT count(*) FROM generate_series(1, 1000)").fetchone(),
                             (1000,))

    def test_password_is_checked_over_the_socket(self):
        """pg_hba asks the gateway's role for SCRAM on the socket: a wrong password fails the
        client's login with the gateway's own message, as over TCP."""
        target = self.socket_target(password="not-the-password")
        gw = self.gateway("wrong-password", targets=[target])
        with self.assertRaises(psycopg.OperationalError) as caught:
            psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], connect_timeout=10)
        self.assertNotIn("not-the-password", str(caught.exception))
        self.assertIn("password authentication failed", gw.log())

    def test_cancel_is_forwarded_over_the_socket(self):
        with self.connect() as conn:
            outcome = {}

            def sleep():
                try:
                    conn.execute("SELECT pg_sleep(30)")
                    outcome["result"] = "completed"
                except psycopg.Error as e:
                    outcome["result"] = e
            t = threading.Thread(target=sleep, daemon=True)
            t.start()
            pid = conn.info.backend_pid
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pg.sql(
                    f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND state = 'active' "
                    "AND query LIKE 'SELECT pg_sleep%'") != "1":
                time.sleep(0.05)
            sent = time.monotonic()
            conn.cancel()
            t.join(timeout=10)
            self.assertIsInstance(outcome.get("result"), errors.QueryCanceled, outcome)
            self.assertLess(time.monotonic() - sent, 2.0)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))

    def test_configuration_errors_name_the_key(self):
        directory = make_temp_dir("socket-config")
        try:
            cases = [
                ({"tls": "require"}, "tls", "must be \"disable\" for a Unix-domain socket"),
                ({"host": "var/run/postgresql"}, "host", "absolute socket directory"),
                ({"host": "/" + "d" * 120}, "host", "is too long"),
            ]
            for extra, key, message in cases:
                with self.subTest(extra=extra):
                    gw = Gateway(self.pg, targets=[self.socket_target(**extra)])
                    gw.dir = directory
                    config = gw.write_config()
                    res = subprocess.run([gateway_binary(), "check-config", "--config", config],
                                         capture_output=True, text=True, timeout=60)
                    self.assertNotEqual(res.returncode, 0, res.stdout)
                    self.assertIn(f"target[0].{key}", res.stderr)
                    self.assertIn(message, res.stderr)
        finally:
            _rmtree(directory)


if __name__ == "__main__":
    unittest.main()
