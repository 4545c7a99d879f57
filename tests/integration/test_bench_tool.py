"""pgbastion-bench: the load tool runs every workload and protocol, direct and through the gateway.

The tool speaks the protocol itself (no libpq), so these tests also check that
its login (SCRAM, md5), its extended-protocol messages and its reports are
right: every run must complete with zero errors and a positive TPS, and the
counts must be exact where the options fix them.
"""

import json
import os
import subprocess
import unittest

from harness import ClusterTestCase, pgbench

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


if __name__ == "__main__":
    unittest.main()
