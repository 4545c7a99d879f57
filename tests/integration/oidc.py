"""A real OpenID Connect provider for the integration tests.

Starts tests/identity_provider/provider.mjs (the npm package oidc-provider, installed by
packaging/install-deps.sh) on a free loopback port over HTTPS, with a client-credentials
client issuing JWT access tokens for the gateway's audience.

    certs = Certificates("oidc")
    with OidcProvider(certs, groups=["read-only"]) as idp:
        token = idp.token()              # client credentials grant
        idp.rotate(keep_old=False)       # a new signing key; the old one leaves the JWKS
        print(idp.issuer_toml("corp"))   # an [[issuer]] table for the gateway's config
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from harness import REPO_ROOT, Certificates, _live_procs, free_port, random_password

PROVIDER_DIR = REPO_ROOT / "tests" / "identity_provider"
NODE = os.environ.get("PGB_NODE", "node")


class OidcProvider:
    def __init__(self, certs: Certificates, *, alg: str = "ES256", audience: str = "pgbastion",
                 client_id: str = "ci-bot", ttl: int = 300, groups: list[str] | None = None,
                 run_id: str | None = None):
        self.certs = certs
        self.alg = alg
        self.audience = audience
        self.client_id = client_id
        self.client_secret = random_password()
        self.ttl = ttl
        self.groups = groups
        self.run_id = run_id
        self.port = free_port()
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.kids: list[str] = []

    def start(self) -> "OidcProvider":
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise AssertionError(f"{PROVIDER_DIR}/node_modules is missing: run packaging/install-deps.sh")
        cmd = [NODE, str(PROVIDER_DIR / "provider.mjs"), "serve", "--port", str(self.port),
               "--cert", str(self.certs.server_crt), "--key", str(self.certs.server_key),
               "--client-id", self.client_id, "--client-secret", self.client_secret,
               "--audience", self.audience, "--alg", self.alg, "--ttl", str(self.ttl)]
        if self.groups:
            cmd += ["--groups", ",".join(self.groups)]
        if self.run_id:
            cmd += ["--run-id", self.run_id]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _live_procs.append(self.proc)
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            if line.startswith("READY "):
                self.kids = json.loads(line[len("READY "):])["kids"]
                return self
        raise AssertionError(f"identity provider did not start (exit {self.proc.poll()}, last line {line!r})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> "OidcProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca_crt))

    def token(self) -> str:
        """An access token from the client credentials grant."""
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        body = "grant_type=client_credentials&scope=db&resource=urn%3Apgbastion%3Agateway"
        request = urllib.request.Request(
            f"{self.issuer}/token", data=body.encode(), method="POST",
            headers={"Authorization": f"Basic {basic}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, context=self._context(), timeout=30) as response:
            return json.load(response)["access_token"]

    def rotate(self, keep_old: bool = True) -> list[str]:
        """A fresh signing key; with keep_old=False the old keys leave the JWKS."""
        request = urllib.request.Request(
            f"{self.issuer}/__admin/rotate", data=json.dumps({"keep_old": keep_old}).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self._context(), timeout=30) as response:
            self.kids = json.load(response)["kids"]
        return self.kids

    def issuer_toml(self, name: str, **extra: str) -> str:
        """An [[issuer]] table using OIDC discovery with this provider's CA."""
        lines = ["[[issuer]]", f'name = "{name}"', f'issuer = "{self.issuer}"',
                 f'audience = "{self.audience}"', f'ca_file = "{self.certs.ca_crt}"']
        lines += [f"{key} = {value}" for key, value in extra.items()]
        return "\n".join(lines) + "\n"


def jwt_header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
