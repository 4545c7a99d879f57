"""Integration harness: real PostgreSQL, real certificates, the real gateway.

Used by tests/integration/test_*.py, by bench/ and by packaging/demo.sh. Standard
library only (plus psycopg where a test wants a driver). Every process started here
is registered and killed at exit, and every temp dir is removed, even when a test
fails half-way.

    with PostgresCluster() as pg:                 # initdb + pg_ctl on a free port
        pg.create_standard_roles()                # gateway_login (SCRAM), md5user, plainuser, db app
        with Gateway(pg, users={"alice": "pw"}) as gw:
            out = psql(gw.conninfo("alice"), "SELECT 1", password="pw")

Entry point for the demo: `python3 tests/integration/harness.py demo --binary PATH`.

Environment: PGB_BINARY (gateway binary; default build/tools/pgbastion), PGB_KEEP=1
keeps temp dirs for debugging, PGB_PG_BIN (default /usr/lib/postgresql/15/bin).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import string
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PGB_PG_BIN", "/usr/lib/postgresql/15/bin"))
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "build" / "tools" / "pgbastion"
PSQL = "/usr/bin/psql"

IS_ROOT = os.geteuid() == 0
PG_OS_USER = "postgres" if IS_ROOT else None  # initdb/postgres refuse to run as root

# ---------------------------------------------------------------------------
# Process and temp-dir bookkeeping: nothing outlives the Python process.
# ---------------------------------------------------------------------------
_live_procs: list[subprocess.Popen] = []
_live_clusters: list["PostgresCluster"] = []
_live_dirs: list[str] = []


def _cleanup_everything() -> None:
    for proc in list(_live_procs):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    for cluster in list(_live_clusters):
        cluster.stop(quiet=True)
    for d in list(_live_dirs):
        _rmtree(d)


atexit.register(_cleanup_everything)


def _rmtree(path: str) -> None:
    if os.environ.get("PGB_KEEP") == "1":
        print(f"harness: keeping {path}", file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)
    if path in _live_dirs:
        _live_dirs.remove(path)


def make_temp_dir(prefix: str, owner_postgres: bool = False) -> str:
    d = tempfile.mkdtemp(prefix=f"pgb-{prefix}-")
    _live_dirs.append(d)
    if owner_postgres and PG_OS_USER:
        shutil.chown(d, user=PG_OS_USER, group=PG_OS_USER)
    return d


def random_password(n: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def free_port(prefer: int | None = None) -> int:
    """A loopback TCP port nobody listens on right now (prefer one if it is free)."""
    if prefer is not None:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", prefer))
                return prefer
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def run(cmd: list[str], *, as_postgres: bool = False, check: bool = True, timeout: float = 300,
        env: dict | None = None, input: bytes | None = None, cwd: str | None = None
        ) -> subprocess.CompletedProcess:
    """Runs cmd (as the postgres OS user when we are root and as_postgres)."""
    if as_postgres and PG_OS_USER:
        cmd = ["runuser", "-u", PG_OS_USER, "--"] + cmd
    full_env = dict(os.environ)
    full_env.update(env or {})
    res = subprocess.run(cmd, capture_output=True, timeout=timeout, env=full_env, input=input,
                         cwd=cwd)
    if check and res.returncode != 0:
        raise AssertionError(
            f"command failed ({res.returncode}): {' '.join(cmd)}\n"
            f"stdout:\n{res.stdout.decode(errors='replace')[-4000:]}\n"
            f"stderr:\n{res.stderr.decode(errors='replace')[-4000:]}")
    return res


# ---------------------------------------------------------------------------
# SCRAM-SHA-256 (RFC 5802 / 7677): verifiers for the gateway config and a small
# client for raw-socket tests.
# ---------------------------------------------------------------------------
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The same format PostgreSQL stores in pg_authid.rolpassword."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# ---------------------------------------------------------------------------
# Raw protocol helpers (PostgreSQL protocol 3.0, "Message Formats").
# ---------------------------------------------------------------------------
PROTOCOL_3_0 = 196608
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


def startup_packet(params: dict[str, str], version: int = PROTOCOL_3_0) -> bytes:
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def cancel_request(pid: int, key: int) -> bytes:
    return struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid & 0xFFFFFFFF, key & 0xFFFFFFFF)


class RawConnection:
    """A plain socket speaking just enough of the protocol for bad-input tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.backend_key: tuple[int, int] | None = None
        self.parameters: dict[str, str] = {}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out waiting for {n} bytes (have {len(self.buf)})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read_byte(self, timeout: float = 10) -> bytes | None:
        """One unframed byte (the answer to SSLRequest / GSSENCRequest); None on EOF."""
        if not self._fill(1, time.monotonic() + timeout):
            return None
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def read_bytes_until_eof(self, timeout: float = 10) -> bytes:
        """Every byte until the peer closes (a reset counts as the close), unframed."""
        deadline = time.monotonic() + timeout
        while self._fill(len(self.buf) + 1, deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def read_message(self, timeout: float = 10) -> tuple[bytes, bytes] | None:
        """(type byte, body) of the next backend message; None on a clean EOF."""
        deadline = time.monotonic() + timeout
        if not self._fill(5, deadline):
            if self.buf:
                raise AssertionError(f"EOF inside a message header: {self.buf!r}")
            return None
        kind = self.buf[:1]
        (length,) = struct.unpack("!I", self.buf[1:5])
        if length < 4 or length > 1 << 30:
            raise AssertionError(f"backend sent a bad length {length} for {kind!r}")
        if not self._fill(1 + length, deadline):
            raise AssertionError(f"EOF inside a {kind!r} message")
        body = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return kind, body

    def read_until_eof(self, timeout: float = 10) -> list[tuple[bytes, bytes]]:
        """Every message until the peer closes; raises TimeoutError if it never does."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(timeout=max(0.01, deadline - time.monotonic()))
            if m is None:
                return msgs
            msgs.append(m)

    def expect(self, kind: bytes, timeout: float = 10) -> bytes:
        m = self.read_message(timeout)
        if m is None:
            raise AssertionError(f"expected {kind!r}, got EOF")
        if m[0] != kind:
            detail = parse_error(m[1]) if m[0] in (b"E", b"N") else m[1][:200]
            raise AssertionError(f"expected {kind!r}, got {m[0]!r}: {detail}")
        return m[1]

    def read_until_ready(self, timeout: float = 10) -> list[tuple[bytes, bytes]]:
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(timeout=max(0.01, deadline - time.monotonic()))
            if m is None:
                raise AssertionError(f"EOF before ReadyForQuery; got {msgs}")
            msgs.append(m)
            if m[0] == b"S":
                k, v = m[1][:-1].split(b"\0", 1)
                self.parameters[k.decode()] = v.decode()
            if m[0] == b"K":
                self.backend_key = struct.unpack("!II", m[1])
            if m[0] == b"Z":
                return msgs

    def login(self, user: str, password: str, database: str, extra: dict | None = None,
              timeout: float = 10) -> list[tuple[bytes, bytes]]:
        """Startup + SCRAM-SHA-256 (or md5/cleartext) up to ReadyForQuery."""
        params = {"user": user, "database": database}
        params.update(extra or {})
        self.send(startup_packet(params))
        return self.authenticate(user, password, timeout)

    def authenticate(self, user: str, password: str, timeout: float = 10):
        while True:
            kind, body = self.read_message(timeout) or (None, None)
            if kind is None:
                raise AssertionError("EOF during authentication")
            if kind == b"E":
                raise ProtocolError(parse_error(body))
            if kind == b"v":
                continue  # NegotiateProtocolVersion: the caller may have checked it already
            if kind != b"R":
                raise AssertionError(f"unexpected {kind!r} during authentication")
            (code,) = struct.unpack("!I", body[:4])
            if code == 0:
                return self.read_until_ready(timeout)
            if code == 3:
                self.send(message(b"p", password.encode() + b"\0"))
            elif code == 5:
                salt = body[4:8]
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + salt).hexdigest()
                self.send(message(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 10:
                mechs = body[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechs:
                    raise AssertionError(f"no SCRAM-SHA-256 in {mechs}")
                self._scram(password, timeout)
            else:
                raise AssertionError(f"unsupported auth request {code}")

    def _scram(self, password: str, timeout: float) -> None:
        nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        first_bare = f"n=,r={nonce}"
        data = ("n,," + first_bare).encode()
        self.send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data))
        body = self.expect(b"R", timeout)
        assert struct.unpack("!I", body[:4])[0] == 11, "expected AuthenticationSASLContinue"
        server_first = body[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        assert attrs["r"].startswith(nonce), "server nonce does not extend ours"
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_wo_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{first_bare},{server_first},{final_wo_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.send(message(b"p", f"{final_wo_proof},p={base64.b64encode(proof).decode()}".encode()))
        kind, body = self.read_message(timeout) or (None, None)
        if kind == b"E":
            raise ProtocolError(parse_error(body))
        assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 12, f"expected SASLFinal, got {kind!r}"
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        expected = base64.b64encode(hmac.new(server_key, auth_message, "sha256").digest()).decode()
        assert body[4:].decode() == f"v={expected}", "server signature does not verify"

    def simple_query(self, sql: str, timeout: float = 30) -> list[tuple[bytes, bytes]]:
        self.send(message(b"Q", sql.encode() + b"\0"))
        return self.read_until_ready(timeout)


class ProtocolError(Exception):
    def __init__(self, fields: dict[str, str]):
        super().__init__(f"{fields.get('S')} {fields.get('C')}: {fields.get('M')}")
        self.fields = fields

    @property
    def sqlstate(self) -> str | None:
        return self.fields.get("C")


def parse_error(body: bytes) -> dict[str, str]:
    """ErrorResponse / NoticeResponse body -> {field code: value}, e.g. {'C': '08P01'}."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def parse_negotiate_protocol_version(body: bytes) -> tuple[int, list[str]]:
    newest_minor, count = struct.unpack("!II", body[:8])
    names = [n.decode() for n in body[8:].split(b"\0")[:count]]
    return newest_minor, names


# ---------------------------------------------------------------------------
# Certificates: a CA and a server certificate for localhost / 127.0.0.1.
# ---------------------------------------------------------------------------
class Certificates:
    def __init__(self, name: str = "certs"):
        self.dir = make_temp_dir(name)
        d = Path(self.dir)
        self.ca_key, self.ca_crt = d / "ca.key", d / "ca.crt"
        self.server_key, self.server_crt = d / "server.key", d / "server.crt"
        ext = d / "server.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                       "basicConstraints=CA:FALSE\n"
                       "keyUsage=digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n")
        run(["openssl", "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "2",
             "-subj", f"/CN=pgbastion test CA {name}", "-keyout", str(self.ca_key),
             "-out", str(self.ca_crt)])
        run(["openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=localhost",
             "-keyout", str(self.server_key), "-out", str(d / "server.csr")])
        run(["openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(self.ca_crt),
             "-CAkey", str(self.ca_key), "-CAcreateserial", "-days", "2",
             "-extfile", str(ext), "-out", str(self.server_crt)])
        os.chmod(self.server_key, 0o600)

    def copy_server_pair(self, dest_dir: str, owner_postgres: bool = False) -> tuple[str, str]:
        crt = os.path.join(dest_dir, "server.crt")
        key = os.path.join(dest_dir, "server.key")
        shutil.copy(self.server_crt, crt)
        shutil.copy(self.server_key, key)
        os.chmod(key, 0o600)
        if owner_postgres and PG_OS_USER:
            for p in (crt, key):
                shutil.chown(p, user=PG_OS_USER, group=PG_OS_USER)
        return crt, key

    def cleanup(self) -> None:
        _rmtree(self.dir)


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
class PostgresCluster:
    """A throwaway PostgreSQL 15: initdb in a temp dir, loopback port, fsync off.

    The superuser is `postgres`, reachable without a password over the unix socket
    in the temp dir (trust for `local`; the dir is 0700 so only root and the
    postgres user can reach it). TCP logins need passwords, per role:
      gateway_login  SCRAM-SHA-256 (the role the gateway logs in as; owns db app)
      md5user        md5 (stored as an md5 hash; hba method md5)
      plainuser      cleartext (hba method `password`)
    With ssl_certs and hostssl_only, TCP logins are accepted only over TLS.
    """

    def __init__(self, *, ssl_certs: Certificates | None = None, hostssl_only: bool = False,
                 max_connections: int = 1100, port: int | None = None, extra_conf: str = ""):
        self.ssl_certs = ssl_certs
        self.hostssl_only = hostssl_only
        self.max_connections = max_connections
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.dir: str | None = None
        self.running = False
        self.passwords: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> "PostgresCluster":
        self.dir = make_temp_dir("pg", owner_postgres=True)
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = self.dir
        self.logfile = os.path.join(self.dir, "postgres.log")
        pwfile = os.path.join(self.dir, "su.pw")
        # initdb --auth applies to both local and host lines; we rewrite pg_hba anyway.
        run([str(PG_BIN / "initdb"), "-D", self.data, "-U", "postgres", "-E", "UTF8",
             "--locale=C", "--auth=scram-sha-256", "--pwfile", self._write_pg_file(pwfile, random_password()),
             "-N"], as_postgres=True, timeout=120)
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            f"max_connections = {self.max_connections}",
            # 1,100 connections need more lock/semaphore room than the default
            # shared memory but not much: keep buffers small on a 2-core CI box.
            "shared_buffers = 128MB",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "max_wal_size = 2GB",
            "log_min_messages = warning",
            "log_connections = off",
            "password_encryption = 'scram-sha-256'",
            "timezone = 'UTC'",
            "datestyle = 'ISO, YMD'",
        ]
        if self.ssl_certs:
            crt, key = self.ssl_certs.copy_server_pair(self.data, owner_postgres=True)
            conf += ["ssl = on", f"ssl_cert_file = '{crt}'", f"ssl_key_file = '{key}'"]
        conf.append(self.extra_conf)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# pgbastion test harness\n" + "\n".join(conf) + "\n")
        host = "hostssl" if self.hostssl_only else "host"
        hba = [
            "local all all trust",
            f"{host} all md5user 127.0.0.1/32 md5",
            f"{host} all plainuser 127.0.0.1/32 password",
            f"{host} all all 127.0.0.1/32 scram-sha-256",
        ]
        if self.hostssl_only:
            hba.append("hostnossl all all 127.0.0.1/32 reject")
        self._write_pg_file(os.path.join(self.data, "pg_hba.conf"), "\n".join(hba) + "\n")
        _live_clusters.append(self)
        self.running = True
        try:
            run([str(PG_BIN / "pg_ctl"), "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                 "start"], as_postgres=True, timeout=90)
        except AssertionError:
            sys.stderr.write(self.log_tail())
            raise
        return self

    def stop(self, quiet: bool = False) -> None:
        if self.running:
            self.running = False
            run([str(PG_BIN / "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "-t", "60",
                 "stop"], as_postgres=True, check=not quiet, timeout=90)
        if self in _live_clusters:
            _live_clusters.remove(self)
        if self.dir:
            _rmtree(self.dir)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _write_pg_file(self, path: str, text: str) -> str:
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        if PG_OS_USER:
            shutil.chown(path, user=PG_OS_USER, group=PG_OS_USER)
        return path

    def log_tail(self, n: int = 8000) -> str:
        try:
            return Path(self.logfile).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- SQL as superuser -------------------------------------------------------
    def sql(self, query: str, db: str = "postgres", timeout: float = 120) -> str:
        """Runs query as superuser over the unix socket; returns unaligned tuples-only output."""
        res = run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                   "-p", str(self.port), "-U", "postgres", "-d", db, "-f", "-"],
                  input=query.encode(), timeout=timeout)
        return res.stdout.decode().strip()

    def create_role(self, name: str, password: str, *, encryption: str = "scram-sha-256",
                    attrs: str = "LOGIN") -> None:
        # The password travels on stdin, never in a command line.
        self.sql(f"SET password_encryption = '{encryption}';\n"
                 f"CREATE ROLE {name} {attrs} PASSWORD '{password}';")
        self.passwords[name] = password

    def create_standard_roles(self, database: str = "app") -> None:
        self.create_role("gateway_login", random_password())
        self.create_role("md5user", random_password(), encryption="md5")
        self.create_role("plainuser", random_password())
        self.sql(f"CREATE DATABASE {database} OWNER gateway_login;")
        self.sql("GRANT CREATE, USAGE ON SCHEMA public TO md5user, plainuser;", db=database)
        self.sql(f"GRANT ALL ON DATABASE {database} TO md5user, plainuser;")

    def conninfo(self, user: str = "gateway_login", dbname: str = "app", **kw) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname, "user": user}
        parts.update({k: str(v) for k, v in kw.items()})
        return " ".join(f"{k}={_quote_conninfo(v)}" for k, v in parts.items())

    def env(self, user: str = "gateway_login") -> dict[str, str]:
        return {"PGPASSWORD": self.passwords[user], "PGSSLMODE": "disable"}


def _quote_conninfo(v: str) -> str:
    if v and all(c not in v for c in " '\\"):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------
_SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer", "terminate called", "Assertion `")


def _sanitizer_report(text: str, limit: int = 12000) -> str:
    """From the first sanitizer (or abort) marker in a log to the end, at most limit chars."""
    starts = [i for i in (text.find(m) for m in _SANITIZER_MARKERS) if i >= 0]
    if not starts:
        return ""
    begin = text.rfind("\n", 0, min(starts)) + 1
    return text[begin:begin + limit]


def sanitized(pid: int) -> bool:
    """Whether the process runs with ASan (the CI's second pass): its allocator keeps freed
    memory in a quarantine, so resident sizes grow where a release build's do not."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def gateway_binary() -> str:
    """The gateway under test. A missing binary is a failure, never a skip."""
    path = os.environ.get("PGB_BINARY") or str(DEFAULT_BINARY)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"gateway binary {path} does not exist (set PGB_BINARY or build first)")
    return path


class Gateway:
    """Writes a config for `pgbastion serve`, runs it, and checks it shuts down cleanly.

    targets: list of dicts with the [[target]] keys; `password` (written to a 0600
    file) replaces password_file. Default: one target "app" -> cluster db app as
    gateway_login. users: {name: password}; verifiers are computed here (or by
    `pgbastion scram-verifier` with verifier_tool=True). user_groups: {name: [group, ...]}
    for [[user]] groups. scopes: list of dicts with the [[scope]] keys (lists and inline
    tables allowed); default: one admin scope for every user, as a gateway without a
    policy under test needs (deny by default: no scope, no access).
    """

    def __init__(self, cluster: PostgresCluster | None, *, users: dict[str, str] | None = None,
                 targets: list[dict] | None = None, listeners: list[dict] | None = None,
                 workers: int = 2, auth_timeout: str = "60s", shutdown_timeout: str = "10s",
                 max_message_size: int | None = None, log_level: str = "info",
                 issuers: list[str] | None = None,
                 port: int | None = None, binary: str | None = None, verifier_tool: bool = False,
                 extra_env: dict | None = None, scopes: list[dict] | None = None,
                 user_groups: dict[str, list[str]] | None = None, extra_config: str = "",
                 gateway_settings: dict | None = None):
        self.cluster = cluster
        self.users = users if users is not None else {"alice": random_password()}
        if targets is None:
            assert cluster is not None
            targets = [{"name": "app", "host": "127.0.0.1", "port": cluster.port,
                        "database": "app", "user": "gateway_login",
                        "password": cluster.passwords["gateway_login"], "tls": "disable"}]
        self.targets = targets
        self.port = port or free_port()
        self.listeners = listeners or [{"address": "127.0.0.1", "port": self.port, "tls": "disabled"}]
        self.workers = workers
        self.issuers = issuers or []  # [[issuer]] tables as TOML text (OidcProvider.issuer_toml)
        self.auth_timeout = auth_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_message_size = max_message_size
        self.log_level = log_level
        self.binary = binary
        self.verifier_tool = verifier_tool
        self.extra_env = extra_env or {}
        self.scopes = scopes if scopes is not None else [
            {"name": "admin", "subjects": ["*"], "profile": "admin"}]
        self.user_groups = user_groups or {}
        self.extra_config = extra_config  # raw TOML appended to the file ([audit], ...)
        self.gateway_settings = gateway_settings or {}  # more [gateway] keys
        self.proc: subprocess.Popen | None = None
        self.dir: str | None = None

    def _verifier(self, password: str) -> str:
        if not self.verifier_tool:
            return scram_verifier(password)
        res = run([self.binary, "scram-verifier"], input=password.encode() + b"\n", timeout=30)
        return res.stdout.decode().strip()

    def write_config(self) -> str:
        self.dir = self.dir or make_temp_dir("gw")
        lines = ["[gateway]", f"workers = {self.workers}", f'auth_timeout = "{self.auth_timeout}"',
                 f'shutdown_timeout = "{self.shutdown_timeout}"', f'log_level = "{self.log_level}"']
        if self.max_message_size is not None:
            lines.append(f"max_message_size = {self.max_message_size}")
        lines += [f"{k} = {_toml(v)}" for k, v in self.gateway_settings.items()]
        for lst in self.listeners:
            lines += ["", "[[listener]]"] + [f"{k} = {_toml(v)}" for k, v in lst.items()]
        for t in self.targets:
            t = dict(t)
            if "password" in t:
                pw_file = os.path.join(self.dir, f"{t['name']}.password")
                fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(t.pop("password") + "\n")
                os.chmod(pw_file, 0o600)
                t["password_file"] = os.path.basename(pw_file)
            lines += ["", "[[target]]"] + [f"{k} = {_toml(v)}" for k, v in t.items()]
        for name, pw in self.users.items():
            lines += ["", "[[user]]", f"name = {_toml(name)}",
                      f"scram_verifier = {_toml(self._verifier(pw))}"]
            if name in self.user_groups:
                lines.append(f"groups = {_toml(self.user_groups[name])}")
        for issuer in self.issuers:
            lines += ["", issuer.rstrip("\n")]
        for scope in self.scopes:
            lines += ["", "[[scope]]"] + [f"{k} = {_toml(v)}" for k, v in scope.items()]
        if self.extra_config:
            lines += ["", self.extra_config]
        self.config = os.path.join(self.dir, "pgbastion.toml")
        Path(self.config).write_text("\n".join(lines) + "\n")
        return self.config

    def start(self, wait: float = 20) -> "Gateway":
        self.binary = self.binary or gateway_binary()
        self.write_config()
        self.logfile = os.path.join(self.dir, "pgbastion.log")
        log = open(self.logfile, "wb")
        env = dict(os.environ)
        env.update(self.extra_env)
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
        log.close()
        _live_procs.append(self.proc)
        try:
            wait_for_port(self.listeners[0]["port"], wait, self.proc)
        except AssertionError:
            self.kill()
            raise AssertionError(f"gateway did not start:\n{self.log()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The log's tail; a sanitizer's report (which ends the log) comes first, whole, so
        that output cut in the middle (as CI shows it) still names what went wrong."""
        try:
            text = Path(self.logfile).read_text(errors="replace")
        except (OSError, AttributeError):
            return ""
        report = _sanitizer_report(text)
        if report:
            return f"{report}\n--- the log before it (tail) ---\n{text[-8000:]}"
        return text[-20000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, wait, and assert a clean exit (code 0); prints the log on failure."""
        if self.proc is None:
            self._cleanup_dir()
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is not None:
                raise AssertionError(f"gateway had already exited with {proc.returncode}:\n{self.log()}")
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=_seconds(self.shutdown_timeout) + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                raise AssertionError(f"gateway did not exit after SIGTERM:\n{self.log()}")
            if rc != 0:
                raise AssertionError(f"gateway exited with {rc} after SIGTERM:\n{self.log()}")
        finally:
            if proc in _live_procs:
                _live_procs.remove(proc)
            self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self.dir:
            _rmtree(self.dir)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def conninfo(self, user: str = "alice", dbname: str = "app", **kw) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname, "user": user,
                 "sslmode": "disable"}
        parts.update({k: str(v) for k, v in kw.items()})
        return " ".join(f"{k}={_quote_conninfo(v)}" for k, v in parts.items())

    def env(self, user: str = "alice") -> dict[str, str]:
        return {"PGPASSWORD": self.users[user], "PGSSLMODE": "disable"}


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _seconds(duration: str) -> float:
    d = duration.strip()
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60)):
        if d.endswith(suffix):
            return float(d[: -len(suffix)]) * mult
    return float(d)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------
def psql(conninfo: str, sql: str | None = None, *, password: str | None = None,
         file: str | None = None, args: list[str] | None = None, check: bool = True,
         timeout: float = 300, cwd: str | None = None, input: bytes | None = None
         ) -> subprocess.CompletedProcess:
    """Runs psql -X against conninfo; the password goes in PGPASSWORD, never argv."""
    cmd = [PSQL, "-X", "-d", conninfo] + (args or [])
    if sql is not None:
        cmd += ["-c", sql]
    if file is not None:
        cmd += ["-f", file]
    env = {"PGPASSWORD": password} if password is not None else {}
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return run(cmd, env=env, check=check, timeout=timeout, cwd=cwd, input=input)


def pgbench(args: list[str], *, host: str = "127.0.0.1", port: int, user: str, dbname: str,
            password: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(PG_BIN / "pgbench"), "-h", host, "-p", str(port), "-U", user] + args + [dbname]
    return run(cmd, env={"PGPASSWORD": password, "PGSSLMODE": "disable"}, check=check, timeout=timeout)


# The fields of a completion record that describe its statement's outcome.
_COMPLETION_FIELDS = ("end", "duration_us", "outcome", "command_tag", "rows", "sqlstate",
                      "message", "bytes_out", "masked_values")


def audit_statements(records: list[dict]) -> list[dict]:
    """The trail's statement records, each allowed one with its completion's outcome fields
    merged in (statements are written before the database sees them, completions after).
    Asserts the write-ahead shape: every completion follows its statement, every statement
    the database was sent has exactly one completion, refusals have none."""
    by_id: dict[tuple, dict] = {}
    statements = []
    for r in records:
        key = (r.get("shard"), r.get("session"), r.get("statement_id"))
        if r["kind"] == "statement":
            assert r.get("statement_id"), f"statement record without statement_id: {r}"
            assert key not in by_id, f"statement_id used twice: {r}"
            merged = dict(r)
            by_id[key] = merged
            statements.append(merged)
        elif r["kind"] == "completion":
            merged = by_id.get(key)
            assert merged is not None, f"completion before (or without) its statement: {r}"
            # "approved": a statement held for approval, recorded when it was forwarded.
            assert merged["decision"] in ("allow", "approved"), f"completion of a refusal: {r}"
            assert "outcome" not in merged, f"second completion: {r}"
            for field in _COMPLETION_FIELDS:
                if field in r:
                    merged[field] = r[field]
    for merged in statements:
        if merged["decision"] in ("allow", "approved"):
            assert "outcome" in merged, f"statement with no completion: {merged}"
    return statements


def raise_nofile_limit(want: int = 16384) -> int:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------
# unittest base: one cluster per test class, gateways started lazily (so the
# direct half of a test runs even before the binary exists), all torn down by
# class cleanups that run even when setUpClass fails half-way.
# ---------------------------------------------------------------------------
import unittest  # noqa: E402


class ClusterTestCase(unittest.TestCase):
    cluster_kwargs: dict = {}

    @classmethod
    def setUpClass(cls):
        cls._gateways: dict[str, Gateway] = {}
        cls.pg = PostgresCluster(**cls.cluster_kwargs)
        cls.addClassCleanup(cls.pg.stop, quiet=True)
        cls.pg.start()
        cls.pg.create_standard_roles()

    @classmethod
    def gateway(cls, key: str = "default", **kwargs) -> Gateway:
        """The gateway named key, started on first use with kwargs (see Gateway)."""
        gw = cls._gateways.get(key)
        if gw is None:
            gw = Gateway(cls.pg, **kwargs)
            cls._gateways[key] = gw
            cls.addClassCleanup(gw.stop)
            try:
                gw.start()
            except AssertionError as e:
                gw.start_error = str(e)
                raise
        if getattr(gw, "start_error", None):
            raise AssertionError(f"gateway {key} failed to start earlier: {gw.start_error}")
        if not gw.alive():
            raise AssertionError(f"gateway {key} is not running:\n{gw.log()}")
        return gw

    def tearDown(self):
        for key, gw in self._gateways.items():
            if gw.proc is not None and not gw.alive():
                self.fail(f"gateway {key} died (exit {gw.proc.returncode}):\n{gw.log()}")

    def direct(self, user: str = "gateway_login", dbname: str = "app", **kw) -> str:
        """Conninfo for a direct connection (no password: pass it via env or kwarg)."""
        kw.setdefault("sslmode", "disable")
        return self.pg.conninfo(user, dbname, **kw)


# ---------------------------------------------------------------------------
# Demo: packaging/demo.sh runs `harness.py demo`.
# ---------------------------------------------------------------------------
def demo(binary: str) -> int:
    def say(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster = gw = certs = None
    try:
        say("starting a throwaway PostgreSQL 15")
        cluster = PostgresCluster(max_connections=200).start()
        cluster.create_standard_roles("app")
        cluster.sql("CREATE TABLE demo (id int PRIMARY KEY, name text, email text,"
                    " created timestamptz DEFAULT now());"
                    "INSERT INTO demo (id, name, email) VALUES (1, 'ada', 'ada@example.com'),"
                    " (2, 'grace', 'grace@example.com'), (3, 'linus', 'linus@example.org');"
                    "ALTER TABLE demo OWNER TO gateway_login;", db="app")
        # An agent's login: a token signed by a demo issuer's key (made here with openssl;
        # a real deployment points [[issuer]] at its identity provider), over TLS.
        certs = Certificates("demo")
        issuer_key = os.path.join(certs.dir, "demo-issuer.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", issuer_key])
        jwks = os.path.join(certs.dir, "demo-issuer.jwks.json")
        Path(jwks).write_bytes(run([binary, "token", "jwks", "--key", issuer_key]).stdout)
        issuer = "https://demo-issuer.pgbastion.local"
        token = run([binary, "token", "mint", "--key", issuer_key, "--issuer", issuer,
                     "--audience", "pgbastion", "--subject", "demo-agent", "--groups", "agents",
                     "--ttl", "1h"]).stdout.decode().strip()
        password = random_password(16)
        port = free_port(prefer=6432)
        # Approvals: the read-write scope's DDL and destructive statements are held on the
        # wire until someone approves them through the admin socket (docs/approvals.md).
        admin_socket = os.path.join(certs.dir, "admin.sock")
        control_port = free_port(prefer=9432)
        approvals = "\n".join([
            "[control]", 'address = "127.0.0.1"', f"port = {control_port}",
            f'admin_socket = "{admin_socket}"', "", "[approvals]",
            f'store = "{os.path.join(certs.dir, "approvals.db")}"', 'timeout = "5m"',
            f'approve_url = "http://127.0.0.1:{control_port}/v1/approvals"'])
        gw = Gateway(cluster, users={"demo": password}, port=port, binary=binary,
                     extra_config=approvals,
                     verifier_tool=True, workers=os.cpu_count() or 2,
                     listeners=[{"address": "127.0.0.1", "port": port, "tls": "optional",
                                 "tls_cert": str(certs.server_crt),
                                 "tls_key": str(certs.server_key)}],
                     issuers=["\n".join(["[[issuer]]", 'name = "demo"', f'issuer = "{issuer}"',
                                         'audience = "pgbastion"', f'jwks_file = "{jwks}"'])],
                     scopes=[{"name": "agents", "sources": ["issuer:demo"], "groups": ["agents"],
                              "profile": "read-write",
                              "mask": [{"columns": ["email"], "method": "partial", "keep": 4}]},
                             {"name": "operator", "sources": ["local"], "subjects": ["demo"],
                              "profile": "admin"}])
        say(f"starting the gateway on 127.0.0.1:{gw.port} (PostgreSQL on {cluster.port})")
        gw.start()
        say(f"gateway log: {gw.logfile}; Ctrl-C stops everything and removes the temp files")
        say(f"the token below is for demo-agent (group agents, scope read-write, demo.email "
            f"masked) and expires in 1h; the operator logs in with a password and sees every "
            f"value: user=demo password={password}")
        print(f'psql "host=127.0.0.1 port={gw.port} dbname=app user=demo-agent sslmode=require '
              f'password={token}"', flush=True)
        say("try `DELETE FROM demo;` as demo-agent: it is held for approval (read-write's "
            "destructive rule); the NOTICE names the request, and another terminal approves it:")
        say(f"  {binary} approvals list --socket {admin_socket}")
        say(f"  {binary} approvals approve REQUEST_ID --as you --reason ok --socket {admin_socket}")
        while not stop["now"]:
            if not gw.alive():
                say(f"the gateway exited unexpectedly:\n{gw.log()}")
                return 1
            time.sleep(0.2)
        say("stopping")
        return 0
    finally:
        if gw is not None:
            try:
                gw.stop()
            except AssertionError as e:
                say(str(e))
        if cluster is not None:
            cluster.stop(quiet=True)
        if certs is not None:
            certs.cleanup()
        _cleanup_everything()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="throwaway PostgreSQL + gateway; prints a psql line")
    d.add_argument("--binary", default=os.environ.get("PGB_BINARY") or str(DEFAULT_BINARY))
    ns = ap.parse_args()
    if ns.cmd == "demo":
        sys.exit(demo(ns.binary))
