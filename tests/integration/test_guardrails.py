"""Guardrails that hold against a determined agent (issue 24), end to end: a real PostgreSQL 15,
the gateway, psycopg and raw protocol messages.

Users and the scopes their groups map to:
  ada   admin
  rob   read-only, statement_timeout 20s
  wendy read-write (approval, refused on this branch until approvals exist)

Item 8: a read-only scope's sessions are read-only transactions in PostgreSQL itself, so a
function that writes (app.touch_order) fails in the database, and nothing the client sends turns
that off. Item 2: operational hazards (strong locks, VACUUM FULL, CLUSTER, REINDEX, REFRESH
MATERIALIZED VIEW, CHECKPOINT, two-phase commit, FOR UPDATE of a whole table) are held under
read-write and refused under read-only.
"""

import struct
import time
import unittest

import psycopg
from psycopg import errors

import harness as h
from harness import ClusterTestCase, RawConnection, random_password

GROUPS = {"ada": ["admin"], "rob": ["read-only"], "wendy": ["read-write"], "cap": ["capped"]}
SCOPES = [
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
    {"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only",
     "statement_timeout": "20s"},
    {"name": "writers", "sources": ["local"], "groups": ["read-write"], "profile": "read-write"},
    {"name": "capped", "sources": ["local"], "groups": ["capped"], "profile": "read-write",
     "statement_timeout": "20s", "lock_timeout": "1500ms", "work_mem": "64MB",
     "temp_buffers": "8MB", "temp_file_limit": "1GB", "max_notifications": 5},
]

# Item 9: spellings of each capped setting, set on the real server and through the gateway.
CAPS = {"statement_timeout": 20000, "lock_timeout": 1500, "work_mem": 65536,
        "temp_buffers": 1024, "temp_file_limit": 1048576}
SPELLINGS = {
    "statement_timeout": ["20s", "19999", "19999.5", "20000.5", "20001", "0.4", "0.5", "1.5",
                          "400us", "1500us", "0x4e20", "0x4e21", "023420", "1e3", "2e4",
                          "2.00001e4", " 5s ", "5 s", "0.2min", "0.34min", "0.000000001d",
                          "0.0000002d", "1d", "1h", "-1", "0", "-0", "+100", "ten", "5S",
                          "5 sec", "5ms x", "1e400", "20000.4999"],
    "lock_timeout": ["1.5s", "1500", "1501", "1500.4", "1500.5", "1501.5", "0.5", "0.0015min",
                     "1500000us", "1500001us", "1500499us", "1500500us", "0"],
    "work_mem": ["64MB", "65536", "65537", "64.01MB", "0.0625GB", "67108864B", "67108865B",
                 "67109375B", "65MB", "1GB", "0x10000", "0x10001", "64mb", "1TB", "63kB",
                 "64 MB", "6.4e4", "65536.4", "65536.5", "-1", "0.00006103515625TB"],
    "temp_buffers": ["8MB", "1024", "1025", "8192kB", "8193kB", "8199kB", "8200kB", "0.0078125GB",
                     "100", "8.001MB"],
    "temp_file_limit": ["1GB", "0", "-1", "1048576", "1048577", "1.0000001GB", "1024MB",
                        "1025MB", "1TB"],
}

SETUP = """
CREATE SCHEMA app AUTHORIZATION gateway_login;
SET ROLE gateway_login;
CREATE TABLE app.orders (id int PRIMARY KEY, note text, touched int NOT NULL DEFAULT 0);
INSERT INTO app.orders (id, note) SELECT g, 'order ' || g FROM generate_series(1, 50) g;
CREATE FUNCTION app.touch_order(order_id int) RETURNS int LANGUAGE sql AS
  $$ UPDATE app.orders SET touched = touched + 1 WHERE id = order_id RETURNING touched $$;
CREATE MATERIALIZED VIEW app.order_count AS SELECT count(*) AS n FROM app.orders;
CREATE UNIQUE INDEX order_count_n ON app.order_count (n);
RESET ROLE;
-- temp_file_limit is a superuser setting: the target's role may set it (also at startup,
-- where the gateway sends the scope's cap) only with this grant.
GRANT SET ON PARAMETER temp_file_limit TO gateway_login;
"""


class GuardrailTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.sql(SETUP, db="app")
        cls.users = {name: random_password() for name in GROUPS}

    def gw(self) -> h.Gateway:
        return self.gateway(users=self.users, user_groups=GROUPS, scopes=SCOPES)

    def connect(self, user: str, **kw) -> psycopg.Connection:
        return psycopg.connect(self.gw().conninfo(user, **kw), password=self.users[user],
                               autocommit=True)

    def touched(self, order_id: int = 1) -> int:
        return int(self.pg.sql(f"SELECT touched FROM app.orders WHERE id = {order_id}", db="app"))

    def refused(self, conn: psycopg.Connection, sql: str, rule: str) -> None:
        with self.assertRaises(errors.InsufficientPrivilege, msg=sql) as cm:
            conn.execute(sql)
        self.assertIn(f'rule "{rule}"', cm.exception.diag.message_primary, sql)

    # --- item 8: read-only in the database too -------------------------------

    def test_read_only_session_is_a_read_only_transaction_in_the_database(self):
        before = self.touched()
        with self.connect("rob") as conn:
            self.assertEqual(conn.execute("SHOW default_transaction_read_only").fetchone()[0], "on")
            self.assertEqual(conn.execute("SHOW transaction_read_only").fetchone()[0], "on")
            # The analyser cannot see inside the function; PostgreSQL refuses its UPDATE.
            with self.assertRaises(errors.ReadOnlySqlTransaction):
                conn.execute("SELECT app.touch_order(1)")
            conn.execute("BEGIN")
            with self.assertRaises(errors.ReadOnlySqlTransaction):
                conn.execute("SELECT app.touch_order(1)")
            conn.execute("ROLLBACK")
            self.assertEqual(conn.execute("SELECT count(*) FROM app.orders").fetchone()[0], 50)
        self.assertEqual(self.touched(), before)
        # The same function runs for a read-write scope: the test function does write.
        with self.connect("wendy") as conn:
            self.assertEqual(conn.execute("SELECT app.touch_order(2)").fetchone()[0],
                             self.touched(2))

    def test_nothing_the_client_sends_turns_read_only_off(self):
        attempts = [
            "BEGIN READ WRITE",
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE",
            "START TRANSACTION READ WRITE",
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE DEFERRABLE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET default_transaction_read_only = off",
            "SET default_transaction_read_only = 'of'",
            "SET default_transaction_read_only TO DEFAULT",
            "RESET default_transaction_read_only",
            "SET transaction_read_only = off",
            "SET LOCAL transaction_read_only = 0",
            "SELECT set_config('default_transaction_read_only', 'false', false)",
            "SELECT pg_catalog.set_config('transaction_read_only', 'no', true)",
            "SELECT set_config('transaction_read_only', current_setting('application_name'), true)",
        ]
        before = self.touched()
        with self.connect("rob") as conn:
            for sql in attempts:
                with self.assertRaises(errors.InsufficientPrivilege, msg=sql):
                    conn.execute(sql)
            # Inside a transaction block: SET TRANSACTION READ WRITE is refused too.
            conn.execute("BEGIN")
            with self.assertRaises(errors.InsufficientPrivilege):
                conn.execute("SET TRANSACTION READ WRITE")
            conn.execute("ROLLBACK")
            # A multi-statement Query: nothing of it runs.
            with self.assertRaises(errors.InsufficientPrivilege):
                conn.execute("SET TRANSACTION READ WRITE; SELECT app.touch_order(1)")
            with self.assertRaises(errors.ReadOnlySqlTransaction):
                conn.execute("SELECT app.touch_order(1)")
            self.assertEqual(conn.execute("SHOW transaction_read_only").fetchone()[0], "on")
            # Read-only modes stay allowed.
            conn.execute("BEGIN READ ONLY")
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute("COMMIT")
            conn.execute("SET default_transaction_read_only = on")
        self.assertEqual(self.touched(), before)

    def test_startup_parameters_cannot_turn_read_only_off(self):
        for extra in ({"options": "-c default_transaction_read_only=off"},
                      {"options": "--default-transaction-read-only=false"},
                      {"default_transaction_read_only": "off"},
                      {"options": "-c transaction_read_only=off"},
                      {"transaction_read_only": "0"}):
            with RawConnection(self.gw().port) as c:
                with self.assertRaises(h.ProtocolError, msg=str(extra)) as cm:
                    c.login("rob", self.users["rob"], "app", extra=extra)
                    self.fail(f"logged in with {extra}")
            self.assertEqual(cm.exception.fields["S"], "FATAL")
            self.assertEqual(cm.exception.sqlstate, "42501", cm.exception.fields)
        # On (the default) may be repeated.
        with self.connect("rob", options="-c default_transaction_read_only=on") as conn:
            with self.assertRaises(errors.ReadOnlySqlTransaction):
                conn.execute("SELECT app.touch_order(1)")

    def test_read_write_and_admin_sessions_are_not_read_only(self):
        for user in ("wendy", "ada"):
            with self.connect(user) as conn:
                self.assertEqual(
                    conn.execute("SHOW default_transaction_read_only").fetchone()[0], "off")

    # --- item 6: temporary tables --------------------------------------------

    def test_temporary_tables_under_read_write(self):
        with self.connect("wendy") as conn:
            conn.execute("CREATE TEMP TABLE scratch (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO scratch VALUES (1, 'a'), (2, 'b')")
            conn.execute("UPDATE scratch SET note = 'c' WHERE id = 2")
            self.assertEqual(conn.execute("SELECT count(*) FROM scratch").fetchone()[0], 2)
            conn.execute("CREATE TEMP TABLE few AS SELECT * FROM app.orders WHERE id < 5")
            conn.execute("CREATE TEMP VIEW few_ids AS SELECT id FROM few")
            conn.execute("CREATE TEMP SEQUENCE scratch_seq")
            self.assertEqual(conn.execute("SELECT count(*) FROM few_ids").fetchone()[0], 4)
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE t_tx (x int) ON COMMIT DROP")
            # A permanent table is still held.
            self.refused(conn, "CREATE TABLE app.permanent (x int)", "profile.read-write.ddl")
            conn.execute("DISCARD TEMP")

    def test_temporary_tables_under_read_only_are_refused_by_the_database(self):
        # The policy allows it; PostgreSQL 15 refuses every CREATE in a read-only
        # transaction, temporary ones included (docs/security.md says so).
        with self.connect("rob") as conn:
            for sql in ("CREATE TEMP TABLE scratch (x int)",
                        "CREATE TEMP TABLE few AS SELECT * FROM app.orders WHERE id < 5",
                        "CREATE TEMP VIEW v AS SELECT 1 AS x"):
                with self.assertRaises(errors.ReadOnlySqlTransaction, msg=sql):
                    conn.execute(sql)
        # Without the gateway, the same happens in a read-only transaction.
        with psycopg.connect(self.direct(), password=self.pg.passwords["gateway_login"],
                             autocommit=True) as direct:
            direct.execute("SET default_transaction_read_only = on")
            with self.assertRaises(errors.ReadOnlySqlTransaction):
                direct.execute("CREATE TEMP TABLE scratch (x int)")

    # --- items 3 and 9: resource settings, read as PostgreSQL reads them ----------

    def applied(self, direct: psycopg.Connection, name: str, value: str) -> int | None:
        """The value the server applies for `SET name = 'value'` (None: it refuses it)."""
        try:
            direct.execute(f"SET {name} = '{value}'")
        except psycopg.Error:
            return None
        return int(direct.execute("SELECT setting FROM pg_settings WHERE name = %s",
                                  (name,)).fetchone()[0])

    def test_every_spelling_is_compared_as_postgres_reads_it(self):
        checked = 0
        with psycopg.connect(self.direct(), password=self.pg.passwords["gateway_login"],
                             autocommit=True) as direct, self.connect("cap") as conn:
            for name, spellings in SPELLINGS.items():
                cap = CAPS[name]
                # The session starts at the cap.
                self.assertEqual(int(conn.execute("SELECT setting FROM pg_settings WHERE name = %s",
                                                  (name,)).fetchone()[0]), cap, name)
                for value in spellings:
                    applied = self.applied(direct, name, value)
                    within = applied is not None and (
                        0 <= applied <= cap if name == "temp_file_limit" else 0 < applied <= cap)
                    for sql in (f"SET {name} = '{value}'",
                                f"SELECT set_config('{name}', '{value}', false)"):
                        try:
                            conn.execute(sql)
                            allowed = True
                        except errors.InsufficientPrivilege as e:
                            self.assertIn("scope.capped.limits", e.diag.message_primary)
                            allowed = False
                        except psycopg.Error:
                            # The gateway let it through and the server refused it.
                            self.assertIsNone(applied, (sql, applied))
                            allowed = None
                        if applied is not None:
                            self.assertEqual(allowed, within, (sql, applied, cap))
                        if allowed:
                            got = int(conn.execute("SELECT setting FROM pg_settings WHERE name = %s",
                                                   (name,)).fetchone()[0])
                            self.assertEqual(got, applied, sql)
                        checked += 1
                    # SET LOCAL, inside a transaction: the same verdict.
                    if applied is not None:
                        try:
                            with conn.transaction():
                                conn.execute(f"SET LOCAL {name} = '{value}'")
                            local = True
                        except errors.InsufficientPrivilege:
                            local = False
                        self.assertEqual(local, within, (name, value, applied))
                    conn.execute(f"SET {name} = {cap}")
                    direct.execute(f"RESET {name}")
        self.assertGreater(checked, 150)

    def test_startup_settings_are_compared_as_postgres_reads_them(self):
        for options, allowed in (("-c statement_timeout=0.4", False),
                                 ("-c statement_timeout=400us", False),
                                 ("-c statement_timeout=19999.5", True),
                                 ("-c statement_timeout=20000.5", True),  # rint: 20000
                                 ("-c statement_timeout=20001", False),
                                 ("-c work_mem=64.01MB", False),
                                 ("-c work_mem=32MB", True),
                                 ("--temp-file-limit=-1", False),
                                 ("-c lock_timeout=0x5dc", True)):
            with RawConnection(self.gw().port) as c:
                try:
                    c.login("cap", self.users["cap"], "app", extra={"options": options})
                    ok = True
                except h.ProtocolError as e:
                    self.assertEqual(e.sqlstate, "42501", e.fields)
                    self.assertIn("scope.capped.limits", e.fields["M"])
                    ok = False
            self.assertEqual(ok, allowed, options)

    def test_raising_a_resource_cap_is_refused(self):
        with self.connect("cap") as conn:
            self.assertEqual(conn.execute("SHOW work_mem").fetchone()[0], "64MB")
            self.assertEqual(conn.execute("SHOW temp_file_limit").fetchone()[0], "1GB")
            for sql in ("SET work_mem = '1GB'", "RESET work_mem", "SET temp_file_limit = -1",
                        "RESET ALL", "DISCARD ALL", "SET work_mem TO DEFAULT"):
                self.refused(conn, sql, "scope.capped.limits")
            conn.execute("SET work_mem = '16MB'")
            self.assertEqual(conn.execute("SHOW work_mem").fetchone()[0], "16MB")
            # Settings the scope does not cap stay free.
            conn.execute("SET maintenance_work_mem = '128MB'")

    def test_holdable_cursor_cannot_outlive_the_time_limit(self):
        with self.connect("rob") as conn:
            conn.execute("BEGIN")
            with self.assertRaises(errors.InsufficientPrivilege) as cm:
                conn.execute("DECLARE c CURSOR WITH HOLD FOR SELECT pg_sleep(10)")
            self.assertIn("scope.readers.limits", cm.exception.diag.message_primary)
            conn.execute("ROLLBACK")
            with conn.transaction():
                conn.execute("DECLARE c CURSOR FOR SELECT id FROM app.orders")
                self.assertEqual(len(conn.execute("FETCH 5 FROM c").fetchall()), 5)

    def test_advisory_lock_flood_is_stopped_and_logins_still_work(self):
        with self.connect("rob") as conn:
            self.refused(conn, "SELECT pg_advisory_lock(g) FROM generate_series(1, 100000) g",
                         "builtin.advisory-lock")
            self.refused(conn, "SELECT count(*) FROM generate_series(1, 100000) g "
                               "WHERE pg_try_advisory_lock(g)", "builtin.advisory-lock")
            taken = 0
            with self.assertRaises(errors.InsufficientPrivilege) as cm:
                for key in range(1, 200):
                    conn.execute(f"SELECT pg_advisory_lock({key})")
                    taken += 1
            self.assertIn("scope.readers.advisory-locks", cm.exception.diag.message_primary)
            self.assertEqual(taken, 64)
            # New logins work while the session holds what it was allowed.
            with self.connect("wendy") as other:
                self.assertEqual(other.execute("SELECT count(*) FROM pg_locks "
                                               "WHERE locktype = 'advisory'").fetchone()[0], 64)
            # Releasing makes room again.
            conn.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("SELECT pg_advisory_lock(500)")

    def test_notifications_are_capped(self):
        with self.connect("wendy") as conn:
            self.refused(conn, "SELECT pg_notify('jobs', g::text) FROM generate_series(1, 100000) g",
                         "builtin.notify")
            conn.execute("NOTIFY jobs")
        with self.connect("cap") as conn:
            for _ in range(5):
                conn.execute("SELECT pg_notify('jobs', 'x')")
            self.refused(conn, "NOTIFY jobs", "scope.capped.notifications")

    # --- item 2: operational hazards ------------------------------------------

    HAZARDS = [
        "LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE",
        "LOCK app.orders",
        "LOCK TABLE app.orders IN SHARE MODE",
        "VACUUM FULL app.orders",
        "VACUUM (FULL, ANALYZE) app.orders",
        "CLUSTER app.orders USING orders_pkey",
        "REINDEX TABLE app.orders",
        "REFRESH MATERIALIZED VIEW app.order_count",
        "CHECKPOINT",
        "PREPARE TRANSACTION 'agent-tx'",
        "COMMIT PREPARED 'agent-tx'",
        "ROLLBACK PREPARED 'agent-tx'",
        "SELECT * FROM app.orders FOR UPDATE",
        "SELECT * FROM app.orders WHERE id > 0 OR true FOR SHARE",
        "SELECT id FROM app.orders ORDER BY id LIMIT 10 FOR NO KEY UPDATE",
    ]

    def test_hazards_are_held_under_read_write(self):
        with self.connect("wendy") as conn:
            for sql in self.HAZARDS:
                # Inside a transaction block, as LOCK needs: the refusal aborts it.
                conn.execute("BEGIN")
                with self.assertRaises(errors.InsufficientPrivilege, msg=sql) as cm:
                    conn.execute(sql)
                msg = cm.exception.diag.message_primary
                self.assertIn('approval required by pgbastion rule "profile.read-write.hazard"',
                              msg, sql)
                with self.assertRaises(errors.InFailedSqlTransaction):
                    conn.execute("SELECT 1")
                conn.execute("ROLLBACK")
            # Nothing is locked: another session takes the strongest lock at once.
        with psycopg.connect(self.direct(), password=self.pg.passwords["gateway_login"],
                             autocommit=True) as direct:
            direct.execute("SET lock_timeout = '2s'")
            with direct.transaction():
                direct.execute("LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE")

    def test_routine_locking_and_maintenance_run_under_read_write(self):
        with self.connect("wendy") as conn:
            with conn.transaction():
                conn.execute("LOCK TABLE app.orders IN ROW EXCLUSIVE MODE")
                conn.execute("LOCK TABLE app.orders IN ROW SHARE MODE")
                row = conn.execute("SELECT id FROM app.orders WHERE id = 3 FOR UPDATE").fetchone()
                self.assertEqual(row[0], 3)
                conn.execute("SELECT id FROM app.orders WHERE note = 'order 4' "
                             "FOR UPDATE SKIP LOCKED")
            conn.execute("VACUUM app.orders")
            conn.execute("VACUUM (FULL false) app.orders")
            conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY app.order_count")

    def test_hazards_are_refused_under_read_only(self):
        with self.connect("rob") as conn:
            for sql in self.HAZARDS:
                with self.assertRaises(errors.InsufficientPrivilege, msg=sql) as cm:
                    conn.execute(sql)
                msg = cm.exception.diag.message_primary
                self.assertTrue(msg.startswith("permission denied by pgbastion rule"), msg)
                self.assertIn("read-only", msg)

    def test_hazards_run_under_admin(self):
        with self.connect("ada") as conn:
            with conn.transaction():
                conn.execute("LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE")
            conn.execute("REINDEX TABLE app.orders")


def extended(statement: str, sql: str | None, portal: str = "") -> bytes:
    """Parse (when sql is given) of `statement`, Bind into `portal`, Execute, Sync."""
    out = b""
    if sql is not None:
        out += h.message(b"P", statement.encode() + b"\0" + sql.encode() + b"\0" +
                         struct.pack("!h", 0))
    out += h.message(b"B", portal.encode() + b"\0" + statement.encode() + b"\0" +
                     struct.pack("!hhh", 0, 0, 0))
    out += h.message(b"E", portal.encode() + b"\0" + struct.pack("!i", 0))
    return out + h.message(b"S")


PAM_SCOPE = {"name": "pams", "sources": ["local"], "groups": ["pam"], "profile": "read-write"}


class PreparedReloadTest(ClusterTestCase):
    """Item 4: a statement prepared with Parse before a reload is judged again at Execute; a
    session whose scope a reload made read-only is refused everything until it reconnects."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.sql(SETUP, db="app")
        cls.users = {"pam": random_password()}

    def reload(self, scope: dict) -> None:
        self.gw.scopes = [scope]
        self.gw.write_config()
        h.run([self.gw.binary, "reload", "--config", self.gw.config], timeout=30)

    def wait_until_refused(self, c: RawConnection, probe: str) -> None:
        """Until this session judges by the reloaded policy (the probe is refused only there)."""
        deadline = time.time() + 10
        while b"E" not in [k for k, _ in c.simple_query(probe)]:
            self.assertLess(time.time(), deadline, self.gw.log())
            time.sleep(0.1)

    def expect_refusal(self, c: RawConnection, message: bytes, *texts: str) -> None:
        c.send(message)
        replies = c.read_until_ready()
        refusals = [h.parse_error(b) for k, b in replies if k == b"E"]
        self.assertEqual(len(refusals), 1, replies)
        self.assertEqual(refusals[0]["C"], "42501", refusals[0])
        for text in texts:
            self.assertIn(text, refusals[0]["M"])
        self.assertEqual(replies[-1], (b"Z", b"I"))

    def test_parse_before_reload_is_judged_again_at_execute(self):
        self.gw = self.gateway(users=self.users, user_groups={"pam": ["pam"]}, scopes=[PAM_SCOPE])
        with RawConnection(self.gw.port) as c:
            c.login("pam", self.users["pam"], "app")
            # Parsed under the first policy, which allows both.
            c.send(h.message(b"P", b"ins\0INSERT INTO app.orders (id, note) VALUES (900, 'x')\0"
                             + struct.pack("!h", 0)) +
                   h.message(b"P", b"sel\0SELECT n FROM app.order_count\0" +
                             struct.pack("!h", 0)) + h.message(b"S"))
            self.assertEqual([k for k, _ in c.read_until_ready()], [b"1", b"1", b"Z"])
            # A portal bound before the reload, executed after it.
            c.send(h.message(b"B", b"early\0ins\0" + struct.pack("!hhh", 0, 0, 0)) +
                   h.message(b"S"))
            self.assertEqual([k for k, _ in c.read_until_ready()], [b"2", b"Z"])

            self.reload(dict(PAM_SCOPE, relations={"deny": ["app.orders"]}))
            self.wait_until_refused(c, "SELECT 1 FROM app.orders LIMIT 0")

            for message in (extended("ins", None), extended("ins", None, portal="p2"),
                            h.message(b"E", b"early\0" + struct.pack("!i", 0)) + h.message(b"S")):
                self.expect_refusal(c, message, "scope.pams.relations.deny", "reloaded")
            # What the new policy allows still runs (judged again once, then cached).
            for _ in range(2):
                c.send(extended("sel", None))
                self.assertEqual([k for k, _ in c.read_until_ready()], [b"2", b"D", b"C", b"Z"])
        self.assertEqual(self.pg.sql("SELECT count(*) FROM app.orders WHERE id = 900", db="app"),
                         "0")

    def test_a_session_made_read_only_by_a_reload_must_reconnect(self):
        self.gw = self.gateway("downgrade", users=self.users, user_groups={"pam": ["pam"]},
                               scopes=[PAM_SCOPE])
        before = int(self.pg.sql("SELECT touched FROM app.orders WHERE id = 5", db="app"))
        with RawConnection(self.gw.port) as c:
            c.login("pam", self.users["pam"], "app")
            c.send(h.message(b"P", b"touch\0SELECT app.touch_order(5)\0" + struct.pack("!h", 0))
                   + h.message(b"S"))
            self.assertEqual([k for k, _ in c.read_until_ready()], [b"1", b"Z"])
            self.reload(dict(PAM_SCOPE, profile="read-only"))
            self.wait_until_refused(c, "SELECT 1")
            # Its database session is not read-only: nothing more runs, not even a read.
            for message in (h.message(b"Q", b"SELECT app.touch_order(5)\0"),
                            extended("touch", None),
                            extended("", "SELECT 1")):
                self.expect_refusal(c, message, "builtin.read-only-reconnect")
        # A new session is read-only in the database.
        with RawConnection(self.gw.port) as c:
            c.login("pam", self.users["pam"], "app")
            replies = c.simple_query("SELECT app.touch_order(5)")
            errs = [h.parse_error(b) for k, b in replies if k == b"E"]
            self.assertEqual(errs[0]["C"], "25006", errs)
        self.assertEqual(int(self.pg.sql("SELECT touched FROM app.orders WHERE id = 5", db="app")),
                         before)


if __name__ == "__main__":
    unittest.main()
