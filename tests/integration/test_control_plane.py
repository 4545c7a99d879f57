"""The control plane (issue 21, items 1-3): Prometheus metrics, /healthz and /readyz, and the
live session list that an operator can end, against a real PostgreSQL and real clients.

Metrics are scraped with urllib before and after a known workload and compared: statements by
decision and class, refusals by the rule the client's error names, logins by method and outcome,
sessions by target and scope. /readyz turns 503 when the target's server is stopped (pg_ctl) and
200 again when it is back. `pgbastion sessions` lists a psycopg session (its backend pid, its last
statement) and ends it: psycopg gets 57P01 naming the operator, and the audit trail's disconnect
record names them too. The admin socket is mode 0600: the postgres OS user cannot connect, and a
socket opened up by chmod still refuses it (SO_PEERCRED). Bad HTTP input gets 4xx and does not
disturb sessions.
"""

import json
import os
import re
import socket
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

import harness as h
from harness import ClusterTestCase, ProtocolError, RawConnection, random_password

SCOPES = [
    {"name": "readers", "sources": ["local"], "groups": ["read-only"], "profile": "read-only"},
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin"},
]
GROUPS = {"rita": ["read-only"], "adam": ["admin"]}


def http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode(), dict(res.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def exchange(s: socket.socket, data: bytes) -> bytes:
    """Sends data, returns the first answer bytes; b"" when the server closed (or reset) it."""
    try:
        if data:
            s.sendall(data)
        return s.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return b""


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metric(samples, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == want for k, want in labels.items()))


def control_config(port: int, admin_socket: str, extra: str = "") -> str:
    return "\n".join(["[control]", 'address = "127.0.0.1"', f"port = {port}",
                      'check_interval = "200ms"', 'check_timeout = "500ms"',
                      'request_timeout = "1s"', f'admin_socket = "{admin_socket}"', extra])


class ControlPlaneTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {name: random_password() for name in GROUPS}
        cls.dir = h.make_temp_dir("control")
        os.chmod(cls.dir, 0o755)  # so that the socket's own mode is what keeps others out
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)
        cls.trail = os.path.join(cls.dir, "audit.jsonl")
        cls.socket = os.path.join(cls.dir, "admin.sock")
        cls.control_port = h.free_port()
        audit = "\n".join([
            "[audit]", f'signing_key = "{cls.key}"', f'spill_dir = "{cls.dir}/spill"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{cls.trail}"', 'fsync = "never"'])
        cls.gw = cls.gateway("control", users=cls.users, user_groups=GROUPS, scopes=SCOPES,
                             extra_config=control_config(cls.control_port, cls.socket) + "\n" + audit)

    def scrape(self):
        status, body, headers = http_get(self.control_port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        return parse_metrics(body)

    def login(self, user: str, password: str | None = None) -> RawConnection:
        c = RawConnection(self.gw.port)
        c.login(user, password if password is not None else self.users[user], "app")
        return c

    def sessions(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return h.run([h.gateway_binary(), "sessions", "--socket", self.socket, *args],
                     check=check, timeout=30)

    # -- metrics ---------------------------------------------------------------------------
    def test_metrics_follow_a_known_workload(self):
        before = self.scrape()
        rita = self.login("rita")
        try:
            rita.simple_query("SELECT 1")
            rita.simple_query("SELECT 2; SELECT 3")
            refused = [b for k, b in rita.simple_query("CREATE TABLE nope (x int)") if k == b"E"]
            self.assertEqual(len(refused), 1)
            rule = re.search(r'pgbastion rule "([^"]+)"', h.parse_error(refused[0])["M"]).group(1)
            with self.assertRaises(ProtocolError) as bad:
                self.login("rita", "wrong-password")
            self.assertEqual(bad.exception.sqlstate, "28P01")
            during = self.scrape()
            self.assertEqual(metric(during, "pgbastion_sessions", target="app", scope="readers"), 1)
        finally:
            rita.close()
        after = self.scrape()

        def delta(name, **labels):
            return metric(after, name, **labels) - metric(before, name, **labels)

        self.assertEqual(delta("pgbastion_statements_total", decision="allow", **{"class": "read"}), 3)
        self.assertEqual(delta("pgbastion_statements_total", decision="deny", rule=rule), 1)
        self.assertEqual(delta("pgbastion_statements_total", decision="deny"), 1)
        self.assertEqual(delta("pgbastion_refusals_total", rule=rule), 1)
        self.assertEqual(delta("pgbastion_logins_total", method="password", outcome="success"), 1)
        self.assertEqual(delta("pgbastion_logins_total", method="password",
                               outcome="bad_credential"), 1)
        self.assertEqual(delta("pgbastion_sessions_total", target="app", scope="readers"), 1)
        self.assertGreaterEqual(delta("pgbastion_client_connections_total"), 2)
        self.assertEqual(delta("pgbastion_backend_connect_seconds_count"), 1)
        # One observation per client message with statements (three Queries).
        self.assertEqual(delta("pgbastion_statement_gate_seconds_count"), 3)
        self.assertEqual(delta("pgbastion_statement_gate_seconds_bucket", le="+Inf"), 3)
        self.assertGreater(delta("pgbastion_relayed_bytes_total", **{"from": "client"}), 0)
        self.assertGreater(delta("pgbastion_relayed_bytes_total", **{"from": "database"}), 0)
        self.assertGreater(delta("pgbastion_login_throttle_failures_total"), 0)
        self.assertGreater(metric(after, "pgbastion_audit_records_written_total"), 0)
        self.assertEqual(metric(after, "pgbastion_audit_healthy"), 1)
        self.assertEqual(metric(after, "pgbastion_build_info"), 1)
        self.assertEqual(metric(after, "pgbastion_shards", state="answered"),
                         metric(after, "pgbastion_shards", state="running"))
        # Never an identity as a label.
        for name, labels, _ in after:
            self.assertNotIn("rita", labels.values(), name)

    def test_health_and_bad_http_input(self):
        self.assertEqual(http_get(self.control_port, "/healthz")[0], 200)
        deadline = time.monotonic() + 10
        while http_get(self.control_port, "/readyz")[0] != 200:
            self.assertLess(time.monotonic(), deadline, "never ready")
            time.sleep(0.2)
        self.assertEqual(http_get(self.control_port, "/nowhere")[0], 404)
        self.assertEqual(http_get(self.control_port, "/metrics/../etc/passwd")[0] // 100, 4)
        adam = self.login("adam")
        try:
            # A header line of 64 KiB: refused with a 4xx (or the connection closed), at once.
            with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as s:
                answer = exchange(s, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: "
                                  + b"a" * 65536 + b"\r\n\r\n")
                self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100])
            # A slow client (slowloris): the server closes it after request_timeout, and
            # meanwhile sessions and the other workers go on.
            slow = socket.create_connection(("127.0.0.1", self.control_port), timeout=10)
            slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            adam.simple_query("SELECT 1")
            self.assertEqual(http_get(self.control_port, "/healthz")[0], 200)
            self.assertIn(exchange(slow, b"")[:12], (b"", b"HTTP/1.1 400", b"HTTP/1.1 408"))
            self.assertLess(time.monotonic() - started, 8)
            slow.close()
            # A trickle (a byte every 200 ms, each read in time) is cut off at request_timeout
            # (1 s here) for the whole request, not held for a timeout per read.
            with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                started = time.monotonic()
                cut = False
                while time.monotonic() - started < 8 and not cut:
                    try:
                        s.sendall(b"a")
                        s.settimeout(0.2)
                        cut = s.recv(4096)[:12] in (b"", b"HTTP/1.1 400")
                    except socket.timeout:
                        pass
                    except (ConnectionResetError, BrokenPipeError):
                        cut = True
                self.assertTrue(cut, "a trickling client was never cut off")
                self.assertLess(time.monotonic() - started, 4)
            # Headers without end (the library caps each line, not their number): cut off
            # after 32 KiB, and the gateway's memory does not grow with what was sent.
            rss_before = rss_kib(self.gw.proc.pid)
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as s:
                    answer = b""
                    try:
                        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                        for _ in range(2000):  # up to 16 MB
                            s.sendall((b"X-A: " + b"a" * 8000 + b"\r\n") * 1)
                    except (ConnectionResetError, BrokenPipeError):
                        pass
                    try:
                        answer = s.recv(4096)
                    except (ConnectionResetError, BrokenPipeError):
                        pass
                    self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:80])
            # 8 MiB; under ASan, whose quarantine keeps what the requests freed, 64 MiB.
            # Unbounded, 48 MB of headers took hundreds of MiB.
            bound = 64 * 1024 if h.sanitized(self.gw.proc.pid) else 8 * 1024
            self.assertLess(rss_kib(self.gw.proc.pid) - rss_before, bound)
            # Many bad requests do not disturb an open session.
            for _ in range(50):
                with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as s:
                    self.assertTrue(exchange(s, b"\x16\x03\x01garbage\r\n\r\n")
                                    .startswith(b"HTTP/1.1 400"))
            self.assertEqual([m for m, _ in adam.simple_query("SELECT 42") if m == b"D"], [b"D"])
        finally:
            adam.close()

    # -- live sessions ---------------------------------------------------------------------
    def test_sessions_are_listed_and_ended(self):
        conninfo = f"host=127.0.0.1 port={self.gw.port} dbname=app user=rita sslmode=disable"
        conn = psycopg.connect(conninfo, password=self.users["rita"], autocommit=True)
        other = psycopg.connect(conninfo, password=self.users["rita"], autocommit=True)
        raw = self.login("adam")
        try:
            conn.execute("SELECT 'listed'").fetchall()
            listed = json.loads(self.sessions("--json").stdout)["sessions"]
            mine = [s for s in listed if s["backend_pid"] == conn.info.backend_pid]
            self.assertEqual(len(mine), 1, listed)
            s = mine[0]
            self.assertEqual((s["subject"], s["scope"], s["target"], s["role"], s["method"],
                              s["state"]),
                             ("rita", "readers", "app", "gateway_login", "password", "idle"), s)
            self.assertEqual(s["statement"], "SELECT 'listed'")
            self.assertIsNotNone(s["statement_since"])
            self.assertGreater(s["bytes_from_client"], 0)
            self.assertEqual(len([x for x in listed if x["subject"] == "adam"]), 1, listed)
            self.assertIn("rita", self.sessions().stdout.decode())  # the table
            # Nothing matches: exit 1, nobody is ended.
            self.assertEqual(self.sessions("end", "--subject", "nobody", check=False).returncode, 1)

            # By id: that session only; its client sees the FATAL naming the operator.
            ended = self.sessions("end", str(s["id"]), "--json")
            self.assertEqual([e["id"] for e in json.loads(ended.stdout)["sessions"]], [s["id"]])
            with self.assertRaises(psycopg.OperationalError) as fatal:
                conn.execute("SELECT 1")
            self.assertIn("terminating connection due to administrator command",
                          str(fatal.exception))
            self.assertIn("operator root (uid 0)", str(fatal.exception))
            self.assertEqual(other.execute("SELECT 7").fetchone()[0], 7)  # untouched

            # By subject: the wire shows FATAL 57P01, then the connection ends.
            self.sessions("end", "--subject", "adam")
            kind, body = raw.read_message()
            self.assertEqual(kind, b"E")
            fields = h.parse_error(body)
            self.assertEqual((fields["S"], fields["C"]), ("FATAL", "57P01"), fields)
            self.assertIn("ended by operator root (uid 0) via pgbastion sessions end", fields["M"])
            self.assertIsNone(raw.read_message())

            # The trail says who ended it.
            deadline = time.monotonic() + 10
            while True:
                records = [json.loads(l) for l in Path(self.trail).read_text().splitlines() if l]
                ends = [r for r in records if r.get("session") == s["id"]
                        and r.get("kind") == "disconnect"]
                if ends or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(len(ends), 1, records[-5:])
            self.assertIn("operator root (uid 0)", json.dumps(ends[0]))

            # By target: the rest.
            self.sessions("end", "--target", "app")
            with self.assertRaises(psycopg.OperationalError):
                other.execute("SELECT 1")
            self.assertEqual(json.loads(self.sessions("--json").stdout)["sessions"], [])
        finally:
            conn.close()
            other.close()
            raw.close()

    def test_ending_mid_copy_leaves_the_target_and_the_trail_consistent(self):
        adam = self.login("adam")
        try:
            adam.simple_query("CREATE TABLE IF NOT EXISTS copied (x int)")
            adam.send(h.message(b"Q", b"COPY copied FROM STDIN\0"))
            adam.expect(b"G")
            adam.send(h.message(b"d", b"1\n2\n3\n"))  # no CopyDone: the COPY is under way
            listed = json.loads(self.sessions("--json").stdout)["sessions"]
            ids = [s["id"] for s in listed if s["subject"] == "adam"]
            self.assertEqual(len(ids), 1, listed)
            self.assertEqual(
                [s["state"] for s in listed if s["id"] == ids[0]], ["active"], listed)
            self.sessions("end", str(ids[0]))
            messages = adam.read_until_eof()
            errors = [h.parse_error(b) for k, b in messages if k == b"E"]
            self.assertEqual([e["C"] for e in errors], ["57P01"], messages)
        finally:
            adam.close()
        # Nothing of the unfinished COPY reached the table.
        self.assertEqual(self.pg.sql("SELECT count(*) FROM copied", db="app").strip(), "0")
        # The trail is complete: the COPY's record, its completion (no answer came: unknown),
        # then the disconnect naming the operator.
        deadline = time.monotonic() + 10
        while True:
            records = [json.loads(l) for l in Path(self.trail).read_text().splitlines() if l]
            mine = [r for r in records if r.get("session") == ids[0]]
            if any(r.get("kind") == "disconnect" for r in mine) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        copy = [r for r in mine if r.get("kind") == "statement"
                and r.get("statement") == "COPY copied FROM STDIN"]
        self.assertEqual(len(copy), 1, mine)
        done = [r for r in mine if r.get("kind") == "completion"
                and r.get("statement_id") == copy[0].get("statement_id")]
        self.assertEqual([d.get("outcome") for d in done], ["unknown"], mine)
        self.assertEqual(mine[-1]["kind"], "disconnect", mine)
        self.assertIn("operator root (uid 0)", json.dumps(mine[-1]))

    def test_admin_socket_refuses_other_users(self):
        self.assertEqual(os.stat(self.socket).st_mode & 0o777, 0o600)
        probe = ("import socket,sys\n"
                 "s=socket.socket(socket.AF_UNIX)\n"
                 "try:\n"
                 f"    s.connect({self.socket!r})\n"
                 "except PermissionError:\n"
                 "    print('EACCES'); sys.exit(0)\n"
                 # Refused at once, before any request: the answer is all there is.
                 "print(s.recv(4096).decode())\n")
        res = h.run(["/usr/bin/python3", "-c", probe], as_postgres=True, timeout=30)
        self.assertEqual(res.stdout.decode().strip(), "EACCES")
        # Opened up by mistake: the gateway still checks who is calling (SO_PEERCRED).
        os.chmod(self.socket, 0o666)
        try:
            res = h.run(["/usr/bin/python3", "-c", probe], as_postgres=True, timeout=30)
            self.assertIn("permission denied", res.stdout.decode())
        finally:
            os.chmod(self.socket, 0o600)


class ReadinessTest(ClusterTestCase):
    def test_readyz_follows_the_target(self):
        port = h.free_port()
        gw = self.gateway(extra_config=control_config(port, "") + "\n")

        def wait_for(status: int) -> str:
            deadline = time.monotonic() + 15
            while True:
                code, body, _ = http_get(port, "/readyz")
                if code == status:
                    return body
                self.assertLess(time.monotonic(), deadline, f"/readyz stayed {code}: {body}")
                time.sleep(0.2)

        wait_for(200)
        self.assertEqual(metric(parse_metrics(http_get(port, "/metrics")[1]),
                                "pgbastion_target_up", target="app"), 1)
        h.run([str(h.PG_BIN / "pg_ctl"), "-D", self.pg.data, "-m", "fast", "-w", "stop"],
              as_postgres=True, timeout=60)
        try:
            self.assertIn("target app unreachable", wait_for(503))
            self.assertEqual(http_get(port, "/healthz")[0], 200)  # alive, not ready
            self.assertEqual(metric(parse_metrics(http_get(port, "/metrics")[1]),
                                    "pgbastion_target_up", target="app"), 0)
        finally:
            h.run([str(h.PG_BIN / "pg_ctl"), "-D", self.pg.data, "-l", self.pg.logfile, "-w",
                   "start"], as_postgres=True, timeout=60)
        wait_for(200)
        self.assertTrue(gw.alive())

    def test_metrics_token(self):
        port = h.free_port()
        token_dir = h.make_temp_dir("token")
        self.addCleanup(h._rmtree, token_dir)
        token = random_password(32)
        path = os.path.join(token_dir, "metrics.token")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        self.gateway("token", extra_config=control_config(
            port, "", f'metrics_token_file = "{path}"') + "\n")
        self.assertEqual(http_get(port, "/metrics")[0], 401)
        self.assertEqual(http_get(port, "/metrics", {"Authorization": "Bearer wrong"})[0], 401)
        status, body, _ = http_get(port, "/metrics", {"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 200)
        self.assertNotIn(token, body)
        self.assertEqual(http_get(port, "/healthz")[0], 200)  # probes need no token

    def test_https(self):
        certs = h.Certificates("control-tls")
        self.addCleanup(certs.cleanup)
        port = h.free_port()
        self.gateway("tls", extra_config=control_config(
            port, "", f'tls_cert = "{certs.server_crt}"\ntls_key = "{certs.server_key}"') + "\n")
        context = ssl.create_default_context(cafile=str(certs.ca_crt))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context,
                                    timeout=10) as res:
            self.assertEqual(res.status, 200)
            self.assertIn("pgbastion_build_info", res.read().decode())
        # Plain HTTP on the HTTPS port: no answer but a closed connection.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            self.assertFalse(exchange(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                             .startswith(b"HTTP/1.1 200"))


if __name__ == "__main__":
    unittest.main()
