"""
The status page ``/`` in a real browser: the daemon on the bundled demo data
(etc/demo.yaml) and Debian's headless ``chromium``, which loads the page, shows the
jobs and counts, and whose links all answer 200.  A screenshot is kept in
``$SLURM_SD_ARTEFACTS`` (default: ``artefacts/`` in trial's working directory, i.e.
``_trial_temp/artefacts/status-page.png``).

A missing chromium fails these tests (``sudo bash .ci/install-system-packages``).
"""
import json
import os
import shutil
import subprocess
import tempfile
from urllib.parse import urljoin

import yaml
from twisted.trial.unittest import TestCase

from tests.htmltree import parse_html
from tests.integration import support
from tests.integration.daemon import Daemon
from tests.integration.support import REPO_ROOT

DEMO = os.path.join(str(REPO_ROOT), "etc", "demo.yaml")

#: Quiet, offline, one-shot headless Chromium; as root it needs --no-sandbox.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

#: Seconds a Chromium run may take before it is killed.
CHROMIUM_TIMEOUT = 60

#: Where the screenshot goes (a directory), if not ``artefacts/`` in the working directory.
ARTEFACTS_VARIABLE = "SLURM_SD_ARTEFACTS"


def artefact_dir():
    """The directory for test artefacts, created if need be."""
    path = os.path.abspath(os.environ.get(ARTEFACTS_VARIABLE) or "artefacts")
    os.makedirs(path, exist_ok=True)
    return path


def _session_members(sid):
    """The pids of the processes in session ``sid`` right now (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and int(entry) != os.getpid():
                found.append(int(entry))
    return found


def run_chromium(*args):
    """
    Run headless Chromium with ``args`` in a session of its own and a fresh profile;
    return its stdout.  It is killed, by pid, after :data:`CHROMIUM_TIMEOUT` s, and
    any helper process it leaves behind is stopped, by pid, too.

    :raises AssertionError: chromium is missing, hangs or fails.
    """
    chromium = support.find_program("chromium")
    if chromium is None:
        raise AssertionError("chromium not installed; " + support.INSTALL_HINT)
    profile = tempfile.mkdtemp(prefix="slurm-sd-chromium-")
    proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        out, err = None, b""
    finally:
        # Renderer, zygote, ...: all in chromium's session, whose id is its pid.
        helpers = _session_members(proc.pid)
        support.stop_popen(proc, timeout=5)
        for pid in helpers + _session_members(proc.pid):
            support.stop_pid(pid, timeout=5)
        shutil.rmtree(profile, ignore_errors=True)
    if out is None:
        raise AssertionError(f"chromium {' '.join(args)} hung; killed after "
                             f"{CHROMIUM_TIMEOUT} s")
    if proc.returncode != 0:
        raise AssertionError(f"chromium {' '.join(args)} exited with status "
                             f"{proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return out


class StatusPageBrowserTests(TestCase):
    """The demo daemon's ``/`` as Chromium renders it."""

    def setUp(self):
        """The daemon on etc/demo.yaml (on a free loopback port), with data loaded."""
        home = tempfile.mkdtemp(prefix="slurm-sd-page-")
        self.addCleanup(shutil.rmtree, home, True)
        port = support.free_port()
        with open(DEMO) as handle:
            config = yaml.safe_load(handle)
        # The demo's node list is named relative to etc/demo.yaml.
        nodes = config["slurmrestd"]["url"][len("file:"):]
        self.nodes_path = os.path.join(os.path.dirname(DEMO), nodes)
        config["slurmrestd"]["url"] = "file:" + self.nodes_path
        config["listen"] = f"tcp:{port}:interface=127.0.0.1"
        self.jobs = [next(iter(job)) for job in config["jobs"]]
        path = os.path.join(home, "demo.yaml")
        with open(path, "w") as handle:
            json.dump(config, handle)
        self.daemon = Daemon(path, port, os.path.join(home, "daemon.log"), home)
        self.addCleanup(self.daemon.stop)
        self.daemon.start(wait="data")
        self.url = self.daemon.url + "/"

    def dom(self):
        """The page's DOM after Chromium loaded it, parsed."""
        return parse_html(run_chromium("--dump-dom", self.url).decode("utf-8"))

    def expected(self, job):
        """``(total, {partition: targets})`` of ``job`` by its /targets."""
        groups = self.daemon.targets(job)
        partitions = {}
        for group in groups:
            partition = group["labels"].get("__meta_slurm_partition", "")
            partitions[partition] = partitions.get(partition, 0) + len(group["targets"])
        return str(sum(len(group["targets"]) for group in groups)), {
            name: str(count) for name, count in partitions.items()}

    def test_jobs_and_counts(self):
        """The rendered page lists every demo job with its /targets counts, and the nodes."""
        tree = self.dom()
        shown = {}
        for body in tree.find("table", class_="jobs").find_all("tbody", class_="job"):
            counts = {row.find_all("td")[-2].attrs["data-partition"]:
                      row.find_all("td")[-1].text() for row in body.find_all("tr")}
            shown[body.attrs["data-job"]] = (body.attrs["data-targets"], counts)
        self.assertEqual(list(shown), self.jobs)
        for job in self.jobs:
            self.assertEqual(shown[job], self.expected(job), job)
        with open(self.nodes_path) as handle:
            node_count = len(json.load(handle)["nodes"])
        states = {row.attrs["data-state"]: int(row.find("td", class_="n").text())
                  for row in tree.find("table", class_="nodes").find_all("tr")
                  if "data-state" in row.attrs}
        self.assertEqual(states.pop("total"), node_count)
        self.assertEqual(sum(states.values()), node_count)
        self.assertEqual(tree.find(class_="result").text(), "success")

    def test_links_answer_200(self):
        """Every link on the rendered page answers 200."""
        links = sorted({urljoin(self.url, a.attrs["href"]) for a in self.dom().iter("a")
                        if "href" in a.attrs})
        self.assertIn(self.daemon.url + "/metrics", links)
        self.assertIn(self.daemon.url + "/targets?prom_job=dcgm", links)
        self.assertGreaterEqual(len(links), 4 + len(self.jobs))
        for link in links:
            status, _, body = support.http_get(link)
            self.assertEqual(status, 200, (link, body[:200]))

    def test_screenshot(self):
        """A screenshot of the page is kept as a test artefact (a PNG)."""
        path = os.path.join(artefact_dir(), "status-page.png")
        if os.path.exists(path):
            os.remove(path)
        run_chromium("--screenshot=" + path, "--window-size=1280,1100", self.url)
        with open(path, "rb") as handle:
            image = handle.read()
        self.assertEqual(image[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(image), 5000)
