"""The audit trail end to end: a real PostgreSQL, the gateway with a file sink and a signing key,
psql, psycopg (extended protocol) and pgbench (prepared protocol).

Every statement produces a record before the database sees it and a completion after it (refused
ones one record); session events are recorded; `pgbastion audit verify` accepts the untouched trail and names an
edited record.
"""

import json
import os
import socket
import threading
import time
import unittest
from collections import Counter
from pathlib import Path

import psycopg
from psycopg import errors

import harness as h
from harness import ClusterTestCase, psql, pgbench, random_password

GROUPS = {"ada": ["admin"], "rob": ["read-only"]}
SCOPES = [
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
    {"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only"},
]
PGBENCH_SELECT = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"


class AuditTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {name: random_password() for name in GROUPS}
        cls.dir = h.make_temp_dir("audit")
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)
        cls.trail = os.path.join(cls.dir, "audit.jsonl")
        # pgbench tables, loaded directly (not through the gateway).
        pgbench(["-i", "-s", "1", "-q"], port=cls.pg.port, user="gateway_login", dbname="app",
                password=cls.pg.passwords["gateway_login"])

    def audited_gateway(self, parameters: str = "off") -> h.Gateway:
        if os.path.exists(self.trail):
            os.unlink(self.trail)  # each test reads its own records
        extra = "\n".join([
            "[audit]", f'signing_key = "{self.key}"', f'spill_dir = "{self.dir}/spill"',
            "checkpoint_every = 25", f'parameters = "{parameters}"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{self.trail}"', 'fsync = "never"'])
        return h.Gateway(self.pg, users=self.users, user_groups=GROUPS, scopes=SCOPES,
                         extra_config=extra)

    def records(self) -> list[dict]:
        lines = Path(self.trail).read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def test_every_statement_once_and_the_trail_verifies(self):
        gw = self.audited_gateway().start()
        try:
            # Simple protocol, two statements in one Query, an error, a refusal.
            r = psql(gw.conninfo("ada"), "SELECT 11 AS a; SELECT 22 AS b", password=self.users["ada"])
            self.assertIn("22", r.stdout.decode())
            psql(gw.conninfo("ada"), "SELECT 1/0", password=self.users["ada"], check=False)
            with psycopg.connect(gw.conninfo("ada"), password=self.users["ada"],
                                 autocommit=True, application_name="audit-test") as conn:
                conn.execute("CREATE TABLE audited (x int)")
                # Extended protocol, a named prepared statement run three times.
                for i in range(3):
                    conn.execute("INSERT INTO audited VALUES (%s)", (i,), prepare=True)
            with psycopg.connect(gw.conninfo("rob"), password=self.users["rob"],
                                 autocommit=True) as conn:
                with self.assertRaises(errors.InsufficientPrivilege):
                    conn.execute("DELETE FROM audited WHERE x = 1")
                self.assertEqual(conn.execute("SELECT count(*) FROM audited").fetchone()[0], 3)
            # Prepared protocol: pgbench parses once and executes 40 times.
            pgbench(["-n", "-S", "-M", "prepared", "-c", "1", "-t", "40"], port=gw.port, user="rob",
                    dbname="app", password=self.users["rob"])
        finally:
            gw.stop()  # the trail drains and ends with a final checkpoint

        recs = self.records()
        stmts = h.audit_statements(recs)
        by_text = Counter(r.get("statement") for r in stmts)
        self.assertEqual(by_text["SELECT 11 AS a"], 1, by_text)
        self.assertEqual(by_text["SELECT 22 AS b"], 1, by_text)
        self.assertEqual(by_text["INSERT INTO audited VALUES ($1)"], 3, by_text)
        self.assertEqual(by_text[PGBENCH_SELECT], 40, by_text)

        def one(text):
            found = [r for r in stmts if r.get("statement") == text]
            self.assertEqual(len(found), 1, text)
            return found[0]

        a = one("SELECT 11 AS a")
        self.assertEqual((a["decision"], a["protocol"], a["command_tag"], a["rows"]),
                         ("allow", "simple", "SELECT 1", 1))
        self.assertEqual(a["identity"]["subject"], "ada")
        self.assertEqual(a["target"], "app")
        self.assertEqual(a["db_role"], "gateway_login")
        self.assertEqual(a["rule"], "profile.admin")
        self.assertIn("127.0.0.1:", a["client"])
        failed = one("SELECT 1/0")
        self.assertEqual((failed["decision"], failed["sqlstate"]), ("allow", "22012"))
        self.assertIn("division by zero", failed["message"])
        inserts = [r for r in stmts if r.get("statement") == "INSERT INTO audited VALUES ($1)"]
        for ins in inserts:
            self.assertEqual((ins["protocol"], ins["command_tag"], ins["rows"]),
                             ("extended", "INSERT 0 1", 1))
            self.assertEqual(ins["application_name"], "audit-test")
        refused = one("DELETE FROM audited WHERE x = 1")
        self.assertEqual((refused["decision"], refused["sqlstate"], refused["rule"]),
                         ("deny", "42501", "profile.read-only.class"))
        self.assertEqual(refused["identity"]["subject"], "rob")
        for sel in (r for r in stmts if r.get("statement") == PGBENCH_SELECT):
            self.assertEqual((sel["protocol"], sel["command_tag"], sel["decision"]),
                             ("extended", "SELECT 1", "allow"))

        # Fingerprints: one per statement shape, whatever the literals.
        self.assertNotEqual(a["fingerprint"], one("SELECT 22 AS b")["fingerprint"])
        self.assertEqual(len({r["fingerprint"] for r in inserts}), 1)
        selects = [r for r in stmts if r.get("statement") == PGBENCH_SELECT]
        self.assertEqual(len({r["fingerprint"] for r in selects}), 1)
        self.assertRegex(refused["fingerprint"], "^[0-9a-f]{16}$")
        # Bytes: the Query's to its first statement, each answer to its own.
        self.assertGreater(a["bytes_in"], len("SELECT 11 AS a; SELECT 22 AS b"))
        self.assertNotIn("bytes_in", one("SELECT 22 AS b"))
        self.assertGreater(a["bytes_out"], 0)
        self.assertGreater(refused["bytes_in"], 0)
        for sel in selects:
            self.assertGreater(sel["bytes_in"], 0)
            self.assertGreater(sel["bytes_out"], 0)
        self.assertTrue(all("parameters" not in r for r in stmts))  # off by default

        kinds = Counter(r["kind"] for r in recs)
        ends = [r for r in recs if r["kind"] == "disconnect" and "identity" in r]
        self.assertTrue(all(r["bytes_in"] > 0 and r["bytes_out"] > 0 for r in ends), ends)
        # psql x2, psycopg x2, pgbench x1 sessions.
        self.assertGreaterEqual(kinds["auth_ok"], 5, kinds)
        self.assertEqual(kinds["auth_ok"], len(ends), kinds)
        # Every connection's end is recorded (the harness's port probe's too).
        self.assertEqual(kinds["connect"], kinds["disconnect"] + kinds["auth_failed"], kinds)
        self.assertGreaterEqual(kinds["checkpoint"], 2, kinds)
        seqs = [r["seq"] for r in recs]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))

        # The untouched trail verifies; an edited record is named.
        ok = h.run([h.gateway_binary(), "audit", "verify", "--public-key", self.pub, self.trail],
                   check=False, timeout=60)
        self.assertEqual(ok.returncode, 0, ok.stdout.decode() + ok.stderr.decode())
        tampered = os.path.join(self.dir, "tampered.jsonl")
        Path(tampered).write_text(Path(self.trail).read_text().replace("SELECT 22 AS b", "SELECT 23 AS b"))
        bad = h.run([h.gateway_binary(), "audit", "verify", "--public-key", self.pub, tampered],
                    check=False, timeout=60)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("edited", bad.stdout.decode() + bad.stderr.decode())

    def run_parameters(self, mode: str) -> list[dict]:
        gw = self.audited_gateway(parameters=mode).start()
        try:
            with psycopg.connect(gw.conninfo("ada"), password=self.users["ada"],
                                 autocommit=True) as conn:
                conn.execute("SELECT %s::text, %s::int, %s::text", ("secret-ish", 42, None))
                conn.execute("SELECT %b::bytea", (b"\x00\x01\xff",), binary=True)
                conn.execute("SELECT length(%s::text)", ("y" * 10000,))
        finally:
            gw.stop()
        return h.audit_statements(self.records())

    def test_parameters_on(self):
        stmts = {r["statement"]: r for r in self.run_parameters("on")}
        three = stmts["SELECT $1::text, $2::int, $3::text"]
        # psycopg sends a small int in binary (int2): binary values are recorded in hex.
        self.assertEqual(three["parameters"], ["secret-ish", "\\x002a", None])
        self.assertEqual(stmts["SELECT $1::bytea"]["parameters"], ["\\x0001ff"])
        long = stmts["SELECT length($1::text)"]
        self.assertEqual(len(long["parameters"]), 1)
        self.assertTrue(long["parameters"][0].startswith("yyyy"))
        self.assertIn("parameters", long["truncated"])

    def test_parameters_redacted(self):
        stmts = {r["statement"]: r for r in self.run_parameters("redacted")}
        self.assertEqual(stmts["SELECT $1::text, $2::int, $3::text"]["parameters"], [10, 2, None])
        self.assertEqual(stmts["SELECT $1::bytea"]["parameters"], [3])
        self.assertEqual(stmts["SELECT length($1::text)"]["parameters"], [10000])
        self.assertNotIn("secret-ish", Path(self.trail).read_text())


class SyslogReceiver:
    """A TCP syslog receiver (RFC 6587 octet counting) that keeps every message."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen(8)
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            conn.settimeout(0.2)
            buf = b""
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                buf += data
                while b" " in buf:
                    length, rest = buf.split(b" ", 1)
                    if len(rest) < int(length):
                        break
                    self.messages.append(rest[:int(length)].decode())
                    buf = rest[int(length):]
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


class AuditFailClosedTest(ClusterTestCase):
    """A sink that is down fills its spill; then statements are refused (53400) until it is back,
    and every record reaches it, in order, none lost."""

    def test_full_spill_refuses_statements_until_the_sink_is_back(self):
        users = {"ada": random_password()}
        d = h.make_temp_dir("audit-fc")
        self.addCleanup(h._rmtree, d)
        key = os.path.join(d, "audit.key")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", key, "--public-key",
               key + ".pub"], timeout=30)
        port = h.free_port()
        extra = "\n".join([
            "[audit]", f'signing_key = "{key}"', f'spill_dir = "{d}/spill"',
            "spill_max_bytes = 1048576", "",
            "[[audit.sink]]", 'type = "syslog"', 'transport = "tcp"', 'host = "127.0.0.1"',
            f"port = {port}"])
        gw = self.gateway("fail-closed", users=users, user_groups={"ada": ["admin"]},
                          scopes=SCOPES, extra_config=extra)
        filler = "x" * 2000
        ran = 0
        refused = None
        prepared = "SELECT %s::int AS prepared_n"
        with psycopg.connect(gw.conninfo("ada"), password=users["ada"], autocommit=True) as conn:
            # Parsed (and recorded) while the trail is healthy; executed again below.
            self.assertEqual(conn.execute(prepared, (0,), prepare=True).fetchone(), (0,))
            for i in range(3000):  # about 2.5 KB per record: the 1 MiB spill fills in ~400
                try:
                    conn.execute(f"SELECT {i} AS n, '{filler}' AS filler")
                    ran += 1
                except psycopg.Error as e:
                    refused = e
                    break
            self.assertIsNotNone(refused, "the spill never filled")
            self.assertEqual(refused.sqlstate, "53400")
            self.assertIn("audit trail is unavailable", str(refused))
            # The extended protocol too: Bind/Execute of the statement parsed earlier is refused
            # at its Execute (its record cannot be written), and the session stays usable.
            with self.assertRaises(psycopg.Error) as caught:
                conn.execute(prepared, (1,), prepare=True)
            self.assertEqual(caught.exception.sqlstate, "53400", gw.log())
            # The sink comes back: the spill drains and statements are accepted again.
            receiver = SyslogReceiver(port)
            self.addCleanup(receiver.stop)
            deadline = time.time() + 60
            while True:
                try:
                    conn.execute("SELECT 'after recovery' AS marker")
                    self.assertEqual(conn.execute(prepared, (2,), prepare=True).fetchone(), (2,))
                    break
                except psycopg.errors.ConfigurationLimitExceeded:
                    self.assertLess(time.time(), deadline, gw.log())
                    time.sleep(0.2)
        deadline = time.time() + 30
        while not any("after recovery" in m for m in receiver.messages):
            self.assertLess(time.time(), deadline, "the record after recovery never arrived")
            time.sleep(0.2)
        got = [json.loads(m[m.index("{"):]) for m in receiver.messages if "{" in m]
        filled = [r for r in got if r.get("kind") == "statement" and filler in r.get("statement", "")
                  and r.get("decision") == "allow"]
        self.assertEqual(len(filled), ran, "records lost or duplicated")
        numbers = [int(r["statement"].split()[1]) for r in filled]
        self.assertEqual(numbers, list(range(ran)))
        seqs = [r["seq"] for r in got]
        self.assertEqual(seqs, sorted(seqs))


if __name__ == "__main__":
    unittest.main()
