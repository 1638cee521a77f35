"""A TLS client in memory: pyOpenSSL on one side, a server factory's protocol on the other."""
from OpenSSL import SSL
from twisted.internet.testing import StringTransportWithDisconnection


class MemoryTransport(StringTransportWithDisconnection):
    """What HTTPChannel needs of a TCP transport."""

    def setTcpNoDelay(self, enabled):
        """Nothing to set in memory."""


def client_context(ca=None, cert=None, key=None, max_version=None):
    """A client context trusting ``ca`` (a path) and presenting ``cert``/``key``, if given."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if ca is not None:
        context.load_verify_locations(ca)
        context.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
    if cert is not None:
        context.use_certificate_chain_file(cert)
        context.use_privatekey_file(key)
    if max_version is not None:
        context.set_max_proto_version(max_version)
    return context


class TLSClient:
    """
    One TLS connection to ``factory``'s protocol, bytes moved by hand.

    :param factory: the server's listening factory.
    :param context: the client's ``SSL.Context``.
    """

    def __init__(self, factory, context, server_name=b"localhost"):
        self.connection = SSL.Connection(context, None)
        self.connection.set_connect_state()
        self.connection.set_tlsext_host_name(server_name)
        self.protocol = factory.buildProtocol(None)
        self.transport = MemoryTransport()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def _pump(self):
        """Move bytes both ways until neither side has more to say."""
        for _ in range(50):
            try:
                outgoing = self.connection.bio_read(1 << 20)
            except SSL.WantReadError:
                outgoing = b""
            if outgoing and self.transport.connected:
                self.protocol.dataReceived(outgoing)
            incoming = self.transport.value()
            self.transport.clear()
            if incoming:
                self.connection.bio_write(incoming)
            if not outgoing and not incoming:
                return

    def handshake(self):
        """
        Run the handshake.

        :return: True when it completed and the server kept the connection open
            (with TLS 1.3 a refused client certificate shows only after it).
        """
        for _ in range(10):
            try:
                self.connection.do_handshake()
            except SSL.WantReadError:
                self._pump()
                continue
            except SSL.Error:
                return False
            self._pump()
            return self.transport.connected
        return False

    def request(self, method=b"GET", path=b"/metrics", headers=b""):
        """Send one request; the raw answer (b"" when the server hung up)."""
        try:
            self.connection.send(method + b" " + path + b" HTTP/1.1\r\nHost: localhost\r\n"
                                 + headers + b"Connection: close\r\n\r\n")
        except SSL.Error:
            return b""
        self._pump()
        answer = b""
        if not self.transport.connected and not self.transport.value():
            pass  # what the server sent before hanging up was pumped already
        while True:
            try:
                answer += self.connection.recv(1 << 20)
            except (SSL.WantReadError, SSL.ZeroReturnError, SSL.SysCallError):
                return answer
            except SSL.Error:
                return answer

    def peer_subject(self):
        """The common name of the server's certificate."""
        return self.connection.get_peer_certificate().get_subject().CN
