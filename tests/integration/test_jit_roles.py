"""Just-in-time database roles (issue 17): each session of a scope with a role
template reaches PostgreSQL 15 as a temporary LOGIN role the gateway creates
for it (a member of the template's NOLOGIN roles only) and drops after it; a
janitor removes what a killed gateway left; static mode uses a pre-created
role; pg_stat_activity shows who a session belongs to."""

import base64
import json
import os
import shutil
import time
import unittest
from pathlib import Path

import psycopg

from harness import (Certificates, ClusterTestCase, Gateway, free_port, ProtocolError, RawConnection, gateway_binary,
                     make_temp_dir, pgbench, psql, random_password, run)

PROVISION_ENV = "PGB_TEST_PROVISION_PASSWORD"
STATIC_ENV = "PGB_TEST_STATIC_PASSWORD"


class JitRolesTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pg = cls.pg
        # What a DBA prepares: a provisioning login with CREATEROLE (never
        # superuser), NOLOGIN roles that hold the privileges, a static login.
        pg.create_role("pgb_provisioner", random_password(), attrs="LOGIN CREATEROLE")
        pg.create_role("noprov", random_password(), attrs="LOGIN")
        pg.sql("CREATE ROLE app_reader NOLOGIN; CREATE ROLE app_other NOLOGIN;")
        pg.create_role("static_login", random_password(), attrs="LOGIN IN ROLE app_reader")
        pg.sql("CREATE TABLE public.items (id int primary key, name text);"
               "INSERT INTO public.items VALUES (1, 'one'), (2, 'two');"
               "CREATE TABLE public.secret_stuff (id int);"
               "GRANT SELECT ON public.items TO app_reader;"
               "GRANT SELECT ON public.secret_stuff TO app_other;", db="app")
        cls.env = {PROVISION_ENV: pg.passwords["pgb_provisioner"],
                   STATIC_ENV: pg.passwords["static_login"]}

    @classmethod
    def gw_kwargs(cls, node: str, provision_user: str = "pgb_provisioner") -> dict:
        pg = cls.pg
        return dict(
            users={"alice": random_password(), "bob": random_password(),
                   "ci-bot@example.com": random_password()},
            targets=[{"name": "app", "host": "127.0.0.1", "port": pg.port, "database": "app",
                      "user": "gateway_login", "password": pg.passwords["gateway_login"],
                      "tls": "disable", "provision_user": provision_user,
                      "provision_password_env": PROVISION_ENV}],
            scopes=[
                # Admin profile: only the database's own privileges stop a statement.
                {"name": "jit", "sources": ["local"], "subjects": ["alice", "ci-bot@example.com"],
                 "profile": "admin",
                 "role": {"member_of": ["app_reader"], "settings": {"work_mem": "3MB"},
                          "connection_limit": 2, "grace": "1m"}},
                {"name": "fixed", "sources": ["local"], "subjects": ["bob"], "profile": "admin",
                 "role": {"mode": "static", "login": "static_login", "password_env": STATIC_ENV}},
            ],
            extra_env=cls.env,
            extra_config=f'[roles]\nnode_id = "{node}"\njanitor_interval = "1s"\n')

    def jit(self) -> Gateway:
        return self.gateway("jit", **self.gw_kwargs("testnode"))

    def roles_of(self, node: str) -> list[str]:
        out = self.pg.sql("SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') "
                          f"LIKE 'pgbastion node={node} %' ORDER BY 1")
        return [line for line in out.splitlines() if line]

    def wait_gone(self, role: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pg.sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == "0":
                return
            time.sleep(0.1)
        self.fail(f"role {role} still exists after {timeout}s")

    def connect(self, gw: Gateway, user: str = "alice", **kw) -> psycopg.Connection:
        return psycopg.connect(gw.conninfo(user), password=gw.users[user], connect_timeout=10,
                               autocommit=True, **kw)

    def test_role_expires_with_the_token_and_is_dropped_when_the_session_ends(self):
        """A token login: the role is VALID UNTIL the token's exp plus the template's grace (so
        the database itself stops taking it), and when the token expires the gateway ends the
        session and drops the role."""
        certs = Certificates("jit-token")
        self.addCleanup(certs.cleanup)
        key = os.path.join(certs.dir, "mint.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", key])
        jwks = os.path.join(certs.dir, "mint.jwks.json")
        Path(jwks).write_bytes(run([gateway_binary(), "token", "jwks", "--key", key]).stdout)
        issuer_url = "https://mint.pgbastion.test"
        issuer = "\n".join(["[[issuer]]", 'name = "local"', f'issuer = "{issuer_url}"',
                            'audience = "pgbastion"', f'jwks_file = "{jwks}"', 'clock_skew = "0s"'])
        kwargs = self.gw_kwargs("tokennode")
        port = free_port()
        kwargs.update(
            port=port, issuers=[issuer],
            listeners=[{"address": "127.0.0.1", "port": port, "tls": "required",
                        "tls_cert": str(certs.server_crt), "tls_key": str(certs.server_key)}],
            scopes=[{"name": "agents", "sources": ["issuer:local"], "subjects": ["agent-7"],
                     "profile": "admin", "role": {"member_of": ["app_reader"], "grace": "30s"}}])
        gw = self.gateway("token", **kwargs)
        token = run([gateway_binary(), "token", "mint", "--key", key, "--issuer", issuer_url,
                     "--audience", "pgbastion", "--subject", "agent-7", "--ttl", "8s"]
                    ).stdout.decode().strip()
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        conn = psycopg.connect(gw.conninfo("agent-7", sslmode="require"), password=token,
                               connect_timeout=10, autocommit=True)
        self.addCleanup(conn.close)
        role = conn.execute("SELECT current_user").fetchone()[0]
        self.assertTrue(role.startswith("pgb_"), role)
        valid_until = int(float(self.pg.sql(
            f"SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = '{role}'")))
        self.assertLessEqual(abs(valid_until - (exp + 30)), 1, (valid_until, exp))
        # Past the token's expiry the gateway ends the session (at the latest on its tick)...
        time.sleep(max(0.0, exp - time.time()) + 1.0)
        with self.assertRaises(psycopg.OperationalError) as caught:
            conn.execute("SELECT 1")
        self.assertIn("expired", str(caught.exception))
        # ...and drops the role, well before its VALID UNTIL.
        self.wait_gone(role)

    def test_role_exists_during_the_session_with_the_templates_privileges_only(self):
        gw = self.jit()
        with self.connect(gw) as c:
            role = c.execute("SELECT current_user").fetchone()[0]
            self.assertRegex(role, r"^pgb_alice_[0-9a-f]{8}$")
            self.assertNotEqual(role, "gateway_login")
            row = self.pg.sql(
                "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolconnlimit, "
                "rolvaliduntil > now() AND rolvaliduntil < now() + interval '25 hours', "
                "shobj_description(oid, 'pg_authid'), rolpassword LIKE 'SCRAM-SHA-256$%' "
                f"FROM pg_authid WHERE rolname = '{role}'")
            login, sup, createrole, createdb, limit, valid, comment, scram = row.split("|")
            self.assertEqual((login, sup, createrole, createdb, limit, valid, scram),
                             ("t", "f", "f", "f", "2", "t", "t"))
            self.assertRegex(comment, r"^pgbastion node=testnode session=\d+ identity=alice$")
            members = self.pg.sql(
                "SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m "
                "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
                f"WHERE r.rolname = '{role}'")
            self.assertEqual(members, "app_reader")
            # The template's settings.
            self.assertEqual(c.execute("SHOW work_mem").fetchone(), ("3MB",))
            # Its privileges: what app_reader may do works ...
            self.assertEqual(c.execute("SELECT count(*) FROM items").fetchone(), (2,))
            # ... and what it may not fails in the database itself, although the
            # scope's profile is admin (the gateway's policy lets it through).
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as e:
                c.execute("SELECT * FROM secret_stuff")
            self.assertIn("permission denied for table secret_stuff", str(e.exception))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                c.execute("INSERT INTO items VALUES (3, 'three')")
            with self.assertRaises(psycopg.Error):
                c.execute("CREATE ROLE sneaky")
            self.assertIn(role, self.roles_of("testnode"))
        self.wait_gone(role)
        self.assertNotIn(role, self.roles_of("testnode"))
        self.assertIn(f"dropped role {role}", gw.log())

    def test_pg_stat_activity_shows_the_identity(self):
        gw = self.jit()
        with self.connect(gw, "ci-bot@example.com", application_name="nightly") as c:
            role, pid = c.execute("SELECT current_user, pg_backend_pid()").fetchone()
            self.assertRegex(role, r"^pgb_ci_bot_example_com_[0-9a-f]{8}$")
            seen = self.pg.sql("SELECT usename || ' ' || application_name FROM pg_stat_activity "
                               f"WHERE pid = {pid}")
            self.assertEqual(seen, f"{role} ci-bot@example.com/nightly")
        with self.connect(gw) as c:
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            seen = self.pg.sql(f"SELECT application_name FROM pg_stat_activity WHERE pid = {pid}")
            self.assertEqual(seen, "alice")
        self.wait_gone(role)

    def test_psql_works_and_each_session_gets_its_own_role(self):
        gw = self.jit()
        roles = set()
        for _ in range(3):
            out = psql(gw.conninfo("alice"), "SELECT current_user, count(*) FROM items",
                       password=gw.users["alice"], args=["-A", "-t"])
            role, count = out.stdout.decode().strip().split("|")
            self.assertEqual(count, "2")
            roles.add(role)
        self.assertEqual(len(roles), 3, roles)
        for role in roles:
            self.wait_gone(role)

    def test_pgbench_works_through_temporary_roles(self):
        gw = self.jit()
        d = make_temp_dir("jit-pgbench")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        script = os.path.join(d, "items.sql")
        Path(script).write_text("SELECT count(*) FROM items;\n")
        # -C: a new connection (and so a new role) for every transaction.
        out = pgbench(["-n", "-C", "-c", "2", "-t", "5", "-f", script], port=gw.port, user="alice",
                      dbname="app", password=gw.users["alice"])
        self.assertIn("number of transactions actually processed: 10/10", out.stdout.decode())
        deadline = time.monotonic() + 15
        while len(self.roles_of("testnode")) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.roles_of("testnode"), [])

    def test_static_mode_uses_the_precreated_role(self):
        gw = self.jit()
        before = self.pg.sql("SELECT count(*) FROM pg_roles")
        with self.connect(gw, "bob") as c:
            self.assertEqual(c.execute("SELECT current_user").fetchone(), ("static_login",))
            self.assertEqual(c.execute("SELECT count(*) FROM items").fetchone(), (2,))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT * FROM secret_stuff")
            self.assertEqual(self.pg.sql("SELECT count(*) FROM pg_roles"), before)
        time.sleep(1.5)  # a janitor round: the static role is not the gateway's to drop
        self.assertEqual(self.pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = "
                                     "'static_login'"), "1")

    def test_provisioning_login_without_createrole_is_a_clear_error(self):
        gw = self.gateway("noprov", **self.gw_kwargs("noprovnode", provision_user="noprov"))
        # Its password is the provisioner's env variable: give noprov that password.
        self.pg.sql(f"ALTER ROLE noprov PASSWORD '{self.pg.passwords['pgb_provisioner']}'")
        with self.assertRaises(psycopg.OperationalError) as e:
            self.connect(gw)
        text = str(e.exception)
        self.assertIn("could not create a database role", text)
        self.assertIn("permission denied to create role", text)
        # On the wire: SQLSTATE 42501, and a hint naming what is missing.
        with RawConnection(gw.port) as raw, self.assertRaises(ProtocolError) as e:
            raw.login("alice", gw.users["alice"], "app")
        self.assertEqual(e.exception.sqlstate, "42501")
        self.assertIn("CREATEROLE", e.exception.fields.get("H", ""))
        self.assertIn("grant it CREATEROLE", gw.log())
        self.assertEqual(self.roles_of("noprovnode"), [])

    def test_audit_records_name_the_temporary_role(self):
        d = make_temp_dir("jit-audit")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        key, pub, trail = (os.path.join(d, n) for n in ("audit.key", "audit.pub", "audit.jsonl"))
        run([gateway_binary(), "audit", "keygen", "--private-key", key, "--public-key", pub],
            timeout=30)
        kwargs = self.gw_kwargs("auditnode")
        kwargs["extra_config"] += "\n".join([
            "", "[audit]", f'signing_key = "{key}"', f'spill_dir = "{d}/spill"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{trail}"', 'fsync = "never"'])
        gw = Gateway(self.pg, **kwargs).start()
        try:
            with self.connect(gw) as c:
                role = c.execute("SELECT current_user").fetchone()[0]
                self.assertRegex(role, r"^pgb_alice_[0-9a-f]{8}$")
        finally:
            gw.stop()
        records = [json.loads(line) for line in Path(trail).read_text().splitlines() if line]
        session = [r for r in records if r.get("identity", {}).get("subject") == "alice"]
        self.assertTrue(session, records[:5])
        self.assertEqual({r.get("db_role") for r in session}, {role})
        self.assertIn("auth_ok", {r["kind"] for r in session})
        self.wait_gone(role)

    def test_janitor_removes_the_roles_of_a_killed_gateway(self):
        live_gw = self.jit()
        # Another node's role without a backend, and a live session of another
        # node: neither is the restarted gateway's to drop.
        self.pg.sql("CREATE ROLE pgb_someone_else_00000000 LOGIN;"
                    "COMMENT ON ROLE pgb_someone_else_00000000 IS "
                    "'pgbastion node=othernode session=1 identity=x'")
        live = self.connect(live_gw)
        live_role = live.execute("SELECT current_user").fetchone()[0]

        kwargs = self.gw_kwargs("killnode")
        first = Gateway(self.pg, **kwargs).start()
        try:
            conns = [self.connect(first) for _ in range(6)]
            roles = sorted(c.execute("SELECT current_user").fetchone()[0] for c in conns)
            self.assertEqual(self.roles_of("killnode"), roles)
            first.kill()
            for c in conns:
                try:
                    c.close()
                except psycopg.Error:
                    pass
            time.sleep(0.5)
            self.assertEqual(self.roles_of("killnode"), roles, "SIGKILL cannot have dropped them")
        finally:
            first.kill()
            first._cleanup_dir()
        second = Gateway(self.pg, **kwargs).start()
        try:
            deadline = time.monotonic() + 20
            while self.roles_of("killnode") and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(self.roles_of("killnode"), [], second.log())
            # A new session on the restarted gateway works and keeps its role.
            with self.connect(second) as c:
                role = c.execute("SELECT current_user").fetchone()[0]
                time.sleep(1.5)
                self.assertEqual(self.roles_of("killnode"), [role])
        finally:
            second.stop()
        self.assertEqual(self.roles_of("killnode"), [], "stop drops what it held")
        self.assertEqual(live.execute("SELECT count(*) FROM items").fetchone(), (2,))
        self.assertIn(live_role, self.roles_of("testnode"))
        self.assertEqual(self.pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = "
                                     "'pgb_someone_else_00000000'"), "1")
        live.close()
        self.wait_gone(live_role)


if __name__ == "__main__":
    unittest.main()
