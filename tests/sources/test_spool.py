"""Tests for slurm_sd.sources.spool and the fetch step's use of it: big bodies go to a file."""
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.errors import ResponseTooLarge
from slurm_sd.sources.file import FileSource
from slurm_sd.sources.spool import SPOOL_OVER, Spool, SpooledBody, take_bytes
from tests.answers import Reply, response
from tests.sources.test_slurmrestd import make_client
from tests.standin import StandIn


class SpoolTests(SynchronousTestCase):
    """Spool keeps small bodies in memory and writes big ones to a file."""

    def test_small_stays_bytes(self):
        """Up to the threshold the body is handed on as bytes."""
        spool = Spool(threshold=10)
        spool.write(b"12345")
        spool.write(b"67890")
        self.assertEqual(spool.finish(), b"1234567890")

    def test_big_goes_to_file(self):
        """Past the threshold the body is a SpooledBody holding every byte, in order."""
        spool = Spool(threshold=10)
        for chunk in (b"abcdef", b"ghijkl", b"mnop"):
            spool.write(chunk)
        body = spool.finish()
        self.addCleanup(body.close)
        self.assertIsInstance(body, SpooledBody)
        self.assertEqual((body.size, body.read()), (16, b"abcdefghijklmnop"))

    def test_discard_closes_file(self):
        """discard() closes the file of a body nobody will use."""
        spool = Spool(threshold=1)
        spool.write(b"abc")
        handle = spool._file
        spool.discard()
        self.assertTrue(handle.closed)

    def test_take_bytes(self):
        """take_bytes() reads a SpooledBody and closes it; bytes pass through."""
        spool = Spool(threshold=1)
        spool.write(b"xyz")
        body = spool.finish()
        self.assertEqual(take_bytes(body), b"xyz")
        self.assertTrue(body.file.closed)
        self.assertEqual(take_bytes(b"plain"), b"plain")


class FetchSpoolTests(SynchronousTestCase):
    """The fetch step spools big node lists instead of joining them in memory."""

    def test_big_body_spooled(self):
        """A node list over SPOOL_OVER arrives as a SpooledBody with the exact bytes."""
        big = b'{"nodes": [' + b" " * (SPOOL_OVER + 100) + b"]}"
        body = self.successResultOf(make_client(StandIn(body=big)).fetch_nodes())
        self.addCleanup(body.close)
        self.assertIsInstance(body, SpooledBody)
        self.assertEqual(body.read(), big)

    def test_chunked_too_large(self):
        """Without Content-Length the limit is enforced while spooling."""
        standin = StandIn()
        standin.nodes = Reply(response(200, b"x" * 4096 * 64, length=False))
        client = make_client(standin, max_response_bytes=100000)
        failure = self.failureResultOf(client.fetch_nodes(), ResponseTooLarge)
        self.assertIn("max_response_bytes (100000 bytes", str(failure.value))

    def test_big_error_body_read(self):
        """A big error answer is still read as text for the one-line message."""
        fake = StandIn(body=b"{}")
        fake.answers.append(Reply(response(
            500, b'{"errors": [{"error": "boom"}]}' + b" " * (SPOOL_OVER + 1))))
        failure = self.failureResultOf(make_client(fake).fetch_nodes())
        self.assertIn("boom", str(failure.value))


class FileSourceSpoolTests(SynchronousTestCase):
    """A big ``file:`` node list is handed on open, not read into memory."""

    def test_big_file_handed_open(self):
        """A file over SPOOL_OVER comes as a SpooledBody of that very file."""
        path = self.mktemp()
        big = b'{"nodes": [' + b" " * SPOOL_OVER + b"]}"
        with open(path, "wb") as handle:
            handle.write(big)
        body = self.successResultOf(FileSource(path, 10 ** 9).fetch_nodes())
        self.addCleanup(body.close)
        self.assertIsInstance(body, SpooledBody)
        self.assertEqual((body.size, body.read()), (len(big), big))

    def test_big_file_too_large(self):
        """A big file over max_response_bytes is still refused."""
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(b" " * (SPOOL_OVER + 10))
        self.failureResultOf(FileSource(path, SPOOL_OVER + 5).fetch_nodes(),
                             ResponseTooLarge)
