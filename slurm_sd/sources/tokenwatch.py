"""
What the daemon says about the token it sends: its expiry for ``/metrics``
(``slurm_sd_token_expiry_timestamp_seconds``) and one warning per token that
will soon stop working. Never the token itself.
"""
import hashlib
import time
from collections import OrderedDict

from twisted.logger import Logger

from slurm_sd.sources.tokens import token_expiry

#: A token that cannot renew itself is warned about this long before it expires.
WARN_WITHIN = 24 * 3600.0

#: How many tokens (as digests) are remembered as already warned about.
_REMEMBERED = 32


def duration_text(seconds):
    """``40 s``, ``12 min``, ``3.2 h``, ``2.0 d``."""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


class TokenWatch:
    """
    Told about every token sent (:meth:`seen`); tells ``observer.token_expiry(exp
    or None)`` and warns once per token.

    A token the daemon cannot renew (``--token``, a file, ``SLURM_JWT``) is warned
    about when it expires within a day or has expired. One it renews itself
    (``token_command``, ``jwt_key_file``) is only warned about when it is already
    expired, or expires sooner than ``token_renew_before`` (so it is renewed
    before every poll): a short-lived token is what it is for.

    :param clock: an ``IReactorTime``.
    :param observer: optional; has ``token_expiry(exp, cluster)`` (the metrics).
    :param cluster: the name of the cluster whose token this watches.
    """

    log = Logger()

    def __init__(self, clock, observer=None, cluster=None):
        self._clock = clock
        self._observer = observer
        self._cluster = cluster
        self._warned = OrderedDict()

    def seen(self, token, origin, renew_before=None):
        """
        ``token`` (or None) from ``origin`` is about to be sent.

        :param renew_before: for a token the daemon renews, its
            ``token_renew_before``; None for one it cannot renew.
        :return: its ``exp``, or None.
        """
        exp = None if token is None else token_expiry(token)
        if self._observer is not None:
            self._observer.token_expiry(exp, self._cluster)
        if exp is None:
            return exp
        left = exp - self._clock.seconds()
        soon = WARN_WITHIN if renew_before is None else renew_before
        if left >= soon:
            return exp
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        if digest in self._warned:
            return exp
        self._warned[digest] = True
        while len(self._warned) > _REMEMBERED:
            self._warned.popitem(last=False)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        if left <= 0:
            fix = ("check the command or key, and the clocks" if renew_before is not None
                   else "replace it, or let slurm-sd renew it (token_command or jwt_key_file)")
            self.log.warn("the slurmrestd token from {origin} expired {ago} ago (at {at}); "
                          "slurmrestd will refuse it: {fix}", origin=origin,
                          ago=duration_text(left), at=at, fix=fix)
        elif renew_before is not None:
            self.log.warn("{origin} gave a token that expires in {left} (at {at}), sooner "
                          "than slurmrestd.token_renew_before ({before:g} s): it will be "
                          "renewed before every poll; give it a longer lifespan or lower "
                          "token_renew_before", origin=origin, left=duration_text(left),
                          at=at, before=renew_before)
        else:
            self.log.warn("the slurmrestd token from {origin} expires in {left} (at {at}): "
                          "replace it before then, or let slurm-sd renew it (token_command "
                          "or jwt_key_file)", origin=origin, left=duration_text(left), at=at)
        return exp
