"""
The Slurm REST protocol: find the node API version slurmrestd offers, then GET
``/slurm/{version}/nodes/``; every failure becomes a one-line
:class:`~slurm_sd.errors.FetchError` saying what failed and how to fix it.
The token never appears in any message.
"""
import json
import os
import re

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.logger import Logger

from slurm_sd.errors import FetchError, SourceTimeout
from slurm_sd.slurm import SUPPORTED_VERSIONS, VERSION_RANGE, version_key
from slurm_sd.sources.errortext import error_text, failure_text, slurm_errors
from slurm_sd.sources.http import base_url, collect_body, was_cancelled
from slurm_sd.sources.spool import take_bytes
from slurm_sd.sources.tls import handshake_text
from slurm_sd.sources.tokenheaders import TokenHeaders

_NODES_PATH = re.compile(r"^/slurm/(v\d+\.\d+\.\d+)/nodes/?$")


def offered_versions(openapi):
    """
    The API versions whose nodes path an OpenAPI document lists, oldest first.

    :param openapi: the decoded ``/openapi/v3`` document.
    """
    paths = openapi.get("paths") if isinstance(openapi, dict) else None
    found = {m.group(1) for m in map(_NODES_PATH.match, paths or ()) if m}
    return sorted(found, key=version_key)


class SlurmrestdClient:
    """
    Asks slurmrestd for ``/slurm/{version}/nodes/``.

    :param reactor: the reactor for timeouts.
    :param http: anything with treq's API (``HTTPClient``, ``StubTreq``).
    :param config: the :class:`~slurm_sd.config.model.SlurmrestdConfig`.
    :param environ: where ``SLURM_JWT`` is looked up; a token command's environment.
    :param token_watch: a :class:`~slurm_sd.sources.tokenwatch.TokenWatch` kept
        across reloads (the daemon's, which feeds /metrics); else one of its own.
    """

    log = Logger()

    def __init__(self, reactor, http, config, environ=None, token_watch=None):
        self._reactor = reactor
        self._http = http
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._base = base_url(config.url)
        self._version = None if config.api_version == "auto" else config.api_version
        self._auth = TokenHeaders(reactor, config, self._environ, token_watch)

    @property
    def where(self):
        """The slurmrestd address for messages."""
        return self._config.url

    def redact(self, text):
        """``text`` with the tokens lately sent replaced, should an answer echo one."""
        return self._auth.redact(text)

    def _refusal(self, code):
        """Does answer ``code`` say that slurmrestd refused the token sent?"""
        return self._auth.sent is not None and code in (401, 500, 511)

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
        if failure.check(defer.CancelledError, net_error.TimeoutError) or was_cancelled(failure):
            raise SourceTimeout(
                f"slurmrestd at {self.where} did not answer within "
                f"{self._config.timeout:g} s (is slurmctld overloaded? raise slurmrestd.timeout)")
        tls_text = handshake_text(failure, self.where, self._config)
        if tls_text is not None:
            raise FetchError(tls_text)
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
                         f"{failure_text(failure)}")

    @defer.inlineCallbacks
    def discover_version(self, headers=None):
        """
        The newest supported API version slurmrestd lists in ``/openapi/v3``.

        :raises FetchError: when it lists none we support.
        """
        headers = (yield self._auth.for_poll()) if headers is None else headers
        response = yield self._get("/openapi/v3", headers)
        body = yield self._read_bytes(response, "/openapi/v3")
        if response.code != 200:
            error = self._status_error(response.code, body, "/openapi/v3")
            raise _Refused(error) if self._refusal(response.code) else error
        offered = self._offered(body)
        usable = [v for v in offered if v in SUPPORTED_VERSIONS]
        if not usable:
            raise FetchError(
                f"slurmrestd at {self.where} offers no node API we support "
                f"(it offers {', '.join(offered) or 'none'}; we support "
                f"{VERSION_RANGE}): load an "
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
        a :class:`~slurm_sd.sources.spool.SpooledBody` when it is big.
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
                         f"{failure_text(failure)}")

    def _status_error(self, code, body, path):
        """The one-line FetchError for a non-200 answer."""
        detail = error_text(body)
        if code == 401:
            return FetchError(
                f"slurmrestd refused authentication for {path} (401 {detail}): with "
                f"rest_auth/jwt set slurmrestd.user and a token (token_file, token_command, "
                f"jwt_key_file, --token or SLURM_JWT); with rest_auth/local send no token "
                f"and run as root or slurmrestd's own user")
        if code == 511 or (code == 500 and self._auth.sent is not None):
            return FetchError(
                f"slurmrestd answered {code} for {path} ({detail}): the token is probably "
                f"expired, badly signed or not for user {self._config.user!r} (mint a "
                f"new one with `scontrol token`), or slurmctld is unreachable")
        if code == 502 and not slurm_errors(body):
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
        The raw ``/nodes/`` body: bytes, or a :class:`~slurm_sd.sources.spool.SpooledBody`
        (which the caller closes) when it is big; the whole poll is bounded by
        ``slurmrestd.timeout``.

        :raises FetchError: on any failure, with a one-line message.
        """
        d = self._fetch_nodes()
        d.addTimeout(self._config.timeout, self._reactor)
        try:
            body = yield d
        except defer.TimeoutError:
            if self._auth.obtaining:
                raise FetchError(f"{self._auth.origin} did not finish within the poll's "
                                 f"{self._config.timeout:g} s (slurmrestd.timeout) and was "
                                 f"killed")
            raise SourceTimeout(
                f"slurmrestd at {self.where} did not finish answering within "
                f"{self._config.timeout:g} s (is slurmctld overloaded? raise slurmrestd.timeout)")
        return body

    @defer.inlineCallbacks
    def _fetch_nodes(self):
        """
        One try with this poll's token; if slurmrestd refuses it and the token
        can be renewed, one more try with a new one.
        """
        headers = yield self._auth.for_poll()
        try:
            return (yield self._try_nodes(headers))
        except _Refused as refused:
            renewing = self._auth.refused()
            if renewing is None:
                raise refused.error
            try:
                headers = yield renewing
            except FetchError as failed:
                raise FetchError(f"{refused.error}; renewing the token after that failed: "
                                 f"{failed}")
        self.log.info("slurmrestd refused the token from {origin}; trying again with a "
                      "new one", origin=self._auth.origin)
        try:
            return (yield self._try_nodes(headers))
        except _Refused as refused:
            raise FetchError(f"{refused.error} (also with a new token from {self._auth.origin})")

    @defer.inlineCallbacks
    def _try_nodes(self, headers):
        """Discover the version if needed, then GET the node list."""
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
            error = self._status_error(response.code, body, path)
            raise _Refused(error) if self._refusal(response.code) else error
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


class _Refused(FetchError):
    """slurmrestd refused the token; ``error`` is the FetchError to report."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error
