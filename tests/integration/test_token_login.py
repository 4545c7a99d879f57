"""Token login through the gateway: an agent sends a JWT as its password, over TLS only.

A real OIDC provider (oidc.py: npm oidc-provider, client credentials) issues the tokens psql
and psycopg use; its keys come by OIDC discovery. A second issuer reads a JWKS file made by
`pgbastion token jwks`, and `pgbastion token mint` signs the crafted tokens (expired, wrong
audience, unknown kid, short-lived) with its key. Each bad input is its own test and must
be refused with 28000/28P01 naming the check that failed; the gateway stays up and a
session that is already running is not disturbed.
"""

import base64
import json
import os
import time
import unittest

import psycopg

from harness import Certificates, ClusterTestCase, free_port, gateway_binary, psql, run
from oidc import OidcProvider, jwt_header

LOCAL_ISSUER = "https://mint.pgbastion.test"
# The same keys, but the startup user is not checked against the subject.
ANY_USER_ISSUER = "https://any-user.pgbastion.test"


def scopes(*issuers: str) -> list[dict]:
    """The group read-only from certificates and the named issuers' tokens; the local user
    alice is an admin."""
    return [
        {"name": "readers", "sources": ["certificate"] + [f"issuer:{i}" for i in issuers],
         "groups": ["read-only"], "profile": "read-only"},
        {"name": "admins", "sources": ["local"], "subjects": ["alice"], "profile": "admin"},
    ]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenLoginTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = Certificates("token")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.idp = OidcProvider(cls.certs, groups=["read-only"], ttl=300)
        cls.addClassCleanup(cls.idp.stop)
        cls.idp.start()
        cls.binary = gateway_binary()
        # A local signing key and its JWKS, for tokens minted by the tests.
        cls.key = os.path.join(cls.certs.dir, "mint.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", cls.key])
        cls.jwks = os.path.join(cls.certs.dir, "mint.jwks.json")
        jwks = run([cls.binary, "token", "jwks", "--key", cls.key]).stdout
        with open(cls.jwks, "wb") as f:
            f.write(jwks)
        issuers = [
            cls.idp.issuer_toml("corp", refresh_min='"1s"'),
            "\n".join(["[[issuer]]", 'name = "local"', f'issuer = "{LOCAL_ISSUER}"',
                       'audience = "pgbastion"', f'jwks_file = "{cls.jwks}"',
                       'clock_skew = "0s"']),
            "\n".join(["[[issuer]]", 'name = "any-user"', f'issuer = "{ANY_USER_ISSUER}"',
                       'audience = "pgbastion"', f'jwks_file = "{cls.jwks}"',
                       'user_match = "ignore"']),
        ]
        port = free_port()
        listener = {"address": "127.0.0.1", "port": port, "tls": "optional",
                    "tls_cert": str(cls.certs.server_crt), "tls_key": str(cls.certs.server_key)}
        cls.gw = cls.gateway(listeners=[listener], port=port, issuers=issuers,
                             scopes=scopes("corp", "local") + [
                                 {"name": "any-user-alice", "sources": ["issuer:any-user"],
                                  "subjects": ["alice"], "profile": "read-only"}])

    # -- helpers ----------------------------------------------------------------------
    def conninfo(self, user="ci-bot", sslmode="require"):
        return f"host=127.0.0.1 port={self.gw.port} dbname=app user={user} sslmode={sslmode}"

    def connect(self, token, user="ci-bot", sslmode="require"):
        return psycopg.connect(host="127.0.0.1", port=self.gw.port, dbname="app", user=user,
                               password=token, sslmode=sslmode, connect_timeout=10)

    def mint(self, subject="agent-7", ttl="15m", audience="pgbastion", kid=None,
             groups="read-only", issuer=LOCAL_ISSUER):
        cmd = [self.binary, "token", "mint", "--key", self.key, "--issuer", issuer,
               "--audience", audience, "--subject", subject, "--ttl", ttl, "--groups", groups]
        if kid:
            cmd += ["--kid", kid]
        return run(cmd).stdout.decode().strip()

    def assertRefused(self, token, sqlstates, check, user="agent-7"):
        with self.assertRaises(psycopg.OperationalError) as caught:
            self.connect(token, user=user).close()
        text = str(caught.exception)
        self.assertIn(f"token refused ({check})", text)
        self.assertNotIn(token[:200], text)  # the token is never echoed
        self.assertNotIn(token[:200], self.gw.log())
        diag = caught.exception.diag
        if diag.sqlstate is not None:
            self.assertIn(diag.sqlstate, sqlstates)
        return text

    def test_a_token_naming_a_local_user_gets_its_own_scope(self):
        """The local user alice is an admin; a token whose sub is alice (from an issuer that
        does not check the startup user) is another identity: it gets the scope written for
        its issuer, read-only, and never alice's."""
        token = self.mint(subject="alice", groups="", issuer=ANY_USER_ISSUER)
        with self.connect(token, user="whoever") as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute("CREATE TABLE t_collide (i int)")
            self.assertIn("scope 'any-user-alice'", str(caught.exception))
        # The same name from an issuer no scope names for it: no scope, no session.
        with self.assertRaises(psycopg.OperationalError) as caught:
            self.connect(self.mint(subject="alice", groups=""), user="alice").close()
        self.assertNotIn("gateway_login", str(caught.exception))

    # -- a real provider, real clients --------------------------------------------------
    def test_psql_with_provider_token(self):
        token = self.idp.token()
        r = psql(self.conninfo(), "SELECT current_user, 40 + 2", password=token, args=["-At"])
        self.assertEqual(r.stdout.decode().strip(), "gateway_login|42")
        # The read-only scope of its group applies.
        r = psql(self.conninfo(), "CREATE TABLE t_psql (i int)", password=token, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("profile.read-only", r.stderr.decode())

    def test_psycopg_with_provider_token(self):
        with self.connect(self.idp.token()) as conn:
            self.assertTrue(conn.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE t_psycopg (i int)")

    def test_key_rotation_while_a_session_runs(self):
        old = self.idp.token()
        old_kid = jwt_header(old)["kid"]
        with self.connect(old) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            self.idp.rotate(keep_old=False)
            new = self.idp.token()
            self.assertNotEqual(jwt_header(new)["kid"], old_kid)
            # The first try may meet the unknown kid and ask for a refresh (refresh_min 1s).
            deadline = time.monotonic() + 15
            while True:
                try:
                    with self.connect(new) as fresh:
                        self.assertEqual(fresh.execute("SELECT 2").fetchone(), (2,))
                    break
                except psycopg.OperationalError as e:
                    self.assertIn("unknown_key", str(e))
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            # The session that logged in with the old key keeps running.
            self.assertEqual(conn.execute("SELECT 3").fetchone(), (3,))

    # -- bad input, one test each --------------------------------------------------------
    def test_expired(self):
        token = self.mint(ttl="1s")
        time.sleep(2.2)
        self.assertRefused(token, {"28P01"}, "expired")

    def test_wrong_audience(self):
        self.assertRefused(self.mint(audience="someone-else"), {"28P01"}, "audience")

    def test_tampered_signature(self):
        header, payload, signature = self.mint().split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["groups"] = ["admin"]
        forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
        self.assertRefused(forged, {"28P01"}, "signature")

    def test_unknown_kid(self):
        self.assertRefused(self.mint(kid="no-such-key"), {"28000"}, "unknown_key")

    def test_alg_none(self):
        header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = b64url(json.dumps({"iss": LOCAL_ISSUER, "aud": "pgbastion", "sub": "agent-7",
                                     "exp": int(time.time()) + 600}).encode())
        # With a signature part, the header's "none" is what is refused; without, the format.
        self.assertRefused(f"{header}.{payload}.{b64url(b'sig')}", {"28P01"}, "algorithm")
        self.assertRefused(f"{header}.{payload}.", {"28P01"}, "format")

    def test_garbage(self):
        self.assertRefused("this-is-not-a-token", {"28P01"}, "format")

    def test_one_megabyte_token(self):
        self.assertRefused("a" * (1 << 20), {"28P01"}, "format")

    def test_user_does_not_match(self):
        self.assertRefused(self.mint(subject="agent-7"), {"28000"}, "user", user="agent-8")

    def test_plaintext_refused_tls_required(self):
        with self.assertRaises(psycopg.OperationalError) as caught:
            self.connect(self.mint(), user="agent-7", sslmode="disable").close()
        self.assertIn("token login requires TLS", str(caught.exception))
        self.assertIn("sslmode=require", str(caught.exception))

    def test_bad_logins_leave_other_sessions_alone(self):
        with psycopg.connect(host="127.0.0.1", port=self.gw.port, dbname="app", user="alice",
                             password=self.gw.users["alice"], sslmode="require") as conn:
            for token in ["garbage", "a" * (1 << 20), self.mint(kid="nope")]:
                with self.assertRaises(psycopg.OperationalError):
                    self.connect(token, user="agent-7").close()
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        with self.connect(self.mint(), user="agent-7") as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))

    # -- the session ends with its token -------------------------------------------------
    def test_session_ends_when_token_expires_idle(self):
        with self.connect(self.mint(ttl="3s"), user="agent-7") as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            time.sleep(4)
            with self.assertRaises(psycopg.OperationalError) as caught:
                conn.execute("SELECT 2")
        text = str(caught.exception)
        self.assertRegex(text, r"your token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; "
                               r"reconnect with a new token")

    def test_session_ends_during_the_statement_running_at_expiry(self):
        with self.connect(self.mint(ttl="3s"), user="agent-7") as conn:
            # Still running when the token expires: the session ends at the next tick, the
            # statement with it (the database rolls back what it did).
            started = time.monotonic()
            with self.assertRaises(psycopg.OperationalError) as caught:
                conn.execute("SELECT 7 FROM pg_sleep(8)")
            self.assertLess(time.monotonic() - started, 6)
        self.assertIn("your token expired at", str(caught.exception))


class ProviderOutageTest(ClusterTestCase):
    """The provider goes away: keys already loaded keep verifying, sessions keep running."""

    def test_outage_keeps_cached_keys(self):
        certs = Certificates("token-outage")
        self.addCleanup(certs.cleanup)
        idp = OidcProvider(certs, groups=["read-only"])
        self.addCleanup(idp.stop)
        idp.start()
        port = free_port()
        gw = self.gateway("outage", port=port, scopes=scopes("corp"),
                          issuers=[idp.issuer_toml("corp", refresh_interval='"1s"',
                                                   refresh_min='"1s"')],
                          listeners=[{"address": "127.0.0.1", "port": port, "tls": "required",
                                      "tls_cert": str(certs.server_crt),
                                      "tls_key": str(certs.server_key)}])
        tokens = [idp.token(), idp.token()]

        def connect(token):
            return psycopg.connect(host="127.0.0.1", port=gw.port, dbname="app", user="ci-bot",
                                   password=token, sslmode="require", connect_timeout=10)

        with connect(tokens[0]) as conn:
            idp.stop()
            time.sleep(3)  # several failed refreshes (refresh_interval 1s)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            with connect(tokens[1]) as other:  # never seen, its key is still cached
                self.assertEqual(other.execute("SELECT 2").fetchone(), (2,))
        self.assertIn("issuer corp: cannot refresh verification keys", gw.log())


class TokenReloadTest(ClusterTestCase):
    """A reload builds a new key store; shards verify with it; open sessions keep running."""

    def test_reload_swaps_the_issuer_keys(self):
        binary = gateway_binary()
        certs = Certificates("token-reload")
        self.addCleanup(certs.cleanup)
        keys = {}
        for name in ("old", "new"):
            key = os.path.join(certs.dir, f"{name}.pem")
            run(["openssl", "genpkey", "-algorithm", "Ed25519", "-out", key])
            jwks = os.path.join(certs.dir, f"{name}.jwks.json")
            with open(jwks, "wb") as f:
                f.write(run([binary, "token", "jwks", "--key", key]).stdout)
            keys[name] = (key, jwks)

        def issuer(name):
            return "\n".join(["[[issuer]]", 'name = "local"', f'issuer = "{LOCAL_ISSUER}"',
                              'audience = "pgbastion"', f'jwks_file = "{keys[name][1]}"'])

        def mint(name):
            return run([binary, "token", "mint", "--key", keys[name][0], "--issuer", LOCAL_ISSUER,
                        "--audience", "pgbastion", "--subject", "agent-7", "--groups",
                        "read-only"]).stdout.decode().strip()

        def connect(token):
            return psycopg.connect(host="127.0.0.1", port=gw.port, dbname="app", user="agent-7",
                                   password=token, sslmode="require", connect_timeout=10)

        port = free_port()
        gw = self.gateway("reload", port=port, scopes=scopes("local"), issuers=[issuer("old")],
                          listeners=[{"address": "127.0.0.1", "port": port, "tls": "required",
                                      "tls_cert": str(certs.server_crt),
                                      "tls_key": str(certs.server_key)}])
        with self.assertRaisesRegex(psycopg.OperationalError, r"token refused \(unknown_key\)"):
            connect(mint("new"))
        with connect(mint("old")) as conn:
            gw.issuers = [issuer("new")]
            gw.write_config()
            run([binary, "reload", "--config", gw.config], timeout=30)
            deadline = time.monotonic() + 10
            while True:
                try:
                    with connect(mint("new")) as fresh:
                        self.assertEqual(fresh.execute("SELECT 1").fetchone(), (1,))
                    break
                except psycopg.OperationalError as e:
                    self.assertIn("unknown_key", str(e))
                    self.assertLess(time.monotonic(), deadline, gw.log())
                    time.sleep(0.2)
            with self.assertRaisesRegex(psycopg.OperationalError, r"token refused \(unknown_key\)"):
                connect(mint("old"))
            self.assertEqual(conn.execute("SELECT 2").fetchone(), (2,))


def client_certificate(ca: Certificates, name: str, subject: str, san: str | None = None):
    """A client certificate signed by ca's CA: (cert path, key path)."""
    d = ca.dir
    key, csr, crt = (os.path.join(d, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    run(["openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", subject,
         "-keyout", key, "-out", csr])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", str(ca.ca_crt), "-CAkey", str(ca.ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", crt])
    os.chmod(key, 0o600)
    return crt, key


class ClientCertificateTest(ClusterTestCase):
    """auth = ["certificate", "password"] on one listener, ["certificate"] alone on another."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = Certificates("mtls")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.other = Certificates("mtls-other")
        cls.addClassCleanup(cls.other.cleanup)
        cls.reader = client_certificate(cls.certs, "reader", "/CN=agent-cn/OU=read-only")
        cls.spiffe = client_certificate(cls.certs, "spiffe", "/CN=ignored/OU=read-only",
                                        san="URI:spiffe://example.org/agent")
        cls.stranger = client_certificate(cls.other, "stranger", "/CN=agent-cn/OU=read-only")
        cls.alice = client_certificate(cls.certs, "alice", "/CN=alice")

    def gw(self, only_certificates: bool):
        key = "certonly" if only_certificates else "mixed"
        if key in self._gateways:
            return self.gateway(key)
        port = free_port()
        listener = {"address": "127.0.0.1", "port": port, "tls": "optional",
                    "tls_cert": str(self.certs.server_crt), "tls_key": str(self.certs.server_key),
                    "tls_client_ca": str(self.certs.ca_crt),
                    "auth": ["certificate"] if only_certificates else ["certificate", "password"]}
        return self.gateway(key, listeners=[listener], port=port, scopes=scopes())

    def connect(self, gw, user, cert=None, **kw):
        params = dict(host="127.0.0.1", port=gw.port, dbname="app", user=user,
                      sslmode="require", connect_timeout=10)
        if cert:
            params.update(sslcert=cert[0], sslkey=cert[1])
        params.update(kw)
        return psycopg.connect(**params)

    def test_identity_from_common_name(self):
        gw = self.gw(only_certificates=True)
        with self.connect(gw, "agent-cn", self.reader) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):  # OU read-only
                conn.execute("CREATE TABLE t_cert (i int)")
        self.assertIn("user=agent-cn", gw.log())

    def test_identity_from_san_uri(self):
        gw = self.gw(only_certificates=True)
        with self.connect(gw, "spiffe://example.org/agent", self.spiffe) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))

    def test_user_must_match_certificate(self):
        with self.assertRaisesRegex(psycopg.OperationalError, "the client certificate is for"):
            self.connect(self.gw(only_certificates=True), "someone-else", self.reader)

    def test_no_certificate_refused(self):
        gw = self.gw(only_certificates=True)
        with self.assertRaises(psycopg.OperationalError):  # the handshake asks for one
            self.connect(gw, "agent-cn")
        with self.assertRaisesRegex(psycopg.OperationalError, "only logins with a client certificate"):
            self.connect(gw, "agent-cn", sslmode="disable")

    def test_certificate_from_another_ca_refused(self):
        for only in (True, False):
            with self.assertRaises(psycopg.OperationalError) as caught:
                self.connect(self.gw(only_certificates=only), "agent-cn", self.stranger)
            self.assertRegex(str(caught.exception), "(?i)certificate|alert|ssl")

    def test_a_certificate_naming_a_local_user_is_not_that_user(self):
        """CN=alice is not the local admin alice: with no scope for it among certificates,
        the login is refused."""
        gw = self.gw(only_certificates=False)
        with self.assertRaisesRegex(psycopg.OperationalError, "no scope"):
            self.connect(gw, "alice", self.alice).close()
        with self.connect(gw, "alice", password=gw.users["alice"]) as conn:
            conn.execute("CREATE TEMP TABLE t_admin (i int)")  # the local alice is an admin

    def test_password_still_works_beside_certificates(self):
        gw = self.gw(only_certificates=False)
        with self.connect(gw, "alice", password=gw.users["alice"]) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        with self.connect(gw, "agent-cn", self.reader) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))


if __name__ == "__main__":
    unittest.main()
