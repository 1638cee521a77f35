"""
README.rst and the documents around it: exactly two set-up commands (and the test one
is what CI runs), docs/index.rst lists every page, every page renders, and the licence,
changelog and package metadata agree.
"""
import configparser
import io
import os
import re

import docutils.core
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd._version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def read(name):
    """The text of a file at the repository root."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def setup_commands():
    """The literal commands of README's Set-up section, in order."""
    section = read("README.rst").split("\nSet-up\n------\n", 1)[1].split("\n------", 1)[0]
    return [line.strip() for line in section.splitlines()
            if line.startswith("    ") and line.strip()]


def metadata():
    """setup.cfg's [metadata] section."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(read("setup.cfg"))
    return parser["metadata"]


def rst_links(text):
    """The relative targets of ```text <target>`_`` links in reStructuredText."""
    return [target for target in re.findall(r"`[^`<]*<([^>`]+)>`_", text)
            if "://" not in target]


def render_problems(name):
    """docutils' warnings and errors for the reStructuredText file ``name``."""
    stream = io.StringIO()
    docutils.core.publish_doctree(
        read(name), source_path=name,
        settings_overrides={"warning_stream": stream, "report_level": 2,
                            "halt_level": 5, "syntax_highlight": "none"})
    return stream.getvalue()


class ReadmeTests(SynchronousTestCase):
    """The two set-up commands stay true."""

    def test_two_commands(self):
        """Set-up has exactly two commands: install and serve the demo; run the tests."""
        install, test = setup_commands()
        self.assertIn("pip install .", install)
        self.assertIn("slurm-sd serve --config etc/demo.yaml", install)
        self.assertIn("twisted.trial tests", test)

    def test_ci_runs_the_readme_test_command(self):
        """.ci/run runs README's test command verbatim."""
        _, test = setup_commands()
        self.assertIn(f"( {test} )", read(".ci/run"))

    def test_demo_config_names_bundled_data(self):
        """The demo config reads the node list bundled beside it."""
        match = re.search(r"url: file:(\S+)", read("etc/demo.yaml"))
        self.assertTrue(os.path.exists(os.path.join(ROOT, "etc", match.group(1))))

    def test_jwt_set_up(self):
        """The first-run section shows how to get a JWT and the local-auth alternative."""
        text = read("README.rst")
        for needle in ("AuthAltTypes=auth/jwt", "scontrol token username=", "lifespan=",
                       "rest_auth/local", "rest_auth/jwt"):
            self.assertIn(needle, text)


class DocsTests(SynchronousTestCase):
    """docs/: an index of every page, and pages that render."""

    def test_index_lists_every_page(self):
        """docs/index.rst links every docs/*.rst page, and nothing that is missing."""
        pages = sorted(name for name in os.listdir(DOCS)
                       if name.endswith(".rst") and name != "index.rst")
        links = rst_links(read("docs/index.rst"))
        self.assertEqual(sorted(link for link in links if "/" not in link), pages)
        for link in links:
            self.assertTrue(os.path.exists(os.path.join(DOCS, link)), link)

    def test_links_exist(self):
        """Every relative link in README.rst and docs/ names a file that exists."""
        names = ["README.rst", "CHANGELOG.rst"] + [
            os.path.join("docs", name) for name in os.listdir(DOCS) if name.endswith(".rst")]
        missing = [(name, link) for name in names for link in rst_links(read(name))
                   if not os.path.exists(os.path.join(ROOT, os.path.dirname(name), link))]
        self.assertEqual(missing, [])

    def test_pages_render(self):
        """README.rst (the package's long description), CHANGELOG.rst and every docs page
        are reStructuredText without a warning."""
        names = ["README.rst", "CHANGELOG.rst"] + sorted(
            os.path.join("docs", name) for name in os.listdir(DOCS) if name.endswith(".rst"))
        self.assertEqual({name: render_problems(name) for name in names},
                         dict.fromkeys(names, ""))


class MetadataTests(SynchronousTestCase):
    """LICENSE, CHANGELOG.rst and setup.cfg agree."""

    def test_license_file_matches(self):
        """setup.cfg's licence is the one LICENSE holds, and LICENSE is shipped."""
        meta = metadata()
        self.assertEqual(meta["license"], "MIT")
        self.assertEqual(meta["license_files"].split(), ["LICENSE"])
        self.assertTrue(read("LICENSE").startswith("MIT License\n"))
        self.assertIn("License :: OSI Approved :: MIT License", meta["classifiers"])

    def test_project_urls(self):
        """The metadata names the source, the tracker, the docs and the changelog."""
        urls = dict(line.split(" = ", 1) for line in
                    meta_lines(metadata()["project_urls"]))
        for name in ("Source", "Tracker", "Documentation", "Changelog"):
            self.assertTrue(urls.get(name, "").startswith("https://"), name)

    def test_changelog_has_this_version(self):
        """CHANGELOG.rst has an Unreleased section and one for the version written in
        slurm_sd/_version.py."""
        text = read("CHANGELOG.rst")
        self.assertIn("\nUnreleased\n----------\n", text)
        self.assertRegex(text, rf"\n{re.escape(__version__)} \(\d{{4}}-\d\d-\d\d\)\n-+\n")


def meta_lines(value):
    """The non-empty lines of a multi-line setup.cfg value."""
    return [line.strip() for line in value.splitlines() if line.strip()]


class LayoutTests(SynchronousTestCase):
    """docs/layout.rst keeps up with the package."""

    def test_every_module_described(self):
        """Every module of slurm_sd/ is named in docs/layout.rst, under its package."""
        text = read("docs/layout.rst")
        sections = re.split(r"\n(?=``slurm_sd/\w+/``:|Top-level modules\n)", text)
        described = {}
        for section in sections:
            match = re.match(r"``slurm_sd/(\w+)/``", section)
            package = match.group(1) + "/" if match else ""
            for name in re.findall(r"``(\w+\.py)``", section):
                described[package + name] = True
        package_root = os.path.join(ROOT, "slurm_sd")
        modules = sorted(
            os.path.relpath(os.path.join(where, name), package_root)
            for where, _, names in os.walk(package_root) for name in names
            if name.endswith(".py") and name != "__init__.py")
        self.assertEqual([module for module in modules if module not in described], [])
