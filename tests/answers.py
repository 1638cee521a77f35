"""
What the stand-in slurmrestd (tests/standin.py) answers with: whole raw responses and
the ways of sending them (at once, slowly, never, broken off, without end).

Each answer is a callable taking the connection (``write``, ``later``, ``transport``,
``lost``); the same answers work on a real socket and on the in-memory wire.
"""
import socket
import struct

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
