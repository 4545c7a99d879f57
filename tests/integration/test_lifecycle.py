"""Backpressure and graceful shutdown.

- A client that stops reading a huge result must not make the gateway buffer it:
  reads from the database stop while the client's queue is full, so the
  gateway's memory stays flat.
- SIGTERM: stop accepting; a session idle between transactions is closed at
  once with FATAL 57P01; a running statement finishes and its result arrives
  before the FATAL; a session idle inside a transaction is closed when
  shutdown_timeout runs out; the process exits 0.
"""

import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
import unittest

from harness import (ClusterTestCase, Gateway, RawConnection, gateway_binary, message,
                     parse_error)


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


class BackpressureTest(ClusterTestCase):
    def test_slow_reader_does_not_grow_memory(self):
        gw = self.gateway(workers=1)
        # Warm up so the baseline includes the shard's buffers in use.
        with RawConnection(gw.port) as warm:
            warm.login("alice", gw.users["alice"], "app")
            warm.send(query("SELECT repeat('x', 1000) FROM generate_series(1, 20000)"))
            warm.read_until_ready(timeout=30)
        before = vm_rss_kib(gw.proc.pid)
        conn = RawConnection(gw.port)
        conn.login("alice", gw.users["alice"], "app")
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # About 1.6 GB of rows; the client reads none of them.
        conn.send(query("SELECT repeat('x', 8000) FROM generate_series(1, 200000)"))
        time.sleep(4)
        grown = vm_rss_kib(gw.proc.pid) - before
        # Bounded by one session's queue (256 KiB) plus the shard's receive
        # buffers (16 MiB); without backpressure this would be gigabytes.
        self.assertLess(grown, 48 * 1024, f"gateway RSS grew by {grown} KiB")
        # The database is held back too: its query is still running, not done.
        active = self.pg.sql("SELECT count(*) FROM pg_stat_activity "
                             "WHERE query LIKE 'SELECT repeat(''x'', 8000)%' AND state = 'active'")
        self.assertEqual(active.strip(), "1")
        conn.close()
        # Closing the client ends the backend's session as well.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = self.pg.sql("SELECT count(*) FROM pg_stat_activity "
                               "WHERE query LIKE 'SELECT repeat(''x'', 8000)%'").strip()
            if left == "0":
                break
            time.sleep(0.2)
        self.assertEqual(left, "0", "the backend kept running after the client left")
        with RawConnection(gw.port) as again:
            again.login("alice", gw.users["alice"], "app")
            again.send(query("SELECT 1"))
            kinds = [k for k, _ in again.read_until_ready()]
            self.assertIn(b"D", kinds)


class DescriptorExhaustionTest(ClusterTestCase):
    def test_accept_survives_emfile(self):
        """Out of file descriptors: the gateway does not spin or flood the log,
        and accepts again as soon as descriptors are free."""
        wrapper_dir = tempfile.mkdtemp(prefix="pgb-nofile-")
        self.addCleanup(shutil.rmtree, wrapper_dir, ignore_errors=True)
        wrapper = os.path.join(wrapper_dir, "pgbastion")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nulimit -n 64\nexec {gateway_binary()} \"$@\"\n")
        os.chmod(wrapper, stat.S_IRWXU)
        gw = self.gateway(key="nofile", binary=wrapper, workers=1)
        sockets = []
        try:
            for _ in range(80):
                sockets.append(socket.create_connection(("127.0.0.1", gw.port), timeout=5))
            time.sleep(1)
            def cpu_ticks():
                fields = open(f"/proc/{gw.proc.pid}/stat").read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])
            before = cpu_ticks()
            time.sleep(2)
            used = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
            self.assertLess(used, 0.5, f"gateway burned {used:.2f} s of CPU in 2 s while out of fds")
            # Logged once per episode; an episode ends whenever one accept
            # succeeds (a descriptor can come free for a moment), so allow a
            # few, never a flood.
            failures = gw.log().count("accept failed")
            self.assertTrue(1 <= failures <= 3, gw.log())
        finally:
            for s in sockets:
                s.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with RawConnection(gw.port) as c:
                    c.login("alice", gw.users["alice"], "app")
                    c.send(query("SELECT 1"))
                    self.assertIn(b"D", [k for k, _ in c.read_until_ready()])
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        self.assertIn("accepting connections again", gw.log())


class DatabaseEndsTheSessionTest(ClusterTestCase):
    """When the database ends a session with its own FATAL (pg_terminate_backend: 57P01), the
    client reads that FATAL and then the end of the stream, exactly as from PostgreSQL
    directly: no second FATAL of the gateway's (issue 15, item 1)."""

    def terminated(self, c: RawConnection) -> list[tuple[bytes, bytes]]:
        c.send(query("SELECT pg_backend_pid()"))
        pid = [body for kind, body in c.read_until_ready() if kind == b"D"][0][6:].decode()
        self.pg.sql(f"SELECT pg_terminate_backend({int(pid)})")
        return c.read_until_eof(timeout=10)

    def test_one_fatal_as_from_postgresql(self):
        with RawConnection(self.pg.port) as direct:
            direct.login("gateway_login", self.pg.passwords["gateway_login"], "app")
            expected = self.terminated(direct)
        self.assertEqual([k for k, _ in expected], [b"E"], expected)
        self.assertEqual(parse_error(expected[0][1])["C"], "57P01")
        gw = self.gateway()
        with RawConnection(gw.port) as c:
            c.login("alice", gw.users["alice"], "app")
            got = self.terminated(c)
        self.assertEqual([k for k, _ in got], [b"E"], got)
        fields = parse_error(got[0][1])
        self.assertEqual((fields["S"], fields["C"]), ("FATAL", "57P01"), fields)
        # The gateway goes on serving.
        with RawConnection(gw.port) as again:
            again.login("alice", gw.users["alice"], "app")
            again.send(query("SELECT 1"))
            self.assertIn(b"D", [k for k, _ in again.read_until_ready()])


class ShutdownTest(ClusterTestCase):
    def test_sigterm(self):
        gw = Gateway(self.pg, shutdown_timeout="3s", workers=2)
        gw.start()
        self.addCleanup(gw._cleanup_dir)
        try:
            idle = RawConnection(gw.port)
            idle.login("alice", gw.users["alice"], "app")
            in_txn = RawConnection(gw.port)
            in_txn.login("alice", gw.users["alice"], "app")
            in_txn.send(query("BEGIN"))
            ready = in_txn.read_until_ready()
            self.assertEqual(ready[-1], (b"Z", b"T"))
            busy = RawConnection(gw.port)
            busy.login("alice", gw.users["alice"], "app")
            busy.send(query("SELECT 'finished', pg_sleep(1.5)"))
            time.sleep(0.3)  # the statement is running

            started = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)

            # Idle between transactions: FATAL 57P01 right away, then EOF.
            msgs = idle.read_until_eof(timeout=2)
            self.assertEqual([k for k, _ in msgs], [b"E"])
            self.assertEqual(parse_error(msgs[0][1])["C"], "57P01")
            self.assertLess(time.monotonic() - started, 1.0)

            # New connections are refused once shutdown began (every shard
            # stops its own listener; give the other shard a moment).
            time.sleep(0.3)
            with self.assertRaises(OSError):
                with socket.create_connection(("127.0.0.1", gw.port), timeout=2) as s:
                    s.sendall(b"\0\0\0\x08\x04\xd2\x16\x2f")  # SSLRequest
                    if not s.recv(1):
                        raise ConnectionResetError("closed")

            # The running statement completes; its rows arrive before the FATAL.
            msgs = busy.read_until_eof(timeout=5)
            kinds = [k for k, _ in msgs]
            self.assertEqual(kinds, [b"T", b"D", b"C", b"Z", b"E"], kinds)
            self.assertIn(b"finished", msgs[1][1])
            self.assertEqual(parse_error(msgs[-1][1])["C"], "57P01")

            # Inside a transaction: closed when shutdown_timeout (3 s) runs out.
            msgs = in_txn.read_until_eof(timeout=6)
            self.assertEqual([k for k, _ in msgs], [b"E"])
            self.assertEqual(parse_error(msgs[0][1])["C"], "57P01")
            self.assertGreater(time.monotonic() - started, 2.5)

            rc = gw.proc.wait(timeout=10)
            self.assertEqual(rc, 0, gw.log())
        finally:
            if gw.proc is not None and gw.proc.poll() is None:
                gw.proc.kill()
                gw.proc.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
