"""
Tests for slurm_sd.config.sources: the ``scontrol:`` and ``command:`` URLs and
``slurmrestd.tls``; each wrong value ends start-up with one line naming the key.
"""
import os

from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.load import load
from slurm_sd.config.parse import parse
from slurm_sd.config.summary import summary
from slurm_sd.errors import ConfigError
from slurm_sd.service.changes import describe_changes
from tests import certs
from tests.config import test_parse
from tests.config.test_parse import doc

HTTPS = "url: 'https://slurm.example:6820'"

#: (configuration text, key path named, fragment of the explanation)
BAD_FILES = [
    (doc(slurm="url: 'command:'"), "slurmrestd.url", "command: needs a program to run"),
    (doc(slurm="url: 'command:  '"), "slurmrestd.url", "command: needs a program to run"),
    (doc(slurm="url: \"command:sinfo --json -p 'gpu\""), "slurmrestd.url",
     "cannot be split into words like a shell would (No closing quotation)"),
    (doc(slurm="url: 'scontrol:', api_version: v0.0.40"), "slurmrestd.api_version",
     "must be auto (or absent) with a scontrol: source, got 'v0.0.40'"),
    (doc(slurm="url: 'command:sinfo --json', api_version: v0.0.38"),
     "slurmrestd.api_version", "must be auto (or absent) with a command: source"),
    (doc(slurm="url: 'http://x:6820', tls: {ca_file: /ca.pem}"), "slurmrestd.tls",
     "applies only to https:// URLs, and slurmrestd.url is 'http://x:6820'"),
    (doc(slurm=f"{HTTPS}, tls: {{cert_file: /c.pem}}"), "slurmrestd.tls.key_file",
     "is required with cert_file (a client certificate needs both)"),
    (doc(slurm=f"{HTTPS}, tls: {{key_file: /k.pem}}"), "slurmrestd.tls.cert_file",
     "is required with key_file"),
    (doc(slurm=f"{HTTPS}, tls: {{ca: /ca.pem}}"), "slurmrestd.tls.ca",
     "unknown key (allowed: ca_file, cert_file, key_file, server_name)"),
    (doc(slurm=f"{HTTPS}, tls: {{server_name: 'a b'}}"), "slurmrestd.tls.server_name",
     "must be a host name, got 'a b'"),
    (doc(slurm=f"{HTTPS}, tls: {{ca_file: 5}}"), "slurmrestd.tls.ca_file",
     "must be a string, got a number (5)"),
    (doc(slurm=f"{HTTPS}, tls: [x]"), "slurmrestd.tls", "must be a mapping, got a list"),
    (doc(slurm=f"{HTTPS}, tls: {{ca_file: /nonexistent/ca.pem}}"), "slurmrestd.tls.ca_file",
     "cannot read /nonexistent/ca.pem: No such file or directory"),
]

#: (command line after --config, option named, fragment)
BAD_OPTIONS = [
    (["--slurmrestd", "scontrol:", "--api-version", "v0.0.40"], "--api-version",
     "must be auto (or absent) with a scontrol: source"),
    (["--slurmrestd", "command:'x"], "--slurmrestd", "cannot be split into words"),
]


class CommandUrlTests(SynchronousTestCase):
    """``scontrol:`` and ``command:`` URLs."""

    def test_accepted(self):
        """scontrol: (from PATH), scontrol:/path and command:ARGV are kept as written."""
        for url in ("scontrol:", "scontrol:/opt/slurm/bin/scontrol",
                    "command:sinfo --json", "command:/usr/bin/sinfo --json -p 'a b'"):
            self.assertEqual(url, parse(doc(slurm=f"url: {url!r}")).slurmrestd.url)

    def test_auto_allowed(self):
        """api_version: auto is allowed with them."""
        config = parse(doc(slurm="url: 'scontrol:', api_version: auto"))
        self.assertEqual("auto", config.slurmrestd.api_version)

    def test_bad_values(self):
        """Each wrong value gives one line: file, key path, problem."""
        test_parse.BadValueTests.check_rows(self, [
            (text, (), f"slurm-sd: /c.yaml: {path}: ", fragment)
            for text, path, fragment in BAD_FILES])

    def test_bad_options(self):
        """Each wrong command-line value gives one line naming the option."""
        test_parse.BadValueTests.check_rows(self, [
            (doc(), argv, f"slurm-sd: <command line>: {option}: ", fragment)
            for argv, option, fragment in BAD_OPTIONS])

    exit_line = test_parse.BadValueTests.exit_line

    def test_check_summary(self):
        """``slurm-sd check`` says which program runs, and that SLURM_JWT is left out."""
        lines, warnings = summary(parse(doc(slurm="url: 'scontrol:'")), {"PATH": "/nonexistent"})
        self.assertIn("source: the output of `scontrol show nodes --json`, run on every "
                      "poll without SLURM_JWT", lines[1])
        self.assertEqual(["slurmrestd.url: scontrol is not an executable on this PATH; the "
                          "daemon looks it up in its own PATH"], warnings)
        _, warnings = summary(parse(doc(slurm="url: 'command:/bin/true'")), {})
        self.assertEqual([], warnings)


class TlsFileTests(SynchronousTestCase):
    """``slurmrestd.tls`` files: read at load, each problem one line naming its key."""

    def setUp(self):
        """A directory with a CA, a client certificate and key, and a config writer."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        ca = certs.Authority()
        cert, key = ca.issue("slurm-sd", ("slurm-sd",), "client")
        self.ca = certs.write(self.dir, "ca.pem", ca.pem, 0o644)
        self.cert = certs.write(self.dir, "client.pem", cert, 0o644)
        self.key = certs.write(self.dir, "client.key", key)
        _, other_key = ca.issue("other", ("other",), "client")
        self.other_key = certs.write(self.dir, "other.key", other_key)
        self.junk = certs.write(self.dir, "junk.pem", b"not a certificate\n")

    def load(self, tls):
        """Load a config file with ``tls`` as slurmrestd.tls (YAML flow mapping)."""
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as handle:
            handle.write(doc(slurm=f"{HTTPS}, tls: {{{tls}}}"))
        return load(path)

    def error(self, tls):
        """The one-line ConfigError of loading ``tls``."""
        error = self.assertRaises(ConfigError, self.load, tls)
        self.assertNotIn("\n", str(error))
        return error

    def test_good_files(self):
        """CA, client certificate and key, server name: loaded and kept."""
        config = self.load(f"ca_file: {self.ca}, cert_file: {self.cert}, key_file: "
                           f"{self.key}, server_name: slurm01.example")
        tls = config.slurmrestd.tls
        self.assertEqual((self.ca, self.cert, self.key, "slurm01.example"),
                         (tls.ca_file, tls.cert_file, tls.key_file, tls.server_name))

    def test_relative_paths(self):
        """Relative file names are taken from the config file's directory."""
        config = self.load("ca_file: ca.pem")
        self.assertEqual(self.ca, config.slurmrestd.tls.ca_file)

    def test_missing_ca(self):
        """A missing ca_file names slurmrestd.tls.ca_file."""
        error = self.error("ca_file: nope.pem")
        self.assertEqual("slurmrestd.tls.ca_file", error.path)
        self.assertIn("cannot read " + os.path.join(self.dir, "nope.pem") +
                      ": No such file or directory", str(error))

    def test_unreadable_ca(self):
        """A ca_file that cannot be read (a directory here: root reads any file) names it."""
        error = self.error(f"ca_file: {self.dir}")
        self.assertEqual("slurmrestd.tls.ca_file", error.path)
        self.assertIn("Is a directory", str(error))

    def test_not_a_certificate(self):
        """A ca_file or cert_file with no PEM certificate names its key."""
        error = self.error(f"ca_file: {self.junk}")
        self.assertEqual("slurmrestd.tls.ca_file", error.path)
        self.assertIn("holds no PEM certificate", str(error))
        error = self.error(f"cert_file: {self.junk}, key_file: {self.key}")
        self.assertEqual("slurmrestd.tls.cert_file", error.path)

    def test_bad_key(self):
        """A key_file that is no key, or not the certificate's, names key_file."""
        error = self.error(f"cert_file: {self.cert}, key_file: {self.junk}")
        self.assertEqual("slurmrestd.tls.key_file", error.path)
        self.assertIn("holds no usable PEM private key", str(error))
        error = self.error(f"cert_file: {self.cert}, key_file: {self.other_key}")
        self.assertEqual("slurmrestd.tls.key_file", error.path)
        self.assertIn("is not the key of the certificate in " + self.cert, str(error))

    def test_missing_key_at_start_up(self):
        """At start-up (tap Options) a missing key_file is one line naming the key."""
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as handle:
            handle.write(doc(slurm=f"{HTTPS}, tls: {{cert_file: {self.cert}, "
                                   f"key_file: gone.key}}"))
        from slurm_sd.tap import Options
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--config", path])
        self.assertEqual(f"slurm-sd: {path}: slurmrestd.tls.key_file: cannot read "
                         f"{self.dir}/gone.key: No such file or directory",
                         caught.exception.code)

    def test_cluster_keys_named(self):
        """In the clusters form the lines name the cluster's keys."""
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as handle:
            handle.write("clusters:\n  - {name: a, slurmrestd: {url: 'scontrol:'}}\n"
                         f"  - {{name: b, slurmrestd: {{{HTTPS}, tls: {{ca_file: x.pem}}}}}}\n"
                         "jobs: [{node: {port: 9100}}]\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual("clusters[1].slurmrestd.tls.ca_file", error.path)
        error = self.assertRaises(ConfigError, parse, "clusters: [{name: a, slurmrestd: "
                                  "{url: 'scontrol:', api_version: v0.0.40}}]\n"
                                  "jobs: [{node: {port: 9100}}]\n")
        self.assertEqual("clusters[0].slurmrestd.api_version", error.path)

    def test_reload_names_tls_changes(self):
        """A reload's log line names the TLS keys that changed."""
        old = self.load(f"ca_file: {self.ca}")
        new = self.load(f"ca_file: {self.ca}, server_name: slurm01")
        self.assertEqual(["slurmrestd.tls.server_name (none) -> slurm01"],
                         describe_changes(old, new))
