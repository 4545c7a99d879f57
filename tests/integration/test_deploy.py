"""The deployment files in packaging/: Dockerfile, Docker Compose stack, Kubernetes manifests.

There is no container engine or cluster on the test machines, so nothing here
starts a container. What is checked instead:
- `docker-compose config` (Debian's docker-compose, no engine needed) accepts
  packaging/compose/compose.yaml, and the stack has its four services wired as
  documented;
- the compose stack's key maker (demo-issuer.sh) runs, and the gateway
  configuration it feeds passes `pgbastion check-config`; the token it mints
  is accepted by that configuration (`pgbastion token verify`);
- the Dockerfile builds on Debian 12, installs the project's .deb and runs as
  the same numeric user as the manifests and the compose stack;
- every Kubernetes object is well formed, the probes point at declared ports,
  the security context is restrictive, every container has requests and
  limits, the Deployment's and the DaemonSet's pod templates agree, Services
  select the pods, and the ConfigMap's configuration passes
  `pgbastion check-config` with dummy secrets at the paths it names.
Each check is a function returning problems; the tests also feed each one a
broken variant, so a check that can no longer fail is noticed.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import unittest
from pathlib import Path

import yaml

from harness import REPO_ROOT, Certificates, gateway_binary, make_temp_dir, run

PACKAGING = REPO_ROOT / "packaging"
COMPOSE = PACKAGING / "compose" / "compose.yaml"
DOCKERFILE = PACKAGING / "docker" / "Dockerfile"
KUBE = PACKAGING / "kubernetes"
SECRETS_DIR = "/run/pgbastion/secrets/"  # where the pods' init container puts the Secret's files
CONTROL_PORT = 9432  # the [control] HTTP server: /healthz, /readyz, /metrics


def check_config(path: str) -> subprocess.CompletedProcess:
    return subprocess.run([gateway_binary(), "check-config", "--config", path],
                          capture_output=True, text=True, timeout=60)


def load_manifests() -> list[dict]:
    objects = []
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                doc["__file__"] = path.name
                objects.append(doc)
    return objects


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o.get("kind") in ("Deployment", "DaemonSet")]


# --- checks: each returns a list of problems -----------------------------------------------

def object_problems(objects: list[dict]) -> list[str]:
    problems = []
    for o in objects:
        where = f"{o.get('__file__')}: {o.get('kind')}"
        for key in ("apiVersion", "kind", "metadata"):
            if not o.get(key):
                problems.append(f"{where}: no {key}")
        meta = o.get("metadata") or {}
        if not meta.get("name"):
            problems.append(f"{where}: no metadata.name")
        if o.get("kind") != "Namespace" and meta.get("namespace") != "pgbastion":
            problems.append(f"{where} {meta.get('name')}: namespace is not pgbastion")
    return problems


def probe_problems(objects: list[dict]) -> list[str]:
    problems = []
    for w in workloads(objects):
        for c in w["spec"]["template"]["spec"]["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            where = f"{w['kind']} container {c['name']}"
            wanted = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                      "startupProbe": "/healthz"}
            for probe_name, path in wanted.items():
                probe = c.get(probe_name)
                if probe is None:
                    problems.append(f"{where}: no {probe_name}")
                    continue
                get = probe.get("httpGet") or {}
                port = get.get("port")
                number = ports.get(port) if isinstance(port, str) else port
                if number not in ports.values():
                    problems.append(f"{where}: {probe_name} port {port!r} is not a declared port")
                if number != CONTROL_PORT or get.get("path") != path:
                    problems.append(f"{where}: {probe_name} asks {get.get('path')} on {number}, "
                                    f"not {path} on {CONTROL_PORT}")
    return problems


def security_problems(objects: list[dict]) -> list[str]:
    problems = []
    for w in workloads(objects):
        pod = w["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext") or {}
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{w['kind']}: shares a host namespace")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{w['kind']}: mounts a service account token it does not need")
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c.get("securityContext") or {}
            where = f"{w['kind']} container {c['name']}"
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot is not set")
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            if not isinstance(uid, int) or uid == 0:
                problems.append(f"{where}: no numeric non-root runAsUser")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = sc.get("capabilities") or {}
            if caps.get("drop") != ["ALL"] or caps.get("add"):
                problems.append(f"{where}: capabilities are not exactly drop ALL")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile {seccomp!r}, not RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in (res.get(kind) or {}):
                        problems.append(f"{where}: no {kind}.{what}")
    return problems


def wiring_problems(objects: list[dict]) -> list[str]:
    """Volumes, ConfigMap/Secret names, Services' selectors and ports, the two templates."""
    problems = []
    named = {(o["kind"], o["metadata"]["name"]) for o in objects}
    templates = {}
    for w in workloads(objects):
        template = w["spec"]["template"]
        pod = template["spec"]
        labels = template["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in w["spec"]["selector"]["matchLabels"].items()):
            problems.append(f"{w['kind']}: its selector does not match its pods' labels")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod.get("initContainers", []) + pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    problems.append(f"{w['kind']} container {c['name']}: mounts undeclared "
                                    f"volume {m['name']}")
        for v in volumes.values():
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in named:
                problems.append(f"{w['kind']}: ConfigMap {v['configMap']['name']} is not defined")
            if "secret" in v and ("Secret", v["secret"]["secretName"]) not in named:
                problems.append(f"{w['kind']}: Secret {v['secret']['secretName']} is not defined")
        templates[w["kind"]] = {k: v for k, v in pod.items() if k != "topologySpreadConstraints"}
        for svc in (o for o in objects if o["kind"] == "Service" and o["__file__"] == w["__file__"]):
            if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
                problems.append(f"Service {svc['metadata']['name']}: selects no {w['kind']} pod")
            declared = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
            for p in svc["spec"]["ports"]:
                if p["targetPort"] not in declared:
                    problems.append(f"Service {svc['metadata']['name']}: targetPort "
                                    f"{p['targetPort']} is not a container port")
    if set(templates) != {"Deployment", "DaemonSet"}:
        problems.append(f"expected a Deployment and a DaemonSet, found {sorted(templates)}")
    elif templates["Deployment"] != templates["DaemonSet"]:
        problems.append("the Deployment's and the DaemonSet's pod templates differ")
    return problems


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", text))


def config_vs_pod_problems(objects: list[dict], config_text: str) -> list[str]:
    """What the configuration and the pods must agree on."""
    import tomllib
    problems = []
    config = tomllib.loads(config_text)
    secret = next(o for o in objects if o["kind"] == "Secret")
    wanted = set(re.findall(re.escape(SECRETS_DIR) + r"([\w.-]+)", config_text))
    missing = wanted - set(secret.get("stringData", {}))
    if missing:
        problems.append(f"the config reads {sorted(missing)} from {SECRETS_DIR}, "
                        f"which the Secret does not hold")
    shutdown = duration_seconds(config["gateway"].get("shutdown_timeout", "30s"))
    for w in workloads(objects):
        pod = w["spec"]["template"]["spec"]
        if pod.get("terminationGracePeriodSeconds", 30) < shutdown + 5:
            problems.append(f"{w['kind']}: terminationGracePeriodSeconds is below the gateway's "
                            f"shutdown_timeout + 5 s")
        gateway = next(c for c in pod["containers"] if c["name"] == "pgbastion")
        if str(gateway["resources"]["limits"]["cpu"]) != str(config["gateway"].get("workers")):
            problems.append(f"{w['kind']}: the CPU limit is not gateway.workers")
        mounts = {m["mountPath"] for m in gateway.get("volumeMounts", [])}
        spill = config["audit"]["spill_dir"]
        if spill not in mounts:
            problems.append(f"{w['kind']}: the audit spill_dir {spill} is not a writable volume "
                            f"(the root filesystem is read-only)")
        if SECRETS_DIR.rstrip("/") not in mounts:
            problems.append(f"{w['kind']}: {SECRETS_DIR} is not mounted")
    return problems


def dockerfile_problems(text: str, manifest_uid: int) -> list[str]:
    problems = []
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if not froms or any(not re.fullmatch(r"debian:12(-slim)?", f) for f in froms):
        problems.append(f"base images {froms} are not Debian 12")
    if not re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*pgbastion_\*\.deb", text):
        problems.append("the runtime stage does not install the project's .deb")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    uid = re.search(r"^ARG PGB_UID=(\d+)", text, re.M)
    if not users or not uid:
        problems.append("no USER (or no PGB_UID)")
    else:
        user = users[-1].replace("${PGB_UID}", uid.group(1)).split(":")[0]
        if not user.isdigit() or int(user) == 0:
            problems.append(f"runs as {users[-1]}, not a numeric unprivileged user")
        elif int(user) != manifest_uid:
            problems.append(f"runs as uid {user}, the manifests' runAsUser is {manifest_uid}")
    if '"/usr/bin/pgbastion"' not in text:
        problems.append("the entry point is not the installed /usr/bin/pgbastion")
    return problems


def compose_volumes(service: dict) -> dict[str, str]:
    """target -> source; docker-compose v1 prints "source:target:mode", v2 a mapping."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v.get("source"), v.get("target")
        out[target] = source
    return out


def compose_problems(config: dict) -> list[str]:
    problems = []
    services = config.get("services", {})
    for name in ("postgres", "gateway", "demo-issuer", "audit-collector"):
        if name not in services:
            problems.append(f"no service {name}")
    if problems:
        return problems
    gw = services["gateway"]
    build = gw.get("build") or {}
    if Path(build.get("context", "")) != REPO_ROOT or build.get("dockerfile") != \
            "packaging/docker/Dockerfile":
        problems.append(f"the gateway is not built from packaging/docker/Dockerfile: {build}")
    deps = gw.get("depends_on", {})
    if (deps.get("postgres") or {}).get("condition") != "service_healthy":
        problems.append("the gateway does not wait for a healthy PostgreSQL")
    if (deps.get("demo-issuer") or {}).get("condition") != "service_completed_successfully":
        problems.append("the gateway does not wait for the demo issuer's keys")
    if not any(str(p.get("target")) == "6432" and str(p.get("published")) == "6432"
               for p in gw.get("ports", [])):
        problems.append("the gateway's port 6432 is not published")
    mounts = compose_volumes(gw)
    for service in services.values():
        for target, source in compose_volumes(service).items():
            if source.startswith("/") and not os.path.exists(source):
                problems.append(f"{target}: the file mounted there, {source}, does not exist")
    if Path(mounts.get("/etc/pgbastion/pgbastion.toml", "")) != COMPOSE.parent / "pgbastion.toml":
        problems.append("the gateway does not get packaging/compose/pgbastion.toml")
    if mounts.get("/var/log/pgbastion") is None or mounts.get("/var/log/pgbastion") != \
            compose_volumes(services["audit-collector"]).get("/var/log/pgbastion"):
        problems.append("the audit collector does not share the gateway's audit volume")
    if "ALL" not in (gw.get("cap_drop") or []) or not gw.get("read_only"):
        problems.append("the gateway container is not read-only with every capability dropped")
    return problems


class DeployTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = load_manifests()
        cls.configmap = next(o for o in cls.objects if o["kind"] == "ConfigMap")
        cls.config_text = cls.configmap["data"]["pgbastion.toml"]
        pod = workloads(cls.objects)[0]["spec"]["template"]["spec"]
        cls.uid = pod["securityContext"]["runAsUser"]

    # --- Kubernetes -----------------------------------------------------------------------

    def test_manifests_hold_the_documented_objects(self):
        kinds = sorted((o["kind"], o["metadata"]["name"]) for o in self.objects)
        self.assertEqual(kinds, [("ConfigMap", "pgbastion-config"), ("DaemonSet", "pgbastion"),
                                 ("Deployment", "pgbastion"), ("Namespace", "pgbastion"),
                                 ("PodDisruptionBudget", "pgbastion"), ("Secret", "pgbastion-secrets"),
                                 ("Service", "pgbastion"), ("Service", "pgbastion-local")])
        self.assertEqual(object_problems(self.objects), [])
        broken = copy.deepcopy(self.objects)
        del broken[0]["apiVersion"]
        broken[1]["metadata"].pop("namespace", None)
        self.assertEqual(len(object_problems(broken)), 2)

    def test_probes_point_at_the_control_port(self):
        self.assertEqual(probe_problems(self.objects), [])
        broken = copy.deepcopy(self.objects)
        c = workloads(broken)[0]["spec"]["template"]["spec"]["containers"][0]
        c["readinessProbe"]["httpGet"]["port"] = "metrics"   # no such port
        del c["livenessProbe"]
        self.assertEqual(len(probe_problems(broken)), 3, probe_problems(broken))

    def test_security_context_is_restrictive(self):
        self.assertEqual(security_problems(self.objects), [])
        broken = copy.deepcopy(self.objects)
        pod = workloads(broken)[1]["spec"]["template"]["spec"]
        pod["securityContext"]["runAsNonRoot"] = False
        pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
        pod["containers"][0]["securityContext"] = {"readOnlyRootFilesystem": True,
                                                   "capabilities": {"drop": ["ALL"],
                                                                    "add": ["NET_ADMIN"]}}
        del pod["containers"][0]["resources"]["limits"]
        problems = security_problems(broken)
        for what in ("runAsNonRoot", "allowPrivilegeEscalation", "drop ALL", "Unconfined",
                     "limits.memory"):
            self.assertTrue(any(what in p for p in problems), (what, problems))

    def test_objects_are_wired_together(self):
        self.assertEqual(wiring_problems(self.objects), [])
        broken = copy.deepcopy(self.objects)
        w = workloads(broken)
        w[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "pgbastion:other"
        w[1]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "nope"
        svc = next(o for o in broken if o["kind"] == "Service")
        svc["spec"]["ports"][0]["targetPort"] = "pg"
        self.assertEqual(len(wiring_problems(broken)), 3, wiring_problems(broken))

    def test_config_and_pods_agree(self):
        self.assertEqual(config_vs_pod_problems(self.objects, self.config_text), [])
        broken = self.config_text.replace("workers = 2", "workers = 0").replace(
            'shutdown_timeout = "30s"', 'shutdown_timeout = "1m"').replace(
            "db-ca.crt", "db-ca.pem")
        self.assertEqual(len(config_vs_pod_problems(self.objects, broken)), 5)

    def test_configmap_config_passes_check_config(self):
        # Dummy secrets at the paths the configuration names (under a scratch
        # directory in place of /run/pgbastion/secrets).
        d = make_temp_dir("k8s-secrets")
        certs = Certificates("k8s")
        shutil.copy(certs.server_crt, os.path.join(d, "server.crt"))
        shutil.copy(certs.server_key, os.path.join(d, "server.key"))
        shutil.copy(certs.ca_crt, os.path.join(d, "db-ca.crt"))
        Path(d, "app.password").write_text("dummy-password\n")
        os.chmod(os.path.join(d, "app.password"), 0o600)
        run([gateway_binary(), "audit", "keygen", "--private-key", os.path.join(d, "audit.key"),
             "--public-key", os.path.join(d, "audit.pub")])
        spill = make_temp_dir("k8s-spill")
        # check-config resolves target hosts, as serve does at start; the
        # cluster's database name does not resolve here.
        host = re.search(r'^host = "([^"]+)"', self.config_text, re.M).group(1)
        text = self.config_text.replace(SECRETS_DIR, d + "/").replace(
            "/var/lib/pgbastion/audit-spill", spill).replace(f'"{host}"', '"localhost"')
        self.assertNotIn("/run/pgbastion", text)
        path = os.path.join(d, "pgbastion.toml")
        Path(path).write_text(text)
        result = check_config(path)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("config OK", result.stdout + result.stderr)
        # ... and it can fail: the Secret's placeholder password file open to others.
        os.chmod(os.path.join(d, "app.password"), 0o640)
        self.assertEqual(check_config(path).returncode, 1)

    # --- Dockerfile -----------------------------------------------------------------------

    def test_dockerfile(self):
        text = DOCKERFILE.read_text()
        self.assertEqual(dockerfile_problems(text, self.uid), [])
        self.assertEqual(len(dockerfile_problems(
            text.replace("FROM debian:12-slim", "FROM ubuntu:24.04").replace(
                "USER ${PGB_UID}", "USER root"), self.uid)), 2)
        # What it copies exists, and the build context leaves build trees out.
        for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
            self.assertTrue((REPO_ROOT / src).exists(), src)
        ignored = (REPO_ROOT / ".dockerignore").read_text().split()
        self.assertIn("build*", ignored)
        # The compose stack's key maker gives files to the same uid.
        issuer = (PACKAGING / "compose" / "demo-issuer.sh").read_text()
        self.assertIn(f"GW_UID={self.uid} ", issuer)

    # --- Docker Compose -------------------------------------------------------------------

    def test_compose_config(self):
        result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        config = yaml.safe_load(result.stdout)
        self.assertEqual(compose_problems(config), [])
        broken = copy.deepcopy(config)
        broken["services"]["gateway"]["depends_on"].pop("postgres")
        broken["services"]["gateway"]["read_only"] = False
        del broken["services"]["audit-collector"]
        self.assertEqual(len(compose_problems(broken)), 1)   # a missing service stops the rest
        del broken["services"]["gateway"]["ports"]
        broken["services"]["audit-collector"] = config["services"]["audit-collector"]
        self.assertEqual(len(compose_problems(broken)), 3, compose_problems(broken))
        # A broken file is refused by docker-compose itself.
        d = make_temp_dir("compose")
        bad = Path(d, "compose.yaml")
        bad.write_text(COMPOSE.read_text().replace("    depends_on:\n      demo-issuer:",
                                                   "    depends_on:\n      no-such-service:", 1))
        result = subprocess.run(["docker-compose", "-f", str(bad), "config"],
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)

    def test_compose_demo_keys_pass_check_config(self):
        # demo-issuer.sh chowns files for the gateway's and PostgreSQL's users:
        # it runs as root, as in its container (CI runs as root too).
        self.assertEqual(os.geteuid(), 0, "this test runs demo-issuer.sh, which needs root")
        d = make_temp_dir("compose-demo")
        env = dict(os.environ, PGB_DEMO_DIR=d,
                   PATH=os.path.dirname(gateway_binary()) + ":" + os.environ["PATH"])
        script = str(PACKAGING / "compose" / "demo-issuer.sh")
        setup = run(["/bin/sh", script, "setup"], env=env)
        line = setup.stdout.decode().strip()
        self.assertRegex(line, r'^psql "host=localhost port=6432 dbname=app user=demo-agent '
                               r'sslmode=require password=ey[\w.-]+"$')
        self.assertEqual(os.stat(os.path.join(d, "app.password")).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.join(d, "postgres", "app.password")).st_uid, 999)
        # A second setup keeps the keys (the volume outlives `docker compose down`).
        key = Path(d, "issuer.pem").read_bytes()
        run(["/bin/sh", script, "setup"], env=env)
        self.assertEqual(Path(d, "issuer.pem").read_bytes(), key)

        spill, logs = make_temp_dir("compose-spill"), make_temp_dir("compose-logs")
        text = (COMPOSE.parent / "pgbastion.toml").read_text().replace('"/demo/', f'"{d}/') \
            .replace("/var/lib/pgbastion/audit-spill", spill).replace("/var/log/pgbastion", logs) \
            .replace('host = "postgres"', 'host = "localhost"')   # resolved by check-config
        path = os.path.join(d, "gateway.toml")
        Path(path).write_text(text)
        result = check_config(path)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # The printed token, and a fresh one, log in as demo-agent of issuer demo.
        for token in (line.split("password=")[1].rstrip('"'),
                      run(["/bin/sh", script, "token"], env=env).stdout.decode().strip()):
            verify = subprocess.run([gateway_binary(), "token", "verify", "--config", path,
                                     "--user", "demo-agent"], input=token, capture_output=True,
                                    text=True, timeout=60)
            answer = json.loads(verify.stdout)
            self.assertTrue(answer.get("ok"), verify.stdout + verify.stderr)
            self.assertEqual(answer["issuer"], "demo")
        # ... and a token of another key is refused by the same check.
        other = make_temp_dir("compose-other")
        run([gateway_binary(), "audit", "keygen", "--private-key", f"{other}/k.pem",
             "--public-key", f"{other}/k.pub"])
        forged = run([gateway_binary(), "token", "mint", "--key", f"{other}/k.pem", "--issuer",
                      "https://demo-issuer.pgbastion.local", "--audience", "pgbastion",
                      "--subject", "demo-agent"]).stdout.decode().strip()
        verify = subprocess.run([gateway_binary(), "token", "verify", "--config", path],
                                input=forged, capture_output=True, text=True, timeout=60)
        self.assertFalse(json.loads(verify.stdout).get("ok"), verify.stdout)


if __name__ == "__main__":
    unittest.main()
