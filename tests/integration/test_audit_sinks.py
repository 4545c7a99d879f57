"""Audit sinks killed and restarted under load, counted end to end (issue 5).

For each of a syslog receiver (TCP, RFC 5424 with octet counting), an HTTP collector (JSON-array
batches, deduplicating by Idempotency-Key) and the audit database (a second PostgreSQL 15, a
table written with COPY): pgbench runs through the gateway, the sink is killed in the middle
(SIGKILL; pg_ctl stop -m immediate for the database), started again, the load finishes, the
gateway stops (drains, final checkpoint). Then every record is counted by seq against the
gateway's JSON Lines file (the reference trail): every seq 1..N present, none lost, none stored
twice, and one statement record per statement pgbench ran.
"""

import json
import os
import subprocess
import time
import unittest
from collections import Counter
from pathlib import Path

import harness as h
from harness import ClusterTestCase, pgbench, random_password

PGBENCH_SELECT = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
CLIENTS, TRANSACTIONS, RATE = 2, 1500, 500  # 3,000 statements over about 6 s
RECEIVERS = Path(__file__).resolve().parent / "audit_receivers.py"


def wait_until(done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_records(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Receiver:
    """audit_receivers.py as a process that can be killed and started again on its port."""

    def __init__(self, kind: str, dir: str, extra: list[str] | None = None):
        self.kind, self.port = kind, h.free_port()
        self.out = os.path.join(dir, f"{kind}.jsonl")
        self.args = [str(RECEIVERS), kind, "--port", str(self.port), "--out", self.out] + (extra or [])
        self.proc = None

    def start(self) -> "Receiver":
        self.proc = subprocess.Popen(["/usr/bin/python3"] + self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        h._live_procs.append(self.proc)
        line = self.proc.stdout.readline().decode()
        self.proc.stdout.close()
        if line.strip() != "ready":
            raise AssertionError(f"{self.kind} receiver did not start: {line}")
        return self

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        h._live_procs.remove(self.proc)

    def records(self) -> list[dict]:
        # The http receiver stores each batch's key after its records.
        return [r for r in read_records(self.out) if "idempotency_key" not in r]


class AuditSinksTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {"ada": random_password()}
        cls.key_dir = h.make_temp_dir("audit-sinks")
        cls.addClassCleanup(h._rmtree, cls.key_dir)
        cls.key = os.path.join(cls.key_dir, "audit.key")
        h.run([h.gateway_binary(), "audit", "keygen", "--private-key", cls.key,
               "--public-key", os.path.join(cls.key_dir, "audit.pub")], timeout=30)
        pgbench(["-i", "-s", "1", "-q"], port=cls.pg.port, user="gateway_login", dbname="app",
                password=cls.pg.passwords["gateway_login"])

    def setUp(self):
        self.dir = h.make_temp_dir("audit-sink-run")
        self.addCleanup(h._rmtree, self.dir)
        self.trail = os.path.join(self.dir, "audit.jsonl")

    def outage(self, sink_toml: str, sink_name: str, kill, restart, stored) -> list[dict]:
        """Runs the load with `kill` and `restart` of the sink in the middle; returns the
        reference trail (the file sink) after the gateway stopped and the sink caught up."""
        extra = "\n".join([
            "[audit]", f'signing_key = "{self.key}"', f'spill_dir = "{self.dir}/spill"',
            "checkpoint_every = 200", "",
            "[[audit.sink]]", 'type = "file"', f'path = "{self.trail}"', 'fsync = "never"', "",
            "[[audit.sink]]", f'name = "{sink_name}"', sink_toml])
        gw = h.Gateway(self.pg, users=self.users, extra_config=extra).start()
        try:
            load = subprocess.Popen(
                [str(h.PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(gw.port), "-U", "ada",
                 "-n", "-S", "-M", "prepared", "-c", str(CLIENTS), "-j", str(CLIENTS),
                 "-t", str(TRANSACTIONS), "-R", str(RATE), "app"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=dict(os.environ, PGPASSWORD=self.users["ada"], PGSSLMODE="disable"))
            h._live_procs.append(load)
            try:
                wait_until(lambda: len(stored()) > 20, 20, "records at the sink before the kill")
            except AssertionError as e:
                raise AssertionError(f"{e}\n{gw.log()}")
            self.assertIsNone(load.poll(), "the load ended before the sink was killed")
            kill()
            time.sleep(1.5)
            self.assertIsNone(load.poll(), "the load ended before the sink came back")
            restart()
            output = load.communicate(timeout=120)[0].decode()
            h._live_procs.remove(load)
            self.assertEqual(load.returncode, 0, output)
            self.assertIn(f"number of transactions actually processed: {CLIENTS * TRANSACTIONS}",
                          output)
            # The outage was real: the sink failed and delivered from its spill afterwards.
            wait_until(lambda: f"sink {sink_name} caught up with its spill" in gw.log(), 60,
                       f"sink {sink_name} to catch up:\n{gw.log()}")
            self.assertIn(f"sink {sink_name} failed", gw.log())
        finally:
            gw.stop()  # drains the rings; a final checkpoint; the sinks deliver it
        reference = read_records(self.trail)
        self.assertEqual([r["seq"] for r in reference], list(range(1, len(reference) + 1)))
        self.assertTrue(reference[-1].get("final"), "the trail ends with the final checkpoint")
        wait_until(lambda: {r["seq"] for r in stored()} >= {r["seq"] for r in reference}, 30,
                   "the sink to hold every record")
        executions = h.audit_statements(reference)
        statements = Counter(r.get("statement") for r in executions)
        self.assertEqual(statements[PGBENCH_SELECT], CLIENTS * TRANSACTIONS, statements)
        for r in executions:
            if r.get("statement") == PGBENCH_SELECT:
                self.assertEqual((r["decision"], r["command_tag"]), ("allow", "SELECT 1"), r)
            self.assertNotEqual(r.get("sqlstate"), "53400", "a statement was refused")
        return reference

    def assertSameRecords(self, reference: list[dict], received: list[dict]) -> None:
        by_seq = {}
        for r in received:
            by_seq.setdefault(r["seq"], r)
        self.assertEqual(sorted(by_seq), list(range(1, len(reference) + 1)), "a record is missing")
        for r in reference:
            self.assertEqual(by_seq[r["seq"]], r)

    def test_syslog_receiver_killed_and_restarted(self):
        receiver = Receiver("syslog", self.dir).start()
        reference = self.outage(
            f'type = "syslog"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {receiver.port}',
            "siem", receiver.kill, receiver.start, receiver.records)
        receiver.kill()
        received = receiver.records()
        # Syslog has no acknowledgement: after a broken connection the sink sends the last
        # moments again, and a receiver keeps the first copy of each seq.
        self.assertSameRecords(reference, received)
        # The receiver had read most of what was sent in the 2 s before the kill: resent, it
        # arrives twice. Every copy is the record itself, and the copies are one run of seqs
        # (the one replay after the one break).
        seqs = Counter(r["seq"] for r in received)
        repeated = sorted(s for s, n in seqs.items() if n > 1)
        self.assertGreater(len(repeated), 0, "nothing was sent again after the broken connection")
        self.assertEqual(max(seqs.values()), 2, "a record arrived more than twice")
        self.assertEqual(repeated, list(range(repeated[0], repeated[-1] + 1)), "not one replay")
        for r in received:
            self.assertEqual(r, reference[r["seq"] - 1])
        repeats = len(received) - len(reference)
        print(f"\nsyslog: {len(reference)} records, {repeats} sent again after the kill")

    def test_http_collector_killed_and_restarted(self):
        receiver = Receiver("http", self.dir, ["--keys", os.path.join(self.dir, "keys"),
                                               "--lose-answer-every", "7"]).start()
        reference = self.outage(
            f'type = "http"\nurl = "http://127.0.0.1:{receiver.port}/audit"\nmax_batch = 50\n'
            'timeout = "2s"\nretry_initial = "50ms"\nretry_max = "500ms"',
            "collector", receiver.kill, receiver.start, receiver.records)
        receiver.kill()
        received = receiver.records()
        seqs = Counter(r["seq"] for r in received)
        self.assertEqual([s for s, n in seqs.items() if n > 1], [], "stored twice")
        self.assertSameRecords(reference, received)
        # Lost answers happened, and their retries were recognised by Idempotency-Key.
        dups = Path(self.dir, "keys.dups").read_text().split()
        self.assertGreater(len(dups), 0)
        for key in dups:
            first, last, prev = key.split("-")
            self.assertLessEqual(int(first), int(last))
            self.assertEqual(len(prev), 16)

    def test_audit_database_killed_and_restarted(self):
        audit_pg = h.PostgresCluster().start()
        self.addCleanup(audit_pg.stop, quiet=True)
        password = random_password()
        audit_pg.create_role("auditor", password)
        audit_pg.sql("CREATE DATABASE audit OWNER auditor;")
        password_file = os.path.join(self.dir, "auditdb.password")
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")

        def stored() -> list[dict]:
            if not audit_pg.running:
                return []
            if audit_pg.sql("SELECT to_regclass('gw_trail') IS NULL", db="audit") == "t":
                return []  # the sink creates it on its first connection
            out = audit_pg.sql("SELECT line FROM gw_trail ORDER BY seq", db="audit")
            return [json.loads(line) for line in out.splitlines()]

        def kill():
            h.run([str(h.PG_BIN / "pg_ctl"), "-D", audit_pg.data, "-m", "immediate", "-w",
                   "stop"], as_postgres=True, timeout=60)
            audit_pg.running = False

        def restart():
            h.run([str(h.PG_BIN / "pg_ctl"), "-D", audit_pg.data, "-l", audit_pg.logfile, "-w",
                   "start"], as_postgres=True, timeout=60)
            audit_pg.running = True

        reference = self.outage(
            f'type = "postgres"\nconninfo = "host=127.0.0.1 port={audit_pg.port} dbname=audit '
            f'user=auditor sslmode=disable"\npassword_file = "{password_file}"\n'
            'table = "gw_trail"\nconnect_timeout = "2s"',
            "auditdb", kill, restart, stored)
        counts = audit_pg.sql("SELECT count(*), count(DISTINCT seq), max(seq) FROM gw_trail",
                              db="audit")
        n = len(reference)
        self.assertEqual(counts, f"{n}|{n}|{n}")
        self.assertSameRecords(reference, stored())
        self.assertEqual(
            audit_pg.sql("SELECT count(*) FROM gw_trail WHERE kind = 'statement' AND "
                         f"record->>'statement' = '{PGBENCH_SELECT}' AND subject = 'ada'",
                         db="audit"),
            str(CLIENTS * TRANSACTIONS))
        # The documented export gives back the exact lines, and they verify.
        exported = os.path.join(self.dir, "exported.jsonl")
        res = h.run(["psql", "-XAtq", "-h", audit_pg.socket_dir, "-p", str(audit_pg.port),
                     "-U", "postgres", "-d", "audit", "-c",
                     "SELECT line FROM gw_trail ORDER BY seq"], timeout=60)
        Path(exported).write_bytes(res.stdout)
        self.assertEqual(res.stdout, Path(self.trail).read_bytes())
        verify = h.run([h.gateway_binary(), "audit", "verify", "--public-key",
                        os.path.join(self.key_dir, "audit.pub"), exported], check=False, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout.decode() + verify.stderr.decode())


if __name__ == "__main__":
    unittest.main()
