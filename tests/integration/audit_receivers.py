"""Small audit receivers that test_audit_sinks.py runs as processes, so that a test can kill one
(SIGKILL, as a crash) and start it again on the same port. Standard library only.

  python3 audit_receivers.py syslog --port P --out FILE
      RFC 5424 over TCP with RFC 6587 octet counting ("<length> <message>"); appends the JSON
      part of every message it reads to FILE, one line each, as it reads it (duplicates
      included: the test counts them).
  python3 audit_receivers.py http --port P --out FILE --keys FILE [--lose-answer-every N]
      An HTTP collector: POST of a JSON array of records. It deduplicates by the
      Idempotency-Key header, as a collector should: a key it has stored is answered 200 and
      not stored again (counted in KEYS.dups). A batch's key is written to FILE in the same
      write as its records (a line {"idempotency_key": ...} after them), so a SIGKILL cannot
      keep the records and lose the key; keys survive a restart by being read back from FILE.
      --lose-answer-every N stores every Nth new batch and then closes the connection without
      an answer: the "stored, but the answer was lost" case.

Both print "ready" on stdout once they listen.
"""

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def append(path: str, text: str) -> None:
    # One write per call (O_APPEND): what was written survives a SIGKILL.
    with open(path, "a") as f:
        f.write(text)


def serve_syslog(port: int, out: str) -> None:
    lock = threading.Lock()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            buffer = b""
            while True:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                lines = []
                while True:
                    space = buffer.find(b" ")
                    if space < 0:
                        break
                    length = int(buffer[:space])
                    if len(buffer) < space + 1 + length:
                        break
                    message = buffer[space + 1: space + 1 + length].decode()
                    buffer = buffer[space + 1 + length:]
                    if not message.startswith("<110>1 ") or " audit - {" not in message:
                        raise ValueError(f"not an RFC 5424 audit message: {message[:200]}")
                    lines.append(message[message.index(" audit - {") + len(" audit - "):] + "\n")
                if lines:
                    with lock:
                        append(out, "".join(lines))

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("127.0.0.1", port), Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


def serve_http(port: int, out: str, keys_path: str, lose_every: int) -> None:
    lock = threading.Lock()
    keys = set()
    if os.path.exists(out):
        for line in open(out).read().splitlines():
            if line.startswith('{"idempotency_key":'):
                keys.add(json.loads(line)["idempotency_key"])
    state = {"new_batches": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Idempotency-Key")
            if not key or self.headers.get("Content-Type") != "application/json":
                self.answer(400)
                return
            records = json.loads(body)
            with lock:
                if key in keys:
                    append(keys_path + ".dups", key + "\n")
                    self.answer(200)
                    return
                append(out, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
                       + json.dumps({"idempotency_key": key}) + "\n")
                keys.add(key)
                state["new_batches"] += 1
                lose = lose_every > 0 and state["new_batches"] % lose_every == 0
            if lose:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.answer(200)

        def answer(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("127.0.0.1", port), Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["syslog", "http"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--keys")
    parser.add_argument("--lose-answer-every", type=int, default=0)
    args = parser.parse_args()
    if args.kind == "syslog":
        serve_syslog(args.port, args.out)
    else:
        serve_http(args.port, args.out, args.keys, args.lose_answer_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
