"""Unix-domain socket listener: `[[listener]] socket_dir` creates .s.PGSQL.<port> and its lock
file as PostgreSQL does, so psql -h <dir> and psycopg host=<dir> log in, run queries and cancel
(the CancelRequest arrives on the socket too); SSLRequest is answered 'N'; the socket's mode is
applied; the audit names the client "[local]" with its pid and uid; a socket left by a killed
gateway is replaced; a second gateway on the same socket is refused; shutdown removes both files;
config errors name the key.
"""

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
import unittest
from pathlib import Path

import psycopg
from psycopg import errors

import harness as h
from harness import PSQL, ClusterTestCase, SSL_REQUEST_CODE


class UnixSocketTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = h.make_temp_dir("unix")
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)

    def setUp(self):
        # A fresh socket directory per test, traversable by the postgres OS user.
        self.sock_dir = h.make_temp_dir("sock")
        os.chmod(self.sock_dir, 0o755)
        self.addCleanup(h._rmtree, self.sock_dir)
        self.trail = os.path.join(self.dir, f"audit-{self.id().rsplit('.', 1)[-1]}.jsonl")

    def make_gateway(self, port: int | None = None, mode: str | None = "0660", audit=False,
                     **listener) -> h.Gateway:
        port = port or h.free_port()
        local = {"socket_dir": self.sock_dir, "port": port, **listener}
        if mode is not None:
            local["socket_mode"] = mode
        extra = ""
        if audit:
            extra = "\n".join([
                "[audit]", f'signing_key = "{self.key}"', f'spill_dir = "{self.dir}/spill"', "",
                "[[audit.sink]]", 'type = "file"', f'path = "{self.trail}"', 'fsync = "never"'])
        # The TCP listener first: the harness waits for its port.
        return h.Gateway(self.pg, port=port, workers=2,
                         listeners=[{"address": "127.0.0.1", "port": port, "tls": "disabled"}, local],
                         extra_config=extra)

    def socket_path(self, gw: h.Gateway) -> str:
        return os.path.join(self.sock_dir, f".s.PGSQL.{gw.port}")

    def local_conninfo(self, gw: h.Gateway, user: str = "alice", **kw) -> str:
        parts = {"host": self.sock_dir, "port": str(gw.port), "dbname": "app", "user": user, **kw}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def psql_local(self, gw: h.Gateway, sql: str, *, as_postgres=False, check=True, **kw):
        cmd = [PSQL, "-X", "-A", "-t", "-h", self.sock_dir, "-p", str(gw.port), "-U", "alice",
               "-d", "app", "-c", sql]
        return h.run(cmd, env={"PGPASSWORD": gw.users["alice"], "PGCONNECT_TIMEOUT": "10", **kw},
                     as_postgres=as_postgres, check=check, timeout=60)

    def test_psql_and_psycopg_over_the_socket(self):
        gw = self.make_gateway(audit=True).start()
        try:
            path = self.socket_path(gw)
            st = os.lstat(path)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, "socket_mode not applied")
            lock = Path(path + ".lock").read_text().splitlines()
            self.assertEqual(lock[:2], [str(gw.proc.pid), path])

            r = self.psql_local(gw, "SELECT 40 + 2")
            self.assertEqual(r.stdout.decode().strip(), "42")
            with psycopg.connect(host=self.sock_dir, port=gw.port, dbname="app", user="alice",
                                 password=gw.users["alice"], autocommit=True) as conn:
                self.assertEqual(conn.info.host, self.sock_dir)
                self.assertEqual(conn.execute("SELECT 'over the socket'").fetchone(),
                                 ("over the socket",))
                self.assertEqual(conn.execute("SELECT current_user").fetchone(), ("gateway_login",))
            # A wrong password is refused as over TCP.
            bad = h.run([PSQL, "-X", "-h", self.sock_dir, "-p", str(gw.port), "-U", "alice",
                         "-d", "app", "-c", "SELECT 1"], env={"PGPASSWORD": "wrong"}, check=False)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn('password authentication failed for user "alice"', bad.stderr.decode())

            # The mode is enforced: the postgres OS user is neither the owner (root) nor in
            # the socket's group, so 0660 keeps it out before any login.
            if os.geteuid() == 0:
                denied = self.psql_local(gw, "SELECT 1", as_postgres=True, check=False)
                self.assertNotEqual(denied.returncode, 0)
                self.assertIn("Permission denied", denied.stderr.decode())
            log = gw.log()
            self.assertRegex(log, rf"from \[local\] pid=\d+ uid={os.getuid()} user=alice target=app: session "
                                  r"established")
            self.assertIn(f"listening on {path} (Unix-domain socket)", log)
        finally:
            gw.stop()
        records = [json.loads(line) for line in Path(self.trail).read_text().splitlines() if line]
        # (The harness's readiness probe connected over TCP: a record without client_pid.)
        connects = [r for r in records if r["kind"] == "connect" and r["client"] == "[local]"]
        # psql, psycopg, the wrong password (the postgres user never got past the mode).
        self.assertEqual(len(connects), 3, connects)
        for r in connects:
            self.assertEqual(r["client_uid"], os.getuid(), r)
        self.assertTrue(all(r["client"] == "[local]" for r in records if "client_pid" in r))
        # psycopg connected from this very process.
        self.assertIn(os.getpid(), [r["client_pid"] for r in connects])
        statements = [r for r in records if r["kind"] == "statement"]
        self.assertTrue(statements)
        self.assertTrue(all(r["client"] == "[local]" for r in statements))

    def test_ssl_is_refused_and_cancel_arrives_on_the_socket(self):
        gw = self.make_gateway().start()
        try:
            # PostgreSQL answers SSLRequest with 'N' on a Unix socket; so does the gateway.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(self.socket_path(gw))
                s.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
                self.assertEqual(s.recv(1), b"N")
            # libpq never asks for TLS on a Unix socket, whatever sslmode says.
            self.assertEqual(self.psql_local(gw, "SELECT 1", PGSSLMODE="require").stdout.strip(),
                             b"1")

            # psycopg's cancel: libpq sends the CancelRequest to the same socket path.
            with psycopg.connect(host=self.sock_dir, port=gw.port, dbname="app", user="alice",
                                 password=gw.users["alice"], autocommit=True) as conn:
                result = {}

                def sleep():
                    try:
                        conn.execute("SELECT pg_sleep(30)")
                        result["outcome"] = "completed"
                    except psycopg.Error as e:
                        result["outcome"] = e

                t = threading.Thread(target=sleep, daemon=True)
                t.start()
                self.wait_until_sleeping("SELECT pg_sleep(30)")
                sent = time.monotonic()
                conn.cancel()
                t.join(timeout=10)
                self.assertIsInstance(result.get("outcome"), errors.QueryCanceled, result)
                self.assertLess(time.monotonic() - sent, 2.0)
                self.assertEqual(conn.execute("SELECT 7").fetchone(), (7,))

            # psql's Ctrl-C over the socket.
            env = dict(os.environ, PGPASSWORD=gw.users["alice"])
            proc = subprocess.Popen([PSQL, "-X", "-h", self.sock_dir, "-p", str(gw.port), "-U",
                                     "alice", "-d", "app", "-c", "SELECT pg_sleep(31)"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            try:
                self.wait_until_sleeping("SELECT pg_sleep(31)")
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=10)
                self.assertIn("canceling statement due to user request", err.decode())
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.assertIn("forwarding cancel request", gw.log())
        finally:
            gw.stop()

    def wait_until_sleeping(self, query: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                           f"AND query = '{query}'") != "0":
                return
            time.sleep(0.05)
        self.fail(f"{query} never started")

    @staticmethod
    def wait_until_closed(port: int, path: str, timeout: float = 10) -> None:
        """Waits until nothing answers on the TCP port or the socket: a killed process's io_uring
        lets go of its listening sockets a moment after the process is reaped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = False
            for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_UNIX, path)):
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    try:
                        s.connect(address)
                        answered = True
                    except OSError:
                        pass
            if not answered:
                return
            time.sleep(0.05)
        raise AssertionError(f"the killed gateway's sockets still answer after {timeout} s")

    def run_serve(self, gw: h.Gateway, timeout: float = 20) -> subprocess.CompletedProcess:
        """Runs `pgbastion serve` on gw's config in the foreground, expecting it to exit."""
        gw.binary = gw.binary or h.gateway_binary()
        gw.write_config()
        return subprocess.run([gw.binary, "serve", "--config", gw.config], capture_output=True,
                              timeout=timeout)

    def test_second_gateway_refused_stale_socket_replaced_shutdown_removes(self):
        first = self.make_gateway().start()
        port = first.port
        path = self.socket_path(first)
        second = self.make_gateway(port=port)
        second.listeners[0]["port"] = h.free_port()  # its TCP port is free; the socket is not
        try:
            r = self.run_serve(second)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(f'listener[1]: the socket "{path}" is in use: process {first.proc.pid} '
                          f'holds its lock file "{path}.lock"', r.stderr.decode())
            # The refusal left the first gateway's socket working.
            self.assertEqual(self.psql_local(first, "SELECT 5").stdout.strip(), b"5")
        finally:
            second._cleanup_dir()

        # Killed: the socket and the lock file stay behind, naming a dead process.
        first.kill()
        self.wait_until_closed(first.port, path)
        self.assertTrue(os.path.exists(path))
        self.assertTrue(os.path.exists(path + ".lock"))
        first._cleanup_dir()
        third = self.make_gateway(port=port).start()
        try:
            self.assertEqual(Path(path + ".lock").read_text().splitlines()[0], str(third.proc.pid))
            self.assertEqual(self.psql_local(third, "SELECT 6").stdout.strip(), b"6")
        finally:
            third.stop()
        # A clean shutdown removes both.
        self.assertFalse(os.path.exists(path), "socket left after a clean shutdown")
        self.assertFalse(os.path.exists(path + ".lock"), "lock file left after a clean shutdown")

    def test_token_login_over_the_socket_without_tls(self):
        """A token never crosses a network on a Unix socket: accepted there without TLS."""
        binary = h.gateway_binary()
        key = os.path.join(self.dir, "mint.pem")
        h.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-out", key])
        jwks = os.path.join(self.dir, "mint.jwks.json")
        Path(jwks).write_bytes(h.run([binary, "token", "jwks", "--key", key]).stdout)
        issuer = "\n".join(["[[issuer]]", 'name = "local"', 'issuer = "https://mint.pgbastion.test"',
                            'audience = "pgbastion"', f'jwks_file = "{jwks}"'])
        token = h.run([binary, "token", "mint", "--key", key, "--issuer",
                       "https://mint.pgbastion.test", "--audience", "pgbastion", "--subject",
                       "agent-7", "--ttl", "15m"]).stdout.decode().strip()
        gw = self.make_gateway(auth=["token"])
        gw.issuers = [issuer]
        gw.start()
        try:
            with psycopg.connect(host=self.sock_dir, port=gw.port, dbname="app", user="agent-7",
                                 password=token, connect_timeout=10) as conn:
                self.assertEqual(conn.execute("SELECT 'token over [local]'").fetchone(),
                                 ("token over [local]",))
            # The same token over the plaintext TCP listener is refused.
            with self.assertRaises(psycopg.OperationalError):
                psycopg.connect(host="127.0.0.1", port=gw.port, dbname="app", user="agent-7",
                                password=token, sslmode="disable", connect_timeout=10).close()
            self.assertRegex(gw.log(), r"from \[local\] pid=\d+ uid=\d+ user=agent-7 target=app: "
                                       r"session established")
        finally:
            gw.stop()

    def test_default_mode_and_config_errors(self):
        gw = self.make_gateway(mode=None).start()
        try:
            self.assertEqual(stat.S_IMODE(os.lstat(self.socket_path(gw)).st_mode), 0o770)
        finally:
            gw.stop()
        cases = [
            ("run/pgbastion", 'listener[1].socket_dir: "run/pgbastion" must be an absolute path'),
            (self.sock_dir + "/missing",
             f'listener[1].socket_dir: cannot use "{self.sock_dir}/missing": No such file or directory'),
            ("/" + "d" * 100,
             f'listener[1].socket_dir: the socket\'s path "/{"d" * 100}/.s.PGSQL.'),
        ]
        for socket_dir, expected in cases:
            with self.subTest(socket_dir=socket_dir):
                gw = self.make_gateway(port=6432)
                gw.listeners[1]["socket_dir"] = socket_dir
                gw.binary = h.gateway_binary()
                try:
                    config = gw.write_config()
                    r = subprocess.run([gw.binary, "check-config", "--config", config],
                                       capture_output=True, timeout=30)
                    self.assertEqual(r.returncode, 1, r)
                    self.assertIn(expected, r.stderr.decode())
                finally:
                    gw._cleanup_dir()

    def test_peer_login_names_the_os_user(self):
        """auth = ["peer"]: the kernel says which OS user connected, and the startup user must
        be that name; the identity is the OS user (source "peer"), never the [[user]] of the
        same name, and a scope for peer identities applies."""
        if not h.PG_OS_USER:
            self.fail("this test runs as root, with the postgres OS user to connect as")
        port = h.free_port()
        local = {"socket_dir": self.sock_dir, "port": port, "socket_mode": "0777",
                 "auth": ["peer"]}
        scopes = [{"name": "ops", "sources": ["peer"], "subjects": [h.PG_OS_USER],
                   "profile": "read-only"},
                  {"name": "admin", "sources": ["local"], "subjects": ["*"], "profile": "admin"}]
        gw = h.Gateway(self.pg, port=port, workers=2, scopes=scopes,
                       users={"alice": h.random_password(), h.PG_OS_USER: h.random_password()},
                       listeners=[{"address": "127.0.0.1", "port": port, "tls": "disabled"},
                                  local]).start()
        try:
            def psql_as(user: str, sql: str, as_postgres: bool):
                return h.run([PSQL, "-X", "-A", "-t", "-w", "-h", self.sock_dir, "-p", str(port),
                              "-U", user, "-d", "app", "-c", sql],
                             env={"PGCONNECT_TIMEOUT": "10"}, as_postgres=as_postgres,
                             check=False, timeout=60)

            ok = psql_as(h.PG_OS_USER, "SELECT 40 + 2", as_postgres=True)
            self.assertEqual((ok.returncode, ok.stdout.decode().strip()), (0, "42"),
                             ok.stderr.decode())
            # The peer scope (read-only) applies, not the local [[user]] postgres's admin.
            ddl = psql_as(h.PG_OS_USER, "CREATE TABLE peer_t (i int)", as_postgres=True)
            self.assertNotEqual(ddl.returncode, 0)
            self.assertIn("scope 'ops'", ddl.stderr.decode())
            # Another OS user (root) naming postgres: refused, no password asked.
            other = psql_as(h.PG_OS_USER, "SELECT 1", as_postgres=False)
            self.assertNotEqual(other.returncode, 0)
            self.assertIn(f'peer authentication failed for user "{h.PG_OS_USER}"',
                          other.stderr.decode())
            # Root as itself: a peer identity without a scope.
            root = psql_as("root", "SELECT 1", as_postgres=False)
            self.assertNotEqual(root.returncode, 0)
            self.assertIn('no scope of the policy gives "root" (an OS user on the local socket)',
                          root.stderr.decode())
        finally:
            gw.stop()

    def test_peer_is_refused_on_tcp_listeners(self):
        gw = h.Gateway(self.pg, listeners=[{"address": "127.0.0.1", "port": h.free_port(),
                                            "auth": ["peer"]}])
        gw.dir = self.sock_dir
        config = gw.write_config()
        res = h.run([h.gateway_binary(), "check-config", "--config", config], check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn('listener[0].auth: "peer" needs a Unix-domain socket listener',
                      res.stderr.decode())


if __name__ == "__main__":
    unittest.main()
