"""
A command's stdout as a pipe read in big pieces: :func:`stdout_pipe` and :class:`PipeReader`.

Twisted's own process pipes are read 8 KiB per reactor turn: 250 MB of node list would be
30,000 turns, each of which may also serve a ``/targets`` request, so the fetch drags
while Prometheus is busy.  This pipe is enlarged to 1 MiB (``F_SETPIPE_SZ``) and read up
to 256 KiB a turn: about 1,000 turns for 100,000 nodes.  Bigger pieces are not better:
writing one to the spool file can wait on the kernel's dirty-page throttling, and a
1 MiB piece then stalled the reactor for 20-50 ms where a 256 KiB one stayed under 5 ms.
"""
import fcntl
import os

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

#: The most read in one reactor turn.
CHUNK = 256 * 1024
#: The pipe size asked for, so that the command is seldom blocked on a full pipe.
PIPE_SIZE = 1024 * 1024

# Linux's fcntl command to resize a pipe; Python names it from 3.10 on.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def stdout_pipe():
    """
    A new pipe ``(read_fd, write_fd)``: the write end for the child's fd 1 (close it
    here once the child has it), the read end non-blocking, for :class:`PipeReader`.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        fcntl.fcntl(read_fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass   # above /proc/sys/fs/pipe-max-size: the default size works, in more turns
    return read_fd, write_fd


@implementer(IReadDescriptor)
class PipeReader:
    """
    Reads a pipe on the reactor until end-of-file; owns (and closes) the descriptor.

    :param received: called with each piece of data (``bytes``).
    :param ended: called once, with None at end-of-file or the ``OSError`` that
        ended reading; not called after :meth:`close`.
    """

    def __init__(self, reactor, fd, received, ended):
        self._reactor = reactor
        self._fd = fd
        self._received = received
        self._ended = ended
        reactor.addReader(self)

    def fileno(self):
        """The pipe's descriptor (-1 once closed)."""
        return self._fd

    def logPrefix(self):
        """For the reactor's log lines."""
        return "PipeReader"

    def doRead(self):
        """Read what is there, up to :data:`CHUNK`."""
        try:
            data = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            self._finish(error)
            return
        if not data:
            self._finish(None)
            return
        self._received(data)

    def _finish(self, reason):
        """Stop reading and say why."""
        self.close()
        self._ended(reason)

    def connectionLost(self, reason):
        """
        The reactor saw the pipe hang up with nothing left to read (ConnectionDone:
        end-of-file), or dropped us for another reason (it is shutting down).
        """
        if self._fd >= 0:
            self._finish(None if reason.check(ConnectionDone) else
                         OSError(f"the reactor stopped reading the pipe: "
                                 f"{reason.getErrorMessage()}"))

    def close(self):
        """Stop reading and close the descriptor (idempotent)."""
        if self._fd >= 0:
            self._reactor.removeReader(self)
            os.close(self._fd)
            self._fd = -1
