"""
Optional HTTP authentication for ``/targets`` and ``/metrics`` (``http_auth``).

Basic auth (``username`` + ``password_file``) or a bearer token
(``bearer_token_file``), the two that Prometheus' ``http_sd_configs`` can
send.  :func:`protect` wraps the whole resource tree; only ``/-/healthy`` and
``/-/ready`` stay open, for health checks.

The secret files are read at start (a problem ends start-up in one line) and
again at every reload (SIGHUP: :meth:`AuthWrapper.config_loaded`); a reload
whose files cannot be read keeps the credentials already in use (or, when
there were none, refuses everyone) and logs one line.  Comparisons take
the same time whatever the input, and no secret ever goes into a log line or a
response.
"""
import base64
import binascii
import hashlib
import hmac

import attr
from twisted.logger import Logger
from twisted.web.resource import Resource

from slurm_sd.errors import SecretFileError
from slurm_sd.secretfiles import ModeWarner, read_secret
from slurm_sd.web.resources import without_body_for_head

__all__ = ["AuthWrapper", "Credentials", "load_credentials", "protect"]

REALM = "slurm-sd"
#: Top-level children that never ask for credentials (``/-/healthy``, ``/-/ready``).
OPEN_CHILDREN = (b"-",)


def _digest(value):
    """A fixed-length stand-in for ``value``, so comparisons leak no length."""
    return hashlib.sha256(value).digest()


@attr.s(frozen=True, repr=False)
class Credentials:
    """What a request must present; repr shows no secret."""

    scheme = attr.ib()          # "Basic" or "Bearer"
    username = attr.ib()        # bytes (Basic) or None
    secret = attr.ib()          # bytes

    def __repr__(self):
        return f"<Credentials {self.scheme}>"

    @property
    def challenge(self):
        """The ``WWW-Authenticate`` value."""
        if self.scheme == "Basic":
            return f'Basic realm="{REALM}", charset="UTF-8"'.encode("ascii")
        return f'Bearer realm="{REALM}"'.encode("ascii")

    def accepts(self, authorization):
        """
        True when the ``Authorization`` header value ``authorization`` (bytes or
        None) carries these credentials.
        """
        if not authorization or self.secret is None:
            return False
        scheme, _, value = authorization.strip().partition(b" ")
        if scheme.lower() != self.scheme.lower().encode("ascii"):
            return False
        value = value.strip()
        if self.scheme == "Bearer":
            return hmac.compare_digest(_digest(value), _digest(self.secret))
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        username, colon, password = decoded.partition(b":")
        # Both compared, always: no early exit on a wrong user name.
        user_ok = hmac.compare_digest(_digest(username), _digest(self.username))
        password_ok = hmac.compare_digest(_digest(password), _digest(self.secret))
        return bool(colon) & user_ok & password_ok


def _refuse_all(http_auth):
    """Credentials that match no request (auth is on but no secret could be read)."""
    scheme = "Bearer" if http_auth.bearer_token_file else "Basic"
    return Credentials(scheme, None, None)


def load_credentials(http_auth, warner):
    """
    Read the secret files of an ``http_auth`` setting.

    :param http_auth: a :class:`~slurm_sd.config.model.HttpAuth`, or None.
    :param warner: a :class:`~slurm_sd.secretfiles.ModeWarner`.
    :return: :class:`Credentials`, or None when auth is off.
    :raises SecretFileError: a file cannot be read or is empty.
    """
    if http_auth is None:
        return None
    if http_auth.bearer_token_file:
        path, key = http_auth.bearer_token_file, "http_auth.bearer_token_file"
        warner.check(path, key)
        return Credentials("Bearer", None, read_secret(path, key).encode("utf-8"))
    path, key = http_auth.password_file, "http_auth.password_file"
    warner.check(path, key)
    return Credentials("Basic", http_auth.username.encode("utf-8"),
                       read_secret(path, key).encode("utf-8"))


class Unauthorized(Resource):
    """401 with a ``WWW-Authenticate`` challenge and a body that tells nothing."""

    isLeaf = True

    def __init__(self, challenge):
        Resource.__init__(self)
        self._challenge = challenge

    def render(self, request):
        """The same answer for every method."""
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", self._challenge)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return without_body_for_head(request, b'{"error": "authentication required"}\n')


class AuthWrapper(Resource):
    """
    Asks for credentials before handing a request to ``wrapped``, except for
    the children named in ``OPEN_CHILDREN``.

    :param wrapped: the root resource.
    :param credentials: the credentials read at start.
    :param warner: the :class:`~slurm_sd.secretfiles.ModeWarner` for later reads.
    """

    log = Logger()

    def __init__(self, wrapped, credentials, warner):
        Resource.__init__(self)
        self._wrapped = wrapped
        self._credentials = credentials
        self._warner = warner

    def config_loaded(self, config):
        """
        A reload put ``config`` in effect: read its secret files now, at the reload.

        When they cannot be read, keep the credentials in use (or, when auth was
        off, refuse everyone) and log one line.
        """
        try:
            self._credentials = load_credentials(config.http_auth, self._warner)
        except SecretFileError as error:
            if self._credentials is None:
                self._credentials = _refuse_all(config.http_auth)
            self.log.error("http_auth after reload: {error}; {kept}", error=str(error),
                           kept="still accepting the previous credentials"
                           if self._credentials.secret is not None
                           else "refusing every request to /targets and /metrics")

    def _refusal(self, request):
        """None when the request may go on, else the 401 resource."""
        credentials = self._credentials
        if credentials is None:
            return None
        values = request.requestHeaders.getRawHeaders(b"authorization") or []
        if len(values) == 1 and credentials.accepts(values[0]):
            return None
        return Unauthorized(credentials.challenge)

    def getChildWithDefault(self, path, request):
        """The wrapped tree's child, once the request has shown its credentials."""
        if path not in OPEN_CHILDREN:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        return self._wrapped.getChildWithDefault(path, request)

    def render(self, request):
        """A request for the root itself."""
        refusal = self._refusal(request)
        return (refusal or self._wrapped).render(request)


def protect(root, settings, warner=None):
    """
    ``root`` behind the ``http_auth`` of ``settings.config``, read now.

    :raises SecretFileError: a secret file cannot be used (start-up ends).
    """
    warner = ModeWarner() if warner is None else warner
    credentials = load_credentials(settings.config.http_auth, warner)
    return AuthWrapper(root, credentials, warner)
