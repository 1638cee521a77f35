"""
The fault tests' kit: :class:`FaultTestCase`, the real Poller, SlurmrestdClient, pipeline
and cache against the stand-in slurmrestd (tests/standin.py).

On the in-memory wire and the stand-in's clock: byte-exact control of every answer and
its timing, a view from the server side of whether the client hung up and how much it
was sent, and no real time at all (a timeout of 0.5 s is an advance of the clock).
"""
import json

import attr
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.runner import process
from slurm_sd.service import poller as poller_module
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller
from tests.answers import Reply, response
from tests.fakes import fixture
from tests.logged import log_lines
from tests.standin import StandIn

GOOD = fixture("slurm-22.05-v0.0.38-nodes.json")
#: The same cluster later: other states, so the served body differs.
NEWER = fixture("slurm-22.05-v0.0.38-nodes-varied.json")
TIMEOUT = 0.5
#: How many clock steps a poll may take before the test calls it stuck.
STEPS = 10000


class FaultMixin:
    """The daemon's parts around the stand-in, and the one fault check (:meth:`assert_fault`)."""

    config_text = ("slurmrestd: {{url: '{url}', api_version: v0.0.38, "
                   "timeout: {timeout}, max_response_bytes: 65536}}\n"
                   "interval: 60\njobs:\n  - node: {{port: 9100}}\n")
    socket = "/run/slurmrestd/slurmrestd.socket"

    def url(self):
        """slurmrestd.url: a socket path, which the in-memory wire never opens."""
        return f"unix:{self.socket}"

    def make_source(self, config, environ):
        """The real client, on the in-memory wire."""
        return self.standin.make_source(self.clock, config, environ)

    def make_poller(self, environ=None, interval=60, **slurm):
        """The real source, pipeline and cache for the stand-in."""
        config = parse(self.config_text.format(url=self.url(), timeout=TIMEOUT))
        config = attr.evolve(config, interval=interval)
        if slurm:
            config = attr.evolve(config, slurmrestd=attr.evolve(config.slurmrestd, **slurm))
        self.config = config
        self.cache = TargetCache(self.clock)
        self.poller = Poller(self.clock, self.make_source(config, environ or {}), process,
                             self.cache, config)
        return self.poller

    def served(self):
        """The body served for job node, parsed."""
        return json.loads(self.cache.snapshot.bodies["node"])

    def mark(self):
        """A position in the log to read new lines from."""
        return len(self.events)

    def since(self, mark, level=LogLevel.warn):
        """The log lines at ``level`` or above since ``mark``."""
        return log_lines(self.events, level, since=mark, or_worse=True)

    def assert_fault(self, answer, *phrases, versions=None, **slurm):
        """
        Good data, then ``answer``: the old data stays, one line with ``phrases``
        is logged, then the stand-in recovers and so does the daemon.

        :param versions: the API versions the stand-in offers during the fault.
        :return: the logged line (through :meth:`drive`).
        """
        return self.drive(self._fault(answer, phrases, versions, slurm))

    def _fault(self, answer, phrases, versions, slurm):
        """:meth:`assert_fault` as steps: yields each poll's Deferred, gets its result."""
        if not hasattr(self, "poller"):
            self.make_poller(**slurm)
        self.standin.nodes = Reply(response(200, GOOD))
        yield self.poll()
        good = self.cache.snapshot
        self.assertIsNotNone(good)
        self.standin.nodes = answer
        if versions is not None:
            self.standin.versions = versions
        mark = self.mark()
        delay = yield self.poll()
        self.assertIs(self.cache.snapshot, good, "the last good data is still served")
        self.assertEqual(delay, poller_module.RETRY_BASE, "a retry is scheduled soon")
        lines = self.since(mark)
        self.assertEqual(len(lines), 1, lines)
        [line] = lines
        self.assertNotIn("\n", line)
        self.assertNotIn("Traceback", line)
        self.assertNotIn("twisted.", line, "no reprs of Twisted objects")
        self.assertIn("still serving the data from", line)
        for phrase in phrases:
            self.assertIn(phrase, line)
        # slurmrestd comes back: so does the daemon.
        self.standin.versions = ["v0.0.38"]
        self.standin.nodes = Reply(response(200, NEWER))
        yield self.poll()
        self.assertIsNot(self.cache.snapshot, good)
        states = {g["labels"]["__meta_slurm_node_state"] for g in self.served()}
        self.assertIn("mixed+drain", states)
        return line


class FaultTestCase(FaultMixin, SynchronousTestCase):
    """A poller with a real client talking to the stand-in in memory, on its clock."""

    def setUp(self):
        """The stand-in and its clock; every log event from now on."""
        self.events = self.enterContext(capturedLogs())
        self.standin = StandIn()
        self.clock = self.standin.reactor

    def run_clock(self, done):
        """Advance the clock from one scheduled call to the next until ``done()``."""
        for _ in range(STEPS):
            if done():
                return
            calls = self.clock.getDelayedCalls()
            if not calls:
                break
            self.clock.advance(max(0, min(c.getTime() for c in calls) - self.clock.seconds()))
        self.assertTrue(done(), "nothing left to happen, and still not done")

    def poll(self):
        """One poll, and then every connection it made closed; its Deferred, fired."""
        d = self.poller.poll()
        self.run_clock(lambda: d.called and all(c.lost.called
                                                for c in self.standin.connections))
        return d

    def drive(self, steps):
        """Run ``steps`` (a generator of Deferreds fired on the wire) to the end; its value."""
        result = None
        try:
            while True:
                result = self.successResultOf(steps.send(result))
        except StopIteration as stop:
            return stop.value
