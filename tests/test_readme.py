"""README.rst's set-up commands: exactly two, and the test one is what CI runs."""
import os
import re

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    """The text of a file at the repository root."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def setup_commands():
    """The literal commands of README's Set-up section, in order."""
    section = read("README.rst").split("\nSet-up\n------\n", 1)[1].split("\n------", 1)[0]
    return [line.strip() for line in section.splitlines()
            if line.startswith("    ") and line.strip()]


class ReadmeTests(SynchronousTestCase):
    """The two set-up commands stay true."""

    def test_two_commands(self):
        """Set-up has exactly two commands: install and run the demo; run the tests."""
        install, test = setup_commands()
        self.assertIn("pip install .", install)
        self.assertIn("slurm-sd --config etc/demo.yaml", install)
        self.assertIn("twisted.trial tests", test)

    def test_ci_runs_the_readme_test_command(self):
        """.ci/run runs README's test command verbatim."""
        _, test = setup_commands()
        self.assertIn(f"( {test} )", read(".ci/run"))

    def test_demo_config_names_bundled_data(self):
        """The demo config reads the node list bundled beside it."""
        match = re.search(r"url: file:(\S+)", read("etc/demo.yaml"))
        self.assertTrue(os.path.exists(os.path.join(ROOT, "etc", match.group(1))))
