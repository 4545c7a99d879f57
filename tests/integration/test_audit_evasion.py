"""An audit trail a client cannot evade, tried as a hostile client would (issue 14).

A statement's record is in the trail before the database sees the statement, so leaving early
hides nothing: a client sends statements (simple, extended, several pipelined) and closes the
socket at once, after a moment, or half-closes; a backend is killed with SIGKILL mid-statement;
the database is stopped with `pg_ctl stop -m immediate`. Each time, every row the database
inserted (read back directly, not through the gateway) has its statement record, every
statement record has a completion (`unknown`, with the reason, when no answer came), and
`pgbastion audit verify` finds the trail intact and complete.
"""

import json
import os
import signal
import socket
import struct
import time
import unittest
from pathlib import Path

import harness as h
from harness import ClusterTestCase, RawConnection, message, random_password

TABLE = "evasion"


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def extended(sql: str) -> bytes:
    """Parse (unnamed), Bind, Execute, Sync for a statement without parameters."""
    parse = message(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
    bind = message(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
    execute = message(b"E", b"\0" + struct.pack("!i", 0))
    return parse + bind + execute + message(b"S")


# How long a client waits between sending and closing: at once (the gateway may not have
# forwarded the statement yet: then the database does not run it either) up to long enough for
# the database to have run it but not for its answer to have come back.
PAUSES = (0, 0.001, 0.003, 0.01, 0.03)


def insert(tag: str) -> str:
    return f"INSERT INTO {TABLE} (tag) VALUES ('{tag}')"


class AuditEvasionTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {"eve": random_password()}
        cls.dir = h.make_temp_dir("evasion")
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)
        cls.pg.sql(f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, tag text NOT NULL)", db="app")
        cls.pg.sql(f"GRANT ALL ON {TABLE}, {TABLE}_id_seq TO gateway_login", db="app")

    ring_slots = {"test_a_query_too_large_to_record_ahead_is_refused_whole": 64}
    checkpoint_interval = {"test_gateway_killed_leaves_a_signed_but_incomplete_trail": "100ms"}

    def setUp(self):
        self.trail = os.path.join(self.dir, f"{self._testMethodName}.jsonl")
        slots = self.ring_slots.get(self._testMethodName, 4096)
        extra = "\n".join([
            "[audit]", f'signing_key = "{self.key}"', f'spill_dir = "{self.dir}/spill"',
            "checkpoint_every = 50", f"ring_slots = {slots}",
            f'checkpoint_interval = "{self.checkpoint_interval.get(self._testMethodName, "10s")}"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{self.trail}"', 'fsync = "never"'])
        self.gw = h.Gateway(self.pg, users=self.users, extra_config=extra).start()
        self.addCleanup(self.gw.kill)
        self.prefix = f"{self._testMethodName}-"

    def session(self) -> RawConnection:
        c = RawConnection(self.gw.port)
        c.login("eve", self.users["eve"], "app")
        return c

    def rows(self) -> set[str]:
        out = self.pg.sql(f"SELECT tag FROM {TABLE} WHERE tag LIKE '{self.prefix}%'", db="app")
        return {line.strip() for line in out.splitlines() if line.strip()}

    def finish(self, expect_unknown: bool = False) -> list[dict]:
        """Stops the gateway cleanly and checks the trail against the table."""
        self.gw.stop()
        records = [json.loads(line) for line in Path(self.trail).read_text().splitlines()
                   if line.strip()]
        recorded = {r["statement"] for r in records if r["kind"] == "statement"}
        ran = self.rows()
        self.assertTrue(ran, "the database ran none of the statements: the test proves nothing")
        missing = sorted(tag for tag in ran if insert(tag) not in recorded
                         and not any(f"'{tag}'" in s for s in recorded))
        self.assertEqual(missing, [], f"{len(missing)} of {len(ran)} statements that ran have no "
                                      "record in the audit trail")
        executions = h.audit_statements(records)  # every allowed statement has a completion
        if expect_unknown:
            unknown = [e for e in executions if e["outcome"] == "unknown"]
            self.assertTrue(unknown, "no statement was left without an answer")
            for e in unknown:
                self.assertIn("the session ended before the database answered", e["message"])
        verify = h.run([h.gateway_binary(), "audit", "verify", "--public-key", self.pub,
                        self.trail], check=False, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout.decode() + verify.stderr.decode())
        return executions

    def test_gateway_killed_leaves_a_signed_but_incomplete_trail(self):
        """SIGKILL the gateway while a statement runs, after a periodic checkpoint has signed its
        record. Verify then says `truncated` (exit 1: no final checkpoint) and, with --live, only
        notes it (exit 0). The gateway restarted on the same trail continues its chain; once it
        stops cleanly the trail is intact but incomplete: exit 3, naming the statement with no
        completion and the session with no disconnect record. That is what an auditor sees
        when the gateway itself died."""
        c = self.session()
        c.send(query(f"SELECT pg_sleep(20), '{self.prefix}sleeper'"))
        deadline = time.monotonic() + 10
        while self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                          f"AND query LIKE '%{self.prefix}sleeper%' AND pid <> pg_backend_pid()") != "1":
            self.assertLess(time.monotonic(), deadline, "the statement never started")
            time.sleep(0.05)
        # The record went ahead of the statement; wait for a checkpoint after it to be written.
        deadline = time.monotonic() + 10
        while True:
            lines = [json.loads(x) for x in Path(self.trail).read_text().splitlines() if x.strip()]
            seen = [r for r in lines if r["kind"] == "statement" and "sleeper" in r.get("statement", "")]
            if seen and lines[-1]["kind"] == "checkpoint" and lines[-1]["seq"] > seen[0]["seq"]:
                break
            self.assertLess(time.monotonic(), deadline, "no checkpoint after the statement's record")
            time.sleep(0.05)
        self.gw.kill()
        self.gw._cleanup_dir()
        c.sock.close()

        def verify(*flags):
            r = h.run([h.gateway_binary(), "audit", "verify", *flags, "--public-key", self.pub,
                       self.trail], check=False, timeout=60)
            return r.returncode, r.stdout.decode() + r.stderr.decode()

        rc, out = verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("truncated", out)
        rc, out = verify("--live")
        self.assertEqual(rc, 0, out)
        # Restarted on the same trail and stopped cleanly: a final checkpoint at the end.
        self.gw = h.Gateway(self.pg, users=self.users, extra_config=self.gw.extra_config).start()
        self.addCleanup(self.gw.kill)
        with self.session() as again:
            again.simple_query("SELECT 1")
        self.gw.stop()
        rc, out = verify()
        self.assertEqual(rc, 3, out)
        self.assertIn("incomplete trail: 1 statement(s) with no completion record", out)
        self.assertRegex(out, r"[1-9]\d* session\(s\) with no disconnect record")
        rc, out = verify("--json")
        self.assertEqual(rc, 3, out)
        self.assertEqual(json.loads(out)["incomplete"]["statements"], 1, out)

    def test_send_and_close_at_once(self):
        for i in range(40):
            c = self.session()
            c.send(query(insert(f"{self.prefix}{i}")))
            time.sleep(PAUSES[i % len(PAUSES)])
            c.sock.close()
        time.sleep(0.5)
        self.finish()

    def test_several_statements_in_one_query_then_close(self):
        for i in range(20):
            c = self.session()
            c.send(query(f"{insert(f'{self.prefix}{i}a')}; {insert(f'{self.prefix}{i}b')}"))
            time.sleep(PAUSES[i % len(PAUSES)])
            c.sock.close()
        time.sleep(0.5)
        self.finish()

    def test_extended_protocol_then_close(self):
        for i in range(30):
            c = self.session()
            c.send(extended(insert(f"{self.prefix}{i}")))
            time.sleep(PAUSES[i % len(PAUSES)])
            c.sock.close()
        time.sleep(0.5)
        self.finish()

    def test_pipelined_then_half_close(self):
        for i in range(10):
            c = self.session()
            c.send(b"".join(query(insert(f"{self.prefix}{i}-{j}")) for j in range(10)) +
                   b"".join(extended(insert(f"{self.prefix}{i}-x{j}")) for j in range(5)))
            c.sock.shutdown(socket.SHUT_WR)
            time.sleep(PAUSES[i % len(PAUSES)])
            c.sock.close()
        time.sleep(0.5)
        self.finish()

    def test_close_after_a_delay_with_a_statement_still_running(self):
        for i in range(5):
            c = self.session()
            c.send(query(insert(f"{self.prefix}{i}")))
            c.send(query("SELECT pg_sleep(0.5)"))
            time.sleep(0.1)
            c.sock.close()
        time.sleep(1)
        self.finish(expect_unknown=True)

    def test_backend_killed_mid_statement(self):
        c = self.session()
        c.send(query(insert(f"{self.prefix}before")))
        kinds = [k for k, _ in c.read_until_ready()]
        self.assertIn(b"C", kinds)
        self.make_durable()
        c.send(query("SELECT pg_sleep(30)"))
        deadline = time.monotonic() + 10
        pid = ""
        while not pid and time.monotonic() < deadline:
            pid = self.pg.sql("SELECT pid FROM pg_stat_activity "
                              "WHERE query = 'SELECT pg_sleep(30)'").strip()
            time.sleep(0.1)
        self.assertTrue(pid, "the sleeping statement never started")
        os.kill(int(pid), signal.SIGKILL)
        c.read_until_eof(timeout=20)
        c.close()
        self.wait_for_database()
        self.finish(expect_unknown=True)

    def test_database_stopped_immediately(self):
        c = self.session()
        c.send(query(insert(f"{self.prefix}before")))
        self.assertIn(b"C", [k for k, _ in c.read_until_ready()])
        self.make_durable()
        c.send(query("SELECT pg_sleep(30)"))
        time.sleep(0.5)
        h.run([str(h.PG_BIN / "pg_ctl"), "-D", self.pg.data, "-m", "immediate", "-w", "-t", "60",
               "stop"], as_postgres=True, timeout=90)
        try:
            c.read_until_eof(timeout=20)
        finally:
            c.close()
            h.run([str(h.PG_BIN / "pg_ctl"), "-D", self.pg.data, "-l", self.pg.logfile, "-w",
                   "-t", "60", "start"], as_postgres=True, timeout=90)
        self.wait_for_database()
        self.finish(expect_unknown=True)

    def test_a_query_too_large_to_record_ahead_is_refused_whole(self):
        """Fail closed: with 64 ring slots, a Query of 40 statements (80 records with their
        completions) cannot be recorded before it is forwarded, so none of it runs."""
        with self.session() as c:
            c.send(query("; ".join(insert(f"{self.prefix}big{i}") for i in range(40))))
            answer = c.read_until_ready()
            errors = [h.parse_error(body) for kind, body in answer if kind == b"E"]
            self.assertEqual(len(errors), 1, answer)
            self.assertEqual(errors[0]["C"], "53400")
            self.assertIn("no room now for the records of this Query's 40 statements",
                          errors[0]["M"])
            self.assertNotIn(b"C", [kind for kind, _ in answer])
            c.send(query("; ".join(insert(f"{self.prefix}small{i}") for i in range(10))))
            self.assertEqual([kind for kind, _ in c.read_until_ready()].count(b"C"), 10)
        self.assertEqual({tag for tag in self.rows() if "big" in tag}, set())
        self.finish()

    def make_durable(self) -> None:
        """The test cluster runs with synchronous_commit off: a commit can still sit in the WAL
        buffers that a crash restart throws away. A checkpoint writes it out, so the row the
        test later looks for survives the kill."""
        self.pg.sql("CHECKPOINT")

    def wait_for_database(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.pg.sql("SELECT 1", timeout=10)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


if __name__ == "__main__":
    unittest.main()
