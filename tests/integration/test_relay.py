"""Relay: psql, pgbench and a 100 MB COPY give the same results direct and through the gateway.

Every test runs the same thing twice, once against PostgreSQL directly (as the
gateway's login role, so current_user and ownership match) and once through the
gateway, and compares. The direct run comes first so a broken harness shows up
as a direct failure, not as a gateway bug.
"""

import hashlib
import os
import re
import tempfile
import time
import unittest
from pathlib import Path

from harness import ClusterTestCase, pgbench, psql, make_temp_dir

# A psql script touching every message kind psql can produce (psql 15 has no \bind;
# the extended protocol is covered by pgbench -M extended/prepared and test_psycopg).
SCRIPT = r"""
\set VERBOSITY verbose
\pset pager off
-- several statements in one simple Query message (\; keeps psql from splitting them)
SELECT 1 AS one \; SELECT 2 AS two \; SELECT 'three' AS three;
-- an error in the middle of a multi-statement Query: the rest is skipped
SELECT 1 AS before_error \; SELECT 1/0 \; SELECT 3 AS never;
\echo :LAST_ERROR_SQLSTATE
-- errors outside a transaction
SELECT no_such_column;
SELECT * FROM no_such_table;
SELECT 'after errors' AS still_here;
-- transactions: commit, rollback, an error aborting a transaction
CREATE TEMP TABLE t (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO t VALUES (1, 'committed');
COMMIT;
BEGIN;
INSERT INTO t VALUES (2, 'rolled back');
ROLLBACK;
BEGIN;
INSERT INTO t VALUES (3, 'aborted');
INSERT INTO t VALUES (1, 'duplicate');
SELECT 'in failed transaction';
COMMIT;
SAVEPOINT outside_tx;
BEGIN;
INSERT INTO t VALUES (4, 'savepoint');
SAVEPOINT sp;
SELECT 1/0;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO t VALUES (5, 'after savepoint');
COMMIT;
SELECT * FROM t ORDER BY id;
-- LISTEN/NOTIFY: psql prints "Asynchronous notification ... received from server process with PID n."
LISTEN relay_channel;
NOTIFY relay_channel, 'hello through the gateway';
SELECT pg_notify('relay_channel', 'second');
BEGIN;
NOTIFY relay_channel, 'delivered at commit';
SELECT 'before commit';
COMMIT;
UNLISTEN relay_channel;
-- notices: RAISE from DO, and a server-generated one
DO $$ BEGIN RAISE NOTICE 'notice from DO: %', 42; RAISE WARNING 'a warning'; END $$;
DROP TABLE IF EXISTS no_such_table_either;
DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'P0001', DETAIL = 'some detail', HINT = 'a hint'; END $$;
-- ParameterStatus: psql's \encoding shows what libpq learnt from ParameterStatus
-- (client_encoding and standard_conforming_strings stay fixed through the
-- gateway: tests/integration/test_policy.py)
\encoding
SET application_name = 'relay test';
SHOW application_name;
SET TimeZone = 'Asia/Tokyo';
SELECT '2024-01-02 03:04:05+00'::timestamptz AS tokyo_time;
SET DateStyle = 'SQL, DMY';
SELECT '2024-01-02'::date AS sql_date;
RESET DateStyle;
SELECT E'a\\b' AS escaped;
-- COPY in and out: text, csv, binary; \copy and server-side COPY through STDIN/STDOUT
CREATE TEMP TABLE c (id int, name text, amount numeric, at timestamptz, tags text[], blob bytea);
COPY c FROM STDIN;
1	alpha	1.50	2024-01-01 00:00:00+00	{a,b}	\\x00ff
2	tab\there	-3	2024-02-29 12:34:56+00	{}	\\x
3	\N	\N	\N	\N	\N
\.
\copy c FROM stdin WITH (FORMAT csv, HEADER true)
id,name,amount,at,tags,blob
4,"quoted, with comma",42,2024-03-01 00:00:00+00,"{x,""y z""}",\x0102
5,"multi
line",0.001,2024-03-02 00:00:00+00,{},\x
\.
COPY c TO STDOUT;
COPY c TO STDOUT WITH (FORMAT csv, HEADER true);
\copy c TO 'c.bin' WITH (FORMAT binary)
CREATE TEMP TABLE c2 (LIKE c);
\copy c2 FROM 'c.bin' WITH (FORMAT binary)
SELECT count(*) AS binary_roundtrip_rows, bool_and(c IS NOT DISTINCT FROM c2) AS same FROM c JOIN c2 USING (id);
COPY (SELECT g, md5(g::text) FROM generate_series(1, 1000) g) TO STDOUT WITH (FORMAT binary);
\copy (SELECT * FROM c ORDER BY id) TO 'c.csv' WITH (FORMAT csv)
-- a COPY that fails half-way through its data
COPY c (id) FROM STDIN;
7
not a number
\.
SELECT count(*) AS rows_after_failed_copy FROM c;
-- large objects: libpq's lo_* use the FunctionCall message (fastpath)
\lo_import 'c.csv'
\lo_export :LASTOID 'lo_roundtrip.csv'
\lo_unlink :LASTOID
-- a large result
SELECT g, md5(g::text) AS h, repeat('x', g % 50) AS pad FROM generate_series(1, 100000) g;
-- an empty query, a comment-only query, a huge single row
;
SELECT length(repeat('y', 5000000)) AS big_len, md5(repeat('y', 5000000)) AS big_md5;
SELECT repeat('z', 200000) AS wide_value;
\echo done
"""


def normalize(output: str) -> str:
    # The notifying backend's PID differs between the two runs (and the gateway may
    # rewrite it): psql prints "... received from server process with PID 12345."
    output = re.sub(r"server process with PID \d+", "server process with PID <pid>", output)
    # \lo_import and \lo_unlink print the large object's OID, which the server allocates
    # afresh on each run.
    output = re.sub(r"lo_(import|unlink) \d+", r"lo_\1 <oid>", output)
    return output


class RelayTest(ClusterTestCase):
    def run_script(self, conninfo: str, password: str, label: str) -> tuple[str, dict[str, bytes]]:
        work = make_temp_dir(f"relay-{label}")
        script = os.path.join(work, "script.sql")
        with open(script, "w") as f:
            f.write(SCRIPT)
        # A relative path: psql prefixes messages with it, and it must match in both runs.
        res = psql(conninfo, file="script.sql", password=password, check=False, cwd=work,
                   args=["-v", "ON_ERROR_STOP=0"], timeout=180)
        # stderr carries the ERROR/NOTICE lines; keep both streams, in a stable order.
        # latin-1 decodes any byte losslessly (COPY ... (FORMAT binary) TO STDOUT is raw bytes).
        out = res.stdout.decode("latin-1") + "\n--- stderr ---\n" + res.stderr.decode("latin-1")
        files = {}
        for name in ("c.bin", "c.csv", "lo_roundtrip.csv"):
            path = os.path.join(work, name)
            files[name] = Path(path).read_bytes() if os.path.exists(path) else b"<missing>"
        self.assertEqual(res.returncode, 0, f"psql ({label}) exited {res.returncode}:\n{out[-3000:]}")
        return normalize(out), files

    def test_psql_script_identical(self):
        direct_out, direct_files = self.run_script(self.direct(), self.pg.passwords["gateway_login"], "direct")
        # The direct run must itself show what the script exercises, or the comparison means little.
        for needle in ["Asynchronous notification \"relay_channel\" with payload \"hello through the gateway\"",
                       "NOTICE:  00000: notice from DO: 42", "ERROR:  22012: division by zero",
                       "relay test", "rows_after_failed_copy", "100000 rows", "big_len", "\ndone\n",
                       "ERROR:  23505", "current transaction is aborted", "P0001: custom failure"]:
            self.assertIn(needle, direct_out)
        self.assertNotIn(b"<missing>", b"".join(direct_files.values()))

        gw = self.gateway()
        gw_out, gw_files = self.run_script(gw.conninfo("alice"), gw.users["alice"], "gateway")
        if gw_out != direct_out:
            import difflib
            diff = "".join(difflib.unified_diff(direct_out.splitlines(True)[:200000], gw_out.splitlines(True),
                                                "direct", "gateway", n=2))
            self.fail(f"psql output differs through the gateway:\n{diff[:8000]}\ngateway log:\n{gw.log()[-3000:]}")
        self.assertEqual(direct_files, gw_files)

    def pgbench_round(self, port, user, password, label):
        common = dict(port=port, user=user, dbname="app", password=password, timeout=300)
        init = pgbench(["-i", "-s", "2", "-q", "--foreign-keys"], **common)
        self.assertIn("done", init.stderr.decode() + init.stdout.decode())
        for mode in ("simple", "extended", "prepared"):
            for script in ("-S", "-N"):
                with self.subTest(target=label, mode=mode, script=script):
                    res = pgbench([script, "-M", mode, "-t", "200", "-c", "4", "-j", "2", "-n"],
                                  check=False, **common)
                    out = res.stdout.decode() + res.stderr.decode()
                    self.assertEqual(res.returncode, 0, out)
                    self.assertRegex(out, r"number of transactions actually processed: 800/800")
                    self.assertRegex(out, r"number of failed transactions: 0 ")

    def test_pgbench(self):
        self.pgbench_round(self.pg.port, "gateway_login", self.pg.passwords["gateway_login"], "direct")
        gw = self.gateway()
        self.pgbench_round(gw.port, "alice", gw.users["alice"], "gateway")
        # What the gateway wrote must be what PostgreSQL has: same counts as the -i scale.
        self.assertEqual(self.pg.sql("SELECT count(*) FROM pgbench_accounts", db="app"), "200000")

    def test_copy_100mb(self):
        work = make_temp_dir("copy")
        data = os.path.join(work, "in.txt")
        # ~100 MB of canonical text-format rows (ints, hex text, no escapes), so the
        # COPY TO output must be byte-identical to the input.
        with open(data, "wb") as f:
            chunk = []
            for i in range(1, 1_000_001):
                h = hashlib.sha256(str(i).encode()).hexdigest()
                chunk.append(f"{i}\t{h}\t{h[:34]}\n")
                if len(chunk) == 50000:
                    f.write("".join(chunk).encode())
                    chunk = []
            f.write("".join(chunk).encode())
        size = os.path.getsize(data)
        self.assertGreater(size, 100_000_000)
        want = hashlib.sha256(Path(data).read_bytes()).hexdigest()

        def roundtrip(conninfo, password, label):
            out = os.path.join(work, f"out-{label}.txt")
            script = os.path.join(work, f"copy-{label}.sql")
            with open(script, "w") as f:
                f.write("CREATE TEMP TABLE big (id int, h text, s text);\n"
                        f"\\copy big FROM '{data}'\n"
                        f"\\copy (SELECT * FROM big ORDER BY id) TO '{out}'\n")
            start = time.monotonic()
            res = psql(conninfo, file=script, password=password, check=False, timeout=300,
                       args=["-v", "ON_ERROR_STOP=1"])
            self.assertEqual(res.returncode, 0, res.stderr.decode())
            self.assertIn("COPY 1000000", res.stdout.decode())
            got = hashlib.sha256(Path(out).read_bytes()).hexdigest()
            os.unlink(out)
            return got, time.monotonic() - start

        got, secs = roundtrip(self.direct(), self.pg.passwords["gateway_login"], "direct")
        self.assertEqual(got, want, "direct COPY round trip changed the data")
        gw = self.gateway()
        got, gw_secs = roundtrip(gw.conninfo("alice"), gw.users["alice"], "gateway")
        self.assertEqual(got, want, "COPY through the gateway changed the data")
        print(f"\nCOPY {size / 1e6:.0f} MB in+out: direct {secs:.1f}s, gateway {gw_secs:.1f}s")


if __name__ == "__main__":
    unittest.main()
