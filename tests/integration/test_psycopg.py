"""A second driver: psycopg 3 runs the same round of work direct and through the gateway.

The round uses the extended protocol (server-side parameter binding), named prepared
statements, executemany, a pipeline (many messages before one Sync), COPY in and out
(text and binary) with cursor.copy(), LISTEN/NOTIFY, ParameterStatus, errors and
rollbacks. Its results, as plain Python values, must be equal both ways.
"""

import datetime
import decimal
import threading
import time
import unittest

import psycopg
from psycopg import errors

from harness import ClusterTestCase


def round_of_work(connect) -> list:
    """Runs the round on connections from connect(); returns comparable results."""
    out = []
    with connect() as conn:
        # Server-side binding: psycopg 3 sends Parse/Bind/Describe/Execute/Sync.
        out.append(conn.execute("SELECT %s::int + %s, %s::text, %s::numeric, %s::date, %s::bytea, %s::int[]",
                                (1, 2, "x'y", decimal.Decimal("1.25"), datetime.date(2024, 2, 29),
                                 b"\x00\xff", [1, None, 3])).fetchall())
        out.append(conn.execute("SELECT %s::text IS NULL, %s", (None, "ünïcode ✓")).fetchall())
        # Named prepared statements, reused.
        for i in range(8):
            out.append(conn.execute("SELECT %s::int * 2 AS doubled", (i,), prepare=True).fetchone())
        # Binary results.
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT g, g::text, g * 1.5 FROM generate_series(1, 50) g")
            out.append(cur.fetchall())
            out.append([d.name for d in cur.description])
        conn.execute("CREATE TEMP TABLE items (id int PRIMARY KEY, name text, price numeric)")
        conn.commit()
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s)",
                            [(i, f"item {i}", decimal.Decimal(i) / 4) for i in range(1, 201)])
            out.append(cur.rowcount)
        conn.commit()
        # Pipeline: many Parse/Bind/Execute before one Sync.
        with conn.pipeline():
            curs = [conn.execute("SELECT name FROM items WHERE id = %s", (i,)) for i in range(1, 30)]
        out.append([c.fetchone() for c in curs])
        # An error inside a transaction aborts it; the next statement sees 25P02.
        try:
            with conn.transaction():
                conn.execute("INSERT INTO items VALUES (1000, 'rolled back', 0)")
                conn.execute("INSERT INTO items VALUES (1, 'duplicate', 0)")
        except errors.UniqueViolation as e:
            out.append(("unique_violation", e.sqlstate, e.diag.constraint_name))
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT 1/0")
        except errors.DivisionByZero as e:
            out.append(("division_by_zero", e.sqlstate))
        try:
            conn.execute("SELECT 1")
        except errors.InFailedSqlTransaction as e:
            out.append(("in_failed", e.sqlstate))
        conn.rollback()
        # An explicit rollback discards the work.
        conn.execute("DELETE FROM items WHERE id > 100")
        conn.rollback()
        out.append(conn.execute("SELECT count(*), sum(price) FROM items").fetchone())
        # Errors in the extended protocol leave the connection usable.
        try:
            conn.execute("SELECT %s::int", ("not an int",))
        except errors.InvalidTextRepresentation as e:
            out.append(("bad_param", e.sqlstate))
        conn.rollback()
        out.append(conn.execute("SELECT 'usable'").fetchone())
        # COPY in and out, text and binary.
        with conn.cursor() as cur:
            with cur.copy("COPY items (id, name, price) FROM STDIN") as copy:
                for i in range(1000, 3000):
                    copy.write_row((i, f"copied {i}\ttab", decimal.Decimal(i) / 100))
            out.append(cur.rowcount)
            chunks = []
            with cur.copy("COPY (SELECT * FROM items ORDER BY id) TO STDOUT") as copy:
                for data in copy:
                    chunks.append(bytes(data))
            out.append(b"".join(chunks))
            with cur.copy("COPY (SELECT * FROM items ORDER BY id) TO STDOUT (FORMAT binary)") as copy:
                copy.set_types(["int4", "text", "numeric"])
                out.append(list(copy.rows()))
            with cur.copy("COPY items FROM STDIN (FORMAT binary)") as copy:
                copy.set_types(["int4", "text", "numeric"])
                copy.write_row((5000, "binary row", decimal.Decimal("9.99")))
            out.append(conn.execute("SELECT * FROM items WHERE id = 5000").fetchone())
        conn.commit()
        # ParameterStatus: psycopg reads it from libpq, which learnt it from the server.
        conn.execute("SET application_name = 'psycopg round'")
        conn.execute("SET TimeZone = 'America/New_York'")
        conn.commit()
        out.append(conn.info.parameter_status("application_name"))
        out.append(conn.info.parameter_status("TimeZone"))
        out.append(conn.execute("SELECT '2024-06-01 12:00:00+00'::timestamptz::text").fetchone())
        out.append(conn.info.parameter_status("server_version") is not None)

    # LISTEN on one connection, NOTIFY from another.
    with connect(autocommit=True) as listener, connect(autocommit=True) as sender:
        listener.execute("LISTEN psycopg_channel")
        sender.execute("SELECT pg_notify('psycopg_channel', 'payload ' || 42)")
        sender.execute("NOTIFY psycopg_channel, 'second'")
        got = []
        deadline = time.monotonic() + 10

        def stop_later():
            # notifies() blocks; a timer bounds the wait even if nothing arrives.
            time.sleep(10)
            try:
                listener.cancel()
            except Exception:
                pass

        threading.Thread(target=stop_later, daemon=True).start()
        gen = listener.notifies()
        for n in gen:
            got.append((n.channel, n.payload))
            if len(got) == 2 or time.monotonic() > deadline:
                gen.close()
                break
        out.append(got)
    return out


class PsycopgTest(ClusterTestCase):
    def test_same_results_direct_and_gateway(self):
        pw = self.pg.passwords["gateway_login"]
        direct = round_of_work(lambda **kw: psycopg.connect(self.direct(), password=pw, **kw))
        # The direct round must show what it exercises.
        self.assertIn([("psycopg_channel", "payload 42"), ("psycopg_channel", "second")], direct)
        self.assertIn(("in_failed", "25P02"), direct)
        self.assertIn(2000, direct)

        gw = self.gateway()
        through = round_of_work(lambda **kw: psycopg.connect(gw.conninfo("alice"),
                                                             password=gw.users["alice"], **kw))
        self.assertEqual(len(direct), len(through))
        for i, (a, b) in enumerate(zip(direct, through)):
            self.assertEqual(a, b, f"result #{i} differs through the gateway")

    def test_pipeline_error_skips_to_sync(self):
        """An error inside a pipeline discards the rest until Sync, then the session works."""
        def check(connect):
            with connect() as conn:
                conn.autocommit = True
                with self.assertRaises(errors.DivisionByZero):
                    with conn.pipeline() as p:
                        conn.execute("SELECT %s::int", (1,))
                        conn.execute("SELECT 1/%s::int", (0,))
                        conn.execute("SELECT %s::int", (3,))
                        p.sync()
                self.assertEqual(conn.execute("SELECT %s::int + 1", (41,)).fetchone(), (42,))

        check(lambda: psycopg.connect(self.direct(), password=self.pg.passwords["gateway_login"]))
        gw = self.gateway()
        check(lambda: psycopg.connect(gw.conninfo("alice"), password=gw.users["alice"]))

if __name__ == "__main__":
    unittest.main()
