"""node-postgres (npm `pg`, tests/drivers) through the gateway, where only a real driver shows the
difference (issue 15):

  item 1  the database ends the session (pg_terminate_backend): a pooled, idle client sees exactly
          one error, PostgreSQL's FATAL 57P01, and nothing after it (a second FATAL of the
          gateway's surfaced as an 'error' event with nothing to attach it to);
  item 5  `new Client({options: '-c search_path=...'})` works where the scope allows the setting
          and is refused, with the SET's rule, where it does not.
"""

import json
import os
import subprocess
import unittest
from pathlib import Path

import harness as h
from harness import ClusterTestCase, random_password

NODE = os.environ.get("PGB_NODE", "node")
DRIVERS = Path(__file__).resolve().parent.parent / "drivers"
GROUPS = {"ada": ["admin"], "rob": ["read-only"]}
SCOPES = [
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
    {"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only",
     "statement_timeout": "20s"},
]


def node_pg(config: dict, timeout: float = 60) -> dict:
    """Runs tests/drivers/pg_client.mjs with `config`; its JSON answer."""
    if not (DRIVERS / "node_modules" / "pg").is_dir():
        raise AssertionError("node-postgres is not installed: run packaging/install-deps.sh")
    r = subprocess.run([NODE, str(DRIVERS / "pg_client.mjs"), json.dumps(config)],
                       capture_output=True, timeout=timeout, cwd=DRIVERS)
    out = r.stdout.decode().strip().splitlines()
    if r.returncode != 0 or not out:
        raise AssertionError(f"node exited {r.returncode}: {r.stdout.decode()}{r.stderr.decode()}")
    return json.loads(out[-1])


class NodePostgresTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {name: random_password() for name in GROUPS}
        cls.pg.sql("CREATE SCHEMA tenant; CREATE TABLE tenant.notes (x int);"
                   "INSERT INTO tenant.notes VALUES (7);"
                   "ALTER SCHEMA tenant OWNER TO gateway_login;"
                   "ALTER TABLE tenant.notes OWNER TO gateway_login;", db="app")

    def gw(self) -> h.Gateway:
        return self.gateway(users=self.users, user_groups=GROUPS, scopes=SCOPES)

    def through_gateway(self, user: str, **extra) -> dict:
        return {"host": "127.0.0.1", "port": self.gw().port, "user": user,
                "password": self.users[user], "database": "app", **extra}

    def direct(self) -> dict:
        return {"host": "127.0.0.1", "port": self.pg.port, "user": "gateway_login",
                "password": self.pg.passwords["gateway_login"], "database": "app"}

    # --- item 1 -------------------------------------------------------------

    def test_terminated_session_raises_one_error(self):
        for mode in ("query", "idle"):
            with self.subTest(mode=mode):
                # Directly, for reference.
                direct = node_pg({"scenario": "terminate", "mode": mode,
                                  "connect": self.direct(), "direct": self.direct()})
                got = node_pg({"scenario": "terminate", "mode": mode,
                               "connect": self.through_gateway("ada"), "direct": self.direct()})
                seen = [(e["source"], e.get("code")) for e in got["errors"]]
                # Exactly one error from the database: its FATAL 57P01, where the application
                # attached a handler (the running query, or the pool for an idle client).
                coded = [e for e in got["errors"] if e.get("code")]
                self.assertEqual([(e["code"], e["severity"]) for e in coded], [("57P01", "FATAL")],
                                 got)
                self.assertIn("terminating connection due to administrator command",
                              coded[0]["message"])
                self.assertNotIn("uncaughtException", [s for s, _ in seen], got)
                # And the same events as from PostgreSQL directly (node-postgres adds its own
                # "Connection terminated unexpectedly" for a client ended mid-query, there too).
                self.assertEqual(seen, [(e["source"], e.get("code")) for e in direct["errors"]],
                                 (got, direct))

    # --- item 5 -------------------------------------------------------------

    def test_options_where_the_scope_allows_them(self):
        got = node_pg({"scenario": "query",
                       "connect": self.through_gateway(
                           "rob", options="-c search_path=tenant -c myapp.tenant=acme",
                           statement_timeout=5000),
                       "sql": "SELECT x, current_setting('myapp.tenant') AS tenant,"
                              " current_setting('statement_timeout') AS timeout FROM notes"})
        self.assertEqual(got.get("rows"), [{"x": 7, "tenant": "acme", "timeout": "5s"}], got)
        self.assertEqual(got["errors"], [])

    def test_options_where_the_policy_refuses_them(self):
        for options, rule in (("-c statement_timeout=0", "scope.readers.limits"),
                              ("-c default_transaction_read_only=off",
                               "builtin.protected-setting"),
                              ("-c role=postgres", "profile.read-only.class")):
            with self.subTest(options=options):
                got = node_pg({"scenario": "query",
                               "connect": self.through_gateway("rob", options=options),
                               "sql": "SELECT 1"})
                error = got.get("error")
                self.assertIsNotNone(error, got)
                self.assertEqual((error["source"], error["code"], error["severity"]),
                                 ("connect", "42501", "FATAL"), got)
                self.assertIn(f'"{rule}"', error["message"])
                self.assertEqual(got["errors"], [], got)  # no stray 'error' event
        # node-postgres' own statement_timeout option is a startup parameter too.
        got = node_pg({"scenario": "query",
                       "connect": self.through_gateway("rob", statement_timeout=60000),
                       "sql": "SELECT 1"})
        self.assertIn('"scope.readers.limits"', got.get("error", {}).get("message", ""), got)


if __name__ == "__main__":
    unittest.main()
