"""
What only real sockets show, on the real reactor: the OS's connect errors on a UNIX
socket and on TCP, and a TCP reset.  The stand-in listens on a UNIX socket in a new
directory or on 127.0.0.1, and every wait is a Deferred with a deadline.
"""
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from slurm_sd.sources.choose import make_source
from tests.answers import BreakOff, Reply, response
from tests.realtime import deadline
from tests.sources.faultcase import GOOD, NEWER, FaultMixin
from tests.standin import StandIn


class RealSocketTests(FaultMixin, TestCase):
    """What only real sockets show, on the real reactor: connect errors, a TCP reset."""

    timeout = 30
    config_text = ("slurmrestd: {{url: '{url}', api_version: v0.0.38, "
                   "timeout: {timeout}}}\ninterval: 60\njobs:\n  - node: {{port: 9100}}\n")
    unix = False

    def setUp(self):
        """Listen on 127.0.0.1, a free port; a UNIX socket path in a new directory."""
        self.events = self.enterContext(capturedLogs())
        directory = tempfile.mkdtemp(prefix="sd-faults-")  # short: AF_UNIX paths <= 107
        self.addCleanup(shutil.rmtree, directory)
        self.socket = directory + "/slurmrestd.sock"
        self.clock = reactor
        self.standin = StandIn(reactor)
        self.addCleanup(self.standin.stop)
        d = self.standin.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
        d.addCallback(lambda port: setattr(self, "port", port.getHost().port))
        return d

    def make_source(self, config, environ):
        """The daemon's own source: real sockets."""
        return make_source(reactor, config, environ)

    def url(self):
        """http://127.0.0.1:PORT, or the UNIX socket once ``unix`` is set."""
        return f"unix:{self.socket}" if self.unix else f"http://127.0.0.1:{self.port}"

    def drive(self, steps):
        """Run ``steps`` (a generator of Deferreds) on the real reactor; a Deferred."""
        return defer.inlineCallbacks(lambda: steps)()

    @defer.inlineCallbacks
    def poll(self):
        """One poll, and then every connection it made closed."""
        delay = yield deadline(self.poller.poll())
        yield deadline(defer.DeferredList([c.lost for c in self.standin.connections]))
        return delay

    @defer.inlineCallbacks
    def test_refused_unix(self):
        """Nothing listening on the socket: one line, and recovery once it listens."""
        yield self.standin.stop()
        yield self.standin.listen(UNIXServerEndpoint(reactor, self.socket))
        self.unix = True
        self.make_poller()
        self.standin.nodes = Reply(response(200, GOOD))
        yield self.poll()
        good = self.cache.snapshot
        yield self.standin.stop()
        mark = self.mark()
        yield self.poll()
        self.assertIs(self.cache.snapshot, good)
        [line] = self.since(mark)
        self.assertIn(f"cannot connect to slurmrestd at unix:{self.socket}: "
                      f"No such file or directory", line)
        yield self.standin.listen(UNIXServerEndpoint(reactor, self.socket))
        self.standin.nodes = Reply(response(200, NEWER))
        yield self.poll()
        self.assertIn("mixed+drain", {g["labels"]["__meta_slurm_node_state"]
                                      for g in self.served()})

    @defer.inlineCallbacks
    def test_refused(self):
        """A closed TCP port is one line saying the connection was refused."""
        self.make_poller()
        yield self.standin.stop()
        mark = self.mark()
        yield self.poll()
        [line] = self.since(mark)
        self.assertIn(f"cannot connect to slurmrestd at http://127.0.0.1:{self.port}: "
                      f"Connection refused (is slurmrestd running", line)

    def test_reset_mid_body(self):
        """A TCP RST in the middle of the body is one line, and the old data stays."""
        raw = response(200, NEWER)
        return self.assert_fault(BreakOff(raw, len(raw) // 2), "broke off its answer",
                                 "Connection")
