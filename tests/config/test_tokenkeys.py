"""Tests for the token keys of the slurmrestd section (slurm_sd.config.tokenkeys)."""
import io

from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.load import apply_overrides
from slurm_sd.config.parse import parse
from slurm_sd.config.summary import summary
from slurm_sd.errors import ConfigError
from slurm_sd.tap import Options

JOBS = "jobs: [{node: {port: 9100}}]\n"


def config(slurmrestd):
    """Parse a config whose slurmrestd section holds ``slurmrestd`` (YAML flow text)."""
    return parse(f"slurmrestd: {{url: 'http://127.0.0.1:6820', {slurmrestd}}}\n{JOBS}",
                 "/etc/slurm-sd/config.yaml")


class TokenKeyTests(SynchronousTestCase):
    """token_command, jwt_key_file, token_renew_before, token_lifespan."""

    def test_defaults(self):
        """Without the keys: no command, no key, renew 600 s before, lifespan 1800 s."""
        slurm = config("user: u").slurmrestd
        self.assertEqual((slurm.token_command, slurm.jwt_key_file, slurm.token_renew_before,
                          slurm.token_lifespan), (None, None, 600.0, 1800.0))

    def test_token_command(self):
        """token_command is kept as an argv tuple, with token_renew_before."""
        slurm = config("token_command: [scontrol, token, lifespan=3600], "
                       "token_renew_before: 120").slurmrestd
        self.assertEqual(slurm.token_command, ("scontrol", "token", "lifespan=3600"))
        self.assertEqual(slurm.token_renew_before, 120.0)

    def test_jwt_key_file(self):
        """jwt_key_file is a path from the config's directory; lifespan is kept."""
        slurm = config("user: slurmrest, jwt_key_file: jwt_hs256.key, "
                       "token_lifespan: 900").slurmrestd
        self.assertEqual(slurm.jwt_key_file, "/etc/slurm-sd/jwt_hs256.key")
        self.assertEqual(slurm.token_lifespan, 900.0)

    def test_errors(self):
        """Each bad combination is one line naming the file and the key."""
        cases = {
            "token_file: /t, token_command: [scontrol, token]":
                "slurmrestd.token_command: token_command and token_file exclude each other",
            "user: u, token_file: /t, jwt_key_file: /k":
                "slurmrestd.jwt_key_file: jwt_key_file and token_file exclude each other",
            "user: u, token_command: [a], jwt_key_file: /k":
                "slurmrestd.jwt_key_file: jwt_key_file and token_command exclude each other",
            "token_command: 'scontrol token'":
                "slurmrestd.token_command: must be a list (the argv, run without a shell)",
            "token_command: []": "slurmrestd.token_command: must be a non-empty list",
            "token_command: [scontrol, '']": "slurmrestd.token_command[1]: must not be empty",
            "jwt_key_file: /k": "slurmrestd.jwt_key_file: needs slurmrestd.user",
            "token_renew_before: 60": "slurmrestd.token_renew_before: applies only with",
            "token_command: [a], token_renew_before: -1":
                "slurmrestd.token_renew_before: must be at least 0",
            "token_command: [a], token_lifespan: 60":
                "slurmrestd.token_lifespan: applies only with jwt_key_file",
            "user: u, jwt_key_file: /k, token_lifespan: 600":
                "slurmrestd.token_lifespan: must be longer than token_renew_before (600 s)",
        }
        for text, message in cases.items():
            with self.assertRaises(ConfigError) as caught:
                config(text)
            line = str(caught.exception)
            self.assertTrue(line.startswith("/etc/slurm-sd/config.yaml: " + message),
                            (text, line))
            self.assertNotIn("\n", line)

    def test_token_file_option_replaces_command(self):
        """--token-file replaces the file's token_command or jwt_key_file."""
        for text in ("token_command: [a]", "user: u, jwt_key_file: /k"):
            slurm = apply_overrides(config(text), {"token-file": "/run/jwt"}).slurmrestd
            self.assertEqual((slurm.token_file, slurm.token_command, slurm.jwt_key_file),
                             ("/run/jwt", None, None))

    def test_clusters_form(self):
        """In the clusters form the keys are per cluster and errors name the cluster."""
        text = ("clusters:\n"
                "  - {name: a, slurmrestd: {url: 'http://127.0.0.1:1', user: u, "
                "jwt_key_file: /k}}\n"
                "  - {name: b, slurmrestd: {url: 'http://127.0.0.1:2', "
                "token_command: [scontrol, token]}}\n" + JOBS)
        a, b = parse(text, "/c.yaml").clusters
        self.assertEqual((a.slurmrestd.jwt_key_file, b.slurmrestd.token_command),
                         ("/k", ("scontrol", "token")))
        with self.assertRaises(ConfigError) as caught:
            parse(text.replace("user: u, ", ""), "/c.yaml")
        self.assertTrue(str(caught.exception).startswith(
            "/c.yaml: clusters[0].slurmrestd.jwt_key_file: needs slurmrestd.user"))

    def test_check_summary(self):
        """``slurm-sd check`` says where a renewing token comes from and the user."""
        lines, _ = summary(config("user: u, token_command: [scontrol, token, lifespan=3600]"),
                           {})
        self.assertIn("auth: token from running scontrol token lifespan=3600 (renewed 600 s "
                      "before it expires), user u", lines)
        lines, warnings = summary(config("user: u, jwt_key_file: /nonexistent/k"), {})
        self.assertIn("auth: tokens minted with /nonexistent/k, 1800 s each (renewed 600 s "
                      "before they expire), user u", lines)
        self.assertIn("slurmrestd.jwt_key_file: /nonexistent/k is not readable by this user",
                      warnings)

    def test_start_up_error_one_line(self):
        """twistd's start-up ends with one line when token_command and token_file meet."""
        text = ("slurmrestd: {url: 'http://127.0.0.1:6820', token_file: /t, "
                "token_command: [scontrol, token]}\n" + JOBS)
        options = Options(opener=lambda path, **kw: io.StringIO(text))
        with self.assertRaises(SystemExit) as caught:
            options.parseOptions(["--config", "/c.yaml"])
        self.assertEqual(str(caught.exception.code),
                         "slurm-sd: /c.yaml: slurmrestd.token_command: token_command and "
                         "token_file exclude each other (both say where the token comes "
                         "from): keep one")
