"""The audit trail end to end: a real PostgreSQL, the gateway with a file sink and a signing key,
psql, psycopg (extended protocol) and pgbench (prepared protocol).

Every statement produces exactly one record with the right fields, refused ones included;
session events are recorded; `pgbastion audit verify` accepts the untouched trail and names an
edited record.
"""

import json
import os
import subprocess
import unittest
from collections import Counter
from pathlib import Path

import psycopg
from psycopg import errors

import harness as h
from harness import ClusterTestCase, psql, pgbench, random_password

GROUPS = {"ada": ["admin"], "rob": ["read-only"]}
SCOPES = [
    {"name": "admins", "groups": ["admin"], "profile": "admin"},
    {"name": "readers", "groups": ["read-only"], "profile": "read-only"},
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

    def audited_gateway(self) -> h.Gateway:
        extra = "\n".join([
            "[audit]", f'signing_key = "{self.key}"', f'spill_dir = "{self.dir}/spill"',
            "checkpoint_every = 25", "",
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
        stmts = [r for r in recs if r["kind"] == "statement"]
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

        kinds = Counter(r["kind"] for r in recs)
        # psql x2, psycopg x2, pgbench x1 sessions.
        self.assertGreaterEqual(kinds["auth_ok"], 5, kinds)
        self.assertEqual(kinds["auth_ok"], kinds["disconnect"], kinds)
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


if __name__ == "__main__":
    unittest.main()
