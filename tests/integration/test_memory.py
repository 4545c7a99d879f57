"""Memory after storms: the gateway's resident set comes back after bad input and
connection storms (issue 14).

One gateway, measured from outside (/proc/<pid>/status, VmRSS) as an operator would:
  baseline  after one session has run a statement
  storms    a Query declaring a 1 GiB length (sent in part, then the client leaves);
            a 1 MiB statement; Queries of 10,000 and 50,000 statements; then 7,000
            connections held open at once (5,000 slowloris, each a startup packet cut
            short; 2,000 idle TLS, handshake done and nothing sent), all closed
  after     resident within 20% of the baseline, polled for at most a minute
and, on the way, the peak of the statement storms stays under PEAK_PER_QUERY_MIB over
the baseline (what one statement may take while it is analysed).

Each storm is checked to have happened (answers counted, memory seen to rise while
the connections are open), so a storm that quietly did nothing cannot pass.

ASan+UBSan builds (the CI runs every suite again against build-sanitize/): ASan's
allocator keeps freed blocks in a quarantine and then on its own free lists, and
returns next to nothing to the system, so after a storm the resident size stays near
its peak (measured: 88 MiB before, 183 MiB at the peak and still a minute later) and
the 20% target means nothing there. The test then runs the storms twice, with a
32 MiB quarantine, and checks that the second round fits in what the first left
(within a third of the first round's rise): memory the first round leaked cannot be
reused and adds on. LeakSanitizer checks the rest at exit.
"""

import os
import socket
import ssl
import struct
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import (ClusterTestCase, RawConnection, SSL_REQUEST_CODE, free_port, make_temp_dir,
                     message, raise_nofile_limit, run, sanitized, _rmtree)

SLOWLORIS = 5000
IDLE_TLS = 2000
TARGET = 1.20           # resident within 20% of the baseline ...
SETTLE_SECONDS = 60     # ... a minute after the storm at the latest
ASAN_QUARANTINE_MB = 32
PEAK_PER_QUERY_MIB = 80  # resident rise at the statement storms' peak


def status_mib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) // 1024
    return out


class MemoryTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        # Raised before anything starts, so the gateway (a child) inherits it too.
        limit = raise_nofile_limit(SLOWLORIS + IDLE_TLS + 2000)
        assert limit >= SLOWLORIS + IDLE_TLS + 500, f"RLIMIT_NOFILE {limit} too low"
        super().setUpClass()
        # An ECDSA certificate: 2,000 handshakes cost the gateway little CPU.
        cls.cert_dir = make_temp_dir("memtls")
        cls.addClassCleanup(_rmtree, cls.cert_dir)
        cls.crt = os.path.join(cls.cert_dir, "server.crt")
        cls.key = os.path.join(cls.cert_dir, "server.key")
        run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-days", "2", "-subj", "/CN=localhost",
             "-keyout", cls.key, "-out", cls.crt])
        os.chmod(cls.key, 0o600)

    def start_gateway(self):
        self.tls_port = free_port()
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": f"{asan}:quarantine_size_mb={ASAN_QUARANTINE_MB}".lstrip(":")}
        # Each shard's analysis cache keeps up to analysis_cache_size on purpose
        # (8 MiB by default, the storms' texts would fill half of it): a small one
        # keeps it out of what is measured here, memory that should come back.
        return self.gateway(extra_env=env, gateway_settings={"analysis_cache_size": 1 << 20},
                            listeners=[
            {"address": "127.0.0.1", "port": self.port, "tls": "disabled"},
            {"address": "127.0.0.1", "port": self.tls_port, "tls": "required",
             "tls_cert": self.crt, "tls_key": self.key}], port=self.port)

    def login(self, gw) -> RawConnection:
        c = RawConnection(gw.port, timeout=60)
        c.login("alice", gw.users["alice"], "app")
        return c

    def query(self, gw, sql: bytes) -> list[tuple[bytes, bytes]]:
        with self.login(gw) as c:
            c.send(message(b"Q", sql + b"\0"))
            return c.read_until_ready(timeout=120)

    def storms(self, gw, pid: int, baseline: int, asan: bool) -> tuple[int, int]:
        """Runs every storm once; returns (the statement storms' peak, resident size
        while the 7,000 connections were open), both in MiB."""
        # A Query declaring 1 GiB (the default max_message_size), 1 MiB of it sent,
        # then the client leaves: costs what arrived, never what was declared.
        for _ in range(3):
            with self.login(gw) as c:
                c.send(b"Q" + struct.pack("!I", 0x3fffffff) + b"SELECT '" + b"x" * (1 << 20))
        # A 1 MiB statement (just under max_statement_size), judged and run.
        sql = b"SELECT length('" + b"y" * ((1 << 20) - 200) + b"')"
        msgs = self.query(gw, sql)
        self.assertIn(b"D", [k for k, _ in msgs], msgs[-3:])
        # Queries of 10,000 and 50,000 statements: every one judged and answered.
        for n in (10_000, 50_000):
            msgs = self.query(gw, b"SELECT 1;" * n)
            self.assertEqual([k for k, _ in msgs].count(b"C"), n)
        # What one statement may take at its peak: the 450 KB Query of 50,000
        # statements took 86-96 MiB over the baseline when the analyser read
        # their parse trees as one document, 55 MiB since it reads them one by one.
        statements_peak = status_mib(pid)["VmHWM"]
        if not asan:
            self.assertLess(statements_peak - baseline, PEAK_PER_QUERY_MIB,
                            (baseline, statements_peak))

        # 7,000 connections at once: slowloris and idle TLS.
        socks = []
        try:
            for _ in range(SLOWLORIS):
                s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
                s.sendall(struct.pack("!I", 80) + b"\x00\x03")  # 6 of a startup packet's 80 bytes
                socks.append(s)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE

            def idle_tls(_):
                s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=30)
                s.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
                assert s.recv(1) == b"S"
                return ctx.wrap_socket(s, server_hostname="localhost")

            with ThreadPoolExecutor(4) as pool:
                socks += list(pool.map(idle_tls, range(IDLE_TLS)))
            time.sleep(0.5)
            height = status_mib(pid)["VmRSS"]
        finally:
            for s in socks:
                s.close()
        # The storm happened: 7,000 sessions took memory while they were open.
        self.assertGreater(height - baseline, 16, (baseline, height))
        self.assertEqual(self.query(gw, b"SELECT 1")[-1][0], b"Z")
        return statements_peak, height

    def test_resident_memory_returns_after_storms(self):
        self.port = free_port()
        gw = self.start_gateway()
        pid = gw.proc.pid
        asan = sanitized(pid)
        self.assertEqual(self.query(gw, b"SELECT 1")[-1][0], b"Z")
        time.sleep(1)
        baseline = status_mib(pid)["VmRSS"]
        statements_peak, height = self.storms(gw, pid, baseline, asan)

        if asan:
            # ASan keeps what was freed (quarantine, then its own free lists), so
            # the resident size stays near the peak. A second round of the same
            # storms must fit in it: what leaked in the first round (sessions
            # never freed, analyses never dropped) cannot be reused and adds on.
            after_first = status_mib(pid)["VmRSS"]
            _, height = self.storms(gw, pid, baseline, asan)
            time.sleep(1)
            rss = status_mib(pid)["VmRSS"]
            limit = after_first + (after_first - baseline) // 3
            print(f"\nresident MiB (ASan build): baseline {baseline}, after a round of "
                  f"storms {after_first}, after a second {rss} (limit {limit})")
            self.assertLessEqual(rss, limit, f"baseline {baseline} MiB")
            return

        ended = time.monotonic()
        limit = int(baseline * TARGET)
        rss = status_mib(pid)["VmRSS"]
        while rss > limit and time.monotonic() - ended < SETTLE_SECONDS:
            time.sleep(1)
            rss = status_mib(pid)["VmRSS"]
        peak = status_mib(pid)["VmHWM"]
        print(f"\nresident MiB: baseline {baseline}, statements' peak {statements_peak}, "
              f"connections open {height}, peak {peak}, "
              f"after {time.monotonic() - ended:.1f} s {rss} (limit {limit})")
        self.assertLessEqual(rss, limit, f"baseline {baseline} MiB, peak {peak} MiB")


if __name__ == "__main__":
    unittest.main()
