"""`pgbastion policy explain` on the shipped example config: no database, and
none of the example's /etc/pgbastion files (certificates, password file) exist."""
import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import gateway_binary

EXAMPLE = str(Path(__file__).resolve().parents[2] / "packaging" / "examples" / "pgbastion.toml")


def explain(*args: str, claims: str | None = None, stdin: str | None = None,
            source: str | None = "local"):
    """The example config's scopes are for local users: claims are placed there unless
    `source` says otherwise (None: no --source)."""
    cmd = [gateway_binary(), "policy", "explain", "--config", EXAMPLE]
    if claims is not None:
        cmd += ["--claims", claims]
        if source is not None:
            cmd += ["--source", source]
    cmd += list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)


def decisions(res) -> list[dict]:
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


class PolicyExplainTest(unittest.TestCase):
    def test_guardrails_are_shown(self):
        """Issue 24, item 7: the hazard class, a capped setting's applied value and cap, and
        whether the session is read-only in the database."""
        rw = json.dumps({"sub": "bot", "groups": ["read-write"]})
        ro = json.dumps({"sub": "bot", "groups": ["read-only"]})
        [over] = decisions(explain("--json", "SET work_mem = '1GB'", claims=rw))
        self.assertEqual(over["decision"], "deny")
        self.assertEqual(over["settings"],
                         [{"name": "work_mem", "value": "1GB", "applied": 1048576, "cap": 65536}])
        self.assertFalse(over["read_only_in_database"])
        [under] = decisions(explain("--json", "SET work_mem = '0.0625GB'", claims=rw))
        self.assertEqual((under["decision"], under["settings"][0]["applied"]), ("allow", 65536))
        [hazard] = decisions(explain("--json", "VACUUM FULL orders", claims=rw))
        self.assertEqual((hazard["decision"], hazard["class"], hazard["rule"]),
                         ("approval", "hazard", "profile.read-write.hazard"))
        [read] = decisions(explain("--json", "SELECT 1", claims=ro))
        self.assertTrue(read["read_only_in_database"])
        text = explain("SET work_mem = '1GB'", claims=rw)
        self.assertIn("PostgreSQL applies 1048576, the scope's cap is 65536 (kB)", text.stdout)

    def test_the_three_groups_get_the_three_profiles(self):
        sql = "SELECT * FROM orders; DELETE FROM orders WHERE id = 1; DROP TABLE orders"
        expected = {
            "read-only": ["allow", "deny", "deny"],
            "read-write": ["allow", "allow", "approval"],
            "admin": ["allow", "allow", "allow"],
        }
        for group, want in expected.items():
            with self.subTest(group=group):
                out = decisions(explain("--json", sql, claims=json.dumps({"sub": "bot", "groups": [group]})))
                self.assertEqual([d["decision"] for d in out], want, out)
                self.assertEqual({d["scope"] for d in out}, {group})
                self.assertEqual(out[2]["class"], "ddl")
                self.assertEqual(out[2]["command"], "DROP TABLE")
        ro = decisions(explain("--json", "DELETE FROM orders WHERE id = 1",
                               claims='{"sub":"bot","groups":["read-only"]}'))[0]
        self.assertEqual(ro["rule"], "profile.read-only.class")
        self.assertIn("DELETE (write)", ro["reason"])
        self.assertIn("read-write scope", ro["hint"])

    def test_relations_and_functions_are_resolved(self):
        out = decisions(explain("--json", "SELECT now(), o.id FROM orders o JOIN app.items i ON true",
                                claims='{"sub":"bot","groups":["read-only"]}'))
        self.assertEqual(len(out), 1)
        relations = {r["name"]: r for r in out[0]["relations"]}
        # Unqualified: pg_temp first, then the default path "$user" (the target's role), public.
        self.assertEqual(relations["orders"]["schemas"], ["pg_temp", "pgbastion", "public"])
        self.assertEqual(relations["items"]["schemas"], ["app"])
        self.assertEqual(relations["orders"]["access"], ["select"])
        self.assertEqual(out[0]["functions"], [{"name": "now", "schemas": ["pg_catalog", "pgbastion", "public"]}])

    def test_scope_lists_and_dangerous_functions(self):
        claims = '{"sub":"bot","groups":["read-write"]}'
        out = decisions(explain("--json", "SELECT * FROM billing.secrets", claims=claims))
        self.assertEqual((out[0]["decision"], out[0]["rule"]), ("deny", "scope.read-write.relations.deny"))
        out = decisions(explain("--json", "SELECT pg_read_file('/etc/passwd')", claims=claims))
        self.assertEqual((out[0]["decision"], out[0]["rule"]), ("deny", "builtin.dangerous-function"))
        out = decisions(explain("--json", "SET ROLE postgres", claims=claims))
        self.assertEqual((out[0]["decision"], out[0]["rule"]), ("deny", "builtin.protected-setting"))

    def test_statements_are_judged_in_order(self):
        claims = '{"sub":"bot","groups":["read-write"]}'
        out = decisions(explain("--json", "PREPARE one AS SELECT 1; EXECUTE one; EXECUTE other",
                                claims=claims))
        self.assertEqual([d["decision"] for d in out], ["allow", "allow", "deny"])
        self.assertEqual(out[2]["rule"], "prepared.unknown")

    def test_the_first_refusal_refuses_the_query(self):
        # As the gateway: a Query runs whole or not at all, so what follows its first refusal
        # is not judged (and the refused PREPARE is not remembered).
        claims = '{"sub":"bot","groups":["read-write"]}'
        out = decisions(explain("--json", "SELECT 1; PREPARE wipe AS DELETE FROM orders; EXECUTE wipe",
                                claims=claims))
        self.assertEqual([d["decision"] for d in out], ["allow", "approval", "deny"])
        self.assertEqual(out[2]["rule"], out[1]["rule"])
        self.assertIn("not judged: statement 2 of the Query is refused", out[2]["reason"])
        self.assertEqual(out[2]["command"], "EXECUTE")

    def test_no_scope_is_no_access(self):
        out = decisions(explain("--json", "SELECT 1", claims='{"sub":"mallory","groups":["visitors"]}'))
        self.assertEqual((out[0]["decision"], out[0]["rule"], out[0]["scope"]), ("deny", "no-scope", None))

    def test_a_name_means_something_only_in_its_source(self):
        """The example's scopes are for local users: the same group from a certificate or a
        token gets no scope."""
        claims = '{"sub":"bot","groups":["admin"]}'
        out = decisions(explain("--json", "DROP TABLE orders", claims=claims))
        self.assertEqual((out[0]["decision"], out[0]["scope"]), ("allow", "admin"))
        out = decisions(explain("--json", "DROP TABLE orders", claims=claims, source="certificate"))
        self.assertEqual((out[0]["decision"], out[0]["rule"]), ("deny", "no-scope"))
        # A token needs an issuer the config knows; without iss or --source, say which.
        res = explain("--json", "SELECT 1", claims=claims, source=None)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--source", res.stderr)
        res = explain("--json", "SELECT 1", claims=claims, source="issuer:corp")
        self.assertEqual(res.returncode, 2)
        self.assertIn("no [[issuer]] named 'corp'", res.stderr)

    def test_local_user_and_target(self):
        out = decisions(explain("--json", "--user", "alice", "--target", "app", "TRUNCATE orders"))
        self.assertEqual((out[0]["decision"], out[0]["scope"]), ("approval", "read-write"))

    def test_syntax_error_is_a_denial(self):
        out = decisions(explain("--json", "SELEC 1", claims='{"sub":"bot","groups":["admin"]}'))
        self.assertEqual(len(out), 1)
        self.assertEqual((out[0]["decision"], out[0]["rule"]), ("deny", "analysis"))
        self.assertIn("42601", out[0]["reason"])

    def test_text_output_and_stdin(self):
        res = explain("-", claims='{"sub":"bot","groups":["read-only"]}', stdin="SELECT 1;\nDROP TABLE t;\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("1. allow: SELECT 1", res.stdout)
        self.assertIn("2. deny: DROP TABLE t", res.stdout)
        self.assertIn("rule profile.read-only.class", res.stdout)

    def test_usage_errors_exit_2(self):
        for args, claims in [((), '{"sub":"x"}'),                   # no SQL
                             (("SELECT 1",), None),                  # no identity
                             (("SELECT 1",), "not json"),
                             (("SELECT 1",), '{"groups":["admin"]}'),  # no sub
                             (("SELECT 1",), '["sub"]'),
                             (("--target", "nope", "SELECT 1"), '{"sub":"x"}'),
                             (("--bogus", "SELECT 1"), '{"sub":"x"}'),
                             (("SELECT 1", "SELECT 2"), '{"sub":"x"}')]:
            with self.subTest(args=args, claims=claims):
                res = explain(*args, claims=claims)
                self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
                self.assertIn("Usage:", res.stderr)
        res = subprocess.run([gateway_binary(), "policy", "explain", "--help"], capture_output=True, text=True)
        self.assertEqual(res.returncode, 0)
        self.assertIn("--claims JSON", res.stdout)

    def test_masked_scope_refuses_what_could_reveal_a_masked_column(self):
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "masked.toml")
            Path(config).write_text(Path(EXAMPLE).read_text() + """
[[scope]]
name = "support"
sources = ["local"]
groups = ["support"]
profile = "read-only"
[[scope.mask]]
columns = ["email", "phone"]
method = "partial"
""")
            out = []
            for sql in ["SELECT id, email FROM customers WHERE id = 1",
                        "SELECT id FROM customers WHERE email LIKE 'a%'",
                        "SELECT row_to_json(c) FROM customers c", "COPY customers TO STDOUT"]:
                res = subprocess.run([gateway_binary(), "policy", "explain", "--config", config, "--json",
                                      "--claims", '{"sub":"agent-1","groups":["support"]}',
                                      "--source", "local", sql],
                                     capture_output=True, text=True, timeout=60)
                out += decisions(res)
                # Explain has no catalog, and says what it assumed instead.
                self.assertIn("explain reads no database", res.stderr)
        self.assertEqual([d["decision"] for d in out], ["allow", "deny", "deny", "deny"], out)
        self.assertEqual({d["scope"] for d in out}, {"support"})
        self.assertEqual({d["rule"] for d in out[1:]}, {"scope.support.mask"})
        self.assertEqual(out[1]["reason"],
                         'column "email" is masked for scope support: it can only be selected as a plain column')
        self.assertIn("SELECT email FROM ...", out[1]["hint"])
        self.assertEqual(out[2]["hint"], "list the columns you need")
        self.assertIn("COPY TO", out[3]["reason"])

    def test_bad_config_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.toml")
            Path(bad).write_text(Path(EXAMPLE).read_text().replace('profile = "read-only"', 'profile = "reader"'))
            res = subprocess.run([gateway_binary(), "policy", "explain", "--config", bad,
                                  "--claims", '{"sub":"x"}', "SELECT 1"], capture_output=True, text=True)
            self.assertEqual(res.returncode, 1, res.stdout)
            self.assertIn("scope[2].profile", res.stderr)


if __name__ == "__main__":
    unittest.main()
