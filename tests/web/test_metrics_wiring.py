"""slurm_sd.web.metrics wired into the daemon: the poller's and the site's reports."""
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.runner import WorkerPipeline
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller
from slurm_sd.tap import build_service
from slurm_sd.web.metrics import Metrics
from tests.fakes import SAMPLES
from tests.web.test_metrics import CONFIG, samples, value


class WorkerFailureTests(SynchronousTestCase):
    """A poll that fails in the worker, through the real poller and worker pipeline."""

    def test_worker_error_counted(self):
        """A worker that cannot start is counted under worker_error, declared at 0 before."""
        reactor = MemoryReactorClock()

        def refuse(*args, **kwargs):
            raise OSError(11, "Resource temporarily unavailable")
        reactor.spawnProcess = refuse
        metrics = Metrics(reactor, CONFIG, process_metrics=False)
        self.assertEqual(value(metrics.registry, "slurm_sd_polls_total",
                               result="worker_error"), 0)

        class Source:
            """A node source with one canned body."""

            where = "canned"

            def fetch_nodes(self):
                """The body (never decoded: the worker does not start)."""
                return defer.succeed(b"{}")
        poller = Poller(reactor, Source(), WorkerPipeline(reactor).process,
                        TargetCache(reactor), CONFIG, observer=metrics)
        with capturedLogs():
            self.successResultOf(poller.poll())
        self.assertEqual(value(metrics.registry, "slurm_sd_polls_total",
                               result="worker_error"), 1)
        self.assertEqual(value(metrics.registry, "slurm_sd_polls_total",
                               result="internal"), 0)


def http_get(factory, path):
    """Send ``GET path`` through the full HTTP stack of ``factory``; the raw answer."""
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: sd\r\nConnection: close\r\n\r\n")
    return transport.value()


class WiringTests(SynchronousTestCase):
    """The daemon as built by build_service serves and counts."""

    def setUp(self):
        """The daemon on a MemoryReactorClock with a file: source, started."""
        config = parse("slurmrestd: {url: 'file:%s/slurm-22.05-v0.0.38-nodes.json'}\n"
                       "listen: tcp:8080:interface=127.0.0.1\n"
                       "jobs:\n  - node: {port: 9100}\n" % (SAMPLES,))
        self.reactor = MemoryReactorClock()
        self.service = build_service(self.reactor, config, environ={})
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.factory = self.reactor.tcpServers[0][1]

    def test_requests_counted_by_the_site(self):
        """Each answered request is counted by path and code, query strings never kept."""
        self.assertIn(b" 503 ", http_get(self.factory, b"/targets?prom_job=node")[:20])
        self.reactor.advance(0)
        self.assertIn(b" 200 ", http_get(self.factory, b"/targets?prom_job=node")[:20])
        http_get(self.factory, b"/targets?prom_job=node&token=s3cret")
        http_get(self.factory, b"/s3cret")
        answer = http_get(self.factory, b"/metrics")
        self.assertIn(b" 200 ", answer[:20])
        text = answer.split(b"\r\n\r\n", 1)[1]
        values = samples(text.decode())
        self.assertEqual(values[("slurm_sd_http_requests_total",
                                 frozenset({("path", "/targets"), ("code", "200")}))], 2)
        self.assertEqual(values[("slurm_sd_http_requests_total",
                                 frozenset({("path", "/targets"), ("code", "503")}))], 1)
        self.assertEqual(values[("slurm_sd_http_requests_total",
                                 frozenset({("path", "other"), ("code", "404")}))], 1)
        self.assertNotIn(b"s3cret", text)

    def test_poller_reports_to_metrics(self):
        """A poll by the daemon's poller shows in its metrics."""
        self.reactor.advance(0)
        registry = self.service.metrics.registry
        self.assertEqual(value(registry, "slurm_sd_polls_total", result="success"), 1)
        self.assertGreater(value(registry, "slurm_sd_targets", prom_job="node"), 0)
