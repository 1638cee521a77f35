"""
Fault tests: the real Poller, SlurmrestdClient, pipeline and cache against the
stand-in slurmrestd (tests/standin.py).

Most run on the in-memory wire and the stand-in's clock: byte-exact control of every
answer and its timing, a view from the server side of whether the client hung up and
how much it was sent, and no real time at all (a timeout of 0.5 s is an advance of the
clock).  What only real sockets show (the OS's connect errors, a TCP reset) runs on the
real reactor, on a UNIX socket or 127.0.0.1, where every wait is a Deferred with a
deadline.
"""
import json
import shutil
import tempfile

import attr
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.runner import process
from slurm_sd.service import poller as poller_module
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller
from slurm_sd.sources.choose import make_source
from tests.answers import ERROR_511, BreakOff, Drip, Flood, Reply, Silent, response
from tests.fakes import captured, fixture
from tests.logged import log_lines
from tests.realtime import deadline
from tests.standin import StandIn, nodes_body

GOOD = fixture("slurm-22.05-v0.0.38-nodes.json")
#: The same cluster later: other states, so the served body differs.
NEWER = fixture("slurm-22.05-v0.0.38-nodes-varied.json")
TIMEOUT = 0.5
#: How many clock steps a poll may take before the test calls it stuck.
STEPS = 10000


class FaultTestCase(TestCase):
    """A poller with a real client talking to the stand-in in memory, on its clock."""

    config_text = ("slurmrestd: {{url: '{url}', api_version: v0.0.38, "
                   "timeout: {timeout}, max_response_bytes: 65536}}\n"
                   "interval: 60\njobs:\n  - node: {{port: 9100}}\n")
    socket = "/run/slurmrestd/slurmrestd.socket"

    def url(self):
        """slurmrestd.url: a socket path, which the in-memory wire never opens."""
        return f"unix:{self.socket}"

    def setUp(self):
        """The stand-in and its clock; every log event from now on."""
        self.events = self.enterContext(capturedLogs())
        self.standin = StandIn()
        self.clock = self.standin.reactor

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
        """One poll, and then every connection it made closed."""
        d = self.poller.poll()
        self.run_clock(lambda: d.called and all(c.lost.called
                                                for c in self.standin.connections))
        return d

    def mark(self):
        """A position in the log to read new lines from."""
        return len(self.events)

    def since(self, mark, level=LogLevel.warn):
        """The log lines at ``level`` or above since ``mark``."""
        return log_lines(self.events, level, since=mark, or_worse=True)

    @defer.inlineCallbacks
    def assert_fault(self, answer, *phrases, versions=None, **slurm):
        """
        Good data, then ``answer``: the old data stays, one line with ``phrases``
        is logged, then the stand-in recovers and so does the daemon.

        :param versions: the API versions the stand-in offers during the fault.
        :return: the logged line.
        """
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


class TimingFaultTests(FaultTestCase):
    """A slurmrestd that is slow, silent or hangs up."""

    def test_never_answers(self):
        """A server that accepts and never answers: the timeout fires, the client hangs up."""
        return self.assert_fault(Silent(), f"did not answer within {TIMEOUT:g} s",
                                 "raise slurmrestd.timeout")

    def test_slow_drip_past_timeout(self):
        """An answer dripping in slower than the timeout is abandoned at the timeout."""
        raw = response(200, NEWER)
        return self.assert_fault(Drip(raw, 100, 0.05), "did not finish answering within",
                                 "slurmrestd.timeout")

    @defer.inlineCallbacks
    def test_slow_drip_within_timeout(self):
        """A slow answer that completes within the timeout is used."""
        self.make_poller()
        raw = response(200, NEWER)
        self.standin.nodes = Drip(raw, len(raw) // 8 + 1, 0.02)
        yield self.poll()
        self.assertIn("mixed+drain", {g["labels"]["__meta_slurm_node_state"]
                                      for g in self.served()})

    def test_closed_without_answer(self):
        """A connection closed before any answer is one line saying so."""
        return self.assert_fault(BreakOff(b"", 0), "connection to slurmrestd at unix:",
                                 "closed")

    def test_broken_off_mid_body(self):
        """A connection dropped mid-body (shorter than its Content-Length) is refused."""
        raw = response(200, NEWER)
        return self.assert_fault(BreakOff(raw, len(raw) // 2), "broke off its answer",
                                 "/slurm/v0.0.38/nodes/")

    def test_broken_off_mid_headers(self):
        """A connection dropped in the middle of the status line and headers is refused."""
        return self.assert_fault(BreakOff(response(200, NEWER), 30),
                                 "connection to slurmrestd at unix:")

class StatusFaultTests(FaultTestCase):
    """Error statuses with the bodies real Slurm sends."""

    def test_401(self):
        """401 text/plain (no or refused auth headers) says how to send them."""
        return self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-no-auth-headers.http")),
            "refused authentication", "401 Authentication failure",
            "slurmrestd.user and a token")

    def test_404(self):
        """404 (API version not served) lists the versions the server offers."""
        return self.assert_fault(
            None, "does not serve /slurm/v0.0.38/nodes/ (404)", "it offers v0.0.40, v0.0.41",
            "slurmrestd.api_version", versions=["v0.0.40", "v0.0.41"])

    def test_500_slurmctld_down(self):
        """22.05's 500 when slurmctld is down names Slurm's error and slurmctld."""
        return self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-slurmctld-down.http")),
            "500", "Unspecified error (errno -1)", "slurmctld")

    def test_500_bad_token(self):
        """22.05's 500 for a bad token, while a token is sent, points at the token."""
        return self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-bad-token-signature.http")),
            "500", "scontrol token", user="slurmrest", token="t0k3n")

    def test_502(self):
        """24.11's 502 says slurmrestd cannot reach slurmctld, in Slurm's words."""
        return self.assert_fault(
            Reply(captured("slurm-24.11-v0.0.40-nodes-slurmctld-down.http")),
            "cannot reach slurmctld", "Unable to contact slurm controller")

    def test_511(self):
        """24.11's 511 (error 1007) says the token was refused."""
        return self.assert_fault(
            Reply(response(511, ERROR_511, reason=b"NETWORK AUTHENTICATION REQUIRED")),
            "511", "Protocol authentication error", "scontrol token",
            user="slurmrest", token="t0k3n")

    def test_html_error_page(self):
        """An HTML 502 from a proxy in front of slurmrestd shows the page's title."""
        page = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                b"</body>\r\n</html>\r\n")
        return self.assert_fault(
            Reply(response(502, page, b"text/html", b"Bad Gateway")), "502 Bad Gateway")

    def test_html_page_with_200(self):
        """An HTML page served with 200 (a login portal, a web server) is not taken as data."""
        page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body></body></html>"
        return self.assert_fault(Reply(response(200, page, b"text/html")), "not JSON",
                                 "an HTML or XML page", "slurmrestd.url")


class BodyFaultTests(FaultTestCase):
    """200 answers whose body is unusable."""

    def test_truncated_json(self):
        """A 200 whose JSON stops half-way is refused."""
        return self.assert_fault(Reply(response(200, NEWER[:len(NEWER) // 2])), "not JSON")

    def test_truncated_json_no_length(self):
        """A body with no Content-Length ended early by the server is refused."""
        return self.assert_fault(Reply(response(200, NEWER[:-40], length=False)),
                                 "not JSON")

    def test_invalid_utf8(self):
        """A body that is not UTF-8 is refused, naming the byte."""
        body = NEWER.replace(b'"gpu01"', b'"gpu\xff\xfe1"', 1)
        return self.assert_fault(Reply(response(200, body)), "not UTF-8")

    def test_empty_body(self):
        """An empty 200 body is refused as empty."""
        return self.assert_fault(Reply(response(200, b"")), "empty body")

    def test_errors_array(self):
        """A 200 with a non-empty errors array is refused, with Slurm's words."""
        body = json.dumps({"errors": [{"error": "Invalid node name specified",
                                       "errno": 2018}], "nodes": []}).encode()
        return self.assert_fault(Reply(response(200, body)), "Invalid node name specified")

    def test_no_nodes_key(self):
        """A 200 JSON object without a nodes list is refused."""
        return self.assert_fault(Reply(response(200, b'{"meta": {}, "errors": []}')),
                                 'no "nodes" list')

    def test_not_an_object(self):
        """A 200 whose JSON is a list is refused."""
        return self.assert_fault(Reply(response(200, b"[1, 2, 3]")), "not an object")

    @defer.inlineCallbacks
    def test_too_large_by_content_length(self):
        """A Content-Length over max_response_bytes is refused without reading the body."""
        yield self.assert_fault(Flood(length=10 ** 9), "max_response_bytes (65536 bytes",
                                "it sent 1000000000 or more")
        flood = self.standin.connections[-2]
        self.assertLess(flood.sent, 8 * 1024 * 1024)

    @defer.inlineCallbacks
    def test_too_large_without_length(self):
        """An endless body without a length is cut off just past max_response_bytes."""
        yield self.assert_fault(Flood(), "max_response_bytes (65536 bytes")
        flood = self.standin.connections[-2]
        self.assertLess(flood.sent, 8 * 1024 * 1024)

    def test_all_nodes_unusable(self):
        """A node list where no entry has a usable name is refused, not served as []."""
        body = nodes_body([{"name": None}, {"hostname": "x"}, 7, "cpu01", {"name": "  "}])
        return self.assert_fault(Reply(response(200, body)), "none has a usable name")


class OddNodeTests(FaultTestCase):
    """Nodes with missing or odd fields: the usable ones are served, never a failure."""

    @defer.inlineCallbacks
    def test_odd_fields(self):
        """Odd nodes are read leniently, unusable ones skipped and counted in one line."""
        self.make_poller()
        nodes = [
            {"name": "ok01", "address": "10.0.0.1", "partitions": ["batch"],
             "state": "idle", "state_flags": []},
            {"address": "10.0.0.2", "partitions": ["batch"]},                # no name
            {"name": None, "address": "10.0.0.3"},                          # null name
            {"name": "nopart", "address": "10.0.0.4"},                      # no partitions
            {"name": "nulls", "address": None, "hostname": None, "partitions": None,
             "state": None, "state_flags": None, "features": None,
             "architecture": None, "reason": None, "gres": None},
            {"name": "weird", "address": "10.0.0.6", "partitions": ["batch"],
             "state": ["SLEEPING", "HIBERNATING"], "features": 42,
             "active_features": {"gpu": True}},
            {"name": "odd", "address": "10.0.0.7", "partitions": "batch,gpu",
             "state": "idle", "state_flags": ["DRAIN", 5, None, "?"],
             "features": ["gpu", 3, None]},
            {"name": "ok01", "address": "10.9.9.9", "partitions": ["evil"]},  # duplicate
            "not-a-node", None, [],
        ]
        self.standin.nodes = Reply(response(200, nodes_body(nodes)))
        mark = self.mark()
        yield self.poll()
        self.assertEqual(self.cache.snapshot.nodes, 5)
        self.assertEqual(self.cache.snapshot.skipped, 6)
        lines = self.since(mark, LogLevel.info)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("6 nodes skipped", lines[0])
        groups = self.served()
        targets = {t for g in groups for t in g["targets"]}
        self.assertEqual(targets, {"10.0.0.1:9100", "10.0.0.4:9100", "nulls:9100",
                                   "10.0.0.6:9100", "10.0.0.7:9100"})
        states = {(tuple(g["targets"]), g["labels"].get("__meta_slurm_partition"),
                   g["labels"]["__meta_slurm_node_state"]) for g in groups}
        # An unknown word in the base-state slot is the unknown state; later
        # unknown words are kept as flags (decode's rule).
        self.assertIn((("10.0.0.6:9100",), "batch", "unknown+hibernating"), states)
        self.assertIn((("10.0.0.7:9100",), "gpu", "idle+drain"), states)
        self.assertIn((("10.0.0.4:9100", "nulls:9100"), None, "unknown"), states)
        self.assertNotIn("evil", {p for _, p, _ in states})


class LoopTests(FaultTestCase):
    """The real poll loop, started as the daemon starts it, on the stand-in's clock."""

    def test_loop_survives_faults_and_recovers(self):
        """Through a run of failures the loop keeps retrying and picks up good data again."""
        self.patch(poller_module, "RETRY_BASE", 0.05)
        poller = self.make_poller(interval=0.1)
        self.addCleanup(poller.stop)
        self.standin.answers = [
            Reply(response(200, GOOD)), Silent(),
            Reply(captured("slurm-24.11-v0.0.40-nodes-slurmctld-down.http")),
            BreakOff(response(200, NEWER), 500), Reply(response(200, b""))]
        self.standin.nodes = Reply(response(200, NEWER))
        poller.start()

        def recovered():
            snapshot = self.cache.snapshot
            return snapshot is not None and b"mixed+drain" in snapshot.bodies["node"]
        self.run_clock(recovered)
        errors = self.since(0, LogLevel.error)
        self.assertEqual(len(errors), 4, errors)


class RealSocketTests(FaultTestCase):
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
