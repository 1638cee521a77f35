"""
The real daemon (``twistd -n slurm-sd``) with a ``command:`` source, no Slurm needed:
the stand-in command (tests/standin_command.py) serves a captured body, and a command
that ignores SIGTERM is SIGKILLed when the daemon stops, so that no process outlives it.
"""
import os
import shlex
import shutil
import signal
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import daemon, support

STANDIN = os.path.join(str(support.REPO_ROOT), "tests", "standin_command.py")


class CommandDaemonTests(SynchronousTestCase):
    """twistd with ``url: command:...``."""

    def start(self, *args, wait="data"):
        """Start a daemon whose source runs the stand-in command with ``args``."""
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-cmd-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        port = support.free_port()
        url = "command:" + shlex.join([sys.executable, STANDIN, *args])
        path = daemon.write_config(os.path.join(self.tmp, "config.yaml"), url=url, port=port,
                                   jobs=[{"node": {"port": 9100}}], interval=2,
                                   api_version="auto")
        self.daemon = daemon.Daemon(path, port, os.path.join(self.tmp, "slurm-sd.log"),
                                    cwd=self.tmp)
        self.addCleanup(self.stop)
        self.daemon.start(wait=wait)

    def stop(self):
        """Stop the daemon (SIGTERM); nothing it started may outlive it."""
        status = self.daemon.stop()
        if status is None:
            return
        log = self.daemon.log_text()
        self.assertEqual([], self.daemon.leftovers, "processes outlived slurm-sd:\n" + log)
        self.assertNotIn("Traceback", log)
        self.assertIn(status, (0, -signal.SIGTERM), log[-2000:])

    def test_serves_the_command_output(self):
        """The stand-in's captured 22.05 body is served, and the poll is logged by command."""
        self.start("--body", "slurm-22.05-v0.0.38-nodes.json")
        groups = self.daemon.targets("node")
        self.assertTrue(groups and all(g["targets"] for g in groups), groups)
        self.assertIn("poll of command `", self.daemon.log_text())

    def test_stubborn_command_killed_when_the_daemon_stops(self):
        """A command that ignores SIGTERM, running when the daemon gets SIGTERM, is killed:
        the daemon exits and leaves no process behind."""
        pid_dir = tempfile.mkdtemp(prefix="slurm-sd-pid-")
        self.addCleanup(shutil.rmtree, pid_dir, True)
        pid_file = os.path.join(pid_dir, "pid")
        self.start("--pid-file", pid_file, "--hang", wait="listening")
        pid = support.wait_for(lambda: self._pid(pid_file), 20, "the stand-in command")
        self.assertTrue(support.alive(pid))
        self.stop()   # asserts that no descendant is left
        self.assertFalse(support.alive(pid), "the command outlived the daemon")

    @staticmethod
    def _pid(path):
        """The pid in ``path``, once the stand-in has written it."""
        if not os.path.exists(path):
            raise support.NotReady(path + " not written yet")
        with open(path) as handle:
            return int(handle.read())
