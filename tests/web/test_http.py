"""
The HTTP side under odd and heavy use: a real daemon listening on 127.0.0.1
(port 0) on the real reactor, and raw-socket clients that send exactly the
bytes a test wants (odd query strings, nothing at all, half a request).
"""
import json
import resource

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from tests.fakes import SAMPLES
from tests.realtime import deadline, first_snapshot
from tests.test_security import DaemonTestCase

CONFIG = (f"slurmrestd: {{url: 'file:{SAMPLES}/slurm-22.05-v0.0.38-nodes-varied.json'}}\n"
          f"listen: 'tcp:0:interface=127.0.0.1'\n"
          f"jobs: [{{node: {{port: 9100}}}}, {{dcgm: {{port: 9400, partitions: [gpu]}}}}]\n")


class RawClient(Protocol):
    """Sends given bytes (maybe none) and collects everything until the close."""

    def __init__(self, data=b""):
        self.data = data
        self.received = []
        self.connected_ = defer.Deferred()
        self.closed = defer.Deferred()

    def connectionMade(self):
        """Send what we were given."""
        if self.data:
            self.transport.write(self.data)
        self.connected_.callback(self)

    def send(self, data):
        """Send more."""
        self.transport.write(data)

    def dataReceived(self, data):
        """Keep what the server says."""
        self.received.append(data)

    def connectionLost(self, reason):
        """Hand over the whole answer."""
        self.closed.callback(b"".join(self.received))


def parse_response(raw):
    """``(status, headers dict, body)`` of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def request(target, host=b"127.0.0.1"):
    """A GET for ``target`` (bytes, sent as they are) that closes the connection after."""
    return (b"GET " + target + b" HTTP/1.1\r\nHost: " + host +
            b"\r\nConnection: close\r\n\r\n")


class HTTPTestCase(DaemonTestCase):
    """A started daemon serving the varied 22.05 node list."""

    @defer.inlineCallbacks
    def setUp(self):
        """Start the daemon and wait for its first (file) poll."""
        DaemonTestCase.setUp(self)
        self.port = yield self.start(CONFIG)
        yield deadline(first_snapshot(self.service.cache))
        self.clients = []
        self.addCleanup(self.close_clients)

    def connect(self, data=b""):
        """A connected RawClient that has sent ``data``."""
        client = RawClient(data)
        self.clients.append(client)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=10)
        d = connectProtocol(endpoint, client)
        d.addCallback(lambda _: client.connected_)
        return d

    def close_clients(self):
        """Drop every client connection still open; fires when all are closed."""
        waits = []
        for client in self.clients:
            if not client.closed.called and client.transport is not None:
                client.transport.abortConnection()
            waits.append(client.closed)
        return defer.DeferredList(waits)

    @defer.inlineCallbacks
    def ask(self, raw):
        """Send one raw request; ``(status, headers, body)``."""
        client = yield deadline(self.connect(raw))
        answer = yield deadline(client.closed)
        return parse_response(answer)


class QueryStringTests(HTTPTestCase):
    """Odd query strings get a clean JSON answer and nothing breaks."""

    @defer.inlineCallbacks
    def test_odd_query_strings(self):
        """Each odd query string gets the answer the spec gives, as JSON."""
        cases = [
            (b"/targets?prom_job=node", 200),
            (b"/targets?prom_job=node&prom_job=node", 400),
            (b"/targets?prom_job=node&prom_job=dcgm", 400),
            (b"/targets?prom_job=no%64e", 200),                 # percent-encoded "node"
            (b"/targets?&&prom_job=node&", 200),
            (b"/targets?prom_job=node&other=1&other=2", 200),
            (b"/targets?PROM_JOB=node", 200),                  # not prom_job: every job
            (b"/targets?prom_job", 200),     # no "=": Twisted drops it, so every job
            (b"/targets?prom_job=", 404),
            (b"/targets?prom_job=%C3%A9t%C3%A9", 404),          # UTF-8, percent-encoded
            (b"/targets?prom_job=\xc3\xa9t\xc3\xa9", 400),      # raw bytes: Twisted says 400
            (b"/targets?prom_job=%ff%fe", 404),                 # not UTF-8
            (b"/targets?prom_job=\xff", 400),
            (b"/targets?prom_job=node%00", 404),
            (b"/targets?prom_job=%0d%0aSet-Cookie:%20x=1", 404),  # header injection try
            (b"/targets?prom_job=" + b"x" * 8000, 404),         # long but allowed
            (b"/targets?prom_job=node#fragment", 404),           # clients never send one
        ]
        for target, expected in cases:
            status, headers, body = yield self.ask(request(target))
            self.assertEqual(status, expected, target[:80])
            self.assertNotIn(b"set-cookie", headers)
            if status == 400 and b"prom_job=node&" not in target:
                continue   # Twisted's own refusal of a request line that is not ASCII
            self.assertEqual(headers[b"content-type"], b"application/json; charset=utf-8")
            document = json.loads(body.decode("utf-8"))
            if expected == 404:
                self.assertEqual(document["jobs"], ["node", "dcgm"])
            if expected == 200:
                self.assertIsInstance(document, list)

    @defer.inlineCallbacks
    def test_very_long_request_line(self):
        """A request line over Twisted's 16 KiB limit is refused, and the next request is served."""
        client = yield deadline(self.connect(request(b"/targets?prom_job=" + b"x" * 70000)))
        answer = yield deadline(client.closed)
        # Twisted answers 400 and closes; the close may reset the connection
        # before the client reads the 400 (the rest of its request is unread).
        self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:80])
        status, _, _ = yield self.ask(request(b"/targets?prom_job=node"))
        self.assertEqual(status, 200)

    @defer.inlineCallbacks
    def test_many_parameters(self):
        """A query string with 1,500 parameters is answered, not choked on."""
        target = b"/targets?" + b"&".join(b"a%d=1" % i for i in range(1500)) + b"&prom_job=node"
        status, _, body = yield self.ask(request(target))
        self.assertEqual(status, 200)
        self.assertTrue(json.loads(body))

    @defer.inlineCallbacks
    def test_garbage_request(self):
        """A request that is not HTTP gets a 400 and the server goes on."""
        client = yield deadline(self.connect(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"))
        answer = yield deadline(client.closed)
        self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:80])
        status, _, _ = yield self.ask(request(b"/-/healthy"))
        self.assertEqual(status, 200)


class SlowClientTests(HTTPTestCase):
    """Clients that connect and send nothing, or half a request, block nobody."""

    @defer.inlineCallbacks
    def test_idle_and_half_requests_do_not_block(self):
        """With 300 silent or half-sent connections open, a real request is answered at once."""
        waiting = []
        for i in range(100):
            waiting.append(self.connect())                                  # nothing
            waiting.append(self.connect(b"GET /targets?prom_jo"))          # half a line
            waiting.append(self.connect(b"GET /targets HTTP/1.1\r\nHost: x\r\n"))  # no end
        yield deadline(defer.gatherResults(waiting))
        started = reactor.seconds()
        status, _, body = yield self.ask(request(b"/targets?prom_job=node"))
        self.assertEqual(status, 200)
        self.assertLess(reactor.seconds() - started, 2)
        # The slow ones are still waiting (not answered, not dropped early).
        self.assertFalse(any(client.closed.called for client in self.clients[:-1]))

    def test_idle_connections_time_out(self):
        """The site drops idle connections after a bounded time (Twisted's, 60 s)."""
        [site] = [s.factory for s in self.service if hasattr(s, "factory")]
        self.assertIsNotNone(site.timeOut)
        self.assertLessEqual(site.timeOut, 60)


def raise_fd_limit(wanted):
    """Raise the soft RLIMIT_NOFILE towards the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ManyClientsTests(HTTPTestCase):
    """One thousand connections open at once are all served."""

    timeout = 120
    CLIENTS = 1000

    @defer.inlineCallbacks
    def test_thousand_concurrent_connections(self):
        """1,000 connections opened together, then each asks: all get the full answer."""
        # Each connection costs two descriptors here (client and server side).
        limit = raise_fd_limit(2 * self.CLIENTS + 100)
        if limit < 2 * self.CLIENTS + 100:
            self.skipTest(f"RLIMIT_NOFILE is {limit}; {2 * self.CLIENTS + 100} are needed")
        expected = self.service.cache.snapshot.bodies["node"]
        [site] = [s.factory for s in self.service if hasattr(s, "factory")]
        accepted = []
        all_accepted = defer.Deferred()
        build = site.buildProtocol

        def counting(address):
            accepted.append(address)
            if len(accepted) == self.CLIENTS:
                all_accepted.callback(None)
            return build(address)
        self.patch(site, "buildProtocol", counting)
        # Connect in waves no bigger than the listen backlog (Twisted's default 50):
        # a burst of 1,000 SYNs at once overflows any accept queue that small,
        # and the kernel retries the dropped ones only after 1, 3, 7, ... s.
        connected = []
        for _ in range(0, self.CLIENTS, 50):
            connected += yield deadline(defer.gatherResults(
                [self.connect() for _ in range(50)]), 30)
        # All 1,000 are open on the server side at once; now every one asks.
        yield deadline(all_accepted, 30)
        self.assertEqual(len(accepted), self.CLIENTS)
        for client in connected:
            client.send(request(b"/targets?prom_job=node"))
        answers = yield deadline(defer.gatherResults([c.closed for c in connected]), 60)
        statuses = [parse_response(answer)[0] for answer in answers]
        self.assertEqual(statuses.count(200), self.CLIENTS)
        self.assertEqual({parse_response(answer)[2] for answer in answers}, {expected})
