"""Approvals (issue 18): a statement the read-write profile holds for approval waits on the wire
until a person decides, against a real PostgreSQL and real clients (psql, psycopg, raw protocol).

A held DELETE without WHERE is approved through `pgbastion approvals approve` (the admin socket)
and its command tag reaches the waiting psql and psycopg clients; denied (42501 naming the
approver and the reason); timed out (SQLSTATE PBA01); cancelled by the client's CancelRequest
(57014, the request withdrawn, the session usable); in the extended protocol with another batch
pipelined behind it (which waits, in order); inside a transaction. Nobody approves their own
request; a rule that needs two approvers runs after the second; a second decision, an unknown id,
are refused. The SQLite store keeps requests and decisions across a restart of the gateway.
"""

import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from pathlib import Path

import psycopg

import harness as h
from harness import ClusterTestCase, RawConnection, cancel_request, message, random_password

SCOPES = [{"name": "agents", "sources": ["local"], "groups": ["agents"], "profile": "read-write"},
          {"name": "bots", "sources": ["local"], "groups": ["bots"], "profile": "read-write"}]
USERS = ["agent", "other", "bot"]
REQUEST_ID = re.compile(r"request ([0-9a-f]{32})")


ISSUER = "https://approvers.pgbastion.test"


def approvals_config(store: str, socket: str, port: int) -> str:
    return "\n".join([
        "[control]", 'address = "127.0.0.1"', f"port = {port}", f'admin_socket = "{socket}"', "",
        "[approvals]", f'store = "{store}"', 'timeout = "60s"', 'approver_groups = ["dba"]',
        f'approve_url = "http://127.0.0.1:{port}/v1/approvals"', "",
        # CREATE TABLE (ddl) needs two approvers.
        "[[approvals.rule]]", 'rule = "profile.read-write.ddl"', "approvers = 2", "",
        # GRANT (dcl) times out quickly.
        "[[approvals.rule]]", 'rule = "profile.read-write.dcl"', 'timeout = "2s"', "",
        # The bots' scope cannot wait: retry mode.
        "[[approvals.rule]]", 'rule = "profile.read-write.*"', 'scope = "bots"', 'mode = "retry"',
        ""])


def bind(portal: bytes = b"", statement: bytes = b"") -> bytes:
    return message(b"B", portal + b"\0" + statement + b"\0" + b"\0\0" + b"\0\0" + b"\0\0")


def parse(sql: str, name: bytes = b"") -> bytes:
    return message(b"P", name + b"\0" + sql.encode() + b"\0" + b"\0\0")


def execute(portal: bytes = b"") -> bytes:
    return message(b"E", portal + b"\0" + b"\0\0\0\0")


SYNC = message(b"S")


class ApprovalsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {name: random_password() for name in USERS}
        cls.dir = h.make_temp_dir("approvals")
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.store = os.path.join(cls.dir, "approvals.db")
        cls.socket = os.path.join(cls.dir, "admin.sock")
        cls.control_port = h.free_port()
        # Approvers on the HTTP API: tokens of a local issuer (`pgbastion token mint`).
        cls.issuer_key = os.path.join(cls.dir, "issuer.pem")
        h.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-out", cls.issuer_key])
        jwks = os.path.join(cls.dir, "issuer.jwks.json")
        with open(jwks, "wb") as f:
            f.write(h.run([h.gateway_binary(), "token", "jwks", "--key", cls.issuer_key]).stdout)
        issuer = "\n".join(["[[issuer]]", 'name = "approvers"', f'issuer = "{ISSUER}"',
                            'audience = "pgbastion"', f'jwks_file = "{jwks}"', 'clock_skew = "0s"'])
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)
        cls.trail = os.path.join(cls.dir, "audit.jsonl")
        audit = "\n".join([
            "[audit]", f'signing_key = "{cls.key}"', f'spill_dir = "{cls.dir}/spill"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{cls.trail}"', 'fsync = "never"'])
        cls.gw = cls.gateway("approvals", users=cls.users, issuers=[issuer],
                             user_groups={"agent": ["agents"], "other": ["agents"],
                                          "bot": ["bots"]}, scopes=SCOPES,
                             extra_config=approvals_config(cls.store, cls.socket, cls.control_port)
                             + "\n" + audit)

    def setUp(self):
        self.pg.sql("DROP TABLE IF EXISTS items; CREATE TABLE items (id int);"
                    "INSERT INTO items SELECT generate_series(1, 3);"
                    "ALTER TABLE items OWNER TO gateway_login;", db="app")

    def rows(self) -> int:
        return int(self.pg.sql("SELECT count(*) FROM items", db="app"))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return h.run([h.gateway_binary(), "approvals", "--socket", self.socket, *args],
                     check=check, timeout=30)

    def pending(self, timeout: float = 15) -> dict:
        """The one pending request, once there is one."""
        deadline = time.monotonic() + timeout
        while True:
            listed = json.loads(self.cli("list", "--json").stdout)["approvals"]
            if listed:
                self.assertEqual(len(listed), 1, listed)
                return listed[0]
            self.assertLess(time.monotonic(), deadline, "no request became pending")
            time.sleep(0.1)

    def show(self, request_id: str) -> dict:
        return json.loads(self.cli("show", request_id, "--json").stdout)["approval"]

    def login(self, user: str = "agent") -> RawConnection:
        c = RawConnection(self.gw.port, timeout=30)
        c.login(user, self.users[user], "app")
        return c

    def held_notice(self, c: RawConnection) -> dict:
        """Reads up to the NoticeResponse of a held statement; its fields."""
        while True:
            kind, body = c.read_message(timeout=15) or (None, None)
            self.assertIsNotNone(kind, "EOF while waiting for the hold's notice")
            if kind == b"N":
                fields = h.parse_error(body)
                if "held for approval" in fields.get("M", ""):
                    return fields
            self.assertNotIn(kind, (b"C", b"E", b"Z"), f"the statement was not held: {kind!r}")

    def assert_silent(self, c: RawConnection, seconds: float = 1.0) -> None:
        c.sock.settimeout(seconds)
        try:
            m = c.read_message(timeout=seconds)
        except TimeoutError:
            m = None  # nothing came: what a held statement's client should see
        finally:
            c.sock.settimeout(30)
        self.assertIsNone(m, f"the held statement was answered early: {m}")

    # -- hold, approve, run ------------------------------------------------------------------
    def test_held_delete_approved_returns_its_tag_to_psql(self):
        env = {"PGPASSWORD": self.users["agent"], "PGSSLMODE": "disable", "PGCONNECT_TIMEOUT": "10"}
        proc = subprocess.Popen([h.PSQL, "-X", "-d", self.gw.conninfo("agent"), "-c",
                                 "DELETE FROM items"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **env})
        try:
            request = self.pending()
            self.assertEqual(request["subject"], "agent")
            self.assertEqual(request["rule"], "profile.read-write.destructive")
            self.assertEqual(request["statement"], "DELETE FROM items")
            time.sleep(0.5)
            self.assertIsNone(proc.poll(), "psql did not wait")
            self.assertEqual(self.rows(), 3, "the held statement ran before approval")
            done = self.cli("approve", request["id"], "--as", "alice", "--reason", "cleanup")
            self.assertIn("approved", done.stdout.decode())
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 0, err.decode())
        self.assertIn("DELETE 3", out.decode())
        notice = err.decode()
        self.assertIn(f"request {request['id']}", notice)
        self.assertIn("profile.read-write.destructive", notice)
        self.assertIn(f"pgbastion approvals approve {request['id']}", notice)
        self.assertIn(f"/v1/approvals/{request['id']}/approve", notice)
        self.assertEqual(self.rows(), 0)
        shown = self.show(request["id"])
        self.assertEqual(shown["status"], "approved")
        self.assertEqual(shown["decided_by"], "alice")

    def test_held_delete_approved_for_psycopg(self):
        notices = []
        result = {}

        def run():
            with psycopg.connect(self.gw.conninfo("agent"), password=self.users["agent"],
                                 autocommit=True) as conn:
                conn.add_notice_handler(lambda d: notices.append(d.message_primary))
                cur = conn.execute("DELETE FROM items")
                result["rowcount"] = cur.rowcount
                result["tag"] = cur.statusmessage

        t = threading.Thread(target=run)
        t.start()
        request = self.pending()
        self.cli("approve", request["id"], "--as", "alice")
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(result, {"rowcount": 3, "tag": "DELETE 3"})
        self.assertTrue(any(request["id"] in n for n in notices), notices)

    def test_denied(self):
        with psycopg.connect(self.gw.conninfo("agent"), password=self.users["agent"],
                             autocommit=True) as conn:
            errors = []

            def run():
                try:
                    conn.execute("DELETE FROM items")
                except psycopg.Error as e:
                    errors.append(e)

            t = threading.Thread(target=run)
            t.start()
            request = self.pending()
            self.cli("deny", request["id"], "--as", "dora", "--reason", "not on a Friday")
            t.join(30)
            self.assertEqual(len(errors), 1)
            self.assertEqual(errors[0].sqlstate, "42501")
            self.assertIn("denied by dora: not on a Friday", str(errors[0]))
            # The session goes on.
            self.assertEqual(conn.execute("SELECT count(*) FROM items").fetchone()[0], 3)
        self.assertEqual(self.show(request["id"])["status"], "denied")
        # A second decision on a decided request is refused; so is an unknown id.
        again = self.cli("approve", request["id"], "--as", "alice", check=False)
        self.assertEqual(again.returncode, 1)
        self.assertIn("denied already", again.stderr.decode())
        unknown = self.cli("show", "0" * 32, check=False)
        self.assertEqual(unknown.returncode, 1)
        self.assertIn("no approval request", unknown.stderr.decode())

    def test_timed_out(self):
        with self.login() as c:
            started = time.monotonic()
            c.send(message(b"Q", b"GRANT SELECT ON items TO PUBLIC\0"))
            notice = self.held_notice(c)
            self.assertIn("2s", notice.get("D", ""))
            msgs = c.read_until_ready(timeout=30)
            errors = [h.parse_error(b) for k, b in msgs if k == b"E"]
            self.assertEqual(len(errors), 1, msgs)
            self.assertEqual(errors[0]["C"], "PBA01")
            self.assertIn("timed out", errors[0]["M"])
            self.assertGreater(time.monotonic() - started, 1.5)
            self.assertEqual(c.simple_query("SELECT 1")[-1][0], b"Z")
        expired = json.loads(self.cli("list", "--status", "expired", "--json").stdout)["approvals"]
        self.assertTrue(any("GRANT" in a["statement"] for a in expired), expired)

    def test_cancel_withdraws(self):
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            request = self.pending()
            pid, key = c.backend_key
            with RawConnection(self.gw.port) as canceller:
                canceller.send(cancel_request(pid, key))
            msgs = c.read_until_ready(timeout=15)
            errors = [h.parse_error(b) for k, b in msgs if k == b"E"]
            self.assertEqual([e["C"] for e in errors], ["57014"], msgs)
            self.assertIn("canceling statement due to user request", errors[0]["M"])
            self.assertEqual(c.simple_query("SELECT 1")[-1][0], b"Z")
        deadline = time.monotonic() + 10
        while self.show(request["id"])["status"] != "withdrawn":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertEqual(self.rows(), 3)
        # Approving a withdrawn request changes nothing.
        late = self.cli("approve", request["id"], "--as", "alice", check=False)
        self.assertEqual(late.returncode, 1)
        self.assertEqual(self.rows(), 3)

    def test_disconnect_withdraws(self):
        c = self.login()
        c.send(message(b"Q", b"DELETE FROM items\0"))
        self.held_notice(c)
        request = self.pending()
        c.close()
        deadline = time.monotonic() + 10
        while self.show(request["id"])["status"] != "withdrawn":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertEqual(self.rows(), 3)

    # -- extended protocol, pipelining, transactions ---------------------------------------
    def test_extended_protocol_with_a_pipelined_batch_behind(self):
        with self.login() as c:
            c.send(parse("DELETE FROM items") + bind() + message(b"D", b"P\0") + execute() + SYNC
                   + parse("SELECT count(*) FROM items") + bind() + execute() + SYNC)
            self.held_notice(c)
            self.assert_silent(c)
            request = self.pending()
            self.assertEqual(self.rows(), 3)
            self.cli("approve", request["id"], "--as", "alice")
            first = c.read_until_ready(timeout=15)
            self.assertEqual([k for k, _ in first], [b"1", b"2", b"n", b"C", b"Z"], first)
            self.assertEqual(first[3][1], b"DELETE 3\0")
            second = c.read_until_ready(timeout=15)
            self.assertEqual([k for k, _ in second], [b"1", b"2", b"D", b"C", b"Z"], second)
            self.assertIn(b"0", second[2][1])

    def test_denied_in_extended_protocol_skips_to_sync(self):
        with self.login() as c:
            c.send(parse("DELETE FROM items") + bind() + execute() + SYNC
                   + message(b"Q", b"SELECT 42\0"))
            self.held_notice(c)
            request = self.pending()
            self.cli("deny", request["id"], "--as", "dora", "--reason", "no")
            first = c.read_until_ready(timeout=15)
            self.assertEqual([k for k, _ in first], [b"E", b"Z"], first)
            self.assertEqual(h.parse_error(first[0][1])["C"], "42501")
            second = c.read_until_ready(timeout=15)
            self.assertIn(b"42", b"".join(b for k, b in second if k == b"D"))
        self.assertEqual(self.rows(), 3)

    def test_inside_a_transaction(self):
        with self.login() as c:
            self.assertEqual(c.simple_query("BEGIN; INSERT INTO items VALUES (4)")[-1][1], b"T")
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            request = self.pending()
            self.cli("approve", request["id"], "--as", "alice")
            msgs = c.read_until_ready(timeout=15)
            self.assertIn((b"C", b"DELETE 4\0"), msgs)
            self.assertEqual(msgs[-1], (b"Z", b"T"))
            self.assertEqual(c.simple_query("COMMIT")[-1][1], b"I")
        self.assertEqual(self.rows(), 0)

    def test_denied_inside_a_transaction_aborts_it(self):
        with self.login() as c:
            c.simple_query("BEGIN")
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            self.cli("deny", self.pending()["id"], "--as", "dora")
            msgs = c.read_until_ready(timeout=15)
            self.assertEqual(h.parse_error(next(b for k, b in msgs if k == b"E"))["C"], "42501")
            self.assertEqual(msgs[-1], (b"Z", b"E"))  # failed transaction, as PostgreSQL does
            self.assertEqual(c.simple_query("ROLLBACK")[-1][1], b"I")

    # -- retry mode --------------------------------------------------------------------------
    def test_retry_mode(self):
        with self.login("bot") as c:
            started = time.monotonic()
            msgs = c.simple_query("DELETE FROM items")
            self.assertLess(time.monotonic() - started, 5, "retry mode waited")
            self.assertNotIn(b"N", [k for k, _ in msgs], "retry mode sent a hold's notice")
            error = h.parse_error(next(b for k, b in msgs if k == b"E"))
            self.assertEqual(error["C"], "42501")
            self.assertIn("send the statement again once it is approved", error["M"])
            request_id = REQUEST_ID.search(error["M"]).group(1)
            self.assertEqual(self.show(request_id)["mode"], "retry")
            # Sent again before a decision: the same request.
            again = h.parse_error(next(b for k, b in c.simple_query("DELETE FROM items")
                                       if k == b"E"))
            self.assertEqual(REQUEST_ID.search(again["M"]).group(1), request_id)
            self.cli("approve", request_id, "--as", "alice")
            # A different statement is not covered by the approval.
            other = c.simple_query("DELETE FROM items WHERE true")
            self.assertIn(b"E", [k for k, _ in other])
            self.assertEqual(self.rows(), 3)
            # The approved one runs once.
            self.assertIn((b"C", b"DELETE 3\0"), c.simple_query("DELETE FROM items"))
            third = c.simple_query("DELETE FROM items")
            error = h.parse_error(next(b for k, b in third if k == b"E"))
            self.assertNotEqual(REQUEST_ID.search(error["M"]).group(1), request_id)
        # Another identity's same statement is not covered either.
        with self.login("agent") as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            self.cli("deny", [a for a in json.loads(self.cli("list", "--json").stdout)["approvals"]
                              if a["subject"] == "agent"][0]["id"], "--as", "dora")
            c.read_until_ready(timeout=15)
        for a in json.loads(self.cli("list", "--json").stdout)["approvals"]:
            self.cli("deny", a["id"], "--as", "dora")  # the bot's open ones

    # -- the audit trail ---------------------------------------------------------------------
    def approval_records(self, request_id: str, decisions: set[str]) -> list[dict]:
        """The trail's statement records of `request_id`, once they hold `decisions`."""
        deadline = time.monotonic() + 15
        while True:
            records = [json.loads(line) for line in Path(self.trail).read_text().splitlines()
                       if line.strip()] if os.path.exists(self.trail) else []
            try:
                statements = h.audit_statements(records)
            except AssertionError as e:  # a completion the writer has not written yet
                self.assertLess(time.monotonic(), deadline, str(e))
                time.sleep(0.2)
                continue
            mine = [r for r in statements if r.get("approval_id") == request_id]
            if {r["decision"] for r in mine} >= decisions:
                return mine
            self.assertLess(time.monotonic(), deadline, f"no {decisions} records: {mine}")
            time.sleep(0.2)

    def test_audit_records_the_lifecycle(self):
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            approved = self.pending()["id"]
            self.cli("approve", approved, "--as", "alice", "--reason", "audited")
            c.read_until_ready(timeout=15)
            c.send(message(b"Q", b"CREATE TABLE never (x int)\0"))
            self.held_notice(c)
            denied = self.pending()["id"]
            self.cli("deny", denied, "--as", "dora", "--reason", "no tables today")
            c.read_until_ready(timeout=15)
            # Extended protocol: the Execute's record waits for the Parse's approval.
            c.send(parse("DELETE FROM items") + bind() + execute() + SYNC)
            self.held_notice(c)
            extended = self.pending()["id"]
            self.cli("approve", extended, "--as", "alice")
            c.read_until_ready(timeout=15)
        records = self.approval_records(approved, {"hold", "approved"})
        ran = next(r for r in records if r["decision"] == "approved")
        self.assertEqual(ran["statement"], "DELETE FROM items")
        self.assertEqual(ran["command_tag"], "DELETE 3", ran)
        self.assertIn("approved by alice: audited", ran["message"])
        records = self.approval_records(denied, {"hold", "rejected"})
        rejected = next(r for r in records if r["decision"] == "rejected")
        self.assertEqual(rejected["sqlstate"], "42501")
        self.assertIn("denied by dora: no tables today", rejected["message"])
        self.assertEqual(len([r for r in records if r["decision"] == "approved"]), 0)
        records = self.approval_records(extended, {"hold", "approved"})
        ran = [r for r in records if r["decision"] == "approved"]
        self.assertEqual(len(ran), 1, records)
        self.assertEqual(ran[0]["protocol"], "extended")
        self.assertEqual(ran[0]["command_tag"], "DELETE 0")
        # No record says a held statement was allowed before it was approved.
        trail = [json.loads(line) for line in Path(self.trail).read_text().splitlines() if line]
        self.assertFalse([r for r in trail if r.get("decision") == "allow"
                          and r.get("statement") == "DELETE FROM items"])

    # -- the HTTP API ------------------------------------------------------------------------
    def token(self, subject: str, groups: str = "dba", ttl: str = "10m") -> str:
        return h.run([h.gateway_binary(), "token", "mint", "--key", self.issuer_key, "--issuer",
                      ISSUER, "--audience", "pgbastion", "--subject", subject, "--groups", groups,
                      "--ttl", ttl]).stdout.decode().strip()

    def api(self, method: str, path: str, token: str | None, body: dict | None = None
            ) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", method=method,
                                     headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=15) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def test_http_api_survives_malformed_chunked_bodies(self):
        """Bodies a hostile client could send the API (cpp-httplib 0.11's chunked decoder has
        later advisories): a negative, a non-hex, an overflowing and an endless chunk size.
        Each request is cut off by the control plane's request cap (32 KiB) or timeout or
        answered 400; none is decided, and the gateway keeps serving."""
        alice = self.token("alice")
        bodies = [b"-2\r\nab\r\n0\r\n\r\n", b"ZZ\r\nab\r\n", b"fffffffffffffffff\r\nab\r\n",
                  b"ffffffff\r\n" + b"a" * 40000]
        for body in bodies:
            with self.subTest(body=body[:20]):
                s = socket.create_connection(("127.0.0.1", self.control_port), timeout=15)
                try:
                    s.sendall(f"POST /v1/approvals/{'0' * 32}/approve HTTP/1.1\r\nHost: x\r\n"
                              f"Authorization: Bearer {alice}\r\nContent-Type: application/json\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n".encode() + body)
                    answer = s.recv(200)
                except OSError:
                    answer = b""  # cut off: the connection was reset
                finally:
                    s.close()
                self.assertFalse(answer.startswith(b"HTTP/1.1 200"), answer)
        self.assertIsNone(self.gw.proc.poll(), self.gw.log())
        status, listed = self.api("GET", "/v1/approvals", alice)
        self.assertEqual(status, 200, listed)

    def test_http_api(self):
        alice, dora = self.token("alice"), self.token("dora")
        expired = self.token("alice", ttl="1s")
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            request_id = self.pending()["id"]
            status, listed = self.api("GET", "/v1/approvals", alice)
            self.assertEqual(status, 200, listed)
            self.assertEqual([a["id"] for a in listed["approvals"]], [request_id])
            path = f"/v1/approvals/{request_id}"
            self.assertEqual(self.api("GET", path, None)[0], 401)
            self.assertEqual(self.api("POST", path + "/approve", "not-a-token")[0], 401)
            time.sleep(2)
            status, answer = self.api("POST", path + "/approve", expired)
            self.assertEqual(status, 401, answer)
            self.assertIn("expired", answer["error"])
            status, answer = self.api("POST", path + "/approve", self.token("eve", groups="dev"))
            self.assertEqual(status, 403, answer)
            self.assertIn("not in an approver group", answer["error"])
            status, answer = self.api("POST", path + "/approve", self.token("agent"))
            self.assertEqual(status, 403, answer)
            self.assertIn("own request", answer["error"])
            self.assertEqual(self.api("POST", f"/v1/approvals/{'0' * 32}/approve", alice)[0], 404)
            self.assertEqual(self.api("POST", path + "/approve", alice, {"reason": 7})[0], 400)
            self.assertEqual(self.show(request_id)["status"], "pending")
            status, answer = self.api("POST", path + "/approve", alice, {"reason": "via API"})
            self.assertEqual(status, 200, answer)
            self.assertEqual(answer["approval"]["status"], "approved")
            self.assertIn((b"C", b"DELETE 3\0"), c.read_until_ready(timeout=15))
            status, answer = self.api("POST", path + "/deny", dora)
            self.assertEqual(status, 409, answer)
            self.assertIn("approved already", answer["error"])

    # -- who may approve ---------------------------------------------------------------------
    def test_nobody_approves_their_own_request(self):
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            request = self.pending()
            own = self.cli("approve", request["id"], "--as", "agent", check=False)
            self.assertEqual(own.returncode, 1)
            self.assertIn("nobody approves their own request", own.stderr.decode())
            self.assertEqual(self.show(request["id"])["status"], "pending")
            self.assert_silent(c, 0.5)
            self.cli("deny", request["id"], "--as", "dora")
            c.read_until_ready(timeout=15)

    def test_two_approvers_required(self):
        with self.login() as c:
            c.send(message(b"Q", b"CREATE TABLE two_approvers (x int)\0"))
            notice = self.held_notice(c)
            self.assertIn("2 distinct approvers", notice.get("D", ""))
            request = self.pending()
            self.cli("approve", request["id"], "--as", "alice")
            self.assertEqual(self.show(request["id"])["status"], "pending")
            self.assert_silent(c)
            twice = self.cli("approve", request["id"], "--as", "alice", check=False)
            self.assertEqual(twice.returncode, 1)
            self.assertIn("decided on", twice.stderr.decode())
            self.cli("approve", request["id"], "--as", "carol")
            msgs = c.read_until_ready(timeout=15)
            self.assertIn((b"C", b"CREATE TABLE\0"), msgs)
        shown = self.show(request["id"])
        self.assertEqual(shown["status"], "approved")
        self.assertEqual(shown["decided_by"], "alice, carol")
        self.pg.sql("DROP TABLE two_approvers", db="app")

    # -- the store ---------------------------------------------------------------------------
    def test_store_survives_a_restart(self):
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            request = self.pending()
            self.cli("deny", request["id"], "--as", "dora", "--reason", "kept")
            c.read_until_ready(timeout=15)
        self.gw.stop()
        self.gw.start()
        shown = self.show(request["id"])
        self.assertEqual(shown["status"], "denied")
        self.assertEqual(shown["decision_reason"], "kept")
        self.assertEqual(shown["votes"][0]["approver"], "dora")
        # The gateway serves holds again after the restart.
        with self.login() as c:
            c.send(message(b"Q", b"DELETE FROM items\0"))
            self.held_notice(c)
            self.cli("approve", self.pending()["id"], "--as", "alice")
            self.assertIn((b"C", b"DELETE 3\0"), c.read_until_ready(timeout=15))


if __name__ == "__main__":
    unittest.main()
