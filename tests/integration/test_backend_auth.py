"""The gateway logs in to PostgreSQL with the target's credentials, whatever
method the server asks for (SCRAM-SHA-256, md5, cleartext), and the client
never learns them: it sees the session as the target's role, logged in with its
own gateway password."""

import unittest

import psycopg

from harness import ClusterTestCase


class BackendAuthTest(ClusterTestCase):
    def gw(self):
        pw = self.pg.passwords
        target = lambda name, user: {"name": name, "host": "127.0.0.1", "port": self.pg.port,
                                     "database": "app", "user": user, "password": pw[user],
                                     "tls": "disable"}
        return self.gateway(targets=[target("scram", "gateway_login"), target("md5", "md5user"),
                                     target("cleartext", "plainuser")])

    def check_login(self, target: str, role: str) -> None:
        gw = self.gw()
        with psycopg.connect(gw.conninfo("alice", dbname=target), password=gw.users["alice"],
                             connect_timeout=10) as c:
            self.assertEqual(c.execute("SELECT current_user").fetchone(), (role,))
            # The role's password is nowhere in what the client can read.
            settings = c.execute("SELECT string_agg(setting, ' ') FROM pg_settings").fetchone()[0]
            self.assertNotIn(self.pg.passwords[role], settings)
        self.assertNotIn(self.pg.passwords[role], gw.log(), "a target password reached the log")

    def test_scram(self):
        self.check_login("scram", "gateway_login")

    def test_md5(self):
        self.check_login("md5", "md5user")

    def test_cleartext(self):
        self.check_login("cleartext", "plainuser")

    def test_hba_method_really_differs(self):
        # Guard against a harness that quietly made every role SCRAM: the md5
        # role's stored password must be an md5 hash.
        out = self.pg.sql("SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'md5user'")
        self.assertIn("t", out)


if __name__ == "__main__":
    unittest.main()
