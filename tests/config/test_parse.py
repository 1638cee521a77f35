"""
Tests for slurm_sd.config: wrong values end start-up with one line naming the key.

Table-driven: each row is a configuration (or command line) with one wrong
value, the key path the line must name, and a fragment of the explanation.
The rows go through ``tap.Options.parseOptions`` exactly as twistd calls it;
a few also go through a real ``twistd -n slurm-sd`` process.
"""
import io
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import ConfigError
from slurm_sd.slurm import NEWEST_MINOR
from slurm_sd.tap import Options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOCKET = "url: 'unix:/run/slurmrestd.sock'"
JOBS = "[{node: {port: 9100}}]"


def doc(slurm=SOCKET, jobs=JOBS, extra=""):
    """A configuration with ``slurm`` as the slurmrestd mapping's inside."""
    return f"slurmrestd: {{{slurm}}}\njobs: {jobs}\n{extra}\n"


def job(options):
    """A configuration whose one job ``node`` has ``options`` (YAML flow mapping inside)."""
    return doc(jobs=f"[{{node: {{{options}}}}}]")


#: (configuration text, key path named, fragment of the explanation)
BAD_FILES = [
    ("- just a list", "", "must be a mapping, got a list"),
    ("jobs: [", "", "not valid YAML at line 1, column 8: expected the node content"),
    ("!!python/object:os.system {}", "", "not valid YAML"),
    (doc(extra="interval: 30\ninterval: 60"), "",
     "not valid YAML at line 4, column 1: 'interval' given twice in one mapping (first on line 3)"),
    (job("port: 9100, port: 9101"), "", "'port' given twice in one mapping (first on line 2)"),
    # A merge key (<<) may be overridden: the YAML loads and the walker finds the error.
    ("base: &b {port: 1}\njob: {<<: *b, port: 2}\n", "base", "unknown key"),
    ("", "slurmrestd", "is required"),
    (doc(extra="colour: blue"), "colour", "unknown key (allowed: slurmrestd,"),
    ("slurmrestd: 'http://x:6820'\njobs: [{node: {port: 1}}]", "slurmrestd",
     "must be a mapping, got a string ('http://x:6820')"),
    (doc(slurm="api_version: auto"), "slurmrestd.url", "is required"),
    (doc(slurm="url: 42"), "slurmrestd.url", "must be a string, got a number (42)"),
    (doc(slurm="url: 'ftp://x'"), "slurmrestd.url", "must be http://HOST:PORT, https://"),
    (doc(slurm="url: 'unix:'"), "slurmrestd.url", "must not be empty"),
    (doc(slurm="url: 'http://x:99999'"), "slurmrestd.url", "is not a valid URL (Port out of"),
    (doc(slurm="url: 'http://x:abc'"), "slurmrestd.url", "is not a valid URL"),
    (doc(slurm="url: 'http://[::1'"), "slurmrestd.url", "is not a valid URL"),
    (doc(slurm="url: 'http://x:0'"), "slurmrestd.url", "port must be from 1 to 65535"),
    (doc(slurm="url: 'http://x y:6820'"), "slurmrestd.url", "must not contain spaces"),
    (doc(slurm="url: 'http://slurm:pw@x:6820'"), "slurmrestd.url", "must not hold credentials"),
    (doc(slurm="url: 'http://x:6820/?a=1'"), "slurmrestd.url", "must not have a query"),
    (doc(slurm=f"{SOCKET}, api_version: v0.0.36"), "slurmrestd.api_version",
     "v0.0.36 is not supported (its nodes have no partitions): use v0.0.37 or later"),
    (doc(slurm=f"{SOCKET}, api_version: v0.0.{NEWEST_MINOR + 1}"), "slurmrestd.api_version",
     f"v0.0.{NEWEST_MINOR + 1} is newer than slurm-sd knows (it reads v0.0.37 to v0.0.46)"),
    (doc(slurm=f"{SOCKET}, api_version: latest"), "slurmrestd.api_version",
     "must be auto or a version such as v0.0.40"),
    (doc(slurm=f"{SOCKET}, api_version: 38"), "slurmrestd.api_version", "must be a string"),
    (doc(slurm=f"{SOCKET}, timeout: 0"), "slurmrestd.timeout", "must be at least 0.001"),
    (doc(slurm=f"{SOCKET}, timeout: -5"), "slurmrestd.timeout", "must be at least 0.001"),
    (doc(slurm=f"{SOCKET}, timeout: soon"), "slurmrestd.timeout",
     "must be a number, got a string ('soon')"),
    (doc(slurm=f"{SOCKET}, timeout: .inf"), "slurmrestd.timeout", "must be a finite number"),
    (doc(slurm=f"{SOCKET}, timeout: .nan"), "slurmrestd.timeout", "must be a finite number"),
    (doc(slurm=f"{SOCKET}, max_response_bytes: 100"), "slurmrestd.max_response_bytes",
     "must be at least 1024, got 100"),
    (doc(slurm=f"{SOCKET}, max_response_bytes: 1.5e+9"), "slurmrestd.max_response_bytes",
     "must be an integer, got a number"),
    (doc(slurm=f"{SOCKET}, max_response_bytes: 1G"), "slurmrestd.max_response_bytes",
     "must be an integer, got a string ('1G')"),
    (doc(slurm=f"{SOCKET}, user: [slurm]"), "slurmrestd.user", "must be a string, got a list"),
    (doc(slurm=f"{SOCKET}, token_file: ''"), "slurmrestd.token_file", "must not be empty"),
    (doc(slurm=f'{SOCKET}, token_file: "a\\0b"'), "slurmrestd.token_file",
     "must not contain a NUL character"),
    (doc(slurm=f"{SOCKET}, token: abc"), "slurmrestd.token", "unknown key"),
    (doc(extra="interval: 0.5"), "interval", "must be at least 1, got 0.5"),
    (doc(extra="interval: 5m"), "interval", "must be a number, got a string ('5m')"),
    (doc(extra="interval: true"), "interval", "must be a number, got a boolean (true)"),
    (doc(extra="interval: .inf"), "interval", "must be a finite number, got inf"),
    (doc(extra="cluster_name: [a]"), "cluster_name", "must be a string, got a list"),
    (doc(extra="cluster_name: true"), "cluster_name", "must be a string, got a boolean"),
    (doc(extra="listen: ''"), "listen", "must not be empty"),
    (doc(extra="listen: 8080"), "listen", "must be a string, got a number (8080)"),
    (doc(extra="target_address: ip"), "target_address",
     "must be one of address, hostname, name, got 'ip'"),
    ("slurmrestd: {url: 'unix:/s'}", "jobs", "is required"),
    (doc(jobs="[]"), "jobs", "must be a non-empty list of jobs"),
    (doc(jobs="{node: {port: 1}}"), "jobs", "must be a non-empty list of jobs"),
    (doc(jobs="[node]"), "jobs[0]", "must be a mapping with exactly one key, the job name"),
    (doc(jobs="[{node: {port: 1}, ipmi: {port: 2}}]"), "jobs[0]", "exactly one key"),
    (doc(jobs="[{'bad name': {port: 1}}]"), "jobs[0]",
     "job name 'bad name' may hold only letters, digits and _ . : -"),
    (doc(jobs="[{node: null}]"), "jobs[0].node.port", "is required"),
    (doc(jobs="[{node: [9100]}]"), "jobs[0].node", "must be a mapping, got a list"),
    (job("port: 0"), "jobs[0].node.port", "must be from 1 to 65535, got 0"),
    (job("port: 65536"), "jobs[0].node.port", "must be from 1 to 65535, got 65536"),
    (job("port: '9100'"), "jobs[0].node.port", "must be an integer, got a string ('9100')"),
    (job("port: true"), "jobs[0].node.port", "must be an integer, got a boolean (true)"),
    (job("port: 91.5"), "jobs[0].node.port", "must be an integer, got a number (91.5)"),
    (doc(jobs="[{node: {port: 1}}, {dcgm: {port: 94OO}}]"), "jobs[1].dcgm.port",
     "must be an integer, got a string ('94OO')"),
    (doc(jobs="[{node: {port: 1}}, {dcgm: {port: 2}}, {node: {port: 3}}]"), "jobs[2].node",
     "duplicate job name"),
    (job("port: 1, partitions: gpu"), "jobs[0].node.partitions",
     "must be a non-empty list of strings, got a string ('gpu')"),
    (job("port: 1, partitions: []"), "jobs[0].node.partitions", "must be a non-empty list"),
    (job("port: 1, partitions: [gpu, 5]"), "jobs[0].node.partitions[1]",
     "must be a string, got a number (5)"),
    (job("port: 1, features: ['']"), "jobs[0].node.features[0]", "must not be empty"),
    (job("port: 1, exclude_states: [sleeping]"), "jobs[0].node.exclude_states[0]",
     "must be one of active, drain, down, powered_down, unknown, got 'sleeping'"),
    (job("port: 1, scheme: ftp"), "jobs[0].node.scheme", "must be one of http, https"),
    (job("port: 1, metrics_path: metrics"), "jobs[0].node.metrics_path",
     "must start with /, got 'metrics'"),
    (job("port: 1, params: {'a b': 1}"), "jobs[0].node.params.a b", "is not a valid name"),
    (job("port: 1, labels: {bad-name: x}"), "jobs[0].node.labels.bad-name",
     "is not a valid name (a Prometheus label name"),
    (job("port: 1, labels: {__x: y}"), "jobs[0].node.labels.__x",
     "names starting with __ are reserved"),
    (job("port: 1, labels: {rack: [1]}"), "jobs[0].node.labels.rack",
     "must be a string, got a list"),
    (job("port: 1, labels: [rack]"), "jobs[0].node.labels", "must be a mapping, got a list"),
    (job("port: 1, group_by: host"), "jobs[0].node.group_by",
     "must be one of partition, node, got 'host'"),
    (job("port: 1, prot: 2"), "jobs[0].node.prot", "unknown key (allowed: port,"),
    (doc(extra="http_auth: {}"), "http_auth",
     "set either username and password_file, or bearer_token_file"),
    (doc(extra="http_auth: {username: u, password_file: p, bearer_token_file: t}"),
     "http_auth", "set either username and password_file, or bearer_token_file"),
    (doc(extra="http_auth: {username: prometheus}"), "http_auth.password_file",
     "is required with basic auth"),
    (doc(extra="http_auth: {password_file: /p}"), "http_auth.username",
     "is required with basic auth"),
    (doc(extra="http_auth: {bearer_token_file: 5}"), "http_auth.bearer_token_file",
     "must be a string, got a number (5)"),
    (doc(extra="http_auth: {realm: x}"), "http_auth.realm", "unknown key"),
    (doc(extra="logging: {format: xml}"), "logging.format", "must be one of text, json"),
    (doc(extra="logging: {access_log: 'yes'}"), "logging.access_log",
     "must be true or false, got a string ('yes')"),
]

#: (command line after --config, option named, fragment)
BAD_OPTIONS = [
    (["--interval", "soon"], "--interval", "must be a number of seconds, got 'soon'"),
    (["--interval", "0"], "--interval", "must be at least 1, got 0.0"),
    (["--interval", "nan"], "--interval", "must be a finite number, got nan"),
    (["--slurmrestd", "ftp://x"], "--slurmrestd", "must be http://HOST:PORT"),
    (["--slurmrestd", "http://x:70000"], "--slurmrestd", "is not a valid URL"),
    (["--api-version", "v0.0.36"], "--api-version", "use v0.0.37 or later"),
    (["--api-version", "v0.1.0"], "--api-version", "(it reads v0.0.37 to v0.0.46)"),
    (["--token", " "], "--token", "must not be empty"),
    (["--user", ""], "--user", "must not be empty"),
    (["--listen", ""], "--listen", "must not be empty"),
]


def options_for(text):
    """``Options`` whose config file /c.yaml holds ``text``."""
    def opener(path, encoding=None):
        if path != "/c.yaml":
            raise FileNotFoundError(2, "No such file or directory", path)
        return io.StringIO(text)
    return Options(opener=opener)


class BadValueTests(SynchronousTestCase):
    """Every wrong value ends start-up with exit status != 0 and one line naming the key."""

    def exit_line(self, text, argv=()):
        """The SystemExit line of parsing ``text`` with ``argv``; fails if none."""
        with self.assertRaises(SystemExit) as caught:
            options_for(text).parseOptions(["--config", "/c.yaml", *argv])
        code = caught.exception.code
        # A string code makes Python print it and exit with status 1.
        self.assertIsInstance(code, str)
        self.assertNotIn("\n", code)
        self.assertNotIn("Traceback", code)
        return code

    def check_rows(self, rows):
        """Run ``(text, argv, prefix, fragment)`` rows; report every row that is wrong."""
        wrong = []
        for text, argv, prefix, fragment in rows:
            try:
                line = self.exit_line(text, argv)
            except self.failureException as error:
                wrong.append(f"{text!r} {argv}: {error}")
                continue
            if not line.startswith(prefix) or fragment not in line:
                wrong.append(f"{text!r} {argv}: got {line!r}, want {prefix!r}...{fragment!r}")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_bad_files(self):
        """Each wrong configuration value gives one line: file, key path, problem."""
        self.check_rows([
            (text, (), f"slurm-sd: /c.yaml: {path}: " if path else "slurm-sd: /c.yaml: ",
             fragment) for text, path, fragment in BAD_FILES])

    def test_bad_options(self):
        """Each wrong command-line value gives one line naming the option."""
        self.check_rows([(doc(), argv, f"slurm-sd: <command line>: {option}: ", fragment)
                         for argv, option, fragment in BAD_OPTIONS])

    def test_table_rows_are_bad_alone(self):
        """The base configuration the rows change is itself good."""
        for text in (doc(), job("port: 9100")):
            config = parse(text, "/c.yaml")
            self.assertEqual(config.jobs[0].port, 9100)

    def test_supported_versions(self):
        """The oldest and the newest known version (v0.0.46, Slurm 26.11's) are accepted."""
        for version in ("v0.0.37", "v0.0.46", "auto"):
            config = parse(doc(slurm=f"{SOCKET}, api_version: {version}"))
            self.assertEqual(config.slurmrestd.api_version, version)
            options = options_for(doc())
            options.parseOptions(["--config", "/c.yaml", "--api-version", version])
            self.assertEqual(options.config.slurmrestd.api_version, version)

    def test_good_urls(self):
        """URLs with a port, an IPv6 host or a path prefix are accepted."""
        for url in ("http://127.0.0.1:6820", "https://slurm.example:6820/",
                    "http://[::1]:6820", "https://proxy.example/slurmrestd"):
            config = parse(doc(slurm=f"url: '{url}'"))
            self.assertEqual(config.slurmrestd.url, url.rstrip("/"))

    def test_parse_raises_config_error(self):
        """parse() itself raises ConfigError carrying the key path."""
        error = self.assertRaises(ConfigError, parse, job("port: 0"), "/c.yaml")
        self.assertEqual(error.path, "jobs[0].node.port")


def twistd(config_text, tmpdir, *argv):
    """Run ``twistd -n --pidfile= slurm-sd --config FILE ARGV``; ``(status, output)``."""
    path = os.path.join(tmpdir, "config.yaml")
    with open(path, "w") as handle:
        handle.write(config_text)
    command = [os.path.join(os.path.dirname(sys.executable), "twistd"), "-n", "--pidfile=",
               "slurm-sd", "--config", path, *argv]
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(command, cwd=tmpdir, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return done.returncode, done.stdout.decode("utf-8", "replace")


class TwistdTests(SynchronousTestCase):
    """The same through a real twistd process: status != 0, one line, no traceback."""

    def tmpdir(self):
        """A new empty directory, as an absolute path."""
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    def assert_one_line(self, status, output, *fragments):
        """The process failed and said so in one line holding ``fragments``."""
        lines = [line for line in output.splitlines() if line.strip()]
        self.assertNotEqual(status, 0, output)
        self.assertEqual(len(lines), 1, output)
        self.assertNotIn("Traceback", output)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_bad_port(self):
        """A job port out of range names jobs[0].node.port."""
        tmp = self.tmpdir()
        status, output = twistd(job("port: 99999"), tmp)
        self.assert_one_line(status, output, "config.yaml: jobs[0].node.port: must be from 1")

    def test_not_yaml(self):
        """A file that is not YAML says where."""
        tmp = self.tmpdir()
        status, output = twistd("jobs: [\n", tmp)
        self.assert_one_line(status, output, "config.yaml: not valid YAML at line")

    def test_bad_option(self):
        """A bad --interval names the option."""
        tmp = self.tmpdir()
        status, output = twistd(doc(), tmp, "--interval", "soon")
        self.assert_one_line(status, output, "--interval: must be a number of seconds")

    def test_tls_key_missing(self):
        """An ssl: listen string whose key file is missing names listen, not a traceback."""
        tmp = self.tmpdir()
        status, output = twistd(doc(extra="listen: 'ssl:0:privateKey=nokey.pem'"), tmp)
        self.assert_one_line(status, output, "config.yaml: listen: bad endpoint",
                             "No such file or directory")

    def test_bad_listen(self):
        """A listen string that is no endpoint names listen."""
        tmp = self.tmpdir()
        status, output = twistd(doc(extra="listen: 'tcp:8080:bogus=1'"), tmp)
        self.assert_one_line(status, output, "config.yaml: listen: bad endpoint")
