"""Settings sent at startup (issue 15, item 5), end to end: a real PostgreSQL, the gateway,
psycopg (libpq's `options`) and raw startup packets.

`options` (`-c name=value`, `--name=value`) and custom settings such as `myapp.tenant` are judged
as the policy judges `SET name TO 'value'`: allowed settings reach the database exactly (and the
policy resolves names against a search_path set this way), refused ones end the login with the
rule and SQLSTATE the SET would get. What could change who the session is never passes, however
it is written.

Users and their scopes:
  ada  admin
  rob  read-only, statement_timeout limited to 20s, relations hidden.* denied
  pat  classes = ["read"] only (no SET at all)
"""

import json
import os
import struct
import unittest
from pathlib import Path

import psycopg

import harness as h
from harness import ClusterTestCase, RawConnection, random_password

GROUPS = {"ada": ["admin"], "rob": ["read-only"], "pat": ["plain"]}
SCOPES = [
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
    {"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only",
     "statement_timeout": "20s", "relations": {"deny": ["hidden.*"]}},
    {"name": "plain", "sources": ["local"], "groups": ["plain"], "profile": "none", "classes": ["read"]},
]


def rows(c: RawConnection, sql: str) -> list[list[str | None]]:
    """The rows of a simple Query on a raw connection (raises on an ErrorResponse)."""
    c.send(h.message(b"Q", sql.encode() + b"\0"))
    out = []
    for kind, body in c.read_until_ready():
        if kind == b"E":
            raise h.ProtocolError(h.parse_error(body))
        if kind == b"D":
            (n,), pos, row = struct.unpack_from("!H", body), 2, []
            for _ in range(n):
                (length,) = struct.unpack_from("!i", body, pos)
                pos += 4
                row.append(None if length < 0 else body[pos:pos + length].decode())
                pos += max(length, 0)
            out.append(row)
    return out


class StartupSettingsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.sql("CREATE SCHEMA hidden; CREATE TABLE hidden.notes (x int);"
                   "CREATE SCHEMA tenant; CREATE TABLE tenant.notes (x int);"
                   "INSERT INTO tenant.notes VALUES (1), (2);"
                   "ALTER SCHEMA hidden OWNER TO gateway_login; ALTER SCHEMA tenant OWNER TO gateway_login;"
                   "ALTER TABLE hidden.notes OWNER TO gateway_login;"
                   "ALTER TABLE tenant.notes OWNER TO gateway_login;", db="app")
        cls.users = {name: random_password() for name in GROUPS}

    def gw(self) -> h.Gateway:
        return self.gateway(users=self.users, user_groups=GROUPS, scopes=SCOPES)

    def connect(self, user: str, options: str) -> psycopg.Connection:
        return psycopg.connect(self.gw().conninfo(user, options=options),
                               password=self.users[user], autocommit=True)

    def refused(self, user: str, extra: dict) -> h.ProtocolError:
        """The FATAL a login with these startup parameters gets (fails if it logs in)."""
        with RawConnection(self.gw().port) as c:
            with self.assertRaises(h.ProtocolError) as cm:
                c.login(user, self.users[user], "app", extra=extra)
                self.fail(f"logged in with {extra}")
        self.assertEqual(cm.exception.fields["S"], "FATAL", cm.exception.fields)
        return cm.exception

    def test_options_reach_the_database_exactly(self):
        options = (r"-c search_path=tenant,public -c myapp.tenant=acme\ corp "
                   r"--statement-timeout=5s -clock_timeout=2s -c myapp.empty= "
                   r"-c myapp.name=héllo\\wörld")
        with self.connect("rob", options) as conn:
            got = conn.execute(
                "SELECT current_setting('search_path'), current_setting('myapp.tenant'),"
                " current_setting('statement_timeout'), current_setting('lock_timeout'),"
                " current_setting('myapp.empty'), current_setting('myapp.name'), current_user"
            ).fetchone()
            self.assertEqual(got, ("tenant,public", "acme corp", "5s", "2s", "", "héllo\\wörld",
                                   "gateway_login"))
            # Names resolve against it, at the database and in the policy.
            self.assertEqual(conn.execute("SELECT count(*) FROM notes").fetchone()[0], 2)
            # As from a client's startup packet: RESET goes back to it, not to the default.
            conn.execute("SET myapp.tenant = 'other'")
            conn.execute("RESET myapp.tenant")
            self.assertEqual(conn.execute("SHOW myapp.tenant").fetchone()[0], "acme corp")
        # A custom setting as a startup parameter of its own, in another case.
        with RawConnection(self.gw().port) as c:
            c.login("rob", self.users["rob"], "app", extra={"MyApp.Tenant": "beta"})
            self.assertEqual(rows(c, "SHOW myapp.tenant"), [["beta"]])

    def test_search_path_from_options_is_what_the_policy_resolves_against(self):
        with self.connect("rob", "-c search_path=hidden") as conn:
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as cm:
                conn.execute("SELECT * FROM notes")
            self.assertIn("scope.readers.relations.deny", cm.exception.diag.message_primary)

    def test_refused_with_the_rule_and_sqlstate_of_the_set(self):
        cases = [
            ("rob", "statement_timeout", "0", "scope.readers.limits"),
            ("rob", "statement_timeout", "1h", "scope.readers.limits"),
            ("rob", "default_transaction_read_only", "off", "builtin.protected-setting"),
            ("rob", "session_replication_role", "replica", "builtin.protected-setting"),
            ("rob", "log_statement", "none", "builtin.protected-setting"),
            # SET role is a privilege statement (class dcl), which read-only does not allow.
            ("rob", "role", "postgres", "profile.read-only.class"),
            ("rob", "session_authorization", "postgres", "profile.read-only.class"),
            ("pat", "myapp.tenant", "acme", "scope.plain.classes"),
            ("pat", "search_path", "tenant", "scope.plain.classes"),
        ]
        for user, name, value, rule in cases:
            with self.subTest(user=user, name=name, value=value):
                # The SET itself, in a session: its rule.
                if user == "rob":
                    with self.connect(user, "") as conn:
                        with self.assertRaises(psycopg.errors.InsufficientPrivilege) as cm:
                            conn.execute(f"SET {name} = '{value}'")
                        self.assertIn(f'"{rule}"', cm.exception.diag.message_primary)
                for extra in ({"options": f"-c {name}={value}"},
                              {"options": f"--{name.replace('_', '-')}={value}"},
                              {name: value}):
                    e = self.refused(user, extra)
                    self.assertEqual(e.sqlstate, "42501", e.fields)
                    self.assertIn(f'"{rule}"', e.fields["M"])
                    self.assertIn(name, e.fields.get("D", ""))
        # The gateway goes on serving, and what was allowed still is.
        with self.connect("pat", "") as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone()[0], 1)

    def test_what_could_change_the_login_never_passes(self):
        # The admin scope, which may SET almost anything: still none of these.
        cases = {
            "-c user=postgres": "42501",
            "-cUSER=postgres": "42501",
            "--database=postgres": "42501",
            "-c replication=database": "42501",
            "-c options=-c\\ role=postgres": "42501",
            "-c _pq_.x=1": "42501",
            "-c role=postgres": "42501",
            "-c session_authorization=postgres": "42501",
            "-c Session-Authorization=postgres": "42501",
            "-O": "42601",  # allow_system_table_mods
            "-P": "42601",  # ignore_system_indexes
            "-B 100": "42601",
            "-c search_path": "42601",  # no value
            "--myapp.x": "42601",
            "postgres": "42601",
            "-c post_auth_delay=60": "55P02",  # only at connection start: a SET fails
            "-c a\\\"b=1": "42602",
            "-c tenant.é=1": "42602",
            "-c " + "a" * 64 + "=1": "42602",  # longer than an identifier: SET would truncate it
            " ".join(f"-c app.s{i}=1" for i in range(65)): "54000",
            "-c app.x=" + "v" * 4100: "54000",
        }
        for options, sqlstate in cases.items():
            with self.subTest(options=options[:60]):
                e = self.refused("ada", {"options": options})
                self.assertEqual(e.sqlstate, sqlstate, e.fields)
        for extra in ({"Role": "postgres"}, {"USER": "postgres"},
                      {"session_authorization": "postgres"}, {"replication": "true"}):
            with self.subTest(extra=extra):
                self.assertEqual(self.refused("ada", extra).sqlstate, "42501")
        # An escaped space keeps what follows inside the value: data, not a switch.
        with self.connect("ada", r"-c application_name=x\ -c\ role=postgres") as conn:
            self.assertEqual(conn.execute("SELECT current_setting('application_name'),"
                                          " current_user, session_user").fetchone(),
                             ("x -c role=postgres", "gateway_login", "gateway_login"))
        # 64 settings are fine.
        with self.connect("ada", " ".join(f"-c app.s{i}={i}" for i in range(64))) as conn:
            self.assertEqual(conn.execute("SHOW app.s63").fetchone()[0], "63")

    def test_settings_only_postgres_takes_at_connection_start_are_refused(self):
        # A SET of these fails in PostgreSQL; at startup they would pass. Read the list from the
        # server itself, so a newer server's additions are caught.
        names = self.pg.sql("SELECT string_agg(name, ' ') FROM pg_settings"
                            " WHERE context IN ('backend', 'superuser-backend')").split()
        self.assertIn("post_auth_delay", names)
        for name in names:
            with self.subTest(name=name):
                for extra in ({"options": f"-c {name}=0"}, {name: "0"}):
                    e = self.refused("ada", extra)
                    self.assertEqual(e.sqlstate, "55P02", e.fields)
                    self.assertIn(name, e.fields["M"])

    def test_a_bad_value_is_the_databases_own_fatal(self):
        e = self.refused("ada", {"options": "-c statement_timeout=soon"})
        self.assertEqual(e.sqlstate, "22023", e.fields)
        self.assertIn("statement_timeout", e.fields["M"])
        e = self.refused("ada", {"options": "-c no_such_setting=1"})
        self.assertEqual(e.sqlstate, "42704", e.fields)


class StartupSettingsAuditTest(ClusterTestCase):
    def test_accepted_and_refused_settings_are_recorded_like_their_set(self):
        users = {name: random_password() for name in GROUPS}
        d = h.make_temp_dir("audit")
        self.addCleanup(h._rmtree, d)
        key, pub, trail = (os.path.join(d, n) for n in ("audit.key", "audit.pub", "audit.jsonl"))
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", key, "--public-key", pub],
              timeout=30)
        extra = "\n".join(["[audit]", f'signing_key = "{key}"', f'spill_dir = "{d}/spill"', "",
                           "[[audit.sink]]", 'type = "file"', f'path = "{trail}"',
                           'fsync = "never"'])
        gw = self.gateway(users=users, user_groups=GROUPS, scopes=SCOPES, extra_config=extra)
        with psycopg.connect(gw.conninfo("rob", options="-c myapp.tenant=acme"),
                             password=users["rob"], autocommit=True) as conn:
            conn.execute("SET myapp.tenant = 'acme'")
        with self.assertRaises(psycopg.OperationalError):
            psycopg.connect(gw.conninfo("rob", options="-c statement_timeout=0"),
                            password=users["rob"])
        gw.stop()
        records = [json.loads(line) for line in Path(trail).read_text().splitlines() if line]
        statements = [r for r in records if r["kind"] == "statement"]
        startup = [r for r in statements if r.get("protocol") == "startup"]
        self.assertEqual(len(startup), 2, statements)
        accepted, refused = startup
        # Recorded as the SET would be: the statement, the rule, the decision.
        self.assertEqual(accepted["statement"], "SET \"myapp\".\"tenant\" TO 'acme'")
        self.assertEqual((accepted["decision"], accepted["rule"]), ("allow", "profile.read-only"))
        the_set = [r for r in statements if r.get("protocol") == "simple"][0]
        self.assertEqual(the_set["rule"], accepted["rule"])
        self.assertEqual(accepted["identity"]["subject"], "rob")
        done = [r for r in records if r["kind"] == "completion"
                and r["session"] == accepted["session"]
                and r["statement_id"] == accepted["statement_id"]]
        self.assertEqual([(c["outcome"], c.get("command_tag")) for c in done], [("ok", "SET")])
        kinds = [r["kind"] for r in records if r.get("session") == accepted["session"]]
        self.assertLess(kinds.index("statement"), kinds.index("auth_ok"))
        self.assertEqual((refused["decision"], refused["rule"], refused["sqlstate"]),
                         ("deny", "scope.readers.limits", "42501"))
        self.assertEqual(refused["statement"], "SET \"statement_timeout\" TO '0'")
        self.assertIn("auth_failed", [r["kind"] for r in records
                                      if r.get("session") == refused["session"]])
        ok = h.run([h.gateway_binary(), "audit", "verify", "--public-key", pub, trail],
                   check=False, timeout=60)
        self.assertEqual(ok.returncode, 0, ok.stdout.decode() + ok.stderr.decode())


if __name__ == "__main__":
    unittest.main()
