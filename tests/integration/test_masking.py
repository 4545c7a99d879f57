"""Column masking, end to end: a real PostgreSQL, the gateway, psql, psycopg and pgbench.

Users and their scopes:
  mia   support (read-write) with masks: email partial (keep 4), ssn redact, salary null
  ada   admin, no masks: sees every value in clear

Every path out is checked: rows of the simple protocol (psql), of the extended
protocol (psycopg: text and binary results, named prepared statements executed
without a Describe, a pipeline, a cursor), error details that quote values, and
what the rules refuse because it could reveal a masked value (expressions,
filters, renaming, whole-row references, COPY TO).
"""

import json
import os
import time
import unittest
from pathlib import Path

import psycopg
from psycopg import errors

import harness as h
from harness import ClusterTestCase, pgbench, psql, random_password

GROUPS = {"mia": ["support"], "ada": ["admin"]}
MASKS = [
    {"columns": ["email"], "method": "partial", "keep": 4},
    {"columns": ["ssn"], "method": "redact"},
    {"columns": ["salary"], "method": "null"},
]
SCOPES = [
    {"name": "support", "sources": ["local"], "groups": ["support"], "profile": "read-write", "mask": MASKS},
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
]
ROWS = [
    (1, "Alice", "alice@example.com", "123-45-6789", 5000),
    (2, "Bob", "bob@example.org", "987-65-4321", 6000),
    (3, "Zoë", "zoë@exämple.de", None, None),
]
# What mia sees of them.
MASKED = [
    (1, "Alice", "*************.com", "****", None),
    (2, "Bob", "***********.org", "****", None),
    (3, "Zoë", "**********e.de", None, None),
]


class MaskingTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        values = ", ".join(
            "(%d, '%s', '%s', %s, %s)" % (i, n, e, "NULL" if s is None else f"'{s}'",
                                          "NULL" if p is None else p)
            for i, n, e, s, p in ROWS)
        cls.pg.sql("CREATE TABLE customers (id int PRIMARY KEY, name text, email varchar(80) UNIQUE,"
                   " ssn text, salary int, note text);"
                   f"INSERT INTO customers (id, name, email, ssn, salary) VALUES {values};"
                   "ALTER TABLE customers OWNER TO gateway_login;", db="app")
        cls.users = {name: random_password() for name in GROUPS}

    def gw(self) -> h.Gateway:
        return self.gateway(users=self.users, user_groups=GROUPS, scopes=SCOPES)

    def connect(self, user: str, **kw) -> psycopg.Connection:
        return psycopg.connect(self.gw().conninfo(user), password=self.users[user], autocommit=True,
                               **kw)

    def psql(self, user: str, sql: str, check: bool = True):
        return psql(self.gw().conninfo(user), sql, password=self.users[user], check=check,
                    args=["-v", "ON_ERROR_STOP=1", "-At", "-F", "|"])

    def test_simple_protocol_rows_are_masked(self):
        out = self.psql("mia", "SELECT id, name, email, ssn, salary FROM customers ORDER BY id")
        self.assertEqual(out.stdout.decode().splitlines(),
                         ["|".join("" if v is None else str(v) for v in row) for row in MASKED])
        star = self.psql("mia", "SELECT * FROM customers WHERE id = 1")
        self.assertEqual(star.stdout.decode().strip(), "1|Alice|*************.com|****||")
        # The same rows in clear for a scope without masks: masking is per scope.
        clear = self.psql("ada", "SELECT email, ssn, salary FROM customers WHERE id = 1")
        self.assertEqual(clear.stdout.decode().strip(), "alice@example.com|123-45-6789|5000")

    def test_extended_protocol_text_binary_prepared_pipeline(self):
        with self.connect("mia") as conn:
            q = "SELECT id, name, email, ssn, salary FROM customers WHERE id = %s"
            for i in range(1, 4):
                self.assertEqual(conn.execute(q, (i,)).fetchone(), MASKED[i - 1])
            # Named prepared statements: after the first runs, psycopg binds and
            # executes without describing; the gateway describes for it.
            for _ in range(3):
                for i in range(1, 4):
                    self.assertEqual(conn.execute(q, (i,), prepare=True).fetchone(), MASKED[i - 1])
            with conn.cursor(binary=True) as cur:
                cur.execute("SELECT id, email, ssn, salary FROM customers ORDER BY id")
                self.assertEqual(cur.fetchall(), [(r[0], r[2], r[3], r[4]) for r in MASKED])
            with conn.pipeline():
                curs = [conn.execute("SELECT email FROM customers WHERE id = %s", (i,))
                        for i in (3, 1, 2)]
                names = conn.execute("SELECT name FROM customers ORDER BY id")
            self.assertEqual([c.fetchone()[0] for c in curs], [MASKED[2][2], MASKED[0][2],
                                                               MASKED[1][2]])
            self.assertEqual([r[0] for r in names.fetchall()], ["Alice", "Bob", "Zoë"])
            # A server-side cursor fetches in several Executes of one portal.
            conn.autocommit = False
            with conn.cursor(name="c") as cur:
                cur.itersize = 1
                cur.execute("SELECT email FROM customers ORDER BY id")
                self.assertEqual([r[0] for r in cur], [r[2] for r in MASKED])
            conn.rollback()

    def test_cursor_and_prepare_in_sql(self):
        out = self.psql("mia", "BEGIN; DECLARE c CURSOR FOR SELECT email FROM customers ORDER BY id;"
                               "FETCH 2 FROM c; COMMIT;"
                               "PREPARE p AS SELECT ssn FROM customers WHERE id = $1; EXECUTE p(2);")
        lines = out.stdout.decode().splitlines()
        self.assertIn(MASKED[0][2], lines)
        self.assertIn(MASKED[1][2], lines)
        self.assertIn("****", lines)
        self.assertNotIn("alice@example.com", out.stdout.decode())
        self.assertNotIn("987-65-4321", out.stdout.decode())

    def test_error_details_do_not_quote_values(self):
        sql = "UPDATE customers SET email = 'bob@example.org' WHERE id = 1"
        # Direct, PostgreSQL names the value in the DETAIL: the test can tell.
        direct = psycopg.connect(self.pg.conninfo("gateway_login", "app"),
                                 password=self.pg.passwords["gateway_login"], autocommit=True)
        with direct, self.assertRaises(errors.UniqueViolation) as seen:
            direct.execute(sql)
        self.assertIn("bob@example.org", seen.exception.diag.message_detail or "")
        with self.connect("mia") as conn:
            with self.assertRaises(errors.UniqueViolation) as e:
                conn.execute(sql)
            self.assertIsNone(e.exception.diag.message_detail)
            self.assertEqual(e.exception.diag.constraint_name, "customers_email_key")
            with self.assertRaises(errors.NotNullViolation) as e:
                conn.execute("UPDATE customers SET id = NULL WHERE id = 2")
            self.assertIsNone(e.exception.diag.message_detail)  # "Failing row contains (...)"
            self.assertEqual(conn.execute("SELECT email FROM customers WHERE id = 2").fetchone(),
                             (MASKED[1][2],))

    def test_statements_that_could_reveal_masked_values_are_refused(self):
        refused = [
            "SELECT lower(email) FROM customers",
            "SELECT email AS e FROM customers",
            "SELECT id FROM customers WHERE ssn LIKE '1%'",
            "SELECT (SELECT email FROM customers LIMIT 1)",
            "WITH x AS (SELECT email FROM customers) SELECT * FROM x",
            "SELECT email FROM customers UNION SELECT 'x'",
            "SELECT c FROM customers c",
            "SELECT row_to_json(c) FROM customers c",
            "SELECT email FROM customers ORDER BY 1",
            "COPY customers TO STDOUT",
            "COPY (SELECT id FROM customers) TO STDOUT",
            "UPDATE customers SET note = email WHERE id = 1",
            "SELECT most_common_vals::text FROM pg_stats WHERE attname = 'email'",
        ]
        with self.connect("mia") as conn:
            for sql in refused:
                with self.subTest(sql=sql):
                    with self.assertRaises(errors.InsufficientPrivilege) as e:
                        conn.execute(sql)
                    self.assertIn("mask", str(e.exception.diag.message_primary) +
                                  str(e.exception.diag.message_hint))
            # The session is still usable, and nothing was changed.
            self.assertEqual(conn.execute("SELECT count(*) FROM customers WHERE note IS NULL")
                             .fetchone(), (3,))
        with self.connect("ada") as conn:  # the same statements are fine without masks
            self.assertEqual(conn.execute("SELECT lower(email) FROM customers WHERE id = 1")
                             .fetchone(), ("alice@example.com",))

    def test_audit_records_count_masked_values(self):
        audit_dir = h.make_temp_dir("mask-audit")
        self.addCleanup(h._rmtree, audit_dir)
        key, trail = os.path.join(audit_dir, "audit.key"), os.path.join(audit_dir, "audit.jsonl")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", key, "--public-key",
               os.path.join(audit_dir, "audit.pub")], timeout=30)
        extra = "\n".join(["[audit]", f'signing_key = "{key}"', f'spill_dir = "{audit_dir}/spill"',
                           "", "[[audit.sink]]", 'type = "file"', f'path = "{trail}"',
                           'fsync = "never"'])
        gw = self.gateway("audited", users=self.users, user_groups=GROUPS, scopes=SCOPES,
                          extra_config=extra)
        with psycopg.connect(gw.conninfo("mia"), password=self.users["mia"], autocommit=True) as c:
            c.execute("SELECT id, email, ssn, salary FROM customers ORDER BY id").fetchall()
            c.execute("SELECT name FROM customers WHERE id = %s", (1,)).fetchall()
        psql(gw.conninfo("mia"), "SELECT email FROM customers", password=self.users["mia"])
        wanted = {"SELECT id, email, ssn, salary FROM customers ORDER BY id": 7,  # 3 + 2 + 2 non-NULL
                  "SELECT name FROM customers WHERE id = $1": None,
                  "SELECT email FROM customers": 3}
        deadline = time.time() + 10
        while True:
            records = [json.loads(line) for line in Path(trail).read_text().splitlines()
                       if line.strip()] if os.path.exists(trail) else []
            try:  # masked_values is on each statement's completion, written after it
                executions = h.audit_statements(records)
            except AssertionError:
                executions = []  # a completion not written yet
            seen = {r["statement"]: r.get("masked_values") for r in executions
                    if r.get("statement") in wanted}
            if len(seen) == len(wanted) or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(seen, wanted)

    def test_reload_adds_and_removes_masks_for_open_sessions(self):
        scopes = [dict(s) for s in SCOPES]
        gw = h.Gateway(self.pg, users=self.users, user_groups=GROUPS, scopes=scopes).start()
        self.addCleanup(gw.stop)

        def reload(masks):
            gw.scopes[1] = dict(SCOPES[1], **({"mask": masks} if masks else {}))
            gw.write_config()
            h.run([gw.binary, "reload", "--config", gw.config], timeout=30)

        def email_until(conn, wanted):
            deadline = time.time() + 10
            while True:
                got = conn.execute("SELECT email FROM customers WHERE id = %s", (1,),
                                   prepare=True).fetchone()[0]
                if got == wanted:
                    return
                self.assertLess(time.time(), deadline, f"still {got!r}:\n{gw.log()}")
                time.sleep(0.1)

        with psycopg.connect(gw.conninfo("ada"), password=self.users["ada"], autocommit=True) as c:
            email_until(c, "alice@example.com")
            reload([{"columns": ["email"], "method": "redact"}])
            email_until(c, "****")  # the same prepared statement, now described and masked
            with self.assertRaises(errors.InsufficientPrivilege):
                c.execute("SELECT upper(email) FROM customers")
            reload(None)
            email_until(c, "alice@example.com")

    def test_pgbench_prepared_over_masked_rows(self):
        gw = self.gw()
        script = h.make_temp_dir("mask-bench") + "/select.sql"
        with open(script, "w") as f:
            f.write("\\set id random(1, 3)\nSELECT id, email, ssn FROM customers WHERE id = :id;\n")
        for mode in ("simple", "extended", "prepared"):
            with self.subTest(mode=mode):
                r = pgbench(["-n", "-M", mode, "-c", "4", "-t", "200", "-f", script],
                            port=gw.port, user="mia", dbname="app", password=self.users["mia"])
                self.assertIn("number of transactions actually processed: 800/800",
                              r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
