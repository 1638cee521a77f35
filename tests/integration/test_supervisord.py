"""
slurm-sd under a real supervisord, with the program section from
etc/supervisord/slurm-sd.conf: it starts, serves, stops cleanly on ``supervisorctl stop``,
starts again, is restarted after a crash, and a bad config ends in FATAL, not a loop.
"""
import json
import os
import shutil
import signal
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import daemon, supervisor, support

NAME = "slurm-sd"

# A small node list in the v0.0.38 shape (what `url: file:` reads on every poll).
NODES = {
    "meta": {"plugin": {"type": "openapi/v0.0.38", "name": "Slurm OpenAPI v0.0.38"},
             "Slurm": {"version": {"major": 22, "micro": 8, "minor": 5},
                       "release": "22.05.8"}},
    "errors": [],
    "nodes": [
        {"name": "cpu01", "hostname": "cpu01", "address": "127.0.0.11", "state": "idle",
         "state_flags": [], "partitions": ["batch"], "architecture": "x86_64",
         "features": "cpu", "active_features": "cpu", "gres": "", "reason": ""},
        {"name": "gpu01", "hostname": "gpu01", "address": "127.0.0.12", "state": "mixed",
         "state_flags": ["DRAIN"], "partitions": ["batch", "gpu"],
         "architecture": "x86_64", "features": "gpu", "active_features": "gpu",
         "gres": "gpu:a100:4", "reason": "test"},
    ],
}


class SupervisordTests(SynchronousTestCase):
    """The daemon as a supervisord program."""

    def setUp(self):
        """A work directory, a config reading a node list from a file, supervisord."""
        self.programs = support.require(supervisor.PROGRAMS)
        self.work = tempfile.mkdtemp(prefix="slurm-sd-supervisor-", dir="/tmp")
        if not os.environ.get("SLURM_SD_IT_KEEP"):
            self.addCleanup(shutil.rmtree, self.work, True)
        nodes = os.path.join(self.work, "nodes.json")
        with open(nodes, "w") as f:
            json.dump(NODES, f)
        self.port = support.free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.config = daemon.write_config(
            os.path.join(self.work, "config.yaml"), url="file:" + nodes, port=self.port,
            jobs=[{"node": {"port": 9100}}], interval=2)
        self.log_path = os.path.join(self.work, "slurm-sd.log")
        self.supervisord = supervisor.Supervisord(self.programs, self.work)

    def start_supervisord(self):
        """Start supervisord with the example's program section (test paths)."""
        self.supervisord.start(supervisor.program_section(
            self.programs["slurm-sd"], self.config, self.log_path))
        self.addCleanup(self.stop_supervisord)

    def stop_supervisord(self):
        """Stop supervisord by pid, and check that the daemon it ran is gone too."""
        pid = self.supervisord.pid(NAME) if self.supervisord.proc else 0
        self.supervisord.stop()
        if pid:
            self.assertFalse(support.alive(pid), "slurm-sd outlived supervisord")

    def wait_serving(self):
        """Wait until supervisord says RUNNING and /targets serves both nodes."""
        def serving():
            state = self.supervisord.state(NAME)
            if state != "RUNNING":
                raise support.NotReady("state " + state)
            status, _, body = support.http_get(self.url + "/targets?prom_job=node")
            if status != 200:
                raise support.NotReady("/targets answered {}".format(status))
            targets = sorted({t for g in json.loads(body) for t in g["targets"]})
            self.assertEqual(["127.0.0.11:9100", "127.0.0.12:9100"], targets)
            return self.supervisord.pid(NAME)
        try:
            return support.wait_for(serving, 30, "slurm-sd to run under supervisord")
        except AssertionError as e:
            raise AssertionError("{}\n--- slurm-sd log ---\n{}\n--- supervisord log ---\n{}"
                                 .format(e, support.tail(self.log_path),
                                         support.tail(self.supervisord.log_path)))

    def log(self):
        """The daemon's log file as supervisord wrote it."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def test_start_serve_stop_start(self):
        """supervisord starts it and it serves; `supervisorctl stop` ends it cleanly (no
        traceback, port closed); `supervisorctl start` brings it back."""
        self.start_supervisord()
        pid = self.wait_serving()
        children = support.descendants(pid)

        status, out = self.supervisord.ctl("stop", NAME)
        self.assertIn("stopped", out)
        self.assertFalse(support.alive(pid))
        for child in children:
            support.wait_for(lambda: _gone(child), 5, "slurm-sd's child {}".format(child))
        self.assertEqual("STOPPED", self.supervisord.state(NAME))
        self.assertRaises(ConnectionRefusedError, support.http_get, self.url + "/-/healthy")
        log = self.log()
        self.assertNotIn("Traceback", log)
        self.assertIn("Received SIGTERM", log)
        with open(self.supervisord.log_path) as f:
            supervisord_log = f.read()
        self.assertRegex(supervisord_log,
                         r"stopped: {} \((exit status 0|terminated by SIGTERM)\)".format(NAME))

        status, out = self.supervisord.ctl("start", NAME)
        self.assertIn("started", out)
        new_pid = self.wait_serving()
        self.assertNotEqual(pid, new_pid)

    def test_restarted_after_crash(self):
        """autorestart: when the daemon dies unasked (SIGKILL), supervisord starts it
        again and it serves."""
        self.start_supervisord()
        pid = self.wait_serving()
        os.kill(pid, signal.SIGKILL)  # the daemon our supervisord started
        support.wait_for(lambda: _gone(pid), 10, "the killed daemon to go")
        new_pid = self.wait_serving()
        self.assertNotEqual(pid, new_pid)

    def test_bad_config_ends_fatal(self):
        """A bad config ends each start at once with one line naming the file and key
        and no traceback; after startretries supervisord gives up (FATAL)."""
        with open(self.config) as f:
            config = json.load(f)
        config["jobs"][0]["node"]["port"] = 0
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.start_supervisord()
        support.wait_for(lambda: _state_is(self.supervisord, "FATAL"), 60,
                         "supervisord to give up on a bad config")
        log = self.log()
        self.assertNotIn("Traceback", log)
        self.assertIn("jobs[0].node.port", log)
        self.assertIn(self.config, log)


def _gone(pid):
    if support.alive(pid):
        raise support.NotReady("pid {} still there".format(pid))


def _state_is(supervisord, state):
    now = supervisord.state(NAME)
    if now != state:
        raise support.NotReady("state " + now)
