"""
The fetch step's plain data for big answers: a body kept in an unnamed temporary file.

A 100,000-node answer is about 250 MB.  Joining it in memory costs the daemon that much
RSS and stalls the reactor while the bytes are copied; written chunk by chunk to a
temporary file, it costs neither, and the decode step (another process) reads it from
there piece by piece.  Small answers stay ``bytes``.

The file has no name (``tempfile.TemporaryFile``), so the space is given back when the
last descriptor closes, whatever happens to the poll.
"""
import os
import tempfile

import attr

#: Answers up to this size stay in memory, as bytes.
SPOOL_OVER = 1024 * 1024


@attr.s(frozen=True, slots=True, eq=False)
class SpooledBody:
    """
    A body in an open file (an unnamed temporary file, or a ``file:`` node
    list); the consumer closes it.

    :ivar file: the open binary file (read it with ``os.pread`` or :meth:`read`).
    :ivar size: its length in bytes.
    """

    file = attr.ib()
    size = attr.ib()

    def fileno(self):
        """The file's descriptor."""
        return self.file.fileno()

    def read(self):
        """The whole body as bytes (for small bodies and the in-process path)."""
        return os.pread(self.file.fileno(), self.size, 0) if self.size else b""

    def close(self):
        """Give the file back; the space is freed once every copy of it is closed."""
        self.file.close()


class Spool:
    """
    Collects a body: in memory up to ``threshold`` bytes, then in a temporary file.

    :param threshold: the size past which chunks go to a file.
    :param directory: where the file is made (default: ``tempfile``'s, i.e. ``$TMPDIR``
        or ``/tmp``).
    """

    def __init__(self, threshold=SPOOL_OVER, directory=None):
        self._threshold = threshold
        self._directory = directory
        self._chunks = []
        self._file = None
        self.size = 0

    def write(self, data):
        """Add ``data`` to the body."""
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._chunks.append(data)
        if self.size > self._threshold:
            self._file = tempfile.TemporaryFile(dir=self._directory)
            self._file.writelines(self._chunks)
            self._chunks = []

    def finish(self):
        """The body: ``bytes``, or a :class:`SpooledBody` past the threshold."""
        if self._file is None:
            body, self._chunks = b"".join(self._chunks), []
            return body
        self._file.flush()
        body = SpooledBody(self._file, self.size)
        self._file = None
        return body

    def discard(self):
        """Drop what was collected (the body is not wanted)."""
        self._chunks = []
        if self._file is not None:
            self._file.close()
            self._file = None


def take_bytes(body):
    """``body`` (bytes, or a :class:`SpooledBody`, which is closed) as bytes."""
    if not isinstance(body, SpooledBody):
        return body
    try:
        return body.read()
    finally:
        body.close()
