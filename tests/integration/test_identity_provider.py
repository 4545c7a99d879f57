"""Token identity against a real OpenID Connect provider (npm oidc-provider on loopback).

Through `pgbastion token verify`, which runs the gateway's own code path: OIDC discovery
over HTTPS with a private CA, the JWKS fetch, signature and claims checks, and the claims
mapping. Key rotation at the provider: new tokens verify after it; a removed key stops
verifying. A provider that is down, the wrong CA, the wrong audience, a tampered token
and an expired one are each refused with the check that failed.
(Connecting through the gateway with these tokens is tested with the session wiring.)
"""

import json
import os
import subprocess
import time
import unittest
from pathlib import Path

from harness import Certificates, gateway_binary, make_temp_dir
from oidc import OidcProvider, jwt_header


def write_config(directory: str, name: str, issuers: str) -> str:
    path = Path(directory) / name
    path.write_text('[[listener]]\nport = 6432\n\n[[target]]\nname = "app"\nhost = "127.0.0.1"\n'
                    'user = "pgbastion"\n\n[[scope]]\nname = "agents"\nsubjects = ["*"]\n'
                    'profile = "read-only"\n\n' + issuers)
    return str(path)


def verify(config: str, token: str, user: str | None = None) -> tuple[int, dict, str]:
    cmd = [gateway_binary(), "token", "verify", "--config", config]
    if user is not None:
        cmd += ["--user", user]
    res = subprocess.run(cmd, input=token + "\n", capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout) if res.stdout.strip() else {}
    return res.returncode, out, res.stderr


class IdentityProviderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates("oidc")
        cls.addClassCleanup(cls.certs.cleanup)
        cls.other_ca = Certificates("oidc-other")
        cls.addClassCleanup(cls.other_ca.cleanup)
        cls.idp = OidcProvider(cls.certs, groups=["read-only", "ci"], run_id="run-42").start()
        cls.addClassCleanup(cls.idp.stop)
        cls.dir = make_temp_dir("oidc-config")
        cls.config = write_config(cls.dir, "gw.toml", cls.idp.issuer_toml(
            "test-idp", run_id_claim='"run_id"', keep_claims='["scope"]'))

    def assertRefused(self, result, check, sqlstate, reason):
        rc, out, err = result
        self.assertEqual(rc, 1, (out, err))
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["check"], check, out)
        self.assertEqual(out["sqlstate"], sqlstate, out)
        self.assertIn(reason, out["reason"])
        return out

    def test_check_config_accepts_the_issuer(self):
        res = subprocess.run([gateway_binary(), "check-config", "--config", self.config],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("1 issuer", res.stdout)

    def test_client_credentials_token_verifies_and_maps(self):
        token = self.idp.token()
        rc, out, err = verify(self.config, token, user="ci-bot")
        self.assertEqual(rc, 0, (out, err))
        self.assertTrue(out["ok"])
        self.assertEqual(out["issuer"], "test-idp")
        self.assertEqual(out["kid"], jwt_header(token)["kid"])
        identity = out["identity"]
        self.assertEqual(identity["method"], "token")
        self.assertEqual(identity["subject"], "ci-bot")  # client credentials: sub = client id
        self.assertEqual(identity["client_id"], "ci-bot")
        self.assertEqual(identity["groups"], ["read-only", "ci"])
        self.assertEqual(identity["run_id"], "run-42")
        self.assertEqual(identity["issuer"], self.idp.issuer)
        self.assertEqual(identity["claims"], {"scope": "db"})
        self.assertNotIn(token, out.__repr__())

    def test_startup_user_must_match(self):
        self.assertRefused(verify(self.config, self.idp.token(), user="someone-else"), "user",
                           "28000", 'user "someone-else" does not match the token\'s subject "ci-bot"')

    def test_tampered_token(self):
        token = self.idp.token()
        head, payload, signature = token.split(".")
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        self.assertRefused(verify(self.config, f"{head}.{payload}.{flipped}"), "signature", "28P01",
                           "signature verification failed")

    def test_wrong_audience(self):
        config = write_config(self.dir, "other-aud.toml", self.idp.issuer_toml("test-idp").replace(
            'audience = "pgbastion"', 'audience = "another-service"'))
        self.assertRefused(verify(config, self.idp.token()), "audience", "28P01",
                           'audience mismatch: the token is for "pgbastion"')

    def test_wrong_ca_means_no_keys(self):
        config = write_config(self.dir, "wrong-ca.toml", self.idp.issuer_toml("test-idp").replace(
            str(self.certs.ca_crt), str(self.other_ca.ca_crt)))
        out = self.assertRefused(verify(config, self.idp.token()), "keys_unavailable", "28000",
                                 "the keys of issuer test-idp are not available yet")
        self.assertIn("certificate", out["reason"].lower())

    def test_rotation(self):
        # Its own provider: rotation must not disturb the other tests.
        with OidcProvider(self.certs) as idp:
            config = write_config(self.dir, "rotation.toml", idp.issuer_toml("rot"))
            old_token = idp.token()
            old_kid = jwt_header(old_token)["kid"]
            self.assertEqual(verify(config, old_token)[0], 0)

            kids = idp.rotate(keep_old=True)  # new signing key, old one still published
            self.assertEqual(kids[1], old_kid)
            new_token = idp.token()
            self.assertEqual(jwt_header(new_token)["kid"], kids[0])
            self.assertEqual(verify(config, new_token)[0], 0)
            self.assertEqual(verify(config, old_token)[0], 0)

            idp.rotate(keep_old=False)  # revocation: only the newest key stays
            newest = idp.token()
            rc, out, err = verify(config, newest)
            self.assertEqual(rc, 0, (out, err))
            self.assertRefused(verify(config, old_token), "unknown_key", "28000",
                               f'unknown key id "{old_kid}" for issuer rot')

    def test_expired_token(self):
        with OidcProvider(self.certs, ttl=1) as idp:
            config = write_config(self.dir, "expiry.toml", idp.issuer_toml("short", clock_skew='"0s"'))
            token = idp.token()
            time.sleep(2.5)
            self.assertRefused(verify(config, token), "expired", "28P01", "token expired at ")

    def test_provider_down(self):
        idp = OidcProvider(self.certs).start()
        token = idp.token()
        config = write_config(self.dir, "down.toml", idp.issuer_toml("down"))
        self.assertEqual(verify(config, token)[0], 0)
        idp.stop()
        out = self.assertRefused(verify(config, token), "keys_unavailable", "28000",
                                 "the keys of issuer down are not available yet")
        self.assertIn("connect", out["reason"].lower())


if __name__ == "__main__":
    unittest.main()
