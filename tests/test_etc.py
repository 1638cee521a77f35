"""
The files in etc/: the commented example configuration, the Prometheus example's
recipes, the systemd unit and the supervisord section. The external checkers run for
real: a missing ``systemd-analyze`` fails its test; a missing ``promtool`` skips, except
under ``CI=true`` (.ci/install-system-packages installs both).
"""
import configparser
import os
import re
import shutil
import subprocess
import sys

import attr
import yaml
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config import parse as config_module
from slurm_sd.config.load import load

ETC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "etc")
EXAMPLE = os.path.join(ETC, "config.example.yaml")
PROMETHEUS = os.path.join(ETC, "prometheus.yml")
UNIT = os.path.join(ETC, "systemd", "slurm-sd.service")
SUPERVISORD = os.path.join(ETC, "supervisord", "slurm-sd.conf")
#: README's one install story: this virtualenv, this command, in every example.
VENV = "/opt/slurm-sd"
COMMAND = f"{VENV}/bin/slurm-sd serve --config /etc/slurm-sd/config.yaml"


def read(path):
    """The text of ``path``."""
    with open(path, encoding="utf-8") as f:
        return f.read()


def documented(text, key):
    """True when ``key:`` appears in ``text`` as a key, set or commented out."""
    return re.search(r"(?m)^\s*(#\s*)*(-\s*)?" + re.escape(key) + r":", text) is not None


def recipes():
    """The commented-out recipe jobs at the end of etc/prometheus.yml, uncommented."""
    lines = read(PROMETHEUS).splitlines()
    start, end = lines.index("# >>> recipes"), lines.index("# <<< recipes")
    body = []
    for line in lines[start + 1:end]:
        assert line.startswith("#"), line
        body.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(body) + "\n"


def fields(cls, leave_out=()):
    """The attribute names of an attrs class."""
    return [a.name for a in attr.fields(cls) if a.name not in leave_out]


class ExampleConfigTests(SynchronousTestCase):
    """etc/config.example.yaml."""

    def test_parses(self):
        """The example is a valid configuration as it is, with no warnings."""
        config = load(EXAMPLE)
        self.assertEqual([job.name for job in config.jobs], ["node", "dcgm", "ipmi"])
        self.assertEqual(config.warnings, ())

    def test_every_key_explained(self):
        """Every key of the configuration (SPEC 2 and 3.3) appears in the example."""
        text = read(EXAMPLE)
        keys = (fields(config_module.Config, ("source", "warnings"))
                + fields(config_module.SlurmrestdConfig, ("token",))
                + fields(config_module.HttpAuth) + fields(config_module.LoggingConfig)
                + fields(config_module.JobConfig, ("name",)))
        missing = [key for key in keys if not documented(text, key)]
        self.assertEqual(missing, [])

    def test_commented_parts_parse(self):
        """With its commented-out keys set (one auth kind at a time) the example still parses."""
        text = read(EXAMPLE)
        text = re.sub(r"(?m)^(\s*)# (user|token_file|features|gres): ", r"\1\2: ", text)
        text = re.sub(r"(?m)^# (http_auth:|  username:|  password_file:)", r"\1", text)
        config = config_module.parse(text, EXAMPLE)
        self.assertEqual(config.http_auth.username, "prometheus")
        self.assertEqual(config.slurmrestd.token_file, "/etc/slurm-sd/jwt")
        self.assertEqual(config.job("dcgm").features, ("a100",))
        self.assertEqual(config.job("dcgm").gres, ("gpu",))
        bearer = re.sub(r"(?m)^#   # (bearer_token_file:)", r"  \1", re.sub(
            r"(?m)^# (http_auth:)", r"\1", read(EXAMPLE)))
        self.assertEqual(config_module.parse(bearer, EXAMPLE).http_auth.bearer_token_file,
                         "/etc/slurm-sd/http-token")

    def test_commented_clusters_parse(self):
        """The commented clusters form, in place of slurmrestd and cluster_name, parses."""
        text = read(EXAMPLE)
        text = re.sub(r"(?ms)^slurmrestd:\n.*?^(?=\S)", "", text)
        text = re.sub(r"(?m)^cluster_name: .*\n", "", text)
        start = text.index("# clusters:\n")
        end = text.index("\n\n", start)
        text = text[:start] + re.sub(r"(?m)^# ", "", text[start:end]) + text[end:]
        config = config_module.parse(text, EXAMPLE)
        self.assertEqual([c.name for c in config.clusters], ["hpc1", "gpu"])
        self.assertEqual(config.clusters[1].interval, 120)

    def test_matches_prometheus_example(self):
        """Every prom_job the Prometheus example asks for is a job of the example config,
        on the example's listen address."""
        config = load(EXAMPLE)
        prometheus = yaml.safe_load(read(PROMETHEUS))
        urls = [sd["url"] for job in prometheus["scrape_configs"]
                for sd in job.get("http_sd_configs", ())]
        self.assertTrue(urls)
        for url in urls:
            match = re.match(r"http://127\.0\.0\.1:8080/targets\?prom_job=(.+)\Z", url)
            self.assertIsNotNone(match, url)
            self.assertIsNotNone(config.job(match.group(1)), url)
        self.assertEqual(config.listen, "tcp:8080:interface=127.0.0.1")


class PrometheusExampleTests(SynchronousTestCase):
    """etc/prometheus.yml's commented recipes."""

    def test_recipes_are_yaml_jobs(self):
        """Each recipe is a scrape job with a unique name."""
        jobs = yaml.safe_load(recipes())
        names = [job["job_name"] for job in jobs]
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("node-by-node", names)

    def test_promtool_accepts_recipes(self):
        """promtool check config accepts the recipes as scrape_configs."""
        promtool = shutil.which("promtool")
        if promtool is None:
            reason = "promtool is not installed (sudo bash .ci/install-system-packages)"
            if os.environ.get("CI") == "true":
                self.fail("CI=true and " + reason)
            raise self.skipTest(reason)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("scrape_configs:\n" + recipes())
        result = subprocess.run([promtool, "check", "config", path], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class SystemdUnitTests(SynchronousTestCase):
    """etc/systemd/slurm-sd.service."""

    def service(self):
        """The [Service] section, keys to lists of values."""
        parser = configparser.ConfigParser(strict=False, interpolation=None,
                                           dict_type=_MultiDict, empty_lines_in_values=False)
        parser.optionxform = str
        parser.read_string(read(UNIT))
        return {key: value.split("\n") for key, value in parser["Service"].items()}

    def test_serves_from_the_virtualenv_and_reloads_with_hup(self):
        """ExecStart runs README's slurm-sd serve from /opt/slurm-sd; reload sends SIGHUP."""
        service = self.service()
        self.assertEqual(service["ExecStart"], [COMMAND])
        self.assertEqual(service["ExecReload"], ["/bin/kill -HUP $MAINPID"])

    def test_hardened(self):
        """The unit runs unprivileged in a restricted sandbox."""
        service = self.service()
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                           ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                           ("CapabilityBoundingSet", ""), ("User", "slurm-sd")):
            self.assertEqual(service.get(key), [value], key)

    def test_systemd_analyze_verify(self):
        """systemd-analyze verify finds nothing to complain about (with this venv's
        slurm-sd in place of /opt/slurm-sd's, since verify checks that it exists)."""
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze is not installed (Debian: systemd)")
        script = os.path.join(os.path.dirname(sys.executable), "slurm-sd")
        self.assertTrue(os.access(script, os.X_OK), f"{script} is not installed")
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(os.path.abspath(directory), "slurm-sd.service")
        text = read(UNIT)
        self.assertIn(f"{VENV}/bin/slurm-sd", text)
        with open(path, "w") as f:
            f.write(text.replace(f"{VENV}/bin/slurm-sd", script))
        result = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual((result.returncode, result.stderr.strip()), (0, ""), result.stdout)


    def test_syscall_filter_lets_the_worker_renice(self):
        """The unit's system call filter, merged the way systemd merges it (the first
        line sets the mode, later ones add or remove), allows what os.nice needs: the
        decode worker renices itself (slurm_sd/pipeline/worker.py)."""
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze is not installed (Debian: systemd)")
        lines = self.service()["SystemCallFilter"]
        self.assertFalse(lines[0].startswith("~"), "expected an allow list first")
        allowed = set()
        for line in lines:
            names = set()
            for name in line.lstrip("~").split():
                names |= _syscalls(analyze, name)
            allowed = allowed - names if line.startswith("~") else allowed | names
        self.assertIn("read", allowed)   # the expansion worked
        self.assertEqual({"getpriority", "setpriority"} - allowed, set())
        self.assertNotIn("reboot", allowed)


def _syscalls(analyze, name, seen=None):
    """The system calls ``name`` stands for (a group such as @resources, expanded by
    ``systemd-analyze syscall-filter``, recursively), or ``{name}`` itself."""
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    result = subprocess.run([analyze, "syscall-filter", name], capture_output=True,
                            text=True, timeout=60, check=True)
    calls = set()
    for line in result.stdout.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            calls |= _syscalls(analyze, item, seen)
    return calls


class SupervisordTests(SynchronousTestCase):
    """etc/supervisord/slurm-sd.conf (run for real by tests/integration)."""

    def test_foreground_and_reload_documented(self):
        """The program runs README's slurm-sd serve from /opt/slurm-sd and documents the
        reload."""
        text = read(SUPERVISORD)
        self.assertRegex(text, r"(?m)^command=" + re.escape(COMMAND) + "$")
        self.assertIn("supervisorctl signal HUP slurm-sd", text)


class InstallStoryTests(SynchronousTestCase):
    """README, the systemd unit and the supervisord section tell one install story."""

    def test_readme_installs_into_the_same_virtualenv(self):
        """README creates /opt/slurm-sd and shows the very command the examples run."""
        readme = read(os.path.join(os.path.dirname(ETC), "README.rst"))
        self.assertIn(f"python3 -m venv {VENV}", readme)
        self.assertIn(COMMAND, readme)
        for name in (UNIT, SUPERVISORD):
            self.assertNotIn("twistd -n --pidfile= slurm-sd --config /etc", read(name), name)

    def test_secret_file_rule_is_one_rule(self):
        """README, unit, supervisord section and example config all allow 0640 with the
        daemon's own group (and so never tell to chmod 600)."""
        readme = read(os.path.join(os.path.dirname(ETC), "README.rst"))
        for name, text in (("README.rst", readme), (UNIT, read(UNIT)),
                           (SUPERVISORD, read(SUPERVISORD)), (EXAMPLE, read(EXAMPLE))):
            self.assertIn("0640 root:slurm-sd", text, name)
        self.assertNotIn("chmod 600", readme)


class _MultiDict(dict):
    """configparser storage that keeps repeated keys (systemd allows them) as lines."""

    def __setitem__(self, key, value):
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)
