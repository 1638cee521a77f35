"""HEAD requests and paths below the leaves, through the daemon's full HTTP stack."""
import os

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.tap import build_service
from tests.fakes import SAMPLES

CONFIG = ("slurmrestd: {url: 'file:%s/slurm-22.05-v0.0.38-nodes.json'}\n"
          "listen: tcp:8080:interface=127.0.0.1\njobs:\n  - node: {port: 9100}\n" % (SAMPLES,))

PATHS = (b"/", b"/targets", b"/targets?prom_job=node", b"/metrics", b"/-/ready", b"/-/healthy",
         b"/nope")


def exchange(factory, method, path, headers=b""):
    """``(status line, {header: value}, body)`` of one request through ``factory``."""
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(method + b" " + path + b" HTTP/1.1\r\nHost: sd\r\n" + headers
                          + b"Connection: close\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
    fields.pop(b"date", None)
    return lines[0], fields, body


class DaemonTestCase(SynchronousTestCase):
    """The daemon built by build_service on a MemoryReactorClock, started."""

    config_text = CONFIG

    def setUp(self):
        """Start the daemon; its site factory is :attr:`factory`."""
        self.reactor = MemoryReactorClock()
        self.service = build_service(self.reactor, parse(self.config_text), environ={})
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.factory = self.reactor.tcpServers[0][1]

    def head_and_get(self, path, headers=b""):
        """HEAD and GET of ``path`` with the log captured; ``(head, get, log lines)``."""
        with capturedLogs() as events:
            head = exchange(self.factory, b"HEAD", path, headers)
            get = exchange(self.factory, b"GET", path, headers)
        return head, get, [formatEvent(event) for event in events]


class HeadTests(DaemonTestCase):
    """HEAD answers like GET, without a body, and writes nothing to the log."""

    def check(self, path, headers=b""):
        """HEAD of ``path`` has GET's status and headers, no body, and logs no warning."""
        (status, fields, body), (get_status, get_fields, get_body), lines = (
            self.head_and_get(path, headers))
        self.assertEqual(body, b"", path)
        self.assertEqual(status, get_status, path)
        self.assertGreater(len(get_body), 0, path)
        if path == b"/metrics":
            # The GET also counts the HEAD before it: its body is a little longer.
            self.assertGreater(int(fields.pop(b"content-length")), 0)
            get_fields.pop(b"content-length")
        else:
            self.assertEqual(fields[b"content-length"], b"%d" % (len(get_body),), path)
        self.assertEqual(fields, get_fields, path)
        self.assertEqual([line for line in lines if "eat it" in line or "HEAD" in line],
                         [], path)
        return status, fields

    def test_head_before_first_poll(self):
        """Before any data: /targets is 503 with Retry-After, /-/ready 503, both on HEAD too."""
        for path in PATHS:
            status, fields = self.check(path)
        self.assertIn(b" 503 ", self.check(b"/targets?prom_job=node")[0])
        self.assertIn(b"retry-after", self.check(b"/targets")[1])
        self.assertIn(b" 503 ", self.check(b"/-/ready")[0])

    def test_head_with_data(self):
        """With data: HEAD of /targets, /metrics, /-/ready, /-/healthy is 200 like GET."""
        self.reactor.advance(0)
        for path in PATHS[:-1]:
            status, fields = self.check(path)
            self.assertIn(b" 200 ", status, path)
        self.assertEqual(self.check(b"/targets")[1][b"content-type"],
                         b"application/json; charset=utf-8")
        self.assertTrue(self.check(b"/metrics")[1][b"content-type"].startswith(
            b"text/plain; version=0.0.4"))
        self.assertIn(b" 404 ", self.check(b"/nope")[0])


class BelowLeavesTests(DaemonTestCase):
    """A path below a leaf is a 404 like every other unknown path."""

    def test_below_leaves_404(self):
        """/targets/anything, /metrics/x, /-/ready/x, /-/healthy/x are 404, GET and HEAD."""
        self.reactor.advance(0)
        for path in (b"/targets/anything", b"/targets/anything?prom_job=node",
                     b"/targets/a/b", b"/metrics/x", b"/-/ready/x", b"/-/healthy/x"):
            (head_status, _, head_body), (status, fields, body), _ = self.head_and_get(path)
            self.assertIn(b" 404 ", status, path)
            self.assertIn(b" 404 ", head_status, path)
            self.assertIn(b'"not found"', body, path)
            self.assertEqual(head_body, b"", path)

    def test_leaves_themselves(self):
        """The leaves themselves still answer 200 (with or without a trailing slash)."""
        self.reactor.advance(0)
        for path in (b"/targets", b"/targets/", b"/targets?prom_job=node", b"/metrics"):
            self.assertIn(b" 200 ", exchange(self.factory, b"GET", path)[0], path)


class HeadUnauthorizedTests(DaemonTestCase):
    """HEAD of a protected path without credentials: 401 with its challenge, no warning."""

    def setUp(self):
        """The daemon with http_auth (a bearer token file)."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "token")
        with open(path, "w") as handle:
            handle.write("s3cret\n")
        os.chmod(path, 0o600)
        self.config_text = CONFIG + "http_auth: {bearer_token_file: %s}\n" % (path,)
        DaemonTestCase.setUp(self)

    def test_head_401(self):
        """HEAD /targets without credentials is 401 with WWW-Authenticate, and logs nothing."""
        (status, fields, body), (get_status, get_fields, _), lines = (
            self.head_and_get(b"/targets"))
        self.assertIn(b" 401 ", status)
        self.assertEqual(fields, get_fields)
        self.assertIn(b"www-authenticate", fields)
        self.assertEqual(body, b"")
        self.assertEqual([line for line in lines if "eat it" in line], [])

    def test_head_with_credentials(self):
        """HEAD /metrics with the token is 200 and logs nothing."""
        (status, fields, body), _, lines = self.head_and_get(
            b"/metrics", b"Authorization: Bearer s3cret\r\n")
        self.assertIn(b" 200 ", status)
        self.assertEqual(body, b"")
        self.assertEqual([line for line in lines if "eat it" in line], [])
