"""
Where the JWT sent to slurmrestd comes from, and when it is renewed.

A token origin has ``get()`` (a Deferred of the token for this poll, or of
None) and ``refused()`` (after slurmrestd refused it: a Deferred of a new
token, or None when there is nothing to retry with). :class:`ReadTokens`
covers ``--token``, the token file (re-read every poll) and ``SLURM_JWT``;
:class:`RenewingTokens` covers ``token_command`` and ``jwt_key_file``.
"""
import base64
import binascii
import json
import math

from twisted.internet import defer

from slurm_sd.errors import FetchError
from slurm_sd.secretfiles import ModeWarner

#: The environment variable Slurm's own tools take a token from.
JWT_VARIABLE = "SLURM_JWT"


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
        return strip_variable(token) or None
    token = environ.get(JWT_VARIABLE, "").strip()
    return token or None


def strip_variable(text):
    """``SLURM_JWT=xyz`` (what ``scontrol token`` prints) -> ``xyz``; other text unchanged."""
    text = text.strip()
    if text.startswith(JWT_VARIABLE + "="):
        return text[len(JWT_VARIABLE) + 1:].strip()
    return text


def token_expiry(token):
    """
    The ``exp`` claim of a JWT as Unix time, read from its payload and never
    verified (the signature part is not even decoded); None when ``token`` is not
    a JWT or has no numeric ``exp``.
    """
    parts = token.split(".") if isinstance(token, str) else ()
    if len(parts) != 3:
        return None
    try:
        payload = parts[1].encode("ascii")
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):   # UnicodeError and JSONDecodeError are ValueErrors
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


def describe_origin(config, environ):
    """Where the token comes from, for messages: ``slurmrestd.token_file`` etc."""
    if config.token:
        return "--token"
    if config.token_command:
        return "slurmrestd.token_command"
    if config.jwt_key_file:
        return "slurmrestd.jwt_key_file"
    if config.token_file:
        return "slurmrestd.token_file"
    return JWT_VARIABLE if environ.get(JWT_VARIABLE, "").strip() else None


class ReadTokens:
    """
    A token the daemon cannot renew: ``--token``, ``token_file`` (re-read, and its
    mode checked, on every poll) or ``SLURM_JWT``.
    """

    renews = False

    def __init__(self, config, environ):
        self._config = config
        self._environ = environ
        self._mode_warner = ModeWarner()

    def get(self):
        """A Deferred of the token to send now, or of None."""
        if self._config.token_file and not self._config.token:
            self._mode_warner.check(self._config.token_file, "slurmrestd.token_file")
        return defer.maybeDeferred(read_token, self._config, self._environ)

    def refused(self):
        """Nothing to retry with: the next poll reads the token again."""
        return None


class RenewingTokens:
    """
    A token from ``obtain()`` (a command, or minted), obtained when there is none
    yet, when its ``exp`` is less than ``renew_before`` seconds away (or
    unreadable), and once after slurmrestd refuses it: at most once per poll.

    :param clock: an ``IReactorTime``.
    :param obtain: no arguments; returns the new token, or a Deferred of it.
    :param renew_before: seconds before ``exp`` to renew.
    """

    renews = True

    def __init__(self, clock, obtain, renew_before):
        self._clock = clock
        self._obtain = obtain
        self._renew_before = renew_before
        self._token = None
        self._exp = None
        self._refused = False
        self._fresh = False   # obtained during the current poll

    def _due(self):
        """Is a new token needed before this poll?"""
        if self._token is None or self._refused or self._exp is None:
            return True
        return self._exp - self._clock.seconds() < self._renew_before

    def get(self):
        """The token for a new poll: the current one, or a new one when it is due."""
        self._fresh = False
        if not self._due():
            return defer.succeed(self._token)
        return self._renew()

    def _renew(self):
        """Obtain a new token and keep it."""
        self._fresh = True
        d = defer.maybeDeferred(self._obtain)
        d.addCallback(self._got)
        return d

    def _got(self, token):
        """Keep ``token`` and its expiry."""
        self._token = token
        self._exp = token_expiry(token)
        self._refused = False
        return token

    def refused(self):
        """
        slurmrestd refused this poll's token: a Deferred of a new one, or None
        when it was obtained during this poll already (no retry loop; the next
        poll starts with a new one).
        """
        self._refused = True
        if self._fresh:
            return None
        return self._renew()
