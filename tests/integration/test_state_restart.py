"""
state_file across a real restart (SPEC 11): ``twistd -n slurm-sd`` polls the demo node
list and writes its state file; restarted with its source gone (as after a power event
with slurmctld still down) it serves the same targets at once, ready, and says why.
"""
import json
import os
import shutil
import tempfile

from twisted.trial.unittest import TestCase

from tests.integration import support
from tests.integration.daemon import Daemon
from tests.integration.support import REPO_ROOT

DEMO_NODES = os.path.join(str(REPO_ROOT), "etc", "demo-nodes.json")


class StateRestartTests(TestCase):
    """The state file written by one daemon process is served by the next."""

    def setUp(self):
        """A working directory with the state file's directory in it."""
        self.home = tempfile.mkdtemp(prefix="slurm-sd-state-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.state = os.path.join(self.home, "lib", "state")
        os.mkdir(os.path.dirname(self.state))
        self.port = support.free_port()

    def daemon(self, name, url):
        """A daemon (stopped at cleanup, by pid) reading ``url``, with the state file."""
        path = os.path.join(self.home, name + ".yaml")
        with open(path, "w") as handle:
            json.dump({"slurmrestd": {"url": url}, "interval": 30, "state_file": self.state,
                       "listen": "tcp:%d:interface=127.0.0.1" % self.port,
                       "jobs": [{"node": {"port": 9100}}]}, handle)
        d = Daemon(path, self.port, os.path.join(self.home, name + ".log"), cwd=self.home)
        self.addCleanup(d.stop)
        return d

    def test_served_after_restart_without_source(self):
        """After a restart whose source is gone, /targets serves the stored targets at
        once (200, the same body), /-/ready is 200, and the log says where they came from."""
        first = self.daemon("first", "file:" + DEMO_NODES)
        first.start(wait="data")
        before = first.targets("node")
        self.assertTrue(before)
        def written():
            if not os.path.exists(self.state):
                raise support.NotReady("no state file yet")
        support.wait_for(written, 20, "the state file")
        first.stop()

        second = self.daemon("second", "file:" + os.path.join(self.home, "gone.json"))
        second.start(wait="data")
        self.assertEqual(second.targets("node"), before)
        status, _, body = second.get("/-/ready")
        self.assertEqual((status, body), (200, b"slurm-sd is Ready.\n"))
        log = second.log_text()
        self.assertIn("from state file " + self.state, log)
        self.assertIn("poll failed", log)
