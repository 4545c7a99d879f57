"""TLS on both sides of the gateway.

Client side: sslmode=require and verify-full against a listener with a certificate;
a TLS-only listener refuses plaintext with a FATAL naming TLS; a listener without a
certificate answers SSLRequest with 'N'.
Backend side: PostgreSQL with ssl=on and hostssl-only hba, reached by the gateway with
verify-full against the right CA (works, and pg_stat_ssl says so) and the wrong CA
(fails with a clear client-visible error).
"""

import os
import re
import struct
import unittest

import psycopg

import harness as h
from harness import (Certificates, ClusterTestCase, RawConnection, SSL_REQUEST_CODE, ProtocolError,
                     startup_packet)


class TlsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates("tls")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.other_ca = Certificates("other")
        cls.addClassCleanup(cls.other_ca.cleanup)
        # PostgreSQL takes TCP logins over TLS only.
        cls.cluster_kwargs = {"ssl_certs": cls.certs, "hostssl_only": True, "max_connections": 100}
        super().setUpClass()

    def targets(self):
        base = {"host": "127.0.0.1", "port": self.pg.port, "database": "app", "user": "gateway_login",
                "password": self.pg.passwords["gateway_login"]}
        return [
            dict(base, name="app", tls="verify-full", tls_ca=str(self.certs.ca_crt),
                 tls_server_name="localhost"),
            dict(base, name="plainapp", tls="disable"),
            dict(base, name="wrongca", tls="verify-full", tls_ca=str(self.other_ca.ca_crt),
                 tls_server_name="localhost"),
            dict(base, name="wrongname", tls="verify-full", tls_ca=str(self.certs.ca_crt),
                 tls_server_name="not-the-server.example"),
            dict(base, name="requireonly", tls="require"),
        ]

    def gw(self, mode):
        """mode: optional / required (listener with a certificate) or nocert."""
        listener = {"address": "127.0.0.1", "tls": "disabled" if mode == "nocert" else mode}
        if mode != "nocert":
            listener.update(tls_cert=str(self.certs.server_crt), tls_key=str(self.certs.server_key))
        from harness import free_port
        gw = self._gateways.get(mode)
        if gw is None:
            listener["port"] = free_port()
            return self.gateway(mode, listeners=[listener], targets=self.targets(), port=listener["port"])
        return self.gateway(mode)

    def connect(self, gw, **kw):
        params = dict(host="127.0.0.1", port=gw.port, dbname="app", user="alice",
                      password=gw.users["alice"], connect_timeout=10)
        params.update(kw)
        return psycopg.connect(**params)

    # -- client side ----------------------------------------------------------------
    def test_direct_sanity(self):
        pw = self.pg.passwords["gateway_login"]
        with psycopg.connect(self.pg.conninfo(sslmode="verify-full", sslrootcert=self.certs.ca_crt,
                                              host="localhost"), password=pw) as conn:
            self.assertTrue(conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0])
        with self.assertRaisesRegex(psycopg.OperationalError, "no encryption|pg_hba"):
            psycopg.connect(self.pg.conninfo(sslmode="disable"), password=pw, connect_timeout=10)

    def test_client_sslmode_require(self):
        gw = self.gw("optional")
        with self.connect(gw, sslmode="require") as conn:
            self.assertTrue(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        # optional: plaintext still allowed
        with self.connect(gw, sslmode="disable") as conn:
            self.assertFalse(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 2").fetchone(), (2,))

    def test_client_verify_full(self):
        gw = self.gw("optional")
        with self.connect(gw, host="localhost", sslmode="verify-full", sslrootcert=str(self.certs.ca_crt)) as conn:
            self.assertTrue(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 'verified'").fetchone(), ("verified",))
            # A big result through TLS on both sides.
            self.assertEqual(conn.execute("SELECT count(*), sum(length(md5(g::text))) FROM "
                                          "generate_series(1, 200000) g").fetchone(), (200000, 6400000))
            rows = conn.execute("SELECT g, repeat('t', 1000) FROM generate_series(1, 5000) g").fetchall()
            self.assertEqual(len(rows), 5000)
        # The gateway's certificate does not chain to another CA: libpq refuses it.
        with self.assertRaisesRegex(psycopg.OperationalError, "certificate verify failed"):
            self.connect(gw, host="localhost", sslmode="verify-full", sslrootcert=str(self.other_ca.ca_crt))

    def test_channel_binding(self):
        """SCRAM-SHA-256-PLUS: libpq with channel_binding=require logs in over TLS
        (the login is bound to the gateway's certificate); without TLS there is
        nothing to bind to and libpq refuses, as it would with PostgreSQL."""
        gw = self.gw("optional")
        with self.connect(gw, sslmode="require", channel_binding="require") as conn:
            self.assertTrue(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 'bound'").fetchone(), ("bound",))
        with self.assertRaisesRegex(psycopg.OperationalError, "channel binding"):
            self.connect(gw, sslmode="disable", channel_binding="require")
        # A wrong password is still refused under -PLUS.
        with self.assertRaisesRegex(psycopg.OperationalError, "password authentication failed"):
            self.connect(gw, sslmode="require", channel_binding="require", password="wrong")

    def test_required_listener_refuses_plaintext(self):
        gw = self.gw("required")
        with self.connect(gw, sslmode="require") as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        with self.assertRaisesRegex(psycopg.OperationalError, re.compile("TLS|SSL", re.I)):
            self.connect(gw, sslmode="disable")
        with RawConnection(gw.port) as c:
            c.send(startup_packet({"user": "alice", "database": "app"}))
            msgs = c.read_until_eof(timeout=5)
            self.assertTrue(msgs, "closed without an ErrorResponse")
            kind, body = msgs[-1]
            self.assertEqual(kind, b"E")
            from harness import parse_error
            fields = parse_error(body)
            self.assertEqual(fields.get("C"), "28000", fields)
            self.assertEqual(fields.get("S"), "FATAL", fields)
            self.assertRegex(fields.get("M", ""), re.compile("TLS|SSL", re.I))

    def test_listener_without_cert_answers_n(self):
        gw = self.gw("nocert")
        with RawConnection(gw.port) as c:
            c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
            self.assertEqual(c.read_byte(timeout=5), b"N")
            c.login("alice", gw.users["alice"], "app")
            self.assertEqual(c.simple_query("SELECT 1")[-1][0], b"Z")
        with self.connect(gw, sslmode="prefer") as conn:
            self.assertFalse(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        with self.assertRaisesRegex(psycopg.OperationalError, re.compile("SSL|TLS", re.I)):
            self.connect(gw, sslmode="require")

    # -- backend side ---------------------------------------------------------------
    def test_backend_verify_full(self):
        gw = self.gw("nocert")
        with self.connect(gw) as conn:
            ssl, version = conn.execute(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            self.assertTrue(ssl, "the gateway's backend connection is not encrypted")
            self.assertTrue(version.startswith("TLS"))
        with self.connect(gw, dbname="requireonly") as conn:
            self.assertTrue(conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0])

    def test_masking_over_tls_on_both_sides(self):
        # Rows come out of the database's TLS stream in the shard's scratch
        # buffer and go into the client's: masked there, across TLS records.
        listener = {"address": "127.0.0.1", "tls": "required", "port": h.free_port(),
                    "tls_cert": str(self.certs.server_crt), "tls_key": str(self.certs.server_key)}
        # Before the gateway starts: a masked scope knows the relations of the
        # catalog the gateway read (over TLS too).
        self.pg.sql("CREATE TABLE IF NOT EXISTS secrets AS SELECT g AS id,"
                    " repeat('s', 300) || lpad(g::text, 4, '0') AS secret"
                    " FROM generate_series(1, 3000) g;"
                    "ALTER TABLE secrets OWNER TO gateway_login;", db="app")
        gw = self.gateway("masked", listeners=[listener], targets=self.targets(),
                          port=listener["port"],
                          scopes=[{"name": "masked", "subjects": ["*"], "profile": "read-only",
                                   "mask": [{"columns": ["secret"], "method": "partial",
                                             "keep": 4}]}])
        sql = "SELECT id, secret FROM secrets ORDER BY id"
        with self.connect(gw, sslmode="require") as conn:
            for binary in (False, True):
                with conn.cursor(binary=binary) as cur:
                    rows = cur.execute(sql).fetchall()
                self.assertEqual(len(rows), 3000)
                for g, secret in rows:
                    self.assertEqual(secret, "*" * 300 + f"{g:04d}")

    def test_backend_tls_failures_are_clear(self):
        gw = self.gw("nocert")
        for target, pattern in (("wrongca", "certif|verif|TLS|SSL"),
                                ("wrongname", "certif|verif|name|TLS|SSL"),
                                # tls=disable against a hostssl-only server: PostgreSQL's own
                                # "no encryption" rejection must reach the client (the gateway
                                # may keep the hba detail to its log and say it could not log in).
                                ("plainapp", "encryption|pg_hba|TLS|SSL|could not log in")):
            with self.subTest(target=target), RawConnection(gw.port) as c:
                with self.assertRaises(ProtocolError) as cm:
                    c.login("alice", gw.users["alice"], target)
                fields = cm.exception.fields
                self.assertIn(fields.get("C", "")[:2], ("08", "28"), fields)
                self.assertRegex(fields.get("M", "") + " " + fields.get("D", ""), re.compile(pattern, re.I))
        with self.connect(gw) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))


if __name__ == "__main__":
    unittest.main()
