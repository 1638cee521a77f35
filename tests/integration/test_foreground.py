"""
The daemon as an operator starts it: ``slurm-sd serve`` and ``twistd -n slurm-sd`` on the
bundled demo node list (no Slurm needed), ``--version``, SIGTERM, and a listen port that
is taken.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from twisted.trial.unittest import TestCase

from tests.integration import support
from tests.integration.daemon import Daemon, console_script, daemon_env, twistd
from tests.integration.support import REPO_ROOT

DEMO_NODES = os.path.join(str(REPO_ROOT), "etc", "demo-nodes.json")


def demo_config(directory, port):
    """The demo configuration, listening on ``port`` of 127.0.0.1; returns its path."""
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as handle:
        handle.write("slurmrestd: {url: 'file:%s'}\ninterval: 30\n"
                     "listen: tcp:%d:interface=127.0.0.1\njobs:\n  - node: {port: 9100}\n"
                     % (DEMO_NODES, port))
    return path


class ForegroundTests(TestCase):
    """``slurm-sd serve`` and ``twistd -n`` run, answer and stop like a daemon should."""

    def setUp(self):
        """A working directory that must stay empty, and a config outside it."""
        self.home = tempfile.mkdtemp(prefix="slurm-sd-fg-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.cwd = os.path.join(self.home, "cwd")
        os.mkdir(self.cwd)
        self.port = support.free_port()
        self.config = demo_config(self.home, self.port)

    def run_briefly(self, argv, timeout=20):
        """Run ``argv`` in the working directory; (exit status, output, seconds taken)."""
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.cwd, env=daemon_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            support.stop_popen(proc)
            self.fail("{} still running after {} s".format(argv, timeout))
        return proc.returncode, out.decode("utf-8", "replace"), time.monotonic() - started

    def test_version(self):
        """``slurm-sd --version``, ``slurm-sd serve --version`` and ``twistd slurm-sd
        --version`` print slurm-sd's version."""
        from slurm_sd import __version__
        for argv in ([console_script(), "--version"], [console_script(), "serve", "--version"],
                     [twistd(), "slurm-sd", "--version"]):
            status, out, _ = self.run_briefly(argv)
            self.assertEqual((status, out.strip()), (0, "slurm-sd " + __version__), argv)

    def test_serve_answers_and_stops_cleanly(self):
        """``slurm-sd serve`` serves the demo targets, shuts down on SIGTERM and leaves no
        file behind (no pid file, no log file). Like ``twistd``, it ends by re-raising
        SIGTERM once shut down, which systemd and supervisord count as a clean stop."""
        daemon = Daemon(self.config, self.port, os.path.join(self.home, "log"), self.cwd)
        self.addCleanup(daemon.stop)
        daemon.start(wait="data", serve=True)
        self.assertTrue(daemon.targets("node"))
        status = daemon.stop()
        self.assertEqual(status, -signal.SIGTERM, daemon.log_tail())
        self.assertIn("Server Shut Down.", daemon.log_text())
        self.assertEqual(daemon.leftovers, [])
        self.assertEqual(os.listdir(self.cwd), [])

    def test_port_taken_ends_at_once(self):
        """A listen port that is taken: one line, exit status 1, within seconds (both
        ``slurm-sd serve`` and ``twistd -n``)."""
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", self.port))
        blocker.listen()
        self.addCleanup(blocker.close)
        for argv in ([console_script(), "serve", "--config", self.config],
                     [twistd(), "-n", "--pidfile=", "slurm-sd", "--config", self.config]):
            status, out, seconds = self.run_briefly(argv)
            self.assertEqual(status, 1, out)
            self.assertLess(seconds, 10, out)
            lines = [line for line in out.splitlines() if "cannot listen" in line]
            self.assertEqual(len(lines), 1, out)
            self.assertIn("Address already in use", lines[0])
            self.assertEqual(os.listdir(self.cwd), [])
