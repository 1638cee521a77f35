"""Tests for slurm_sd.sources.pipe: a command's stdout pipe, read in big pieces."""
import fcntl
import os

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.sources.pipe import CHUNK, PIPE_SIZE, PipeReader, stdout_pipe

_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


class FakeReactor:
    """Records addReader / removeReader."""

    def __init__(self):
        self.readers = set()

    def addReader(self, reader):
        """Record."""
        self.readers.add(reader)

    def removeReader(self, reader):
        """Forget."""
        self.readers.discard(reader)


class PipeReaderTests(SynchronousTestCase):
    """PipeReader on a real pipe with a fake reactor."""

    def setUp(self):
        """A pipe, a reader on it, and what it hands on."""
        self.reactor = FakeReactor()
        self.read_fd, self.write_fd = stdout_pipe()
        self.addCleanup(self.close_write)
        self.pieces = []
        self.ends = []
        self.reader = PipeReader(self.reactor, self.read_fd, self.pieces.append,
                                 self.ends.append)

    def close_write(self):
        """Close the write end if the test has not."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def test_pipe_enlarged(self):
        """The pipe holds 1 MiB, several reads' worth."""
        self.assertEqual(PIPE_SIZE, fcntl.fcntl(self.read_fd, _F_GETPIPE_SZ))
        self.assertFalse(os.get_blocking(self.read_fd))

    def test_reads_big_pieces_then_eof(self):
        """A full pipe is read in pieces of CHUNK; end-of-file closes it and says so once."""
        self.assertEqual({self.reader}, self.reactor.readers)
        data = os.urandom(PIPE_SIZE)
        self.assertEqual(PIPE_SIZE, os.write(self.write_fd, data))
        for _ in range(PIPE_SIZE // CHUNK):
            self.reader.doRead()
        self.assertEqual([CHUNK] * (PIPE_SIZE // CHUNK), [len(p) for p in self.pieces])
        self.assertEqual(data, b"".join(self.pieces))
        self.reader.doRead()   # nothing there yet: no call
        self.assertEqual([], self.ends)
        self.close_write()
        self.reader.doRead()
        self.assertEqual([None], self.ends)
        self.assertEqual(-1, self.reader.fileno())
        self.assertEqual(set(), self.reactor.readers)
        self.assertRaises(OSError, os.fstat, self.read_fd)

    def test_hang_up_is_eof(self):
        """The reactor's ConnectionDone (hang-up, nothing to read) is end-of-file."""
        self.reader.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([None], self.ends)

    def test_other_loss_is_an_error(self):
        """Any other loss ends reading with an error."""
        self.reader.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(1, len(self.ends))
        self.assertIsInstance(self.ends[0], OSError)

    def test_close_is_silent_and_idempotent(self):
        """close() stops reading without calling ``ended``, and may be repeated."""
        self.reader.close()
        self.reader.close()
        self.reader.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], self.ends)
        self.assertEqual(set(), self.reactor.readers)
