"""
``slurmrestd.jwt_key_file``: mint HS256 tokens with Slurm's own key
(``jwt_hs256.key``), as ``scontrol token`` would: claims ``iat``, ``exp``, ``sun``.
"""
import jwt

from slurm_sd.errors import FetchError
from slurm_sd.secretfiles import ModeWarner

#: A bigger file is not a JWT key (Slurm's are 32 bytes or so).
MAX_KEY_BYTES = 64 * 1024

KEY = "slurmrestd.jwt_key_file"


def read_key(path):
    """
    The key's bytes, used whole as Slurm does (no stripping).

    :raises FetchError: when it cannot be read, is empty or is too big.
    """
    try:
        with open(path, "rb") as handle:
            key = handle.read(MAX_KEY_BYTES + 1)
    except OSError as error:
        raise FetchError(f"{KEY}: cannot read {path}: {error.strerror}")
    if not key:
        raise FetchError(f"{KEY}: {path} is empty")
    if len(key) > MAX_KEY_BYTES:
        raise FetchError(f"{KEY}: {path} is larger than 64 KiB; is it the right file?")
    return key


class TokenMinter:
    """
    Mints one token per call, reading the key file each time (so a new key is
    picked up) and warning when others may read it.

    :param clock: an ``IReactorTime``; ``iat`` is its time.
    :param key_file: Slurm's ``jwt_hs256.key``.
    :param user: the ``sun`` claim (``slurmrestd.user``).
    :param lifespan: seconds from ``iat`` to ``exp``.
    """

    def __init__(self, clock, key_file, user, lifespan):
        self._clock = clock
        self._key_file = key_file
        self._user = user
        self._lifespan = lifespan
        self._mode_warner = ModeWarner()

    def __call__(self):
        """A new token (str).

        :raises FetchError: when the key cannot be read.
        """
        self._mode_warner.check(self._key_file, KEY)
        key = read_key(self._key_file)
        now = int(self._clock.seconds())
        claims = {"iat": now, "exp": now + int(self._lifespan), "sun": self._user}
        return jwt.encode(claims, key, algorithm="HS256")
