"""
The fetch step's transport: a treq client over an Agent whose endpoint factory
connects to a UNIX socket or TCP (TLS for https), and body reading with a size limit.
"""
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.endpoints import (
    HostnameEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory
from zope.interface import implementer

from slurm_sd.errors import ResponseTooLarge
from slurm_sd.sources.spool import Spool


def was_cancelled(failure):
    """True for the ResponseNeverReceived that treq's timeout leaves behind."""
    reasons = getattr(failure.value, "reasons", None)
    return bool(reasons) and all(
        reason.check(defer.CancelledError, net_error.TimeoutError) for reason in reasons)


@implementer(IAgentEndpointFactory)
class SlurmrestdEndpointFactory:
    """Connects to a UNIX socket when one is given, else to the URL's host."""

    def __init__(self, reactor, socket_path=None, connect_timeout=30, tls=None):
        self._reactor = reactor
        self._socket_path = socket_path
        self._timeout = connect_timeout
        self._tls = tls

    def endpointForURI(self, uri):
        """The endpoint for ``uri``: the socket, or TCP (TLS for https)."""
        if self._socket_path is not None:
            return UNIXClientEndpoint(self._reactor, self._socket_path, timeout=self._timeout)
        host = uri.host.decode("ascii")
        endpoint = HostnameEndpoint(self._reactor, host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            tls = self._tls if self._tls is not None else optionsForClientTLS(host)
            endpoint = wrapClientTLS(tls, endpoint)
        return endpoint


class _QuietPool(HTTPConnectionPool):
    """A connection pool whose connections log nothing on their own."""

    class _factory(HTTPConnectionPool._factory):
        """The pool's connection factory, without "Starting factory" lines every poll."""

        noisy = False


def make_http_client(reactor, url, tls=None):
    """
    A treq client for slurmrestd at ``url`` (``unix:/path`` or ``http(s)://``).

    :param tls: for https, the ``IOpenSSLClientConnectionCreator``
        (:func:`slurm_sd.sources.tls.client_tls_options`); default: the system
        trust store, for the URL's host.

    A fresh connection per poll: polls are minutes apart and slurmrestd
    closes idle connections anyway.
    """
    socket_path = url[len("unix:"):] if url.startswith("unix:") else None
    agent = Agent.usingEndpointFactory(
        reactor, SlurmrestdEndpointFactory(reactor, socket_path, tls=tls),
        pool=_QuietPool(reactor, persistent=False))
    return HTTPClient(agent)


def base_url(url):
    """The URL prefix requests are made under (``http://localhost`` for sockets)."""
    return "http://localhost" if url.startswith("unix:") else url.rstrip("/")


class _LimitedCollector(Protocol):
    """
    Collects a response body, giving up past ``limit`` bytes.

    Chunks go to a :class:`~slurm_sd.sources.spool.Spool`: a big body is written to an
    unnamed temporary file as it arrives, never joined in memory.
    """

    def __init__(self, finished, limit, describe):
        self._finished = finished
        self._limit = limit
        self._describe = describe
        self._spool = Spool()

    def dataReceived(self, data):
        """Keep ``data`` unless the body grew past the limit."""
        if self._finished.called:
            return
        if self._spool.size + len(data) > self._limit:
            size = self._spool.size + len(data)
            self._spool.discard()
            self.transport.stopProducing()
            self._finished.errback(ResponseTooLarge(self._describe(size)))
            return
        self._spool.write(data)

    def connectionLost(self, reason):
        """Hand over the body, or say why it ended early."""
        if self._finished.called:
            self._spool.discard()
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._finished.callback(self._spool.finish())
        else:
            self._spool.discard()
            self._finished.errback(reason)


def collect_body(response, limit, describe):
    """
    Read ``response``'s body, at most ``limit`` bytes.

    A Content-Length over the limit is refused without reading the body.
    Cancelling the result closes the connection.

    :return: a Deferred firing with the body: ``bytes``, or for a big body a
        :class:`~slurm_sd.sources.spool.SpooledBody` that the caller must close.
    """
    if response.length is not UNKNOWN_LENGTH and response.length > limit:
        response.deliverBody(_Discard())
        return defer.fail(ResponseTooLarge(describe(response.length)))
    collector = None

    def cancel(d):
        if collector is not None and collector.transport is not None:
            collector.transport.stopProducing()

    finished = defer.Deferred(canceller=cancel)
    collector = _LimitedCollector(finished, limit, describe)
    response.deliverBody(collector)
    return finished


class _Discard(Protocol):
    """Closes the connection at once, reading nothing."""

    def makeConnection(self, transport):
        """Stop the body before it is read."""
        transport.stopProducing()
