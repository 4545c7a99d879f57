"""Failed logins are throttled per client address and per user name (issue 22, item 3).

An attacker's guessing loop (wrong SCRAM passwords, one connection each, as a brute-force tool
makes them) is slowed down by the gateway's growing waits, while a correct login from another
address (127.0.0.2: the client socket is bound to it) is answered at once. A correct password
from the throttled address waits too: the wait comes before the verdict. The log has one line per
burst, not one per attempt. Short throttle settings keep the suite fast.
"""

import socket
import time
import unittest

from harness import ClusterTestCase, ProtocolError, RawConnection, random_password, startup_packet

THROTTLE = "\n".join(["[login]", "throttle_after = 3", 'throttle_delay = "200ms"',
                      'throttle_max_delay = "400ms"', 'throttle_reset_after = "1m"'])


def connect_from(port: int, source: str) -> RawConnection:
    c = RawConnection.__new__(RawConnection)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    c.buf = b""
    c.backend_key = None
    c.parameters = {}
    return c


class LoginThrottleTest(ClusterTestCase):
    def gw(self, key: str, extra: str = THROTTLE):
        users = {"alice": random_password(), "bob": random_password()}
        # One worker: the throttle is per shard, and the timings below assume one.
        return self.gateway(key, users=users, extra_config=extra, workers=1)

    def attempt(self, gw, user: str, password: str, source: str = "127.0.0.1") -> float:
        """One login; returns how long it took. Asserts that a wrong password fails."""
        started = time.monotonic()
        c = connect_from(gw.port, source)
        try:
            c.login(user, password, "app")
            ok = True
        except ProtocolError as e:
            self.assertEqual(e.sqlstate, "28P01", e)
            ok = False
        finally:
            c.close()
        self.assertEqual(ok, password == gw.users.get(user), user)
        return time.monotonic() - started

    def guess(self, gw, attempts: int) -> float:
        started = time.monotonic()
        for i in range(attempts):
            self.attempt(gw, "alice", f"guess-{i}")
        return time.monotonic() - started

    def test_guessing_is_slowed_and_other_addresses_are_not(self):
        gw = self.gw("guessing")
        # 12 guesses: 3 free, then 200 ms, 400 ms, 400 ms ... apart.
        elapsed = self.guess(gw, 12)
        self.assertGreater(elapsed, 2.5)
        # From the throttled address even a correct password waits (before the verdict).
        self.assertGreater(self.attempt(gw, "bob", gw.users["bob"]), 0.3)
        # A correct login from another address, as another user: at once.
        self.assertLess(self.attempt(gw, "bob", gw.users["bob"], source="127.0.0.2"), 0.3)
        # One line per burst (the address and the user name), not one per attempt.
        log = gw.log()
        self.assertEqual(log.count("login throttling: "), 2, log)
        self.assertIn("login throttling: 3 failed logins from 127.0.0.1;", log)
        self.assertLessEqual(log.count("authentication failed"), 3, log)
        self.assertTrue(gw.alive())

    def test_without_throttling_guessing_runs_at_full_speed(self):
        # The control: the same loop with [login] throttle = false.
        gw = self.gw("unthrottled", "[login]\nthrottle = false")
        self.assertLess(self.guess(gw, 20), 2.0)

    def test_parallel_guesses_from_one_address_queue(self):
        gw = self.gw("parallel")
        self.guess(gw, 12)  # both shards throttle 127.0.0.1 now
        # Eight connections at once, each sending its startup packet: they are answered one
        # after another, not all after one wait.
        conns = [connect_from(gw.port, "127.0.0.1") for _ in range(8)]
        started = time.monotonic()
        try:
            for c in conns:
                c.send(startup_packet({"user": "alice", "database": "app"}))
            for c in conns:
                self.assertEqual(c.read_message(timeout=20)[0], b"R")
        finally:
            for c in conns:
                c.close()
        self.assertGreater(time.monotonic() - started, 1.2)


if __name__ == "__main__":
    unittest.main()
