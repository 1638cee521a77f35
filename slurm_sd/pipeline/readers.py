"""
Random access to a body for the fast decoder: in an open file (``os.pread``) or in memory.
"""
import os

import attr


class Unexpected(Exception):
    """This body is not one the fast path handles; use the reference decoder."""


@attr.s(frozen=True)
class FileReader:
    """Reads ranges of an open file with ``os.pread``."""

    fd = attr.ib()
    size = attr.ib(init=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "size", os.fstat(self.fd).st_size)

    def read(self, offset, length):
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the file)."""
        chunks = []
        while length > 0:
            data = os.pread(self.fd, length, offset)
            if not data:
                break
            chunks.append(data)
            offset += len(data)
            length -= len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def readinto(self, offset, view):
        """Fill ``view`` with the bytes from ``offset``."""
        done = 0
        while done < len(view):
            got = os.preadv(self.fd, [view[done:]], offset + done)
            if got <= 0:
                raise Unexpected("the body file is shorter than it was")
            done += got


@attr.s(frozen=True)
class BytesReader:
    """Reads ranges of a body already in memory."""

    body = attr.ib()
    size = attr.ib(init=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "size", len(self.body))

    def read(self, offset, length):
        """Up to ``length`` bytes from ``offset``."""
        if offset == 0 and length >= self.size and isinstance(self.body, bytes):
            return self.body
        return bytes(memoryview(self.body)[offset:offset + length])

    def readinto(self, offset, view):
        """Fill ``view`` with the bytes from ``offset``."""
        view[:] = memoryview(self.body)[offset:offset + len(view)]
