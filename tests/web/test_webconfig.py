"""Tests for slurm_sd.web.webconfig and the web_config_file key: parsing, conflicts, reloads."""
import io
import os

import attr
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.cli import check
from slurm_sd.config.load import apply_overrides
from slurm_sd.config.model import HttpAuth
from slurm_sd.config.parse import parse
from slurm_sd.errors import ConfigError
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.clusters import ClusterSet
from slurm_sd.service.poller import Poller
from slurm_sd.service.reload import Reloader
from slurm_sd.tap import Options
from slurm_sd.web.webconfig import parse_web_config
from tests.service.test_poller import ScriptedSource, fake_process

HASH = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
SOURCE = "/etc/slurm-sd/web.yml"
BASE = ("slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
        "jobs:\n  - node: {port: 9100}\n")
TLS = ("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")


def error(text):
    """The one-line error of parsing ``text`` as the web configuration file."""
    try:
        parse_web_config(text, SOURCE)
    except ConfigError as caught:
        return str(caught)
    raise AssertionError("no error")


class ParseTests(SynchronousTestCase):
    """The exporter-toolkit format, checked key by key."""

    def test_empty_is_plain_and_open(self):
        """An empty file (or empty sections) means no TLS and no basic auth."""
        for text in ("", "tls_server_config: {}\n", "basic_auth_users: {}\n",
                     "tls_server_config:\n  cert_file: ''\n  key_file: ''\n"):
            config = parse_web_config(text, SOURCE)
            self.assertEqual((config.tls, config.users), (None, ()), text)

    def test_full(self):
        """Every supported key, relative paths taken from the file's directory."""
        config = parse_web_config(
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                  "  client_ca_file: /etc/pki/ca.pem\n  client_allowed_sans: [prometheus]\n"
                  "  min_version: TLS13\n"
                  "basic_auth_users:\n  prometheus: '" + HASH + "'\n  '42': '" + HASH + "'\n",
            SOURCE)
        tls = config.tls
        self.assertEqual((tls.cert_file, tls.key_file, tls.client_ca_file),
                         ("/etc/slurm-sd/cert.pem", "/etc/slurm-sd/key.pem", "/etc/pki/ca.pem"))
        self.assertEqual((tls.client_auth_type, tls.client_allowed_sans, tls.min_version,
                          tls.max_version),
                         ("RequireAndVerifyClientCert", ("prometheus",), "TLS13", "TLS13"))
        self.assertEqual(config.users, ((b"prometheus", HASH.encode()), (b"42", HASH.encode())))
        self.assertEqual(tls.files(), ("/etc/slurm-sd/cert.pem", "/etc/slurm-sd/key.pem",
                                       "/etc/pki/ca.pem"))

    def test_defaults(self):
        """Without them: NoClientCert, TLS 1.2 to 1.3."""
        tls = parse_web_config(TLS, SOURCE).tls
        self.assertEqual((tls.client_auth_type, tls.min_version, tls.max_version),
                         ("NoClientCert", "TLS12", "TLS13"))

    def test_errors_name_file_and_key(self):
        """Each mistake is one line naming the file and the key."""
        cases = {
            "tls_server_config:\n  cert_file: c.pem\n":
                "tls_server_config.key_file: is required when TLS is configured",
            "tls_server_config:\n  key_file: k.pem\n":
                "tls_server_config.cert_file: is required when TLS is configured",
            TLS + "  client_auth_type: Sometimes\n":
                "tls_server_config.client_auth_type: must be one of NoClientCert,",
            TLS + "  client_ca_file: ca.pem\n":
                "tls_server_config.client_ca_file: is set but client_auth_type is NoClientCert",
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n":
                "tls_server_config.client_ca_file: is required with client_auth_type "
                "RequireAndVerifyClientCert",
            TLS + "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [x]\n":
                "tls_server_config.client_allowed_sans: needs a client_auth_type that verifies",
            TLS + "  min_version: TLS13\n  max_version: TLS12\n":
                "tls_server_config.min_version: TLS13 is newer than max_version TLS12",
            TLS + "  min_version: SSL3\n":
                "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13",
            TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n":
                "tls_server_config.cipher_suites: is not supported by slurm-sd",
            TLS + "  colour: blue\n": "tls_server_config.colour: unknown key",
            "http_server_config: {http2: false}\n": "http_server_config: is not supported",
            "users: {}\n": "users: unknown key (allowed: tls_server_config, basic_auth_users)",
            "basic_auth_users: [a, b]\n":
                "basic_auth_users: must be a mapping of user name to bcrypt hash",
            "basic_auth_users:\n  'a:b': '" + HASH + "'\n":
                "basic_auth_users.a:b: a user name must not contain ':'",
            "tls_server_config: [\n": "not valid YAML at line",
        }
        for text, expected in cases.items():
            line = error(text)
            self.assertTrue(line.startswith(SOURCE + ": "), line)
            self.assertIn(expected, line)
            self.assertNotIn("\n", line)

    def test_plain_password_refused_unshown(self):
        """A password where a hash belongs is refused, and the error does not show it."""
        line = error("basic_auth_users:\n  prometheus: hunter2-password\n")
        self.assertIn("basic_auth_users.prometheus: must be a bcrypt hash", line)
        self.assertNotIn("hunter2", line)
        self.assertIn("must be a bcrypt hash", error("basic_auth_users:\n  p: 12\n"))
        self.assertIn("must be a bcrypt hash",
                      error("basic_auth_users:\n  p: '" + HASH[:-1] + "'\n"))

    def test_repr_hides_users(self):
        """The repr says how many users, not who or their hashes."""
        config = parse_web_config("basic_auth_users:\n  prometheus: '" + HASH + "'\n", SOURCE)
        self.assertEqual(repr(config), f"<WebConfig {SOURCE}: TLS off, 1 basic auth users>")


class ConfigKeyTests(SynchronousTestCase):
    """``web_config_file`` in slurm-sd's own configuration."""

    def test_path_resolved(self):
        """The path is taken from the configuration file's directory."""
        config = parse(BASE + "web_config_file: web.yml\n", source="/etc/slurm-sd/config.yaml")
        self.assertEqual(config.web_config_file, "/etc/slurm-sd/web.yml")
        self.assertIsNone(parse(BASE).web_config_file)

    def test_not_with_http_auth(self):
        """web_config_file and http_auth together are one start-up error naming the key."""
        with self.assertRaises(ConfigError) as caught:
            parse(BASE + "web_config_file: /w.yml\n"
                         "http_auth: {bearer_token_file: /t}\n", source="/c.yaml")
        self.assertEqual(str(caught.exception).split(":")[:2], ["/c.yaml", " web_config_file"])
        self.assertIn("cannot be used together with http_auth", str(caught.exception))

    def test_not_with_ssl_listen(self):
        """An ssl: listen string with web_config_file is refused, from the file or --listen."""
        with self.assertRaises(ConfigError) as caught:
            parse(BASE + "web_config_file: /w.yml\nlisten: 'ssl:8443:privateKey=k.pem'\n",
                  source="/c.yaml")
        self.assertIn("/c.yaml: listen: an ssl: endpoint cannot be used together with "
                      "web_config_file", str(caught.exception))
        config = parse(BASE + "web_config_file: /w.yml\n")
        with self.assertRaises(ConfigError) as caught:
            apply_overrides(config, {"listen": "SSL:8443"})
        self.assertIn("<command line>: --listen: an ssl: endpoint", str(caught.exception))
        self.assertEqual(apply_overrides(config, {"listen": "tcp:9"}).listen, "tcp:9")

    def test_usage_error_one_line(self):
        """On the command line the conflict is one line (twistd's UsageError)."""
        text = BASE + "web_config_file: /w.yml\nhttp_auth: {bearer_token_file: /t}\n"
        options = Options(opener=lambda path, encoding=None: io.StringIO(text))
        with self.assertRaises(SystemExit) as caught:
            options.parseOptions(["--config", "/c.yaml"])
        self.assertIn("web_config_file: cannot be used together with http_auth",
                      str(caught.exception.code))


class ReloadTests(SynchronousTestCase):
    """A reload that changes web_config_file or switches auth kind waits for a restart."""

    def reload(self, old, new):
        """Run a Reloader from ``old`` to ``new``; the config in effect after it."""
        class Site:
            """The running site."""

            access_log = False
        clock = Clock()
        cache = TargetCache(clock)
        poller = Poller(clock, ScriptedSource(), fake_process, cache, old)
        with capturedLogs():
            return Reloader(lambda: new, ClusterSet.of_one(cache, poller),
                            lambda config: None, Site()).reload()

    def test_web_config_file_needs_restart(self):
        """A new web_config_file path is kept for the restart; the old one stays."""
        old = parse(BASE + "web_config_file: /a.yml\n")
        after = self.reload(old, parse(BASE + "web_config_file: /b.yml\n"))
        self.assertEqual(after.web_config_file, "/a.yml")

    def test_switch_to_http_auth_waits(self):
        """From web_config_file to http_auth: neither changes until the restart."""
        old = parse(BASE + "web_config_file: /a.yml\n")
        new = attr.evolve(parse(BASE), http_auth=HttpAuth(bearer_token_file="/t"))
        after = self.reload(old, new)
        self.assertEqual((after.web_config_file, after.http_auth), ("/a.yml", None))

    def test_switch_from_http_auth_keeps_it(self):
        """From http_auth to web_config_file: http_auth stays on until the restart."""
        auth = HttpAuth(bearer_token_file="/t")
        old = attr.evolve(parse(BASE), http_auth=auth)
        after = self.reload(old, parse(BASE + "web_config_file: /a.yml\n"))
        self.assertEqual((after.web_config_file, after.http_auth), (None, auth))


class CheckCommandTests(SynchronousTestCase):
    """``slurm-sd check`` reads the web configuration file as the daemon would at start."""

    def run_check(self, web_text):
        """``(status, stdout, stderr)`` of check on a config naming a web file with ``web_text``."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "web.yml"), "w") as handle:
            handle.write(web_text)
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as handle:
            handle.write(BASE + "web_config_file: web.yml\n")
        out, err = io.BytesIO(), io.StringIO()
        status = check(path, out, err, {})
        return status, out.getvalue().decode(), err.getvalue(), directory

    def test_good(self):
        """A usable file: status 0 and a line saying where TLS and auth come from."""
        status, out, err, directory = self.run_check("basic_auth_users: {}\n")
        self.assertEqual((status, err), (0, ""))
        self.assertIn(f"web_config_file: {directory}/web.yml (TLS and basic auth", out)

    def test_bad(self):
        """A file the daemon could not start with: status 1 and one line naming the key."""
        status, out, err, directory = self.run_check(TLS)
        self.assertEqual(status, 1)
        self.assertEqual(err, f"slurm-sd: {directory}/config.yaml: web_config_file: "
                              f"{directory}/web.yml: tls_server_config.cert_file: cannot read "
                              f"{directory}/cert.pem: No such file or directory\n")
