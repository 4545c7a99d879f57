"""Session recording and replay (issue 19), end to end: a real PostgreSQL, the
gateway with [recording], psql and psycopg sessions recorded, replayed with
`pgbastion replay` and checked against what the clients received; masked
values stay masked in the recording; a SIGKILLed gateway leaves a readable
recording; `pgbastion audit verify --recordings` finds changed, truncated and
missing recordings; a million-row session keeps the gateway's memory bounded.

Users: mia (scope support: masks, record = "full"), ada (scope admins, record = "full").
"""
import glob
import json
import os
import signal
import time
import unittest
from pathlib import Path

import psycopg

import harness as h
from harness import ClusterTestCase, psql, random_password

GROUPS = {"mia": ["support"], "ada": ["admin"]}
MASKS = [
    {"columns": ["email"], "method": "partial", "keep": 4},
    {"columns": ["ssn"], "method": "redact"},
]
SCOPES = [
    {"name": "support", "sources": ["local"], "groups": ["support"], "profile": "read-write",
     "mask": MASKS, "record": "full"},
    {"name": "admins", "sources": ["local"], "groups": ["admin"], "profile": "admin",
     "record": "full"},
]
ROWS = [(1, "Alice", "alice@example.com", "123-45-6789"),
        (2, "Bob", "bob@example.org", "987-65-4321")]
MASKED = [["1", "Alice", "*************.com", "****"],
          ["2", "Bob", "***********.org", "****"]]


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class RecordingTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        values = ", ".join(f"({i}, '{n}', '{e}', '{s}')" for i, n, e, s in ROWS)
        cls.pg.sql("CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text);"
                   f"INSERT INTO customers VALUES {values};"
                   "ALTER TABLE customers OWNER TO gateway_login;", db="app")
        cls.users = {name: random_password() for name in GROUPS}
        cls.dir = h.make_temp_dir("recording")
        cls.addClassCleanup(h._rmtree, cls.dir)
        cls.key, cls.pub = os.path.join(cls.dir, "audit.key"), os.path.join(cls.dir, "audit.pub")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", cls.pub], timeout=30)

    def start_gateway(self, name: str, *, extra_recording: str = "") -> tuple[h.Gateway, str, str]:
        """A gateway whose recordings and audit trail are this test's own."""
        rec_dir = os.path.join(self.dir, name, "recordings")
        trail = os.path.join(self.dir, name, "audit.jsonl")
        os.makedirs(os.path.dirname(trail), exist_ok=True)
        extra = "\n".join([
            "[recording]", f'directory = "{rec_dir}"', 'flush_interval = "100ms"', extra_recording,
            "", "[audit]", f'signing_key = "{self.key}"',
            f'spill_dir = "{self.dir}/{name}/spill"', 'parameters = "off"', "",
            "[[audit.sink]]", 'type = "file"', f'path = "{trail}"', 'fsync = "never"'])
        gw = h.Gateway(self.pg, users=self.users, user_groups=GROUPS, scopes=SCOPES,
                       extra_config=extra).start()
        return gw, rec_dir, trail

    def recordings(self, rec_dir: str) -> list[str]:
        return sorted(glob.glob(os.path.join(rec_dir, "*.pgbrec")))

    def replay(self, target: str, *args: str, check: bool = True):
        return h.run([h.gateway_binary(), "replay", target, *args], check=check, timeout=300)

    def replay_json(self, path: str) -> list[dict]:
        out = self.replay(path, "--json").stdout.decode()
        return [json.loads(line) for line in out.splitlines()]

    def results(self, events: list[dict]) -> list[list[list[str | None]]]:
        """The row sets the client received, one list per RowDescription."""
        sets = []
        for e in events:
            if e["kind"] != "to_client":
                continue
            if e.get("type") == "T":
                sets.append([])
            elif e.get("type") == "D":
                sets[-1].append(e["values"])
        return sets

    def wait_for_disconnects(self, trail: str, n: int) -> list[dict]:
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(trail):
                recs = [json.loads(l) for l in Path(trail).read_text().splitlines() if l.strip()]
                ends = [r for r in recs if r.get("kind") == "disconnect" and "recording" in r]
                if len(ends) >= n:
                    return ends
            time.sleep(0.2)
        self.fail(f"no {n} disconnect records with a recording in {trail}")

    def test_psql_session_recorded_and_replayed_masked(self):
        gw, rec_dir, trail = self.start_gateway("psql")
        try:
            script = ("SELECT id, name, email, ssn FROM customers ORDER BY id;\n"
                      "SELECT 1/0;\n"
                      "SELECT 42 AS answer;\n")
            out = psql(gw.conninfo("mia"), password=self.users["mia"], input=script.encode(),
                       check=False).stdout.decode()
            self.assertIn("*************.com", out)
            self.assertNotIn("alice@example.com", out)
            ada = psql(gw.conninfo("ada"), "DROP TABLE IF EXISTS no_such_table",
                       password=self.users["ada"]).stderr.decode()
            self.assertIn("NOTICE", ada)
            ends = self.wait_for_disconnects(trail, 2)
            self.assertTrue(all(e["recording"]["status"] == "complete" for e in ends), ends)
        finally:
            gw.stop()
        files = self.recordings(rec_dir)
        self.assertEqual(len(files), 2, files)
        listed = h.run([h.gateway_binary(), "recordings", "list", "--dir", rec_dir,
                        "--identity", "mia", "--json"]).stdout.decode().splitlines()
        self.assertEqual(len(listed), 1, listed)
        mia = json.loads(listed[0])
        self.assertEqual((mia["scope"], mia["target"], mia["mode"]), ("support", "app", "full"))
        events = self.replay_json(mia["file"])
        self.assertEqual(events[0]["kind"], "header")
        self.assertEqual(events[0]["data"]["identity"]["subject"], "mia")
        self.assertEqual(events[-1], {**events[-1], "kind": "summary", "ok": True,
                                      "interrupted": False})
        # The rows the client received, masked, and nothing in clear anywhere.
        self.assertEqual(self.results(events)[0], MASKED)
        self.assertEqual(self.results(events)[1], [["42"]])
        dump = json.dumps(events)
        for secret in ("alice@example.com", "123-45-6789", "987-65-4321"):
            self.assertNotIn(secret, dump)
        self.assertNotIn(self.users["mia"], dump)
        sqls = [e.get("sql") for e in events if e.get("type") == "Q"]
        self.assertEqual(sqls, ["SELECT id, name, email, ssn FROM customers ORDER BY id;",
                                "SELECT 1/0;", "SELECT 42 AS answer;"])
        # As psql showed it.
        text = self.replay(str(mia["session"]), "--dir", rec_dir).stdout.decode()
        self.assertIn("app=> SELECT id, name, email, ssn FROM customers ORDER BY id;", text)
        self.assertIn("  1 | Alice | *************.com | ****\n", text)
        self.assertIn("(2 rows)", text)
        self.assertIn("ERROR:  division by zero", text)
        self.assertIn("Time: ", text)
        ada_file = [f for f in files if f != mia["file"]][0]
        self.assertIn("NOTICE:  table \"no_such_table\" does not exist, skipping",
                      self.replay(ada_file).stdout.decode())
        # asciicast v2: a header line, then [time, "o", text] events.
        cast = self.replay(mia["file"], "--format", "asciicast").stdout.decode().splitlines()
        self.assertEqual(json.loads(cast[0])["version"], 2)
        frames = [json.loads(l) for l in cast[1:]]
        self.assertTrue(all(f[1] == "o" and isinstance(f[0], float) for f in frames))
        self.assertIn("*************.com", "".join(f[2] for f in frames))
        # The trail and the recordings verify.
        ok = h.run([h.gateway_binary(), "audit", "verify", "--public-key", self.pub,
                    "--recordings", rec_dir, trail])
        self.assertIn("2 recording(s) match", ok.stdout.decode())

    def test_psycopg_extended_and_copy(self):
        gw, rec_dir, trail = self.start_gateway("psycopg")
        try:
            with psycopg.connect(gw.conninfo("ada"), password=self.users["ada"],
                                 autocommit=True) as conn:
                got = conn.execute("SELECT id, email FROM customers WHERE id >= %s ORDER BY id",
                                   (1,)).fetchall()
                with conn.cursor().copy("COPY customers TO STDOUT") as copy:
                    copied = b"".join(bytes(b) for b in copy)
            self.wait_for_disconnects(trail, 1)
        finally:
            gw.stop()
        [path] = self.recordings(rec_dir)
        events = self.replay_json(path)
        self.assertEqual(self.results(events)[0], [[str(i), e] for i, e in got])
        self.assertIn("P", [e.get("type") for e in events if e["kind"] == "from_client"])
        copy_data = "".join(e["data"] for e in events
                            if e["kind"] == "to_client" and e.get("type") == "d")
        self.assertEqual(copy_data.encode(), copied)
        # Bind parameters follow audit.parameters = "off": not recorded.
        binds = [e for e in events if e["kind"] == "from_client" and e.get("type") == "B"]
        self.assertTrue(binds)
        text = self.replay(path).stdout.decode()
        self.assertIn("$1='[redacted]'", text)
        self.assertIn("COPY 2", text)

    def test_sigkill_leaves_a_readable_recording(self):
        gw, rec_dir, _ = self.start_gateway("kill")
        conn = psycopg.connect(gw.conninfo("ada"), password=self.users["ada"], autocommit=True)
        try:
            self.assertEqual(conn.execute("SELECT 'before the crash'").fetchone()[0],
                             "before the crash")
            time.sleep(1.0)  # > flush_interval: the chunk is handed on and written
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait(timeout=10)
        finally:
            conn.close()
            h._live_procs.remove(gw.proc) if gw.proc in h._live_procs else None
            gw.proc = None
            gw.stop()
        [path] = self.recordings(rec_dir)
        r = self.replay(path)
        self.assertEqual(r.returncode, 0)
        self.assertIn("before the crash", r.stdout.decode())
        self.assertIn("end marker", r.stderr.decode() + r.stdout.decode())

    def test_audit_verify_finds_changed_truncated_and_missing_recordings(self):
        gw, rec_dir, trail = self.start_gateway("tamper")
        try:
            for i in range(3):
                psql(gw.conninfo("ada"), f"SELECT g, repeat('x', 50) FROM generate_series(1, {2000 + i}) g",
                     password=self.users["ada"])
            ends = self.wait_for_disconnects(trail, 3)
        finally:
            gw.stop()
        for e in ends:
            self.assertEqual(len(e["recording"]["sha256"]), 64)
            self.assertGreater(e["recording"]["bytes"], 2000 * 50)
        verify = [h.gateway_binary(), "audit", "verify", "--public-key", self.pub, "--json",
                  "--recordings", rec_dir, trail]
        r = h.run(verify, check=False)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        files = self.recordings(rec_dir)
        self.assertEqual(len(files), 3)
        # Truncated (cut mid-file), changed (one byte), missing (deleted).
        data = Path(files[0]).read_bytes()
        Path(files[0]).write_bytes(data[: len(data) // 2])
        data = bytearray(Path(files[1]).read_bytes())
        data[len(data) // 2] ^= 0x01
        Path(files[1]).write_bytes(bytes(data))
        os.unlink(files[2])
        r = h.run(verify, check=False)
        self.assertEqual(r.returncode, 1, r.stdout.decode())
        report = json.loads(r.stdout)
        problems = {f["file"]: f["problem"] for f in report["recordings"]["findings"]}
        self.assertEqual(problems[files[0]], "truncated")
        self.assertIn(problems[files[1]], ("changed", "corrupt"))
        self.assertIn("missing", problems.values())
        self.assertFalse(report["ok"])
        # A corrupt or foreign file: a clear error, exit 1, no crash.
        r = self.replay(files[1], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(files[1], r.stderr.decode())
        r = self.replay(trail, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a pgbastion session recording", r.stderr.decode())

    def test_million_rows_keep_memory_bounded(self):
        gw, rec_dir, trail = self.start_gateway("big")
        try:
            before = vm_hwm_kib(gw.proc.pid)
            r = psql(gw.conninfo("ada"), "SELECT g, 'row number ' || g FROM generate_series(1, 1000000) g",
                     password=self.users["ada"], args=["-At", "-o", "/dev/null"])
            self.assertEqual(r.returncode, 0)
            self.wait_for_disconnects(trail, 1)
            grew_mib = (vm_hwm_kib(gw.proc.pid) - before) / 1024
            sanitized = h.sanitized(gw.proc.pid)
        finally:
            gw.stop()
        # A shard's queue is at most 256 x 64 KiB; the rest is the gateway's
        # usual buffers. Unbounded recording would take the ~40 MB of rows
        # (and more) in memory.
        limit = 160 if sanitized else 48
        self.assertLess(grew_mib, limit)
        [path] = self.recordings(rec_dir)
        text = self.replay(path).stdout.decode()
        self.assertIn("(1000000 rows)", text)
        self.assertIn(" 999999 | row number 999999\n", text)


if __name__ == "__main__":
    unittest.main()
