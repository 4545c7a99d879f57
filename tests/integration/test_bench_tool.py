"""pgbastion-bench: the load tool runs every workload and protocol, direct and through the gateway.

The tool speaks the protocol itself (no libpq), so these tests also check that
its login (SCRAM, md5, a token as cleartext password), its TLS (SSLRequest and
a handshake over memory buffers), its extended-protocol messages and its reports
are right: every run must complete with zero errors and a positive TPS, and the
counts must be exact where the options fix them.
"""

import json
import os
import socket
import subprocess
import threading
import time
import unittest

from harness import Certificates, ClusterTestCase, free_port, gateway_binary, pgbench, run

BENCH = os.environ.get("PGB_BENCH_BINARY")


class BenchToolTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pgbench(["-i", "-s", "1", "-q"], port=cls.pg.port, user="gateway_login", dbname="app",
                password=cls.pg.passwords["gateway_login"])

    def setUp(self):
        # Fail, not skip: a missing binary must not pass silently in CI.
        if not BENCH:
            self.fail("PGB_BENCH_BINARY is not set (ctest sets it; see tests/integration/CMakeLists.txt)")
        if not os.access(BENCH, os.X_OK):
            self.fail(f"PGB_BENCH_BINARY={BENCH} is not an executable")

    def targets(self):
        gw = self.gateway()
        return [("direct", self.pg.port, "gateway_login", self.pg.passwords["gateway_login"]),
                ("gateway", gw.port, "alice", gw.users["alice"])]

    def bench(self, port, user, password, *args, timeout=120):
        cmd = [BENCH, "--host", "127.0.0.1", "--port", str(port), "--user", user,
               "--dbname", "app", "--password-env", "BENCH_PW", *args]
        return subprocess.run(cmd, env={"BENCH_PW": password}, capture_output=True, text=True,
                              timeout=timeout)

    def bench_json(self, port, user, password, *args):
        res = self.bench(port, user, password, "--json", *args)
        self.assertEqual(res.returncode, 0, f"{args}: {res.stdout}\n{res.stderr}")
        report = json.loads(res.stdout)
        for key in ("transactions", "tps", "elapsed_s", "latency_us", "errors", "error_total"):
            self.assertIn(key, report)
        for key in ("p50", "p90", "p99", "p99_9", "max"):
            self.assertIn(key, report["latency_us"])
        return report

    def test_select_all_protocols(self):
        for label, port, user, password in self.targets():
            for protocol in ("simple", "extended", "prepared"):
                with self.subTest(target=label, protocol=protocol):
                    r = self.bench_json(port, user, password, "--protocol", protocol,
                                        "--duration", "3", "--clients", "4", "--threads", "2")
                    self.assertEqual(r["error_total"], 0, r)
                    self.assertGreater(r["tps"], 0, r)
                    self.assertGreater(r["transactions"], 0, r)
                    lat = r["latency_us"]
                    self.assertLessEqual(lat["p50"], lat["p99"])
                    self.assertLessEqual(lat["p99"], lat["max"])

    def test_text_report_and_progress(self):
        res = self.bench(self.pg.port, "gateway_login", self.pg.passwords["gateway_login"],
                         "--duration", "2", "--progress", "0.5", "--warmup", "0.5")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("tps:", res.stdout)
        self.assertIn("p99.9", res.stdout)
        self.assertIn("errors: 0", res.stdout)
        self.assertGreaterEqual(res.stderr.count("progress:"), 2, res.stderr)

    def test_exact_transaction_count(self):
        for label, port, user, password in self.targets():
            for protocol in ("simple", "prepared"):
                with self.subTest(target=label, protocol=protocol):
                    r = self.bench_json(port, user, password, "--transactions", "500",
                                        "--clients", "3", "--protocol", protocol)
                    self.assertEqual(r["transactions"], 500, r)
                    self.assertEqual(r["error_total"], 0, r)

    def test_update(self):
        before = self.pg.sql("SELECT sum(abalance) FROM pgbench_accounts", db="app")
        r = self.bench_json(self.pg.port, "gateway_login", self.pg.passwords["gateway_login"],
                            "--workload", "update", "--protocol", "prepared", "--transactions", "200")
        self.assertEqual(r["transactions"], 200)
        self.assertEqual(r["error_total"], 0, r)
        self.assertNotEqual(self.pg.sql("SELECT count(*) FROM pgbench_accounts WHERE abalance <> 0",
                                        db="app"), "0", before)

    def test_wrong_password(self):
        for label, port, user, _ in self.targets():
            with self.subTest(target=label):
                res = self.bench(port, user, "not-the-password", "--duration", "1")
                self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
                self.assertIn("28P01", res.stdout + res.stderr)

    def test_md5_login(self):
        # md5user cannot read pgbench_accounts: logged in, every select fails with 42501.
        r = self.bench_json(self.pg.port, "md5user", self.pg.passwords["md5user"],
                            "--transactions", "10")
        self.assertEqual(r["errors"], {"42501": 10})

    def test_churn(self):
        for label, port, user, password in self.targets():
            with self.subTest(target=label):
                r = self.bench_json(port, user, password, "--workload", "churn",
                                    "--transactions", "20", "--clients", "2")
                self.assertEqual(r["transactions"], 20, r)
                self.assertEqual(r["error_total"], 0, r)

    def test_wide_and_copy_out(self):
        for label, port, user, password in self.targets():
            for workload, protocol in (("wide", "simple"), ("wide", "extended"),
                                       ("copy-out", "simple")):
                with self.subTest(target=label, workload=workload, protocol=protocol):
                    r = self.bench_json(port, user, password, "--workload", workload,
                                        "--protocol", protocol, "--duration", "2")
                    self.assertGreater(r["transactions"], 0, r)
                    self.assertEqual(r["error_total"], 0, r)

    def test_usage_errors(self):
        res = subprocess.run([BENCH, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 0)
        self.assertIn("--workload", res.stdout)
        res = subprocess.run([BENCH, "--user", "u", "--dbname", "d", "--protocol", "carrier-pigeon"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--protocol", res.stderr)
        self.assertEqual(res.stdout, "")


class BenchToolTlsTest(ClusterTestCase):
    """Through a gateway whose listener takes TLS, with a SCRAM user (alice) and
    token users (an issuer whose key the test holds, as test_token_login.py)."""

    ISSUER = "https://bench-mint.pgbastion.test"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pgbench(["-i", "-s", "1", "-q"], port=cls.pg.port, user="gateway_login", dbname="app",
                password=cls.pg.passwords["gateway_login"])
        cls.certs = Certificates("bench-tls")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.other_ca = Certificates("bench-other-ca")
        cls.addClassCleanup(cls.other_ca.cleanup)
        cls.binary = gateway_binary()
        cls.key = os.path.join(cls.certs.dir, "mint.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", cls.key])
        jwks = os.path.join(cls.certs.dir, "mint.jwks.json")
        with open(jwks, "wb") as f:
            f.write(run([cls.binary, "token", "jwks", "--key", cls.key]).stdout)
        issuer = "\n".join(["[[issuer]]", 'name = "local"', f'issuer = "{cls.ISSUER}"',
                            'audience = "pgbastion"', f'jwks_file = "{jwks}"',
                            'clock_skew = "0s"'])
        port = free_port()
        listener = {"address": "127.0.0.1", "port": port, "tls": "optional",
                    "tls_cert": str(cls.certs.server_crt), "tls_key": str(cls.certs.server_key)}
        cls.gw = cls.gateway(listeners=[listener], port=port, issuers=[issuer],
                             scopes=[{"name": "all", "subjects": ["*"], "profile": "admin"}])

    def setUp(self):
        if not BENCH or not os.access(BENCH, os.X_OK):
            self.fail(f"PGB_BENCH_BINARY={BENCH!r} is not an executable")

    def mint(self, subject="agent-7", ttl="15m"):
        return run([self.binary, "token", "mint", "--key", self.key, "--issuer", self.ISSUER,
                    "--audience", "pgbastion", "--subject", subject, "--ttl", ttl]
                   ).stdout.decode().strip()

    def bench(self, user, *args, password=None, token=None, port=None, timeout=120):
        env = {}
        cmd = [BENCH, "--host", "127.0.0.1", "--port", str(port or self.gw.port), "--user", user,
               "--dbname", "app"]
        if token is not None:
            env["BENCH_TOKEN"] = token
            cmd += ["--token-env", "BENCH_TOKEN"]
        if password is not None:
            env["BENCH_PW"] = password
            cmd += ["--password-env", "BENCH_PW"]
        return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True,
                              timeout=timeout)

    def bench_json(self, user, *args, **kw):
        res = self.bench(user, "--json", *args, **kw)
        self.assertEqual(res.returncode, 0, f"{args}: {res.stdout}\n{res.stderr}")
        report = json.loads(res.stdout)
        self.assertEqual(report["error_total"], 0, report)
        self.assertGreater(report["transactions"], 0, report)
        return report

    def test_scram_over_tls(self):
        pw = self.gw.users["alice"]
        for workload, protocol in (("select", "prepared"), ("select", "extended"),
                                   ("copy-out", "simple"), ("wide", "simple")):
            with self.subTest(workload=workload, protocol=protocol):
                r = self.bench_json("alice", "--sslmode", "require", "--workload", workload,
                                    "--protocol", protocol, "--duration", "2", "--clients", "2",
                                    password=pw)
                self.assertEqual((r["sslmode"], r["login"]), ("require", "password"))

    def test_verify_full(self):
        pw = self.gw.users["alice"]
        r = self.bench_json("alice", "--sslmode", "verify-full", "--sslrootcert",
                            str(self.certs.ca_crt), "--transactions", "50", password=pw)
        self.assertEqual(r["transactions"], 50)
        res = self.bench("alice", "--sslmode", "verify-full", "--sslrootcert",
                         str(self.other_ca.ca_crt), "--transactions", "5", password=pw)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("server certificate rejected", res.stderr)
        res = self.bench("alice", "--sslmode", "verify-full", password=pw)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("--sslrootcert", res.stderr)
        res = self.bench("alice", "--sslmode", "verify-ca", "--sslrootcert", "/nonexistent/ca.crt",
                         password=pw)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("/nonexistent/ca.crt", res.stderr)

    def test_token_select(self):
        token = self.mint()
        for protocol in ("simple", "prepared"):
            with self.subTest(protocol=protocol):
                r = self.bench_json("agent-7", "--sslmode", "require", "--protocol", protocol,
                                    "--transactions", "300", "--clients", "3", token=token)
                self.assertEqual(r["transactions"], 300)
                self.assertEqual((r["sslmode"], r["login"]), ("require", "token"))

    def test_token_churn(self):
        # Each transaction is a new TCP connection, TLS handshake and token login.
        token = self.mint()
        r = self.bench_json("agent-7", "--sslmode", "require", "--workload", "churn",
                            "--transactions", "40", "--clients", "2", token=token)
        self.assertEqual(r["transactions"], 40)
        self.assertNotIn(token, self.gw.log())

    def test_scram_churn_over_tls(self):
        r = self.bench_json("alice", "--sslmode", "require", "--workload", "churn",
                            "--transactions", "20", "--clients", "2",
                            password=self.gw.users["alice"])
        self.assertEqual(r["transactions"], 20)

    def test_bad_token(self):
        for label, token, check in (("garbage", "not-a-token", "format"),
                                    ("expired", self.mint(ttl="1s"), "expired"),
                                    ("other user", self.mint(subject="agent-8"), "user")):
            if label == "expired":
                time.sleep(2.2)
            for workload in ("select", "churn"):
                with self.subTest(token=label, workload=workload):
                    res = self.bench("agent-7", "--sslmode", "require", "--workload", workload,
                                     "--transactions", "5", token=token)
                    self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
                    self.assertRegex(res.stderr, r"server error 28(P01|000)")
                    self.assertIn(f"token refused ({check})", res.stderr)
                    self.assertNotIn(token, res.stdout + res.stderr)

    def test_token_for_a_scram_user(self):
        # alice is a [[user]]: the gateway asks her for SCRAM, never for a token.
        res = self.bench("alice", "--sslmode", "require", "--transactions", "5",
                         token=self.mint(subject="alice"))
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("not a token", res.stderr)

    def test_token_usage_errors(self):
        token = self.mint()
        res = self.bench("agent-7", "--transactions", "5", token=token)  # no --sslmode
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("only over TLS", res.stderr)
        self.assertNotIn(token, res.stderr)
        res = subprocess.run([BENCH, "--user", "agent-7", "--dbname", "app", "--port",
                              str(self.gw.port), "--sslmode", "require", "--token-env", "NO_SUCH_VAR"],
                             env={}, capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("NO_SUCH_VAR", res.stderr)
        res = self.bench("agent-7", "--sslmode", "sometimes", token=token)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("--sslmode", res.stderr)

    def test_bytes_injected_after_ssl_answer(self):
        # A server (or someone in the path) that answers 'S' and sends more before our
        # ClientHello: those bytes cannot be the server's TLS (CVE-2021-23222).
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(30)

        def serve():
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(8)  # the SSLRequest
                    conn.sendall(b"SR\x00\x00\x00\x08\x00\x00\x00\x00")  # 'S' + AuthenticationOk
                    conn.recv(4096)
            except OSError:
                pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            res = self.bench("alice", "--sslmode", "require", "--transactions", "1",
                             password="x", port=listener.getsockname()[1])
        finally:
            listener.close()
            t.join(timeout=10)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("sent data after accepting TLS", res.stderr)

    def test_server_without_tls(self):
        # The harness's PostgreSQL has ssl = off: it answers the SSLRequest with 'N'.
        res = self.bench("gateway_login", "--sslmode", "require", "--transactions", "5",
                         password=self.pg.passwords["gateway_login"], port=self.pg.port)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("does not accept TLS", res.stderr)


if __name__ == "__main__":
    unittest.main()
