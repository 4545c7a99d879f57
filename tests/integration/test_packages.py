"""The .deb and the .rpm, built from this build tree and proven.

Builds both packages with cpack (into a scratch directory), checks their
contents, control data and maintainer scripts, runs lintian and rpmlint on
them (clean: no error or warning; lintian needs no override, rpmlint's
remaining tags are filtered, each with its reason, in
packaging/rpm/rpmlint.toml), then installs
the .deb on this machine with dpkg, as an operator would (CI runs as root on a
throwaway machine), and checks what the install made: the service user, the
modes of /etc/pgbastion and its configuration, `systemd-analyze verify` on the
unit, `pgbastion check-config` and `pgbastion-bench --help` from the installed
paths, the manual pages; then an upgrade over it (the operator's configuration
is kept), remove and purge.

The installed package never shadows what other tests run: they run the build
tree's binaries (PGB_BINARY, PGB_BENCH_BINARY), never /usr/bin. It is purged at
the end, and the pgbastion system user is deleted if this test made it. A
leftover of a crashed run (marked by MARKER) is purged first; a pgbastion
package this test did not install is never touched: the test fails instead.
"""
import fcntl
import glob
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import unittest
from pathlib import Path

from harness import REPO_ROOT, Certificates, make_temp_dir, run

BUILD_DIR = Path(os.environ.get("PGB_BUILD_DIR") or REPO_ROOT / "build")
MARKER = Path("/var/lib/pgbastion-package-test.installed")
LOCK = "/run/lock/pgbastion-package-test.lock"
VERSION = re.search(r"project\(pgbastion VERSION (\S+)",
                    (REPO_ROOT / "CMakeLists.txt").read_text()).group(1)

# What both packages must hold (the unit's directory differs: Debian 12 vs Fedora/RHEL).
COMMON_FILES = [
    "/usr/bin/pgbastion",
    "/usr/bin/pgbastion-bench",
    "/usr/share/man/man1/pgbastion.1.gz",
    "/usr/share/man/man1/pgbastion-bench.1.gz",
    "/usr/share/man/man5/pgbastion.toml.5.gz",
    "/usr/share/doc/pgbastion/copyright",
    "/usr/share/doc/pgbastion/changelog.gz",
    "/usr/share/doc/pgbastion/operations.md",
    "/usr/share/doc/pgbastion/configuration.md",
    "/usr/share/doc/pgbastion/examples/pgbastion.toml",
    "/usr/share/pgbastion/pgbastion.toml",
]


def systemctl_calls(script: str) -> list[str]:
    """Lines that call systemctl other than for daemon-reload (lintian's rule:
    maintainer-script-calls-systemctl; deb-systemd-helper/-invoke instead)."""
    return [line for line in script.splitlines()
            if not line.lstrip().startswith("#")
            and re.search(r"^(?:.+;)?\s*systemctl\b", line) and "daemon-reload" not in line]


def lines_of(cmd: list[str], **kw) -> list[str]:
    return run(cmd, **kw).stdout.decode().splitlines()


def dpkg_status() -> str:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "pgbastion"], capture_output=True,
                         text=True)
    return res.stdout if res.returncode == 0 else ""


class PackagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = make_temp_dir("packages")
        config = BUILD_DIR / "CPackConfig.cmake"
        if not config.exists():
            raise AssertionError(f"{config} does not exist (set PGB_BUILD_DIR or build first)")
        run(["cpack", "--config", str(config), "-B", cls.out], timeout=900)
        debs = glob.glob(os.path.join(cls.out, "*.deb"))
        rpms = glob.glob(os.path.join(cls.out, "*.rpm"))
        if len(debs) != 1 or len(rpms) != 1:
            raise AssertionError(f"expected one .deb and one .rpm, cpack made {debs + rpms}")
        cls.deb, cls.rpm = debs[0], rpms[0]

    # --- the .deb -------------------------------------------------------------------------

    def test_deb_contents(self):
        self.assertEqual(os.path.basename(self.deb), f"pgbastion_{VERSION}_amd64.deb")
        entries = {}
        for line in lines_of(["dpkg-deb", "-c", self.deb]):
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            entries[path.split(" -> ")[0].lstrip(".").rstrip("/")] = (mode, owner)
        for path in COMMON_FILES + ["/lib/systemd/system/pgbastion.service"]:
            self.assertIn(path, entries)
        for path in ("/usr/bin/pgbastion", "/usr/bin/pgbastion-bench"):
            self.assertEqual(entries[path], ("-rwxr-xr-x", "root/root"), path)
        self.assertEqual(entries["/lib/systemd/system/pgbastion.service"][0], "-rw-r--r--")
        outside = [p for p in entries if p and not p.startswith(("/usr/", "/lib/systemd/system"))
                   and p not in ("/lib", "/lib/systemd", "/usr")]
        self.assertEqual(outside, [], "files outside /usr and the unit directory")

    def test_versions_and_maintainer_agree(self):
        # The changelog's newest entry, the manual pages and the packages name
        # one version and one maintainer (a version bump must touch them all).
        changelog = (REPO_ROOT / "packaging/debian/changelog").read_text()
        self.assertRegex(changelog.splitlines()[0], rf"^pgbastion \({re.escape(VERSION)}\) ")
        for page in ("pgbastion.1", "pgbastion-bench.1", "pgbastion.toml.5"):
            th = next(l for l in (REPO_ROOT / "packaging/man" / page).read_text().splitlines()
                      if l.startswith(".TH "))
            self.assertIn(f'"pgbastion {VERSION}"', th, page)
        # (dpkg-deb -f with one field prints its value alone)
        maintainer = lines_of(["dpkg-deb", "-f", self.deb, "Maintainer"])[0]
        self.assertIn(f" -- {maintainer}  ", changelog)
        self.assertIn(f"Upstream-Contact: {maintainer}\n",
                      (REPO_ROOT / "packaging/debian/copyright").read_text())

    def test_deb_control(self):
        fields = dict(line.split(": ", 1) for line in lines_of(
            ["dpkg-deb", "-f", self.deb, "Package", "Version", "Maintainer", "Depends"]))
        self.assertEqual(fields["Package"], "pgbastion")
        self.assertEqual(fields["Version"], VERSION)
        self.assertNotRegex(fields["Maintainer"], r"localhost|example\.com")
        self.assertRegex(fields["Maintainer"], r"^[^<]+ <[^@\s]+@[^@\s]+\.[a-z]+>$")
        depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
        for needed in ("adduser", "liburing2", "libssl3"):
            self.assertIn(needed, depends)

    def test_deb_maintainer_scripts(self):
        d = make_temp_dir("deb-control")
        run(["dpkg-deb", "-e", self.deb, d])
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(d, name)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755, name)
            run(["sh", "-n", path])
            text = Path(path).read_text()
            self.assertEqual(systemctl_calls(text), [], name)
            self.assertTrue(text.startswith("#!/bin/sh\n"), name)
            self.assertIn("set -e", text, name)
        self.assertIn("deb-systemd-helper update-state 'pgbastion.service'",
                      Path(d, "postinst").read_text())
        self.assertIn("deb-systemd-invoke try-restart", Path(d, "postinst").read_text())
        self.assertIn("deb-systemd-invoke stop 'pgbastion.service'", Path(d, "prerm").read_text())
        self.assertIn("deb-systemd-helper purge 'pgbastion.service'", Path(d, "postrm").read_text())
        # The check can fail: a direct call is found, daemon-reload is allowed.
        self.assertEqual(systemctl_calls("set -e\n  systemctl try-restart x\n"
                                         "systemctl --system daemon-reload\n# systemctl stop\n"),
                         ["  systemctl try-restart x"])

    def test_lintian_is_clean(self):
        res = subprocess.run(["lintian", "--fail-on", "error,warning", "--display-level",
                              ">=warning", "--show-overrides", self.deb],
                             capture_output=True, text=True, timeout=600)
        report = res.stdout + res.stderr
        print(f"\nlintian {os.path.basename(self.deb)}:\n{report}")
        self.assertEqual(res.returncode, 0, report)
        self.assertEqual([l for l in res.stdout.splitlines() if re.match(r"[EW]: ", l)], [],
                         report)

    # --- the .rpm -------------------------------------------------------------------------

    def test_rpm_contents_and_scripts(self):
        self.assertEqual(os.path.basename(self.rpm), f"pgbastion-{VERSION}-1.x86_64.rpm")
        files = set(lines_of(["rpm", "-qlp", self.rpm]))
        for path in COMMON_FILES + ["/usr/lib/systemd/system/pgbastion.service",
                                    "/etc/pgbastion", "/etc/pgbastion/pgbastion.toml"]:
            self.assertIn(path, files)
        # /etc/pgbastion and its configuration: owned, moded, and never overwritten.
        listing = run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:"
                       "%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]", self.rpm]
                      ).stdout.decode().splitlines()
        self.assertIn("drwxr-x--- root:pgbastion  /etc/pgbastion", listing)
        self.assertIn("-rw-r----- root:pgbastion cn /etc/pgbastion/pgbastion.toml", listing)
        owned_dirs = {"/usr", "/usr/bin", "/usr/lib", "/usr/share", "/usr/share/man",
                      "/usr/share/doc", "/usr/lib/systemd", "/usr/lib/systemd/system"}
        self.assertEqual(files & owned_dirs, set(), "directories the filesystem package owns")
        scripts = run(["rpm", "-qp", "--scripts", self.rpm]).stdout.decode()
        for part in ("preinstall", "postinstall", "preuninstall", "postuninstall"):
            self.assertIn(f"{part} scriptlet", scripts)
        self.assertIn("useradd -r -g pgbastion", scripts)
        packager = run(["rpm", "-qp", "--qf", "%{PACKAGER}|%{LICENSE}|%{URL}", self.rpm]
                       ).stdout.decode()
        self.assertNotIn("localhost", packager)

    def test_rpmlint_is_clean(self):
        res = subprocess.run(["rpmlint", "-c", str(REPO_ROOT / "packaging/rpm/rpmlint.toml"),
                              self.rpm], capture_output=True, text=True, timeout=600)
        report = res.stdout + res.stderr
        print(f"\nrpmlint {os.path.basename(self.rpm)}:\n{report}")
        self.assertEqual(res.returncode, 0, report)
        self.assertRegex(report, r"\b0 errors, 0 warnings")

    # --- installed on this machine --------------------------------------------------------

    def test_install_upgrade_remove_purge(self):
        self.assertEqual(os.geteuid(), 0, "installing the .deb needs root (CI runs as root)")
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if dpkg_status():
                if not MARKER.exists():
                    self.fail(f"a pgbastion package this test did not install is on this "
                              f"machine ({dpkg_status()}); not touching it")
                run(["dpkg", "--purge", "pgbastion"])
            user_existed = self._user_exists()
            MARKER.write_text("installed by tests/integration/test_packages.py\n")
            extra = ["server.crt", "server.key", "db-ca.crt", "app.password"]
            try:
                self._install_and_check(extra)
            finally:
                subprocess.run(["dpkg", "--purge", "pgbastion"], capture_output=True)
                for name in extra:
                    Path("/etc/pgbastion", name).unlink(missing_ok=True)
                if os.path.isdir("/etc/pgbastion"):
                    os.rmdir("/etc/pgbastion")
                if not user_existed and self._user_exists():
                    subprocess.run(["deluser", "--system", "--quiet", "pgbastion"],
                                   capture_output=True)
                MARKER.unlink(missing_ok=True)

    @staticmethod
    def _user_exists() -> bool:
        try:
            pwd.getpwnam("pgbastion")
            return True
        except KeyError:
            return False

    def _install_and_check(self, extra: list[str]) -> None:
        install = run(["dpkg", "-i", self.deb])
        self.assertIn("install ok installed", dpkg_status())
        self.assertIn("wrote an example /etc/pgbastion/pgbastion.toml", install.stderr.decode())

        # The service user: a system user without a shell or a home.
        user = pwd.getpwnam("pgbastion")
        self.assertLess(user.pw_uid, 1000)
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertEqual(user.pw_dir, "/nonexistent")
        self.assertFalse(os.path.exists("/nonexistent"))
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "pgbastion")

        # /etc/pgbastion root:pgbastion 0750, the configuration 0640.
        self._assert_owner_mode("/etc/pgbastion", "root", "pgbastion", 0o750, directory=True)
        self._assert_owner_mode("/etc/pgbastion/pgbastion.toml", "root", "pgbastion", 0o640)
        self.assertEqual(Path("/etc/pgbastion/pgbastion.toml").read_bytes(),
                         (REPO_ROOT / "packaging/examples/pgbastion.toml").read_bytes())
        for binary in ("/usr/bin/pgbastion", "/usr/bin/pgbastion-bench"):
            self._assert_owner_mode(binary, "root", "root", 0o755)

        # The unit, as systemd would load it (binaries, users, directives).
        verify = subprocess.run(["systemd-analyze", "verify", "/lib/systemd/system/pgbastion.service"],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertNotIn("pgbastion.service", verify.stdout + verify.stderr)

        # The load tool runs from its installed path.
        bench = run(["/usr/bin/pgbastion-bench", "--help"])
        self.assertIn("usage: pgbastion-bench", bench.stdout.decode())

        # check-config from the installed path, as the service user: the fresh
        # install's example needs the operator's files first (operations.md) ...
        check = ["runuser", "-u", "pgbastion", "--", "/usr/bin/pgbastion", "check-config",
                 "--config", "/etc/pgbastion/pgbastion.toml"]
        res = subprocess.run(check, capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("listener[0].tls_cert", res.stderr)
        self.assertIn("target[0].password_file", res.stderr)
        # ... and passes once they are there, installed as the guide says.
        certs = Certificates("installed")
        gid = grp.getgrnam("pgbastion").gr_gid
        for name, src, owner, group, mode in (
                ("server.crt", certs.server_crt, 0, gid, 0o644),
                ("server.key", certs.server_key, 0, gid, 0o640),
                ("db-ca.crt", certs.ca_crt, 0, gid, 0o644)):
            shutil.copy(src, f"/etc/pgbastion/{name}")
            os.chown(f"/etc/pgbastion/{name}", owner, group)
            os.chmod(f"/etc/pgbastion/{name}", mode)
        # The operator names a database host that resolves (check-config
        # resolves it, as serve does at start).
        conf = Path("/etc/pgbastion/pgbastion.toml")
        conf.write_text(conf.read_text().replace('host = "db.internal"', 'host = "localhost"'))
        Path("/etc/pgbastion/app.password").write_text("a-database-password\n")
        os.chown("/etc/pgbastion/app.password", pwd.getpwnam("pgbastion").pw_uid, gid)
        os.chmod("/etc/pgbastion/app.password", 0o600)
        res = subprocess.run(check, capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("config OK", res.stdout + res.stderr)

        # The manual pages are found by man and render without warnings.
        for section, page in (("1", "pgbastion"), ("1", "pgbastion-bench"),
                              ("5", "pgbastion.toml")):
            where = run(["man", "-w", section, page]).stdout.decode().strip()
            self.assertEqual(where, f"/usr/share/man/man{section}/{page}.{section}.gz")
            rendered = run(["man", "--warnings", "-E", "UTF-8", "-l", where],
                           env={"MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"})
            self.assertEqual(rendered.stderr.decode(), "", page)
            self.assertIn(page.upper(), rendered.stdout.decode())

        # Upgrade (the same version again: dpkg runs the upgrade path, $2 set):
        # the operator's configuration is kept.
        with open("/etc/pgbastion/pgbastion.toml", "a") as f:
            f.write("# edited by the operator\n")
        run(["dpkg", "-i", self.deb])
        self.assertTrue(Path("/etc/pgbastion/pgbastion.toml").read_text().endswith(
            "# edited by the operator\n"))
        self._assert_owner_mode("/etc/pgbastion", "root", "pgbastion", 0o750, directory=True)

        # Remove: binaries gone, configuration kept.
        run(["dpkg", "--remove", "pgbastion"])
        self.assertFalse(os.path.exists("/usr/bin/pgbastion"))
        self.assertFalse(os.path.exists("/lib/systemd/system/pgbastion.service"))
        self.assertTrue(os.path.exists("/etc/pgbastion/pgbastion.toml"))

        # Purge: the configuration it made goes, the files the operator added
        # stay (and are reported), and no systemd state is left behind.
        purge = run(["dpkg", "--purge", "pgbastion"])
        self.assertEqual(dpkg_status(), "")
        self.assertFalse(os.path.exists("/etc/pgbastion/pgbastion.toml"))
        self.assertEqual(sorted(os.listdir("/etc/pgbastion")), sorted(extra))
        self.assertIn("kept /etc/pgbastion", purge.stderr.decode())
        leftovers = glob.glob("/etc/systemd/system/**/pgbastion*", recursive=True) + \
            glob.glob("/var/lib/systemd/deb-systemd-helper-*/**/pgbastion*", recursive=True)
        self.assertEqual(leftovers, [])

    def _assert_owner_mode(self, path: str, owner: str, group: str, mode: int,
                           directory: bool = False) -> None:
        st = os.lstat(path)
        self.assertEqual(stat.S_ISDIR(st.st_mode), directory, path)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                          stat.S_IMODE(st.st_mode)), (owner, group, mode), path)


if __name__ == "__main__":
    unittest.main()
