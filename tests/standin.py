"""
The one stand-in slurmrestd of the tests: a raw HTTP/1.1 server, on a real socket or on
an in-memory wire.

It speaks just enough HTTP to read one request per connection and then does
whatever the test scripted for that path, byte for byte (tests/answers.py: replay a
captured ``.http`` response, answer slowly, never answer, break off mid-body, or
stream more than the client may read).  Raw bytes (not ``twisted.web``) so that broken
answers are possible and real captures are replayed exactly as Slurm sent them.

- :meth:`StandIn.http_client` is a treq client wired to it in memory (what
  ``treq.testing.StubTreq`` is to a Resource): what one end writes reaches the other
  when the call that wrote returns (a request, or an advance of the stand-in's clock
  ``reactor``), so the tests that use it are deterministic.
- :meth:`StandIn.listen` serves it on a real endpoint (a UNIX socket or 127.0.0.1) for
  what only real sockets show (a TCP reset, the OS's connect errors, TLS);
  :meth:`StandIn.stop` closes the port and every connection.
"""
import json

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent, IAgentEndpointFactory
from zope.interface import implementer

from slurm_sd.sources.slurmrestd import SlurmrestdClient
from tests.answers import Reply, response
from tests.fakes import captured, fixture

#: How many rounds of bytes a connection is carried at a time.
ROUNDS = 64
#: What the stand-in lists in ``/nodes/`` unless told otherwise.
NODES = fixture("slurm-22.05-v0.0.38-nodes.json")


def openapi_listing(*versions, slash=True):
    """A minimal ``/openapi/v3`` body listing the nodes path of ``versions``."""
    end = "/" if slash else ""
    return json.dumps({"openapi": "3.0.2", "paths": {
        f"/slurm/{v}/nodes{end}": {"get": {}} for v in versions}}).encode()


def nodes_body(nodes, version="v0.0.38"):
    """A 200 ``/nodes/`` body with ``nodes`` (plain dicts) in slurmrestd's envelope."""
    return json.dumps({"meta": {"plugin": {"type": f"openapi/{version}"}},
                       "errors": [], "nodes": nodes}).encode()


class _Connection(Protocol):
    """One accepted connection: read a request head, run the scripted answer."""

    def connectionMade(self):
        """Track the connection so that stop() can close it."""
        self.buffer = b""
        self.sent = 0
        self.lost = defer.Deferred()
        self.calls = []
        self.factory.standin.connections.append(self)
        self.factory.standin.accepted += 1

    def dataReceived(self, data):
        """Collect the head; answer once it is complete."""
        if self.buffer is None:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head = self.buffer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.buffer = None
        request_line, *header_lines = head.split("\r\n")
        path = request_line.split(" ")[1]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        standin = self.factory.standin
        standin.requests.append((path, headers))
        standin.answer_for(path)(self)

    def write(self, data):
        """Write ``data`` and count it."""
        self.sent += len(data)
        self.transport.write(data)

    def later(self, delay, f, *args):
        """``callLater`` that is cancelled when the connection goes."""
        self.calls.append(self.factory.standin.reactor.callLater(delay, f, *args))

    def connectionLost(self, reason):
        """Cancel pending writes and tell whoever waits."""
        for call in self.calls:
            if call.active():
                call.cancel()
        self.lost.callback(self.sent)


class StandIn:
    """
    A scripted slurmrestd.

    ``nodes`` is the answer to ``/slurm/{version}/nodes/`` (a callable taking
    the connection; :class:`~tests.answers.Reply`, ...); ``/openapi/v3`` lists
    ``versions``; any other path gets slurmrestd's real 404.  ``answers`` may hold
    answers to give, in order, to the requests for other paths than ``/openapi/v3``
    before the normal ones.

    :param reactor: the time of scripted answers (``later``) on a real socket; without
        it, a Clock whose ``advance`` also carries the in-memory wires' bytes (what
        :meth:`http_client` needs).
    :param body: the ``/nodes/`` body, sent with a 200.
    :ivar requests: ``(path, headers)`` of every request, lower-case header names.
    :ivar connections: every accepted connection, in order.
    """

    def __init__(self, reactor=None, versions=("v0.0.38",), body=NODES):
        self.reactor = _WireClock(self) if reactor is None else reactor
        self.versions = list(versions)
        self.nodes = Reply(response(200, body))
        self.answers = []
        self.requests = []
        self.connections = []
        self.accepted = 0
        self.listening = True
        self._port = None
        self._pumps = []
        self._factory = Factory.forProtocol(_Connection)
        self._factory.standin = self
        self._factory.noisy = False

    def answer_for(self, path):
        """The scripted answer for ``path``."""
        if path == "/openapi/v3":
            return Reply(response(200, openapi_listing(*self.versions)))
        if self.answers:
            return self.answers.pop(0)
        for version in self.versions:
            if path in (f"/slurm/{version}/nodes/", f"/slurm/{version}/nodes"):
                return self.nodes
        return Reply(captured("slurm-22.05-wrong-version-v0.0.39-nodes.http"))

    def paths(self):
        """The paths asked for, in order."""
        return [path for path, _ in self.requests]

    @property
    def last(self):
        """The most recent connection."""
        return self.connections[-1]

    def http_client(self):
        """A treq client whose every request reaches this stand-in over the in-memory wire."""
        agent = Agent.usingEndpointFactory(self.reactor, _Endpoints(self),
                                           pool=HTTPConnectionPool(self.reactor, False))
        return HTTPClient(_FlushingAgent(agent, self))

    def make_source(self, reactor, config, environ=None):
        """:func:`slurm_sd.sources.choose.make_source`, but the client talks to this, in memory."""
        return SlurmrestdClient(reactor, self.http_client(), config.slurmrestd, environ)

    def accept(self, factory):
        """Connect a protocol of ``factory`` to a new connection, in memory; the protocol."""
        address = IPv4Address("TCP", "127.0.0.1", 6820)
        server = self._factory.buildProtocol(address)
        client = factory.buildProtocol(address)
        server_wire = _Wire(server, isServer=True, hostAddress=address)
        client_wire = _Wire(client, isServer=False, peerAddress=address)
        server_wire.peer, client_wire.peer = client_wire, server_wire
        self._pumps.append(iosim.connect(server, server_wire, client, client_wire,
                                         greet=False))
        return client

    def flush(self):
        """
        Carry every in-memory connection's bytes and hang-ups until all are quiet, or for
        :data:`ROUNDS` rounds and the rest at the clock's next turn (an endless answer
        must leave the client a turn to attach its body reader and hang up).
        """
        more = False
        for pump in list(self._pumps):
            for _ in range(ROUNDS):
                if not pump.pump(advanceClock=False):
                    break
            else:
                more = True
            if pump.clientIO.disconnected and pump.serverIO.disconnected:
                self._pumps.remove(pump)
        if more:
            self.reactor.callLater(0, self.flush)

    @defer.inlineCallbacks
    def listen(self, endpoint):
        """Listen on ``endpoint`` (a UNIX or 127.0.0.1 server endpoint)."""
        self.listening = True
        self._port = yield endpoint.listen(self._factory)
        return self._port

    def stop(self):
        """Stop listening and drop every connection; fires when all are gone."""
        self.listening = False
        waits = []
        if self._port is not None:
            waits.append(defer.maybeDeferred(self._port.stopListening))
            self._port = None
        for conn in self.connections:
            if not conn.lost.called:
                conn.transport.abortConnection()
            waits.append(conn.lost)
        self.flush()
        return defer.DeferredList(waits)


class _WireClock(Clock):
    """A Clock that, after each advance, lets the in-memory wires carry what was written."""

    def __init__(self, standin):
        super().__init__()
        self._standin = standin

    def advance(self, amount):
        """Run what is due, then deliver what it wrote."""
        super().advance(amount)
        self._standin.flush()


@implementer(IAgent)
class _FlushingAgent:
    """An Agent whose request is carried to the stand-in once it is written."""

    def __init__(self, agent, standin):
        self._agent = agent
        self._standin = standin

    def request(self, method, uri, headers=None, bodyProducer=None):
        """Send the request; the answer has arrived unless it is a slow one."""
        d = self._agent.request(method, uri, headers, bodyProducer)
        self._standin.flush()
        return d


@implementer(IAgentEndpointFactory, IStreamClientEndpoint)
class _Endpoints:
    """Every URL's endpoint is the stand-in, in memory; refused once it has stopped."""

    def __init__(self, standin):
        self._standin = standin

    def endpointForURI(self, uri):
        """Whatever the URL, the stand-in."""
        return self

    def connect(self, factory):
        """The connected protocol, at once (or ECONNREFUSED after :meth:`StandIn.stop`)."""
        if not self._standin.listening:
            return defer.fail(ConnectionRefusedError())
        return defer.succeed(self._standin.accept(factory))


class _Wire(iosim.FakeTransport):
    """An in-memory transport; :meth:`StandIn.flush` carries what is written."""

    peer = None

    def write(self, data):
        """Send ``data`` (lost, as on a socket, once the peer has hung up)."""
        if not self.peer.disconnecting:
            super().write(data)

    def _checkProducer(self):
        """Ask a pull producer for more only while both ends are open."""
        if not (self.disconnecting or self.peer.disconnecting):
            super()._checkProducer()

    def abortConnection(self):
        """Drop the connection; the peer sees it closed, as on a UNIX socket (no reset)."""
        self.disconnectReason = ConnectionAborted()
        super().abortConnection()
