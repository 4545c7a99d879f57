"""A session ends with its identity, whatever the client does (issue 22, items 1 and 4).

Tokens are minted by `pgbastion token mint` with short lifetimes. Each test plays the client an
attacker would write: it keeps a session busy past its token's expiry without ever reaching a
statement boundary (a pipeline without Sync, COPY FROM STDIN), or sits in the middle of one, and
then reads back directly from PostgreSQL that nothing it sent after the expiry was committed.
The client gets exactly one FATAL 28000 naming the expiry, and the audit trail says so.

Also here: `max_token_lifetime` per issuer (a token living longer than it is refused).
"""

import base64
import json
import os
import socket
import ssl
import struct
import time
import unittest
from pathlib import Path

import psycopg

import harness as h
from harness import (Certificates, ClusterTestCase, RawConnection, SSL_REQUEST_CODE, free_port,
                     gateway_binary, message, parse_error, run)

ISSUER = "https://mint.pgbastion.test"
SCOPES = [{"name": "agents", "sources": ["issuer:local"], "subjects": ["agent-7"], "profile": "admin"}]


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def extended(sql: str, sync: bool) -> bytes:
    """Parse (unnamed), Bind, Execute, then Sync or (an attacker's choice) Flush."""
    parse = message(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
    bind = message(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
    execute = message(b"E", b"\0" + struct.pack("!i", 0))
    return parse + bind + execute + message(b"S" if sync else b"H")


class ExpiryTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = Certificates("expiry")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.binary = gateway_binary()
        cls.key = os.path.join(cls.certs.dir, "mint.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", cls.key])
        cls.jwks = os.path.join(cls.certs.dir, "mint.jwks.json")
        Path(cls.jwks).write_bytes(run([cls.binary, "token", "jwks", "--key", cls.key]).stdout)
        issuer = "\n".join(["[[issuer]]", 'name = "local"', f'issuer = "{ISSUER}"',
                            'audience = "pgbastion"', f'jwks_file = "{cls.jwks}"',
                            'clock_skew = "0s"', 'max_token_lifetime = "10m"'])
        cls.trail = os.path.join(cls.certs.dir, "audit.jsonl")
        audit_key = os.path.join(cls.certs.dir, "audit.key")
        run([cls.binary, "audit", "keygen", "--private-key", audit_key, "--public-key",
             os.path.join(cls.certs.dir, "audit.pub")], timeout=30)
        audit = "\n".join(["[audit]", f'signing_key = "{audit_key}"', f'spill_dir = "{cls.certs.dir}/spill"', "",
                           "[[audit.sink]]", 'type = "file"', f'path = "{cls.trail}"',
                           'fsync = "never"'])
        port = free_port()
        listener = {"address": "127.0.0.1", "port": port, "tls": "required",
                    "tls_cert": str(cls.certs.server_crt), "tls_key": str(cls.certs.server_key)}
        cls.gw = cls.gateway(listeners=[listener], port=port, issuers=[issuer], scopes=SCOPES,
                             extra_config=audit)
        for table in ("expiry_pipe", "expiry_copy", "expiry_txn", "expiry_idle_pipe"):
            h.psql(cls.pg.conninfo("gateway_login", "app", sslmode="disable"),
                   f"CREATE TABLE {table} (tag text, at timestamptz DEFAULT clock_timestamp())",
                   password=cls.pg.passwords["gateway_login"])

    # -- helpers ----------------------------------------------------------------------
    def mint(self, ttl: str) -> str:
        return run([self.binary, "token", "mint", "--key", self.key, "--issuer", ISSUER,
                    "--audience", "pgbastion", "--subject", "agent-7", "--ttl", ttl,
                    "--groups", "agents"]).stdout.decode().strip()

    def session(self, token: str) -> RawConnection:
        """A raw protocol connection over TLS, logged in with `token`."""
        c = RawConnection(self.gw.port)
        c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
        self.assertEqual(c.read_byte(), b"S")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.login("agent-7", token, "app")
        self.addCleanup(c.close)
        return c

    def direct(self, sql: str) -> str:
        return h.psql(self.pg.conninfo("gateway_login", "app", sslmode="disable"), sql,
                      password=self.pg.passwords["gateway_login"], args=["-At"]
                      ).stdout.decode().strip()

    def send_until(self, c: RawConnection, data: bytes, until: float) -> list:
        """Sends `data` about every 50 ms until `until`, reading the answers as they come, until
        the gateway's ErrorResponse or the end of the stream; returns the messages read. (Once
        the gateway has closed, a further send draws a TCP reset, which can discard the FATAL
        waiting unread in the client's socket: a client that reads sees it.)"""
        msgs = []
        while time.time() < until:
            try:
                c.send(data)
            except (OSError, ssl.SSLError):
                break
            try:
                while True:
                    m = c.read_message(timeout=0.05)
                    if m is None:
                        return msgs
                    msgs.append(m)
                    if m[0] == b"E":
                        return msgs
            except TimeoutError:
                pass
        return msgs

    def assertEndedForExpiry(self, msgs: list[tuple[bytes, bytes]]):
        errors = [parse_error(body) for kind, body in msgs if kind == b"E"]
        self.assertEqual(len(errors), 1, errors)  # one FATAL, nothing else wrong
        self.assertEqual(errors[0]["S"], "FATAL")
        self.assertEqual(errors[0]["C"], "28000")
        self.assertRegex(errors[0]["M"], r"^your token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; "
                                         r"reconnect with a new token$")

    def records(self) -> list[dict]:
        return [json.loads(line) for line in Path(self.trail).read_text().splitlines() if line]

    # -- the session ends at expiry, whatever the protocol state ------------------------
    def test_pipeline_without_sync_past_expiry(self):
        token = self.mint("3s")
        exp = claims(token)["exp"]
        c = self.session(token)
        c.send(extended("INSERT INTO expiry_pipe (tag) VALUES ('before')", sync=True))
        c.read_until_ready()
        # Parse/Bind/Execute/Flush, never a Sync, until two seconds past the expiry; then the
        # Sync that would commit them all.
        msgs = self.send_until(c, extended("INSERT INTO expiry_pipe (tag) VALUES ('pipelined')",
                                           sync=False), exp + 2)
        try:
            c.send(message(b"S"))
        except (OSError, ssl.SSLError):
            pass
        msgs += c.read_until_eof(timeout=10)
        self.assertEndedForExpiry(msgs)
        # Nothing of the pipeline was committed; the row committed before is there.
        self.assertEqual(self.direct("SELECT tag, count(*) FROM expiry_pipe GROUP BY 1"),
                         "before|1")
        # The audit trail: the expiry event, the disconnect naming it, a completion for every
        # statement the database was sent (audit_statements asserts that).
        deadline = time.monotonic() + 5
        while True:
            recs = self.records()
            ends = [r for r in recs if r["kind"] == "disconnect" and
                    "your token expired" in r.get("message", "")]
            if ends or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(ends, [r for r in recs if r["kind"] == "disconnect"])
        session = (ends[-1]["shard"], ends[-1]["session"])
        mine = [r for r in recs if (r.get("shard"), r.get("session")) == session]
        self.assertTrue(any(r["kind"] == "token_expired" for r in mine), mine)
        statements = h.audit_statements(mine)
        self.assertGreater(len(statements), 2)

    def test_copy_from_stdin_past_expiry(self):
        token = self.mint("3s")
        exp = claims(token)["exp"]
        c = self.session(token)
        c.send(message(b"Q", b"COPY expiry_copy (tag) FROM STDIN\0"))
        self.assertEqual(c.read_message()[0], b"G")  # CopyInResponse
        msgs = self.send_until(c, message(b"d", b"copied\n"), exp + 2)
        try:
            c.send(message(b"c"))  # CopyDone: would commit every row
        except (OSError, ssl.SSLError):
            pass
        self.assertEndedForExpiry(msgs + c.read_until_eof(timeout=10))
        self.assertEqual(self.direct("SELECT count(*) FROM expiry_copy"), "0")

    def test_idle_mid_pipeline_ended_by_the_timer(self):
        token = self.mint("2s")
        exp = claims(token)["exp"]
        c = self.session(token)
        c.send(extended("INSERT INTO expiry_idle_pipe (tag) VALUES ('unsynced')", sync=False))
        # No further message: the shard's tick ends the session.
        msgs = c.read_until_eof(timeout=exp - time.time() + 5)
        self.assertLess(time.time(), exp + 2)
        self.assertEndedForExpiry(msgs)
        self.assertEqual(self.direct("SELECT count(*) FROM expiry_idle_pipe"), "0")

    def test_idle_in_transaction_ended_by_the_timer(self):
        token = self.mint("2s")
        exp = claims(token)["exp"]
        c = self.session(token)
        c.simple_query("BEGIN")
        c.simple_query("INSERT INTO expiry_txn (tag) VALUES ('uncommitted')")
        msgs = c.read_until_eof(timeout=exp - time.time() + 5)
        self.assertLess(time.time(), exp + 2)
        self.assertEndedForExpiry(msgs)
        self.assertEqual(self.direct("SELECT count(*) FROM expiry_txn"), "0")

    # -- max_token_lifetime -------------------------------------------------------------
    def connect(self, token: str):
        return psycopg.connect(host="127.0.0.1", port=self.gw.port, dbname="app", user="agent-7",
                               password=token, sslmode="require", connect_timeout=10)

    def test_token_living_longer_than_max_lifetime_refused(self):
        with self.assertRaises(psycopg.OperationalError) as caught:
            self.connect(self.mint("1h")).close()
        text = str(caught.exception)
        self.assertIn("token refused (lifetime)", text)
        self.assertIn("max_token_lifetime", text)

    def test_token_within_max_lifetime_accepted(self):
        with self.connect(self.mint("9m")) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))


if __name__ == "__main__":
    unittest.main()
