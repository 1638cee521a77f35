"""SPEC 4's /-/healthy and /-/ready, checked against the spec as Prometheus' own servers behave."""
from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from tests.web.test_resources import WebTestCase

CONFIG = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\ninterval: 100\n"
               "jobs: [{node: {port: 9100}}]\n")


class HealthEndpointTests(WebTestCase):
    """Methods, bodies and the reload interaction of the health endpoints."""

    config = CONFIG

    def request(self, method, path):
        """``(code, body)`` of one request."""
        code, _, body = self.get(path, method)
        return code, body

    def test_head_like_get(self):
        """HEAD works on both endpoints, with GET's status and no body."""
        self.assertEqual(self.request("HEAD", "/-/healthy"), (200, b""))
        self.assertEqual(self.request("HEAD", "/-/ready"), (503, b""))

    def test_other_methods_405(self):
        """Any method but GET and HEAD is 405 with Allow (twisted.web alone says 501 to PUT)."""
        for path in ("/-/healthy", "/-/ready", "/targets?prom_job=node"):
            for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
                response = self.successResultOf(self.http.request(method, "http://sd" + path))
                self.assertEqual(response.code, 405, (method, path))
                self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD"])

    def test_ready_says_why_not(self):
        """A 503 from /-/ready says why: no data yet, or how old the data is."""
        self.assertIn(b"no node list yet", self.request("GET", "/-/ready")[1])
        self.cache.replace(render({"node": []}, node_count=0))
        self.clock.advance(301)
        code, body = self.request("GET", "/-/ready")
        self.assertEqual(code, 503)
        self.assertIn(b"301 s old (limit 300 s)", body)

    def test_ready_follows_reloaded_interval(self):
        """After a reload with a longer interval, /-/ready uses three of the new intervals."""
        self.cache.replace(render({"node": []}, node_count=0))
        self.clock.advance(301)
        self.assertEqual(self.request("GET", "/-/ready")[0], 503)
        self.settings.config = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
                                     "interval: 200\njobs: [{node: {port: 9100}}]\n")
        self.assertEqual(self.request("GET", "/-/ready")[0], 200)

    def test_healthy_without_data(self):
        """/-/healthy is 200 even with no data and stale data."""
        self.assertEqual(self.request("GET", "/-/healthy")[0], 200)
        self.cache.replace(render({"node": []}, node_count=0))
        self.clock.advance(10000)
        self.assertEqual(self.request("GET", "/-/healthy")[0], 200)
