"""
Node lists that are not fetched over HTTP: a saved file (``url: file:PATH``),
read afresh on every poll, and a stream read once (``slurm-sd dump --input -``).
"""
import os
import stat

from twisted.internet import defer

from slurm_sd.errors import FetchError, ResponseTooLarge
from slurm_sd.sources.spool import SPOOL_OVER, SpooledBody


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
        :class:`~slurm_sd.sources.spool.SpooledBody`, not read into memory.
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


class StdinSource:
    """A fetch step reading a node list from a binary stream once (``--input -``)."""

    where = "stdin"

    def __init__(self, stdin, max_bytes):
        self._stdin = stdin
        self._max_bytes = max_bytes

    def fetch_nodes(self):
        """The stream's bytes, as a Deferred; refused past ``max_bytes``."""
        body = self._stdin.read(self._max_bytes + 1)
        if len(body) > self._max_bytes:
            return defer.fail(FetchError(
                f"the node list on stdin is larger than slurmrestd.max_response_bytes "
                f"({self._max_bytes} bytes): raise max_response_bytes"))
        return defer.succeed(body)
