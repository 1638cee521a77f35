"""
The fetch step: ask slurmrestd (or a saved file) for the node list, as bytes.

Every failure becomes a :class:`FetchError` whose text is one line saying what
failed and how an operator fixes it. The token never appears in any message.
"""
import json
import os
import re
import stat

from treq.client import HTTPClient
from twisted.internet import defer, error as net_error
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IAgentEndpointFactory, UNKNOWN_LENGTH
from zope.interface import implementer

from slurm_sd.decode import describe_errors
from slurm_sd.errors import SlurmSDError
from slurm_sd.secretfiles import ModeWarner
from slurm_sd.spool import SPOOL_OVER, Spool, SpooledBody, take_bytes

#: The API versions whose node lists we can convert, oldest first.
SUPPORTED_VERSIONS = tuple(f"v0.0.{minor}" for minor in range(37, 46))
_NODES_PATH = re.compile(r"^/slurm/(v\d+\.\d+\.\d+)/nodes/?$")


class FetchError(SlurmSDError):
    """A poll that got no usable answer; ``str()`` is the one-line log message."""


class ResponseTooLarge(FetchError):
    """The answer is bigger than ``slurmrestd.max_response_bytes``."""


def version_key(version):
    """Sort key for ``v0.0.40``-style versions."""
    return tuple(int(part) for part in version[1:].split("."))


def offered_versions(openapi):
    """
    The API versions whose nodes path an OpenAPI document lists, oldest first.

    :param openapi: the decoded ``/openapi/v3`` document.
    """
    paths = openapi.get("paths") if isinstance(openapi, dict) else None
    found = {m.group(1) for m in map(_NODES_PATH.match, paths or ()) if m}
    return sorted(found, key=version_key)


def _was_cancelled(failure):
    """True for the ResponseNeverReceived that treq's timeout leaves behind."""
    reasons = getattr(failure.value, "reasons", None)
    return bool(reasons) and all(
        reason.check(defer.CancelledError, net_error.TimeoutError) for reason in reasons)


@implementer(IAgentEndpointFactory)
class SlurmrestdEndpointFactory:
    """Connects to a UNIX socket when one is given, else to the URL's host."""

    def __init__(self, reactor, socket_path=None, connect_timeout=30):
        self._reactor = reactor
        self._socket_path = socket_path
        self._timeout = connect_timeout

    def endpointForURI(self, uri):
        """The endpoint for ``uri``: the socket, or TCP (TLS for https)."""
        if self._socket_path is not None:
            return UNIXClientEndpoint(self._reactor, self._socket_path, timeout=self._timeout)
        host = uri.host.decode("ascii")
        endpoint = HostnameEndpoint(self._reactor, host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint


class _QuietPool(HTTPConnectionPool):
    """A connection pool whose connections log nothing on their own."""

    class _factory(HTTPConnectionPool._factory):
        """The pool's connection factory, without "Starting factory" lines every poll."""

        noisy = False


def make_http_client(reactor, url):
    """
    A treq client for slurmrestd at ``url`` (``unix:/path`` or ``http(s)://``).

    A fresh connection per poll: polls are minutes apart and slurmrestd
    closes idle connections anyway.
    """
    socket_path = url[len("unix:"):] if url.startswith("unix:") else None
    agent = Agent.usingEndpointFactory(
        reactor, SlurmrestdEndpointFactory(reactor, socket_path),
        pool=_QuietPool(reactor, persistent=False))
    return HTTPClient(agent)


def base_url(url):
    """The URL prefix requests are made under (``http://localhost`` for sockets)."""
    return "http://localhost" if url.startswith("unix:") else url.rstrip("/")


def read_token(config, environ, opener=open):
    """
    The JWT to send: ``--token``, else the token file (re-read every poll so
    rotation works), else ``SLURM_JWT``; None when there is none.

    :raises FetchError: when the token file cannot be read.
    """
    if config.token:
        return config.token.strip()
    if config.token_file:
        try:
            with opener(config.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as e:
            raise FetchError(f"cannot read slurmrestd.token_file {config.token_file}: "
                             f"{e.strerror}")
        if token.startswith("SLURM_JWT="):
            # `scontrol token` prints SLURM_JWT=...; accept its output as it is.
            token = token[len("SLURM_JWT="):]
        return token or None
    token = environ.get("SLURM_JWT", "").strip()
    return token or None


class _LimitedCollector(Protocol):
    """
    Collects a response body, giving up past ``limit`` bytes.

    Chunks go to a :class:`~slurm_sd.spool.Spool`: a big body is written to an
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
        :class:`~slurm_sd.spool.SpooledBody` that the caller must close.
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


def _slurm_errors(body):
    """The ``errors`` of a Slurm JSON error body in one line, or ``""``."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    return describe_errors(document.get("errors")) if isinstance(document, dict) else ""


_TITLE = re.compile(rb"<title[^>]*>([^<]{1,200})</title>", re.IGNORECASE)


def _error_text(body):
    """
    The errors of a Slurm JSON error body, else an HTML page's title (a proxy's
    error page), else the body's first line of text.
    """
    described = _slurm_errors(body)
    if described:
        return described
    title = _TITLE.search(body[:4096])
    if title:
        return "an HTML page: " + title.group(1).decode("utf-8", "replace").strip()
    lines = body[:200].decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "empty body"


def _failure_text(failure):
    """
    One line for a failure; the lists of failures inside ResponseFailed and
    ResponseNeverReceived become their messages, not their reprs.
    """
    reasons = getattr(failure.value, "reasons", None) or [failure]
    texts = dict.fromkeys(reason.getErrorMessage().strip().rstrip(".") for reason in reasons)
    return "; ".join(text for text in texts if text) or failure.type.__name__


class SlurmrestdClient:
    """
    Asks slurmrestd for ``/slurm/{version}/nodes/``.

    :param reactor: the reactor for timeouts.
    :param http: anything with treq's API (``HTTPClient``, ``StubTreq``).
    :param config: the :class:`~slurm_sd.config.SlurmrestdConfig`.
    :param environ: where ``SLURM_JWT`` is looked up.
    """

    log = Logger()

    def __init__(self, reactor, http, config, environ=None):
        self._reactor = reactor
        self._http = http
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._base = base_url(config.url)
        self._version = None if config.api_version == "auto" else config.api_version
        self._token_sent = None
        self._mode_warner = ModeWarner()

    @property
    def where(self):
        """The slurmrestd address for messages."""
        return self._config.url

    def _headers(self):
        """The ``X-SLURM-*`` headers; none when there is no token."""
        if self._config.token_file and not self._config.token:
            self._mode_warner.check(self._config.token_file, "slurmrestd.token_file")
        token = read_token(self._config, self._environ)
        self._token_sent = token
        if token is None:
            return {}
        headers = {"X-SLURM-USER-TOKEN": [token]}
        if self._config.user:
            headers["X-SLURM-USER-NAME"] = [self._config.user]
        return headers

    def redact(self, text):
        """``text`` with the token last sent replaced, should an answer echo it."""
        for token in {self._token_sent, self._config.token} - {None, ""}:
            text = text.replace(token, "<token>")
        return text

    def _get(self, path, headers):
        """GET ``path``; connection failures become one-line FetchErrors."""
        # unbuffered: treq would otherwise keep a copy of every body in memory.
        d = self._http.get(self._base + path, headers=headers, reactor=self._reactor,
                           timeout=self._config.timeout, unbuffered=True)
        d.addErrback(self._connection_failed)
        return d

    def _connection_failed(self, failure):
        """Turn connection-level failures into one line with a fix."""
        failure.trap(Exception)
        if failure.check(FetchError):
            return failure
        if failure.check(defer.CancelledError, net_error.TimeoutError) or _was_cancelled(failure):
            raise FetchError(
                f"slurmrestd at {self.where} did not answer within "
                f"{self._config.timeout:g} s (is slurmctld overloaded? raise slurmrestd.timeout)")
        if failure.check(net_error.ConnectError, net_error.DNSLookupError):
            value = failure.value
            reason = value.osError if getattr(value, "osError", None) else value
            if isinstance(reason, int):
                # The reactor's connect errors carry the bare errno (111, 2).
                reason = os.strerror(reason)
            reason = getattr(reason, "strerror", None) or str(reason).strip() or type(value).__name__
            raise FetchError(f"cannot connect to slurmrestd at {self.where}: {reason} "
                             f"(is slurmrestd running and listening there?)")
        raise FetchError(f"connection to slurmrestd at {self.where} failed: "
                         f"{_failure_text(failure)}")

    @defer.inlineCallbacks
    def discover_version(self, headers=None):
        """
        The newest supported API version slurmrestd lists in ``/openapi/v3``.

        :raises FetchError: when it lists none we support.
        """
        headers = self._headers() if headers is None else headers
        response = yield self._get("/openapi/v3", headers)
        body = yield self._read_bytes(response, "/openapi/v3")
        if response.code != 200:
            raise self._status_error(response.code, body, "/openapi/v3")
        offered = self._offered(body)
        usable = [v for v in offered if v in SUPPORTED_VERSIONS]
        if not usable:
            raise FetchError(
                f"slurmrestd at {self.where} offers no node API we support "
                f"(it offers {', '.join(offered) or 'none'}; we support "
                f"{SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}): load an "
                f"openapi/v0.0.37 or newer plugin with slurmrestd -s")
        return usable[-1]

    @staticmethod
    def _offered(body):
        """The versions an /openapi/v3 body lists, or [] if it is not JSON."""
        try:
            return offered_versions(json.loads(body))
        except ValueError:
            return []

    def _read_bytes(self, response, path):
        """:meth:`_read`, always as bytes (for small answers: errors, /openapi/v3)."""
        return self._read(response, path).addCallback(take_bytes)

    def _read(self, response, path):
        """
        The body of ``response``, refused past ``max_response_bytes``: bytes, or
        a :class:`~slurm_sd.spool.SpooledBody` when it is big.
        """
        limit = self._config.max_response_bytes

        def describe(size):
            return (f"slurmrestd's answer to {path} is larger than "
                    f"slurmrestd.max_response_bytes ({limit} bytes; it sent {size} or "
                    f"more): raise max_response_bytes")

        d = collect_body(response, limit, describe)
        d.addErrback(self._body_failed, path)
        return d

    def _body_failed(self, failure, path):
        """A body that broke off: one line, not a traceback."""
        if failure.check(FetchError, defer.CancelledError):
            return failure
        raise FetchError(f"slurmrestd at {self.where} broke off its answer to {path}: "
                         f"{_failure_text(failure)}")

    def _status_error(self, code, body, path):
        """The one-line FetchError for a non-200 answer."""
        detail = _error_text(body)
        if code == 401:
            return FetchError(
                f"slurmrestd refused authentication for {path} (401 {detail}): with "
                f"rest_auth/jwt set slurmrestd.user and a token (token_file, --token or "
                f"SLURM_JWT); with rest_auth/local send no token and run as root or "
                f"slurmrestd's own user")
        if code == 511 or (code == 500 and self._token_sent is not None):
            return FetchError(
                f"slurmrestd answered {code} for {path} ({detail}): the token is probably "
                f"expired, badly signed or not for user {self._config.user!r} (mint a "
                f"new one with `scontrol token`), or slurmctld is unreachable")
        if code == 502 and not _slurm_errors(body):
            return FetchError(f"something in front of slurmrestd (a proxy?) answered 502 "
                              f"for {path} ({detail}): check it, and that slurmrestd is "
                              f"running")
        if code == 502:
            return FetchError(f"slurmrestd cannot reach slurmctld (502 for {path}: "
                              f"{detail}): check that slurmctld is running")
        if code >= 500:
            return FetchError(f"slurmrestd answered {code} for {path} ({detail}): check "
                              f"slurmrestd's and slurmctld's logs; is slurmctld up?")
        return FetchError(f"slurmrestd answered {code} for {path}: {detail}")

    @defer.inlineCallbacks
    def fetch_nodes(self):
        """
        The raw ``/nodes/`` body: bytes, or a :class:`~slurm_sd.spool.SpooledBody`
        (which the caller closes) when it is big; the whole poll is bounded by
        ``slurmrestd.timeout``.

        :raises FetchError: on any failure, with a one-line message.
        """
        d = self._fetch_nodes()
        d.addTimeout(self._config.timeout, self._reactor)
        try:
            body = yield d
        except defer.TimeoutError:
            raise FetchError(
                f"slurmrestd at {self.where} did not finish answering within "
                f"{self._config.timeout:g} s (is slurmctld overloaded? raise slurmrestd.timeout)")
        return body

    @defer.inlineCallbacks
    def _fetch_nodes(self):
        """Discover the version if needed, then GET the node list."""
        headers = self._headers()
        if self._version is None:
            self._version = yield self.discover_version(headers)
            self.log.info("slurmrestd at {where} offers node API {version}; using it",
                          where=self.where, version=self._version)
        path = f"/slurm/{self._version}/nodes/"
        response = yield self._get(path, headers)
        if response.code == 404:
            yield self._read_bytes(response, path)
            raise (yield self._not_found(path, headers))
        if response.code != 200:
            body = yield self._read_bytes(response, path)
            raise self._status_error(response.code, body, path)
        return (yield self._read(response, path))

    @defer.inlineCallbacks
    def _not_found(self, path, headers):
        """The FetchError for a 404, listing the versions slurmrestd offers."""
        if self._config.api_version == "auto":
            self._version = None    # rediscover on the next poll
        try:
            response = yield self._get("/openapi/v3", headers)
            body = yield self._read_bytes(response, "/openapi/v3")
            offered = ", ".join(self._offered(body)) if response.code == 200 else ""
        except FetchError:
            offered = ""
        return FetchError(
            f"slurmrestd does not serve {path} (404): it offers "
            f"{offered or 'no node API it would list'}; set slurmrestd.api_version to "
            f"one of them (or auto)")


class FileSource:
    """
    A saved node list (``url: file:PATH``), read afresh on every poll.

    :param path: the JSON file, as slurmrestd or ``scontrol show nodes --json``
        writes it.
    """

    def __init__(self, path, max_bytes, opener=open):
        self._path = path
        self._max_bytes = max_bytes
        self._opener = opener

    @property
    def where(self):
        """The file's name for messages."""
        return f"file:{self._path}"

    def fetch_nodes(self):
        """
        The file's bytes, as a Deferred; a big file is handed on open, as a
        :class:`~slurm_sd.spool.SpooledBody`, not read into memory.
        """
        try:
            handle = self._opener(self._path, "rb")
            size = _size_of(handle)
            if size is not None and SPOOL_OVER < size <= self._max_bytes:
                return defer.succeed(SpooledBody(handle, size))
            with handle:
                # A size known to be over the limit is refused unread.
                too_big = size is not None and size > self._max_bytes
                body = b"" if too_big else handle.read(self._max_bytes + 1)
        except OSError as e:
            return defer.fail(FetchError(f"cannot read the node list {self._path}: "
                                         f"{e.strerror}"))
        if too_big or len(body) > self._max_bytes:
            return defer.fail(ResponseTooLarge(
                f"the node list {self._path} is larger than slurmrestd.max_response_bytes "
                f"({self._max_bytes} bytes): raise max_response_bytes"))
        return defer.succeed(body)


def _size_of(handle):
    """The size of an open regular file, or None when it cannot be told."""
    try:
        info = os.fstat(handle.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def make_source(reactor, config, environ=None):
    """The fetch step for ``config.slurmrestd``: a file or a slurmrestd client."""
    slurm = config.slurmrestd
    if slurm.url.startswith("file:"):
        return FileSource(slurm.url[len("file:"):], slurm.max_response_bytes)
    return SlurmrestdClient(reactor, make_http_client(reactor, slurm.url), slurm, environ)
