"""
A stand-in slurmrestd for fault tests: a raw HTTP/1.1 server on the real reactor.

It speaks just enough HTTP to read one request per connection and then does
whatever the test scripted for that path, byte for byte: replay a captured
``.http`` response, answer slowly, never answer, break off mid-body, or stream
more than the client may read.  Raw bytes (not ``twisted.web``) so that broken
answers are possible and real captures are replayed exactly as Slurm sent them.

It listens only on a UNIX socket or 127.0.0.1, and :meth:`StandIn.stop` closes
the port and every connection, so no test leaves anything behind.
"""
import json
import re
import socket
import struct

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

from tests.fakes import fixture, openapi_listing

#: A 511 as Slurm 24.11+ sends it for a bad, expired or mismatched token
#: (SLURM_PROTOCOL_AUTHENTICATION_ERROR 1007 -> 511).  No capture of one was at
#: hand, so it is built on the captured 24.11 502 envelope with that error.
ERROR_511 = (
    b'{\n  "errors": [\n    {\n      "description": "Failure to query nodes",\n'
    b'      "error_number": 1007,\n      "error": "Protocol authentication error",\n'
    b'      "source": "_dump_nodes"\n    }\n  ],\n  "warnings": [\n  ],\n'
    b'  "meta": {\n    "plugin": {\n      "type": "openapi\\/slurmctld",\n'
    b'      "name": "Slurm OpenAPI slurmctld",\n'
    b'      "data_parser": "data_parser\\/v0.0.40",\n      "accounting_storage": ""\n'
    b'    },\n    "slurm": {\n      "version": {\n        "major": "24",\n'
    b'        "micro": "7",\n        "minor": "11"\n      },\n'
    b'      "release": "24.11.7",\n      "cluster": "testcluster"\n    }\n  }\n}')


def response(code, body, content_type=b"application/json", reason=b"X", length=True,
             extra=b""):
    """A whole raw HTTP/1.1 response as slurmrestd writes it (``Connection: Close``)."""
    head = b"HTTP/1.1 %d %s\r\nConnection: Close\r\n" % (code, reason)
    if length:
        head += b"Content-Length: %d\r\n" % (len(body),)
    return head + b"Content-Type: " + content_type + b"\r\n" + extra + b"\r\n" + body


def captured(name):
    """
    A captured ``.http`` response from tests/fixtures, as Slurm sent it.

    The Content-Length is set to the body's real length: the 24.11 502 capture
    says 761 for its 754-byte body (the body was edited after capture), which a
    real slurmrestd would not send and which the client rightly reads as a
    broken-off answer.
    """
    raw = fixture(name)
    head, _, body = raw.partition(b"\r\n\r\n")
    head = re.sub(rb"(?i)content-length: *\d+", b"Content-Length: %d" % (len(body),), head)
    return head + b"\r\n\r\n" + body


class Reply:
    """Write ``raw`` (a whole response) and close, as slurmrestd does."""

    def __init__(self, raw):
        self.raw = raw

    def __call__(self, conn):
        """Answer on ``conn``."""
        conn.write(self.raw)
        conn.transport.loseConnection()


class Silent:
    """Accept the request and never answer."""

    def __call__(self, conn):
        """Do nothing at all."""


class Drip:
    """Write ``raw`` ``size`` bytes every ``delay`` seconds, then close."""

    def __init__(self, raw, size, delay):
        self.raw = raw
        self.size = size
        self.delay = delay

    def __call__(self, conn):
        """Start dripping on ``conn``."""
        def step(offset):
            if conn.lost.called:
                return
            conn.write(self.raw[offset:offset + self.size])
            if offset + self.size >= len(self.raw):
                conn.transport.loseConnection()
            else:
                conn.later(self.delay, step, offset + self.size)
        step(0)


class BreakOff:
    """
    Write the first ``count`` bytes of ``raw``, then drop the connection.

    On TCP with ``reset=True`` the drop is a real RST (SO_LINGER 0); on a UNIX
    socket it is an abrupt close (UNIX sockets have no reset).
    """

    def __init__(self, raw, count, reset=True):
        self.raw = raw
        self.count = count
        self.reset = reset

    def __call__(self, conn):
        """Send part of the answer and abort."""
        conn.write(self.raw[:self.count])

        def drop():
            sock = getattr(conn.transport, "socket", None)
            if self.reset and sock is not None and sock.family == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            conn.transport.abortConnection()
        # Let the partial answer reach the client before the drop.
        conn.later(0.05, drop)


class Flood:
    """
    Send headers, then an endless body as fast as the client reads it.

    :param length: the Content-Length to announce, or None for a body with no
        length that ends when the connection does.
    """

    def __init__(self, length=None, chunk=64 * 1024):
        self.length = length
        self.chunk = b"x" * chunk

    def __call__(self, conn):
        """Stream on ``conn`` until the client hangs up."""
        head = b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Type: application/json\r\n"
        if self.length is not None:
            head += b"Content-Length: %d\r\n" % (self.length,)
        conn.write(head + b"\r\n")
        conn.transport.registerProducer(_Pump(conn, self.chunk), False)


class _Pump:
    """A pull producer writing the same chunk each time it is asked."""

    def __init__(self, conn, chunk):
        self._conn = conn
        self._chunk = chunk

    def resumeProducing(self):
        """Write one more chunk."""
        if not self._conn.lost.called:
            self._conn.write(self._chunk)

    def stopProducing(self):
        """Nothing to release."""


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
    the connection; :class:`Reply`, :class:`Silent`, ...); ``/openapi/v3``
    lists ``versions``; any other path gets slurmrestd's real 404.

    :ivar requests: ``(path, headers)`` of every request, lower-case header names.
    :ivar connections: every accepted connection, in order.
    """

    def __init__(self, reactor, versions=("v0.0.38",)):
        self.reactor = reactor
        self.versions = list(versions)
        self.nodes = Reply(response(200, fixture("slurm-22.05-v0.0.38-nodes.json")))
        self.requests = []
        self.connections = []
        self.accepted = 0
        self._port = None

    def answer_for(self, path):
        """The scripted answer for ``path``."""
        if path == "/openapi/v3":
            return Reply(response(200, openapi_listing(*self.versions)))
        for version in self.versions:
            if path in (f"/slurm/{version}/nodes/", f"/slurm/{version}/nodes"):
                return self.nodes
        return Reply(captured("slurm-22.05-wrong-version-v0.0.39-nodes.http"))

    @defer.inlineCallbacks
    def listen(self, endpoint):
        """Listen on ``endpoint`` (a UNIX or 127.0.0.1 server endpoint)."""
        factory = Factory.forProtocol(_Connection)
        factory.standin = self
        factory.noisy = False
        self._port = yield endpoint.listen(factory)
        return self._port

    @property
    def last(self):
        """The most recent connection."""
        return self.connections[-1]

    def stop(self):
        """Stop listening and drop every connection; fires when all are gone."""
        waits = []
        if self._port is not None:
            waits.append(defer.maybeDeferred(self._port.stopListening))
            self._port = None
        for conn in self.connections:
            if not conn.lost.called:
                conn.transport.abortConnection()
            waits.append(conn.lost)
        return defer.DeferredList(waits)


def nodes_body(nodes, version="v0.0.38"):
    """A 200 ``/nodes/`` body with ``nodes`` (plain dicts) in slurmrestd's envelope."""
    return json.dumps({"meta": {"plugin": {"type": f"openapi/{version}"}},
                       "errors": [], "nodes": nodes}).encode()
