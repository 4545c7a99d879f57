"""Masking that cannot be talked around (issue 16): a real PostgreSQL, the gateway, psql,
psycopg and raw protocol bytes.

mia's scope masks email (partial), ssn (redact) and salary (null). The catalog reader
(core/catalog_reader.h) reads the target's catalog at start; with it the rules tell a
column `c.x` from PostgreSQL's attribute notation for x(c), a function of the whole row.

Every check looks at the bytes the client receives (rows, errors, notices, notifications,
parameter statuses, command tags): no clear value of a masked column may be among them,
over the simple protocol (raw messages and psql) and the extended one (psycopg, text and
binary).
"""

import struct
import time
import unittest

import psycopg
from psycopg import errors

import harness as h
from harness import ClusterTestCase, RawConnection, message, parse_error, psql, random_password

GROUPS = {"mia": ["support"], "ada": ["admin"]}
MASKS = [
    {"columns": ["email"], "method": "partial", "keep": 4},
    {"columns": ["ssn"], "method": "redact"},
    {"columns": ["salary"], "method": "null"},
]
SCOPES = [
    {"name": "support", "sources": ["local"], "groups": ["support"], "profile": "read-write",
     "mask": MASKS},
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
]
EMAILS = ["alice@example.com", "bob@example.org"]
SSNS = ["123-45-6789", "987-65-4321"]
SECRETS = EMAILS + SSNS + ["5000", "6000", "s3cret-diagnosis"]

# PostgreSQL's attribute notation and other whole-row spellings: each would give
# every column of every row, masked ones in clear.
WHOLE_ROW = [
    "SELECT c.to_json FROM customers c",
    "SELECT customers.row_to_json FROM customers",
    "SELECT c.record_out FROM customers c",
    "SELECT c.to_jsonb->>'ssn' FROM customers c",
    "SELECT c.text FROM customers c",
    "SELECT (c).* FROM customers c",
    "SELECT to_json(customers.*) FROM customers",
    "SELECT ROW(c.*)::text FROM customers c",
    "SELECT id FROM customers c WHERE c.to_jsonb->>'email' LIKE 'alice%'",
    "SELECT (c.to_jsonb->>'email')::int FROM customers c",
    "SELECT c.xmlforest FROM customers c",
    "SELECT public.customers.to_json FROM public.customers",
    "DELETE FROM customers c WHERE id = 99 RETURNING c.to_json",
]
# Channels that carry values past the result rows.
CHANNELS = [
    "SELECT pg_notify('leak', email) FROM customers",
    "SELECT pg_notify('leak', 'x')",
    "SELECT set_config('application_name', c.to_json::text, false) FROM customers c",
    "SELECT set_config('application_name', name, false) FROM customers WHERE id = 1",
    "SELECT lo_from_bytea(0, convert_to(c.to_json::text, 'UTF8')) FROM customers c",
    "SELECT lo_from_bytea(0, '\\x00')",
    "SELECT query FROM pg_stat_activity",
    "INSERT INTO customers (id, email) VALUES (9, 'alice@example.com') "
    "ON CONFLICT ON CONSTRAINT customers_email_key DO NOTHING",
    "INSERT INTO customers (id, email) VALUES (9, 'alice@example.com') ON CONFLICT DO NOTHING",
    "INSERT INTO notes (body) SELECT c.to_json::text FROM customers c",
    "UPDATE notes SET body = c.to_json::text FROM customers c WHERE notes.id = c.id",
    "SELECT id FROM never_created",
]
# Normal work that masked scopes used to refuse.
ALLOWED = [
    ("SELECT g FROM generate_series(1, 3) g", [("1",), ("2",), ("3",)]),
    ("SELECT EXISTS (SELECT * FROM orders)", [("t",)]),
    ("SELECT o.id FROM orders o WHERE EXISTS (SELECT * FROM customers c WHERE c.id = o.customer_id)"
     " ORDER BY o.id", [("10",), ("11",)]),
    ("SELECT c.id, c.email FROM customers c WHERE c.id = 1", [("1", "*************.com")]),
    ("SELECT o.to_json->>'total' FROM orders o WHERE o.id = 10", [("7",)]),
    ("SELECT c.ctid IS NOT NULL FROM customers c WHERE c.id = 1", [("t",)]),
]


class MaskingChannelsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.sql(
            "CREATE TABLE customers (id int PRIMARY KEY, name text, email varchar(80) UNIQUE,"
            " ssn text, salary int, note text);"
            "INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com', '123-45-6789', 5000, NULL),"
            " (2, 'Bob', 'bob@example.org', '987-65-4321', 6000, NULL);"
            "CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total int);"
            "INSERT INTO orders VALUES (10, 1, 7), (11, 2, 9);"
            "CREATE TABLE notes (id serial PRIMARY KEY, body text);"
            "CREATE TABLE patients (id int PRIMARY KEY, diagnosis text);"
            "COMMENT ON COLUMN patients.diagnosis IS 'Free text. pgbastion:mask=redact';"
            "INSERT INTO patients VALUES (1, 's3cret-diagnosis');"
            # A function of the database's own that quotes a value in its message.
            "CREATE FUNCTION check_email(i int) RETURNS void LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'customer % has a bad address: %', i,"
            " (SELECT email FROM customers WHERE id = i); END $$;"
            "CREATE VIEW contacts AS SELECT id, email AS contact FROM customers;"
            "CREATE VIEW customer_emails AS SELECT id, email FROM customers;"
            "ALTER TABLE customers OWNER TO gateway_login; ALTER TABLE orders OWNER TO gateway_login;"
            "ALTER TABLE notes OWNER TO gateway_login; ALTER TABLE patients OWNER TO gateway_login;"
            "ALTER FUNCTION check_email(int) OWNER TO gateway_login;"
            "ALTER VIEW contacts OWNER TO gateway_login;"
            "ALTER VIEW customer_emails OWNER TO gateway_login;", db="app")
        cls.users = {name: random_password() for name in GROUPS}

    def gw(self) -> h.Gateway:
        return self.gateway(users=self.users, user_groups=GROUPS, scopes=SCOPES)

    def connect(self, user: str = "mia", **kw) -> psycopg.Connection:
        return psycopg.connect(self.gw().conninfo(user), password=self.users[user],
                               autocommit=True, **kw)

    def raw(self, user: str = "mia") -> RawConnection:
        conn = RawConnection(self.gw().port)
        conn.login(user, self.users[user], "app")
        return conn

    def assert_no_secret(self, data: bytes, what: str):
        for secret in SECRETS:
            self.assertNotIn(secret.encode(), data, f"{what}: {secret} reached the client")

    def test_whole_row_spellings_are_refused_over_both_protocols(self):
        with self.raw() as raw, self.connect() as conn:
            for sql in WHOLE_ROW:
                with self.subTest(sql=sql, protocol="simple"):
                    msgs = raw.simple_query(sql)
                    kinds = [k for k, _ in msgs]
                    self.assertIn(b"E", kinds, msgs)
                    self.assertNotIn(b"D", kinds, msgs)
                    error = parse_error(dict(msgs)[b"E"])
                    self.assertEqual(error["C"], "42501", error)
                    self.assertIn("mask", error["M"] + error.get("H", ""))
                    self.assert_no_secret(b"".join(b for _, b in msgs), sql)
                for binary in (False, True):
                    with self.subTest(sql=sql, protocol="extended", binary=binary):
                        with self.assertRaises(errors.InsufficientPrivilege):
                            conn.cursor(binary=binary).execute(sql)
            # Still usable, and nothing was deleted.
            self.assertEqual(conn.execute("SELECT count(*) FROM customers").fetchone(), (2,))
        # The same statements are fine (and in clear) without masks.
        with self.connect("ada") as conn:
            row = conn.execute("SELECT c.to_json FROM customers c WHERE id = 1").fetchone()[0]
            self.assertEqual(row["email"], "alice@example.com")

    def test_side_channels_are_refused(self):
        with self.raw() as raw:
            for sql in CHANNELS:
                with self.subTest(sql=sql):
                    msgs = raw.simple_query(sql)
                    kinds = [k for k, _ in msgs]
                    self.assertIn(b"E", kinds, msgs)
                    self.assertNotIn(b"D", kinds)
                    self.assertEqual(parse_error(dict(msgs)[b"E"])["C"], "42501")
                    self.assert_no_secret(b"".join(b for _, b in msgs), sql)
            # No command tag ever said INSERT 0 0 / INSERT 0 1.
            self.assertNotIn(b"C", [k for k, _ in raw.simple_query(CHANNELS[7])])
        with self.connect() as conn:  # the extended protocol, text and binary
            for sql in CHANNELS:
                for binary in (False, True):
                    with self.subTest(sql=sql, protocol="extended", binary=binary):
                        with self.assertRaises(errors.InsufficientPrivilege) as e:
                            conn.cursor(binary=binary).execute(sql)
                        self.assert_no_secret(str(e.exception).encode(), sql)
        with self.connect("ada") as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM notes").fetchone(), (0,))
            self.assertEqual(conn.execute("SELECT count(*) FROM customers").fetchone(), (2,))

    def test_values_the_session_saw_masked_are_masked_in_messages(self):
        with self.raw() as raw:
            rows = raw.simple_query("SELECT id, email, ssn FROM customers ORDER BY id")
            self.assert_no_secret(b"".join(b for _, b in rows), "rows")
            # The database's own function quotes the address in the MESSAGE.
            msgs = raw.simple_query("SELECT check_email(1)")
            error = parse_error(dict(msgs)[b"E"])
            self.assertEqual(error["M"], "customer 1 has a bad address: *****************")
            # A cast error quotes the value in the MESSAGE.
            msgs = raw.simple_query("SELECT 'alice@example.com'::int")
            error = parse_error(dict(msgs)[b"E"])
            self.assertEqual(error["C"], "22P02")
            self.assertEqual(error["M"], 'invalid input syntax for type integer: "*****************"')
            # A ParameterStatus value.
            msgs = raw.simple_query("SET application_name = 'bob@example.org'")
            statuses = [b for k, b in msgs if k == b"S"]
            self.assertEqual(statuses, [b"application_name\0***************\0"])
            # A notification's payload, and a notice's message.
            raw.simple_query("LISTEN ch")
            msgs = raw.simple_query("NOTIFY ch, 'to 987-65-4321 now'")
            notes = [b for k, b in msgs if k == b"A"]
            self.assertEqual(len(notes), 1, msgs)
            self.assertEqual(notes[0][4:], b"ch\0to *********** now\0")
            msgs = raw.simple_query("DO $$ BEGIN RAISE NOTICE 'seen 123-45-6789'; END $$")
            self.assertTrue(any(k == b"E" for k, _ in msgs))  # DO is code execution: refused
            self.assert_no_secret(b"".join(b for _, b in msgs), "notice")
            # Values the session never saw masked are not in the memory (a guess
            # it typed itself comes back as it typed it).
            msgs = raw.simple_query("SELECT 'nobody@example.net'::int")
            self.assertIn("nobody@example.net", parse_error(dict(msgs)[b"E"])["M"])
        # The extended protocol: rows in binary, then messages that quote them.
        with self.connect() as conn:
            with conn.cursor(binary=True) as cur:
                rows = cur.execute("SELECT email, ssn FROM customers ORDER BY id").fetchall()
            self.assertEqual(rows, [("*************.com", "****"), ("***********.org", "****")])
            with self.assertRaises(errors.InvalidTextRepresentation) as e:
                conn.execute("SELECT %s::text::int", ("bob@example.org",))
            self.assertEqual(e.exception.diag.message_primary,
                             'invalid input syntax for type integer: "***************"')
            with self.assertRaises(errors.RaiseException) as e:
                conn.execute("SELECT check_email(%s)", (2,))
            self.assertEqual(e.exception.diag.message_primary,
                             "customer 2 has a bad address: ***************")
            conn.execute("SET application_name = 'alice@example.com'")
            self.assertEqual(conn.info.parameter_status("application_name"),
                             "*****************")
        # Without masks nothing is scrubbed.
        with self.connect("ada") as conn:
            with self.assertRaises(errors.RaiseException) as e:
                conn.execute("SELECT check_email(1)")
            self.assertIn("alice@example.com", str(e.exception))

    def test_column_comment_tag_masks_the_column(self):
        out = psql(self.gw().conninfo("mia"), "SELECT id, diagnosis FROM patients",
                   password=self.users["mia"], args=["-At", "-F", "|"])
        self.assertEqual(out.stdout.decode().strip(), "1|****")
        with self.connect() as conn:
            self.assertEqual(conn.execute("SELECT diagnosis FROM patients WHERE id = %s", (1,))
                             .fetchone(), ("****",))
            with self.assertRaises(errors.InsufficientPrivilege):
                conn.execute("SELECT upper(diagnosis) FROM patients")
            with self.assertRaises(errors.InsufficientPrivilege):
                conn.execute("SELECT p.to_json FROM patients p")
        with self.connect("ada") as conn:
            self.assertEqual(conn.execute("SELECT diagnosis FROM patients").fetchone(),
                             ("s3cret-diagnosis",))

    def test_views_that_rename_masked_columns_are_refused(self):
        with self.raw() as raw:
            msgs = raw.simple_query("SELECT contact FROM contacts")
            error = parse_error(dict(msgs)[b"E"])
            self.assertEqual(error["C"], "42501")
            self.assertIn("view public.contacts is defined by a query this scope may not run",
                          error["M"])
            self.assert_no_secret(b"".join(b for _, b in msgs), "view")
            # A view that passes the column through under its name: masked by name.
            msgs = raw.simple_query("SELECT id, email FROM customer_emails ORDER BY id")
            self.assertEqual([b for k, b in msgs if k == b"D"][0],
                             b"\0\x02\0\0\0\x011\0\0\0\x11*************.com")
        with self.connect() as conn:
            with self.assertRaises(errors.InsufficientPrivilege):
                conn.execute("SELECT contact FROM contacts WHERE id = %s", (1,))
        with self.connect("ada") as conn:
            self.assertEqual(conn.execute("SELECT contact FROM contacts WHERE id = 1").fetchone(),
                             ("alice@example.com",))

    def test_normal_work_is_allowed(self):
        with self.raw() as raw:
            for sql, want in ALLOWED:
                with self.subTest(sql=sql):
                    msgs = raw.simple_query(sql)
                    errs = [parse_error(b) for k, b in msgs if k == b"E"]
                    self.assertEqual(errs, [])
                    rows = []
                    for k, b in msgs:
                        if k == b"D":
                            (n,) = struct.unpack("!H", b[:2])
                            at, row = 2, []
                            for _ in range(n):
                                (length,) = struct.unpack("!i", b[at:at + 4])
                                at += 4
                                row.append(None if length < 0 else b[at:at + length].decode())
                                at += max(length, 0)
                            rows.append(tuple(row))
                    self.assertEqual(rows, want)
        # psql's \d runs its catalog queries through the gateway.
        out = psql(self.gw().conninfo("mia"), "\\d customers", password=self.users["mia"],
                   check=False)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertIn("email", out.stdout.decode())

    def test_relation_created_by_a_session_is_known_after_a_refresh(self):
        with self.connect("ada") as admin, self.connect() as conn:
            with self.assertRaises(errors.InsufficientPrivilege) as e:
                conn.execute("SELECT id FROM scratch")
            self.assertIn("not in the target's catalog", str(e.exception))
            admin.execute("CREATE TABLE scratch (id int, body text)")  # DDL: a fresh read
            deadline = time.time() + 10
            while True:
                try:
                    self.assertEqual(conn.execute("SELECT id FROM scratch").fetchall(), [])
                    break
                except errors.InsufficientPrivilege as e:
                    self.assertIn("not in the target's catalog", str(e))
                    self.assertLess(time.time(), deadline, "the catalog was not read again")
                    time.sleep(0.1)
            admin.execute("DROP TABLE scratch")


if __name__ == "__main__":
    unittest.main()
