"""
The ``command:`` source on the real reactor, with a real program: the stand-in
tests/standin_command.py printing a captured slurmrestd body (tests/fixtures).

What fakes cannot show: the output really streams through a pipe into the spool and
the decode worker, a program that ignores SIGTERM really is SIGKILLed and reaped, and
stopping the daemon leaves no process behind.  Each wait has a deadline.
"""
import os
import shlex
import sys

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import FetchError
from slurm_sd.pipeline.runner import WorkerPipeline, process
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller, PollerService
from slurm_sd.sources import commandrun
from slurm_sd.sources.choose import make_source
from tests.fakes import fixture

STANDIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "standin_command.py")
CAPTURE = "slurm-22.05-v0.0.38-nodes.json"
CONNECT_FAILURE = "scontrol: error: Unable to contact slurm controller (connect failure)"
DEADLINE = 10


def config(*args, timeout=DEADLINE):
    """A configuration whose source runs the stand-in with ``args``."""
    url = "command:" + shlex.join([sys.executable, STANDIN, *args])
    return parse(f"slurmrestd: {{url: {url!r}, timeout: {timeout}}}\n"
                 f"jobs: [{{node: {{port: 9100}}}}, {{dcgm: {{port: 9400, "
                 f"partitions: [gpu]}}}}]\n")


def alive(pid):
    """True while process ``pid`` exists (reaped children do not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@defer.inlineCallbacks
def pid_from(path, seconds=DEADLINE):
    """The pid the stand-in writes to ``path``, once it is there."""
    for _ in range(int(seconds / 0.02)):
        if os.path.exists(path):
            with open(path) as handle:
                return int(handle.read())
        yield task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"{path} did not appear within {seconds} s")


class CommandOnRealReactorTests(TestCase):
    """The command source with the stand-in program on the real reactor."""

    timeout = 30

    @defer.inlineCallbacks
    def test_capture_through_the_worker(self):
        """A captured 22.05 body printed by the program is served exactly as the same
        body read in-process: through the pipe, the spool and the decode worker."""
        cfg = config("--body", CAPTURE, "--stderr", "sinfo: a harmless remark")
        source = make_source(reactor, cfg, os.environ)
        pipeline = WorkerPipeline(reactor)
        cache = TargetCache(reactor)
        poller = Poller(reactor, source, pipeline.process, cache, cfg)
        delay = yield poller.poll()
        self.assertEqual(cfg.interval, delay)
        want = yield process(fixture(CAPTURE), cfg)
        self.assertEqual(want.bodies, cache.snapshot.bodies)
        self.assertGreater(cache.snapshot.nodes, 0)
        yield pipeline.stop()

    @defer.inlineCallbacks
    def test_exit_status_quotes_stderr(self):
        """A program that fails fails the poll with its last stderr line."""
        source = make_source(reactor, config("--stderr", CONNECT_FAILURE, "--exit", "1"))
        error = yield self.assertFailure(source.fetch_nodes(), FetchError)
        self.assertIn("failed (exit status 1); it said: " + CONNECT_FAILURE, str(error))

    @defer.inlineCallbacks
    def test_timeout_kills_a_stubborn_program(self):
        """A program that ignores SIGTERM is SIGKILLed after the grace time; the poll
        fails only once it is gone."""
        self.patch(commandrun, "KILL_GRACE", 0.2)
        pid_file = self.mktemp()
        source = make_source(reactor, config("--pid-file", pid_file, "--hang", timeout=0.5))
        d = source.fetch_nodes()
        pid = yield pid_from(pid_file)
        error = yield self.assertFailure(d, FetchError)
        self.assertIn("did not finish within 0.5 s and was killed", str(error))
        self.assertFalse(alive(pid), f"the program (pid {pid}) outlived the poll")

    @defer.inlineCallbacks
    def test_stopping_the_daemon_kills_the_program(self):
        """Stopping the poller service ends a running program; it fires once it is gone."""
        self.patch(commandrun, "KILL_GRACE", 0.2)
        pid_file = self.mktemp()
        cfg = config("--pid-file", pid_file, "--hang")
        poller = Poller(reactor, make_source(reactor, cfg), process, TargetCache(reactor), cfg)
        service = PollerService(poller)
        service.startService()
        pid = yield pid_from(pid_file)
        self.assertTrue(alive(pid))
        yield service.stopService()
        self.assertFalse(alive(pid), f"the program (pid {pid}) outlived the daemon")
