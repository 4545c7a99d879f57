"""Bad input: each gets a proper ErrorResponse (where the protocol allows) and a clean
close, never a hang or a crash, and the gateway keeps serving everyone else.

After every case, tearDown-style check: a fresh connection still runs SELECT 1.
Where PostgreSQL itself defines the answer (unknown message type, protocol 2.0,
_pq_ options), the same bytes are sent to PostgreSQL directly and compared.
"""

import os
import struct
import threading
import time
import unittest

import psycopg

from harness import (ClusterTestCase, Gateway, RawConnection, ProtocolError, message, parse_error,
                     parse_negotiate_protocol_version, startup_packet, CANCEL_REQUEST_CODE,
                     GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE)

MAX_MESSAGE = 65536


class BadInputTest(ClusterTestCase):
    def gw(self) -> Gateway:
        return self.gateway(auth_timeout="2s", max_message_size=MAX_MESSAGE, targets=[
            {"name": "app", "host": "127.0.0.1", "port": self.pg.port, "database": "app",
             "user": "gateway_login", "password": self.pg.passwords["gateway_login"], "tls": "disable"},
            # The gateway's own credentials are wrong for this one.
            {"name": "badpw", "host": "127.0.0.1", "port": self.pg.port, "database": "app",
             "user": "gateway_login", "password": "definitely-not-the-password", "tls": "disable"},
        ])

    def tearDown(self):
        super().tearDown()
        gw = self._gateways.get("default")
        if gw is not None and gw.alive():
            with psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], connect_timeout=10) as c:
                self.assertEqual(c.execute("SELECT 1").fetchone(), (1,), "gateway stopped serving")

    # -- helpers -----------------------------------------------------------------
    def assert_error_then_close(self, conn: RawConnection, sqlstates: tuple[str, ...], timeout=5,
                                allow_silent_close=False):
        """Reads to EOF; expects ErrorResponse(s) only, the first with one of sqlstates."""
        msgs = conn.read_until_eof(timeout=timeout)
        kinds = [k for k, _ in msgs]
        if not msgs and allow_silent_close:
            return None
        self.assertTrue(msgs, "connection closed without an ErrorResponse")
        self.assertEqual(kinds[-1:], [b"E"], f"expected ErrorResponse then close, got {kinds}")
        fields = parse_error(msgs[-1][1])
        self.assertIn(fields.get("C"), sqlstates, fields)
        self.assertIn(fields.get("S"), ("FATAL", "ERROR"), fields)
        self.assertTrue(fields.get("M"), fields)
        return fields

    def gw_login(self) -> RawConnection:
        gw = self.gw()
        c = RawConnection(gw.port)
        c.login("alice", gw.users["alice"], "app")
        return c

    def direct_login(self) -> RawConnection:
        c = RawConnection(self.pg.port)
        c.login("gateway_login", self.pg.passwords["gateway_login"], "app")
        return c

    def login_error(self, user="alice", password=None, database="app") -> ProtocolError:
        """Logs in over a raw socket (SCRAM) and returns the ErrorResponse it must end in.

        Raw, because psycopg 3.1 reports connection failures without their SQLSTATE."""
        gw = self.gw()
        start = time.monotonic()
        with RawConnection(gw.port) as c:
            with self.assertRaises(ProtocolError) as cm:
                c.login(user, gw.users["alice"] if password is None else password, database)
            # After the ErrorResponse the gateway closes the connection.
            self.assertEqual(c.read_until_eof(timeout=5), [])
        self.assertLess(time.monotonic() - start, 10)
        return cm.exception

    # -- before the startup packet ---------------------------------------------------
    def test_bytes_before_startup_closed_silently_as_postgresql_does(self):
        # PostgreSQL reads the first 4 bytes as the startup packet's length. Out of
        # range (what a Terminate, a Query, an HTTP request or a TLS ClientHello reads
        # as), or a CancelRequest of the wrong length: it logs and closes without
        # sending a byte, also after answering an SSLRequest with 'N'. A driver that
        # sent SSLRequest must not read an 'E' there. Each case against PostgreSQL
        # directly and the gateway: the same silence.
        gw = self.gw()
        cases = {
            "Terminate": message(b"X"),
            "Query": message(b"Q", b"SELECT 1\0"),
            "HTTP": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "TLS ClientHello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),
            "length 7": struct.pack("!I", 7) + b"\0\0\0",
            "length 10005": struct.pack("!II", 10005, PROTOCOL_3_0),
            "CancelRequest of 12 bytes": struct.pack("!III", 12, CANCEL_REQUEST_CODE, 1),
        }
        for name, data in cases.items():
            for ssl_first in (False, True):
                for who, port in (("postgres", self.pg.port), ("gateway", gw.port)):
                    with self.subTest(case=name, ssl_first=ssl_first, server=who), \
                            RawConnection(port) as c:
                        if ssl_first:
                            c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
                            self.assertEqual(c.read_byte(timeout=5), b"N")
                        c.send(data)
                        self.assertEqual(c.read_bytes_until_eof(timeout=5), b"")
        self.assertIn("closed without an answer: invalid length of startup packet", gw.log())

    def test_startup_packet_cap_as_postgresql(self):
        # MAX_STARTUP_PACKET_LENGTH counts the bytes after the length word: a
        # 10004-byte StartupMessage is read (authentication starts), 10005 is not.
        gw = self.gw()
        for who, port, user in (("postgres", self.pg.port, "gateway_login"), ("gateway", gw.port, "alice")):
            fixed = len(startup_packet({"user": user, "database": "app", "application_name": ""}))
            packet = startup_packet({"user": user, "database": "app",
                                     "application_name": "a" * (10004 - fixed)})
            self.assertEqual(len(packet), 10004)
            with self.subTest(server=who), RawConnection(port) as c:
                c.send(packet)
                kind, body = c.read_message(timeout=5)
                self.assertEqual(kind, b"R", parse_error(body) if kind == b"E" else body)

    def test_data_after_ssl_request_gets_n_then_fatal(self):
        # Unencrypted bytes right behind an SSLRequest (CVE-2021-23214): PostgreSQL
        # answers 'N' (no TLS here), then FATAL 08P01. The gateway: the same.
        gw = self.gw()
        for who, port in (("postgres", self.pg.port), ("gateway", gw.port)):
            with self.subTest(server=who), RawConnection(port) as c:
                c.send(struct.pack("!II", 8, SSL_REQUEST_CODE) +
                       startup_packet({"user": "alice", "database": "app"}))
                self.assertEqual(c.read_byte(timeout=5), b"N")
                fields = self.assert_error_then_close(c, ("08P01",))
                self.assertEqual(fields["M"], "received unencrypted data after SSL request")

    def test_startup_length_limits(self):
        gw = self.gw()
        cases = {
            "10001 bytes": struct.pack("!II", 10001, PROTOCOL_3_0) + b"x" * (10001 - 8),
            "length 4": struct.pack("!I", 4),
            "length 7": struct.pack("!I", 7) + b"\0\0\0",
            "2^31": struct.pack("!II", 0x7FFFFFFF, PROTOCOL_3_0),
            "no terminator": struct.pack("!II", 20, PROTOCOL_3_0) + b"user\0alice\0abc\0",
        }
        for name, data in cases.items():
            with self.subTest(case=name), RawConnection(gw.port) as c:
                c.send(data)
                self.assert_error_then_close(c, ("08P01",), allow_silent_close=True)
        # A startup without a user name: PostgreSQL says 28000.
        for port in (self.pg.port, gw.port):
            with self.subTest(case="no user", port=port), RawConnection(port) as c:
                c.send(startup_packet({"database": "app"}))
                self.assert_error_then_close(c, ("28000", "08P01"))

    def test_truncated_startup_then_close(self):
        gw = self.gw()
        for _ in range(20):
            with RawConnection(gw.port) as c:
                c.send(startup_packet({"user": "alice", "database": "app"})[:9])
        with RawConnection(gw.port) as c:
            c.send(struct.pack("!II", 100, PROTOCOL_3_0))
            c.sock.shutdown(1)  # half-close: the gateway must give up, not wait forever
            c.read_until_eof(timeout=5)

    def test_protocol_2_startup(self):
        v2 = struct.pack("!II", 8 + 12, 0x00020000) + b"alice\0".ljust(12, b"\0")
        for port in (self.pg.port, self.gw().port):
            with self.subTest(port=port), RawConnection(port) as c:
                c.send(v2)
                c.sock.settimeout(5)
                data = b""
                while len(data) < 10000:
                    chunk = c.sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b"E"), data)
                # PostgreSQL answers a 2.0 client in the 2.0 format ('E' + text, no length,
                # no SQLSTATE); a v3 ErrorResponse must carry 0A000.
                length = struct.unpack("!I", data[1:5])[0] if len(data) >= 5 else 0
                if length + 1 == len(data):
                    self.assertEqual(parse_error(data[5:]).get("C"), "0A000", data)
                else:
                    self.assertIn(b"unsupported frontend protocol", data)

    def test_pq_option_gets_negotiate_protocol_version(self):
        gw = self.gw()
        for port, user, db in ((self.pg.port, "gateway_login", "app"), (gw.port, "alice", "app")):
            with self.subTest(port=port), RawConnection(port) as c:
                # Newer minor version and an unknown protocol option.
                c.send(startup_packet({"user": user, "database": db, "_pq_.foo": "bar"},
                                      version=PROTOCOL_3_0 + 5))
                kind, body = c.read_message(timeout=5)
                self.assertEqual(kind, b"v", parse_error(body) if kind == b"E" else body)
                newest, names = parse_negotiate_protocol_version(body)
                # The docs say "newest minor version"; PostgreSQL 15 sends the whole
                # version number (196608 = 3.0). Either way: minor 0.
                self.assertIn(newest, (0, PROTOCOL_3_0))
                self.assertEqual(names, ["_pq_.foo"])
                # Authentication proceeds afterwards.
                kind, body = c.read_message(timeout=5)
                self.assertEqual(kind, b"R")
        # And the whole login completes with the option present.
        with RawConnection(gw.port) as c:
            c.login("alice", gw.users["alice"], "app", extra={"_pq_.foo": "bar"})
            self.assertEqual(c.simple_query("SELECT 1")[-1][0], b"Z")

    def test_gssenc_request_answered_n(self):
        gw = self.gw()
        with RawConnection(gw.port) as c:
            c.send(struct.pack("!II", 8, GSSENC_REQUEST_CODE))
            self.assertEqual(c.read_byte(timeout=5), b"N")
            # The client may continue in plaintext on the same connection.
            c.login("alice", gw.users["alice"], "app")
            self.assertEqual(c.simple_query("SELECT 1")[-1][0], b"Z")

    def test_ssl_request_twice(self):
        # After 'N' the client must send its StartupMessage; a second SSLRequest is a
        # violation. PostgreSQL answers FATAL 0A000 ("unsupported frontend protocol
        # 1234.5679"); the gateway must also refuse (not answer 'N' forever).
        for port in (self.pg.port, self.gw().port):  # the test gateway has no certificate
            with self.subTest(port=port), RawConnection(port) as c:
                c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
                self.assertEqual(c.read_byte(timeout=5), b"N")
                c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
                self.assert_error_then_close(c, ("0A000", "08P01"), allow_silent_close=True)

    # -- authentication --------------------------------------------------------------
    def test_silent_client_times_out(self):
        gw = self.gw()
        with RawConnection(gw.port) as c:
            start = time.monotonic()
            msgs = c.read_until_eof(timeout=6)
            elapsed = time.monotonic() - start
            self.assertGreater(elapsed, 1.5, "closed before auth_timeout")
            self.assertLess(elapsed, 3.5, "not closed within auth_timeout + slack")
            for kind, body in msgs:
                self.assertEqual(kind, b"E")
                self.assertIn(parse_error(body).get("C"), ("08P01", "57P05", "08006"))
        # Stalling mid-SCRAM is the same: startup sent, then nothing.
        with RawConnection(gw.port) as c:
            start = time.monotonic()
            c.send(startup_packet({"user": "alice", "database": "app"}))
            self.assertEqual(c.read_message(timeout=5)[0], b"R")
            msgs = c.read_until_eof(timeout=6)
            self.assertLess(time.monotonic() - start, 3.5)
            for kind, body in msgs:
                self.assertEqual(kind, b"E")

    def test_wrong_password_and_unknown_user_look_the_same(self):
        wrong = self.login_error(password="wrong password")
        unknown = self.login_error(user="nosuchuser", password="whatever")
        self.assertEqual(wrong.sqlstate, "28P01", wrong.fields)
        self.assertEqual(unknown.sqlstate, "28P01", unknown.fields)
        # Same message apart from the user name, so nobody can probe for user names.
        self.assertEqual(wrong.fields.get("M", "").replace("alice", "U"),
                         unknown.fields.get("M", "").replace("nosuchuser", "U"))
        # libpq sees it too.
        gw = self.gw()
        with self.assertRaisesRegex(psycopg.OperationalError, "authentication failed"):
            psycopg.connect(gw.conninfo("alice"), password="wrong password", connect_timeout=10)

    def test_unknown_database(self):
        e = self.login_error(database="no_such_target")
        self.assertEqual(e.sqlstate, "3D000", e.fields)

    def test_target_rejects_gateway_credentials(self):
        e = self.login_error(database="badpw")
        self.assertIn(e.sqlstate[:2], ("08", "28"), e.fields)
        self.assertNotIn("definitely-not-the-password", str(e.fields))
        self.assertNotIn(self.pg.passwords["gateway_login"], self.gw().log())

    # -- after login -------------------------------------------------------------------
    def test_unknown_message_type(self):
        for label, connect in (("direct", self.direct_login), ("gateway", self.gw_login)):
            with self.subTest(label), connect() as c:
                c.send(message(b"?", b""))
                # PostgreSQL: FATAL 08P01 invalid frontend message type 63.
                self.assert_error_then_close(c, ("08P01",))

    def test_parameter_counts_over_32767_as_postgresql(self):
        # Parse's count of parameter types and Bind's counts are Int16 on the wire but
        # unsigned for PostgreSQL (up to 65535). The same extended-protocol exchange,
        # directly and through a gateway with the default message cap: same answers.
        gw = self.gateway("wide")

        def exchange(c: RawConnection, n: int, bound: int) -> list[tuple[bytes, bytes]]:
            sql = f"SELECT $1::int4 + ${n}::int4 AS sum".encode()
            parse = b"\0" + sql + b"\0" + struct.pack("!H", n) + struct.pack("!I", 23) * n
            bind = (b"\0\0" + struct.pack("!HH", 0, bound) +
                    b"".join(struct.pack("!I", 1) + str(i % 10).encode() for i in range(bound)) +
                    struct.pack("!H", 0))
            c.send(message(b"P", parse) + message(b"B", bind) + message(b"E", b"\0\0\0\0\0") +
                   message(b"S"))
            msgs = c.read_until_ready(timeout=30)
            # Errors compared by SQLSTATE and text (file and line are the server's own).
            return [(k, b) if k != b"E" else (k, (parse_error(b)["C"], parse_error(b)["M"]))
                    for k, b in msgs]

        for n, bound in ((32767, 32767), (32768, 32768), (40000, 40000), (65535, 65535),
                         (40000, 39999)):
            with self.subTest(types=n, parameters=bound):
                with self.direct_login() as c:
                    direct = exchange(c, n, bound)
                with RawConnection(gw.port) as c:
                    c.login("alice", gw.users["alice"], "app")
                    through = exchange(c, n, bound)
                self.assertEqual(through, direct)
                if n == bound:  # the database ran it
                    self.assertEqual([k for k, _ in direct], [b"1", b"2", b"D", b"C", b"Z"])
                else:
                    self.assertEqual(direct[1][0], b"E", direct)

    def test_login_message_after_login(self):
        """A PasswordMessage after login (also the form of SASLResponse and GSSResponse), or
        a second startup packet: the gateway refuses it itself, as PostgreSQL's main loop
        does, so the client reads exactly one FATAL 08P01 and then EOF, and the database
        never sees the message (nor sends a FATAL of its own)."""
        refused_in_log = "invalid frontend message type 112"
        password = message(b"p", b"hunter2\0")
        # PostgreSQL itself: one FATAL 08P01, and its log names the message it refused,
        # which is how the gateway cases below tell that it never reached the database.
        with self.direct_login() as c:
            c.send(password)
            msgs = c.read_until_eof(timeout=5)
        self.assertEqual([k for k, _ in msgs], [b"E"], msgs)
        self.assertEqual(parse_error(msgs[0][1]).get("C"), "08P01")
        deadline = time.monotonic() + 5
        while refused_in_log not in self.pg.log_tail(10**7) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(refused_in_log, self.pg.log_tail(10**7))
        cases = {
            "PasswordMessage": password,
            "SASLResponse": message(b"p", b"c=biws,r=abc,p=xyz"),
            "startup packet": startup_packet({"user": "alice", "database": "app"}),
            "behind a Query": message(b"Q", b"SELECT 1\0") + password,
        }
        for label, late in cases.items():
            with self.subTest(label):
                seen = self.pg.log_tail(10**7).count("invalid frontend message type")
                with self.gw_login() as c:
                    c.send(late)
                    msgs = c.read_until_eof(timeout=5)
                errors = [parse_error(body) for kind, body in msgs if kind == b"E"]
                self.assertEqual(len(errors), 1, msgs)
                self.assertEqual(msgs[-1][0], b"E", msgs)
                self.assertEqual((errors[0].get("S"), errors[0].get("C")), ("FATAL", "08P01"),
                                 errors[0])
                if late[:1] == b"p":
                    self.assertIn("PasswordMessage is only valid during login",
                                  errors[0].get("M"))
                time.sleep(0.3)  # a message that did reach the database is logged by now
                self.assertEqual(self.pg.log_tail(10**7).count("invalid frontend message type"),
                                 seen, "the database saw the message")

    def test_message_over_max_message_size(self):
        with self.gw_login() as c:
            c.send(b"Q" + struct.pack("!I", MAX_MESSAGE + 100) + b"SELECT 1 -- " + b"x" * 1000)
            self.assert_error_then_close(c, ("08P01", "54000"))
        with self.gw_login() as c:
            # Just under the cap still works.
            sql = b"SELECT length('" + b"y" * (MAX_MESSAGE - 200) + b"')"
            c.send(message(b"Q", sql + b"\0"))
            msgs = c.read_until_ready()
            self.assertIn(b"D", [k for k, _ in msgs])
        with self.gw_login() as c:
            # A nonsense length (< 4) is a framing error.
            c.send(b"Q" + struct.pack("!I", 2))
            self.assert_error_then_close(c, ("08P01",))

    def test_terminate_and_half_messages(self):
        with self.gw_login() as c:
            c.send(message(b"Q", b"SELECT 1\0")[:7])
            time.sleep(0.2)
            c.send(message(b"Q", b"SELECT 1\0")[7:])
            self.assertEqual(c.read_until_ready()[-1][0], b"Z")
            c.send(message(b"X"))
            self.assertEqual(c.read_until_eof(timeout=5), [])
        with self.gw_login() as c:
            c.send(message(b"Q", b"SELECT pg_sleep(0.1)\0")[:6])  # then vanish mid-message

    def test_backend_killed_mid_query(self):
        gw = self.gw()
        bystander = psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], autocommit=True)
        victim = psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"], autocommit=True)
        try:
            real = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
            result = {}

            def run():
                try:
                    victim.execute("SELECT pg_sleep(30)")
                    result["outcome"] = "completed"
                except psycopg.Error as e:
                    result["outcome"] = e

            t = threading.Thread(target=run, daemon=True)
            t.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pg.sql(
                    f"SELECT state FROM pg_stat_activity WHERE pid = {real}") != "active":
                time.sleep(0.05)
            start = time.monotonic()
            self.assertEqual(self.pg.sql(f"SELECT pg_terminate_backend({real})"), "t")
            t.join(timeout=10)
            self.assertIn("outcome", result, "client still waiting 10 s after its backend died")
            self.assertIsInstance(result["outcome"], psycopg.Error)
            self.assertLess(time.monotonic() - start, 5)
            # PostgreSQL sends FATAL 57P01 before exiting; the gateway should pass it on
            # (or say 08006 if it only saw the socket close).
            self.assertIn(getattr(result["outcome"], "sqlstate", None), ("57P01", "08006", None))
            self.assertEqual(bystander.execute("SELECT 2").fetchone(), (2,))
        finally:
            victim.close()
            bystander.close()


if __name__ == "__main__":
    unittest.main()
