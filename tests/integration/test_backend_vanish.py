"""A database that vanishes mid-query.

PostgreSQL itself always says goodbye (FATAL) before closing, so a vanishing
server is played by a small scripted server on loopback: it logs the gateway in
(trust), answers the first Query partly, then drops the connection. The
gateway must tell the client with FATAL 08006 when the stream is at a message
boundary, close cleanly when it is not (nothing may be spliced into a half
message), and keep serving other sessions.
"""

import socket
import struct
import threading
import unittest

from harness import ClusterTestCase, Gateway, RawConnection, message, parse_error


def read_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("peer closed")
        out += chunk
    return out


class VanishingServer:
    """Accepts connections; each logs in with trust, then on the first Query
    sends `reply` and closes the socket."""

    def __init__(self, reply: bytes):
        self.reply = reply
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(30)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()
        except OSError:
            return

    def _session(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                length = struct.unpack("!I", read_exact(conn, 4))[0]
                read_exact(conn, length - 4)  # StartupMessage
                conn.sendall(message(b"R", struct.pack("!I", 0))
                             + message(b"S", b"server_version\x0015.0\x00")
                             + message(b"K", struct.pack("!II", 4242, 99))
                             + message(b"Z", b"I"))
                kind = read_exact(conn, 1)
                length = struct.unpack("!I", read_exact(conn, 4))[0]
                read_exact(conn, length - 4)
                if kind == b"Q":
                    conn.sendall(self.reply)
            except (OSError, ConnectionError):
                pass

    def close(self) -> None:
        self.listener.close()


ROW_DESCRIPTION = message(b"T", struct.pack("!H", 1) + b"x\x00" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0))


class BackendVanishTest(ClusterTestCase):
    def vanishing_gateway(self, reply: bytes) -> Gateway:
        server = VanishingServer(reply)
        self.addCleanup(server.close)
        return self.gateway(key=f"vanish{server.port}", targets=[
            {"name": "vanish", "host": "127.0.0.1", "port": server.port, "database": "x",
             "user": "nobody", "tls": "disable"},
            {"name": "app", "host": "127.0.0.1", "port": self.pg.port, "database": "app",
             "user": "gateway_login", "password": self.pg.passwords["gateway_login"],
             "tls": "disable"},
        ])

    def still_serves(self, gw: Gateway) -> None:
        with RawConnection(gw.port) as c:
            c.login("alice", gw.users["alice"], "app")
            c.send(message(b"Q", b"SELECT 1\0"))
            self.assertIn(b"D", [k for k, _ in c.read_until_ready()])

    def test_vanish_at_message_boundary(self):
        gw = self.vanishing_gateway(ROW_DESCRIPTION)
        with RawConnection(gw.port) as c:
            c.login("alice", gw.users["alice"], "vanish")
            c.send(message(b"Q", b"SELECT x\0"))
            msgs = c.read_until_eof(timeout=10)
        self.assertEqual([k for k, _ in msgs], [b"T", b"E"])
        fields = parse_error(msgs[-1][1])
        self.assertEqual((fields["S"], fields["C"]), ("FATAL", "08006"), fields)
        self.still_serves(gw)

    def test_vanish_mid_message(self):
        # A DataRow that announces 100 bytes and delivers 10.
        half_row = b"D" + struct.pack("!I", 100) + b"\x00\x01" + b"\x00" * 6
        gw = self.vanishing_gateway(ROW_DESCRIPTION + half_row)
        with RawConnection(gw.port) as c:
            c.login("alice", gw.users["alice"], "vanish")
            c.send(message(b"Q", b"SELECT x\0"))
            c.sock.settimeout(10)
            data = b""
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        # Exactly what the server sent, then EOF: no ErrorResponse spliced in.
        self.assertEqual(data, ROW_DESCRIPTION + half_row)
        self.still_serves(gw)


if __name__ == "__main__":
    unittest.main()
