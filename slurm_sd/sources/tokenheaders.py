"""
The ``X-SLURM-*`` headers of slurmrestd requests: :class:`TokenHeaders` gets each
poll's token from its origin, tells the :class:`~slurm_sd.sources.tokenwatch.TokenWatch`,
and remembers the tokens lately sent (to redact them should an answer echo one).
"""
from slurm_sd.sources.tokenorigin import make_tokens
from slurm_sd.sources.tokens import describe_origin
from slurm_sd.sources.tokenwatch import TokenWatch


class TokenHeaders:
    """
    Headers with the token of ``config`` (a SlurmrestdConfig).

    :param environ: where ``SLURM_JWT`` is looked up; a token command's environment.
    :param token_watch: the daemon's watch (it feeds /metrics), or None for one of
        its own.
    :ivar origin: where the token comes from, for messages (``slurmrestd.token_file``).
    :ivar sent: the token of the last request, or None.
    :ivar obtaining: True while a token is being obtained (for time-out messages).
    """

    def __init__(self, reactor, config, environ, token_watch=None):
        self._config = config
        self._tokens = make_tokens(reactor, config, environ)
        self._watch = TokenWatch(reactor) if token_watch is None else token_watch
        self._recent = []   # the last few tokens sent
        self.origin = describe_origin(config, environ)
        self.sent = None
        self.obtaining = False

    def for_poll(self, renewed=None):
        """
        A Deferred of the headers for a new poll (renewing the token if due), or
        with the token ``renewed`` (a Deferred) fires with.
        """
        self.obtaining = True
        d = self._tokens.get() if renewed is None else renewed
        return d.addCallback(self._headers_for)

    def refused(self):
        """slurmrestd refused the token: a Deferred of headers with a new one, or None."""
        renewed = self._tokens.refused()
        return None if renewed is None else self.for_poll(renewed)

    def _headers_for(self, token):
        """The headers that send ``token``; none when it is None."""
        self.obtaining = False
        self.sent = token
        renew_before = self._config.token_renew_before if self._tokens.renews else None
        self._watch.seen(token, self.origin, renew_before)
        if token is None:
            return {}
        self._recent = [token, *(t for t in self._recent if t != token)][:3]
        headers = {"X-SLURM-USER-TOKEN": [token]}
        if self._config.user:
            headers["X-SLURM-USER-NAME"] = [self._config.user]
        return headers

    def redact(self, text):
        """``text`` with the tokens lately sent replaced, should an answer echo one."""
        for token in {*self._recent, self._config.token} - {None, ""}:
            text = text.replace(token, "<token>")
        return text
