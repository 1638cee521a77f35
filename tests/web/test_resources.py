"""Tests for slurm_sd.web.resources: /targets and the health endpoints."""
import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.clusters import ClusterSet
from slurm_sd.web.resources import TargetsResource
from slurm_sd.web.site import make_root

CONFIG = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\ninterval: 60\n"
               "jobs:\n  - node: {port: 9100}\n  - dcgm: {port: 9400}\n  - ipmi: {port: 9290}\n")

NODE_GROUPS = [{"targets": ["cpu01:9100"], "labels": {"__meta_prom_job": "node"}},
               {"targets": ["gpu01:9100"], "labels": {"__meta_prom_job": "node"}}]
DCGM_GROUPS = [{"targets": ["gpu01:9400"], "labels": {"__meta_prom_job": "dcgm"}}]


class Settings:
    """Stands in for the poller: holds the config in effect (a reload replaces it)."""

    def __init__(self, config=CONFIG):
        self.config = config


class WebTestCase(SynchronousTestCase):
    """A root resource over a cache on a Clock, reachable through StubTreq."""

    #: The config in effect at the start of each test.
    config = CONFIG

    def setUp(self):
        """An empty cache, a root, and a client for it."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.settings = Settings(self.config)
        self.http = StubTreq(make_root(self.cache, self.settings))

    def fill(self):
        """Put a snapshot with node and dcgm groups (ipmi empty) in the cache."""
        self.cache.replace(render({"node": NODE_GROUPS, "dcgm": DCGM_GROUPS, "ipmi": []},
                                  node_count=2))

    def get(self, path, method="GET"):
        """``(code, headers, body)`` of a request to ``path``."""
        response = self.successResultOf(self.http.request(method, "http://sd" + path))
        body = self.successResultOf(response.content())
        return response.code, response.headers, body


class TargetsTests(WebTestCase):
    """``GET /targets``."""

    def test_job_body_and_content_type(self):
        """A known job gets its groups as JSON with the right Content-Type."""
        self.fill()
        code, headers, body = self.get("/targets?prom_job=node")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"),
                         ["application/json; charset=utf-8"])
        self.assertEqual(json.loads(body), NODE_GROUPS)

    def test_empty_job_is_empty_list(self):
        """A job without targets gets 200 and []."""
        self.fill()
        self.assertEqual(self.get("/targets?prom_job=ipmi")[::2], (200, b"[]"))

    def test_all_jobs_without_prom_job(self):
        """Without prom_job, every job's groups come together in config order."""
        self.fill()
        code, _, body = self.get("/targets")
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body), NODE_GROUPS + DCGM_GROUPS)

    def test_unknown_job_lists_known(self):
        """An unknown job gets 404 with a JSON body naming the known jobs."""
        self.fill()
        code, _, body = self.get("/targets?prom_job=lustre")
        self.assertEqual(code, 404)
        self.assertEqual(json.loads(body)["jobs"], ["node", "dcgm", "ipmi"])
        self.assertIn("lustre", json.loads(body)["error"])

    def test_unknown_job_before_first_poll(self):
        """An unknown job is 404 even before the first poll."""
        self.assertEqual(self.get("/targets?prom_job=nope")[0], 404)

    def test_empty_job_name(self):
        """An empty prom_job is 404 too."""
        self.fill()
        self.assertEqual(self.get("/targets?prom_job=")[0], 404)

    def test_prom_job_twice(self):
        """prom_job given twice is 400."""
        self.fill()
        self.assertEqual(self.get("/targets?prom_job=node&prom_job=dcgm")[0], 400)

    def test_503_before_first_poll(self):
        """Before the first good poll: 503 with Retry-After until the next attempt."""
        self.cache.next_attempt_at = 42.2
        code, headers, _ = self.get("/targets?prom_job=node")
        self.assertEqual(code, 503)
        self.assertEqual(headers.getRawHeaders("retry-after"), ["43"])

    def test_retry_after_at_least_one(self):
        """Retry-After is never below 1."""
        self.cache.next_attempt_at = 0
        self.clock.advance(10)
        self.assertEqual(self.get("/targets")[1].getRawHeaders("retry-after"), ["1"])

    def test_head(self):
        """HEAD answers like GET without a body."""
        self.fill()
        code, headers, body = self.get("/targets?prom_job=node", method="HEAD")
        self.assertEqual((code, body), (200, b""))

    def test_other_method(self):
        """POST is 405."""
        self.fill()
        self.assertEqual(self.get("/targets?prom_job=node", method="POST")[0], 405)

    def test_other_paths(self):
        """Any other path is 404."""
        for path in ("/", "/target", "/-/", "/-/nope", "/metrics/x/y"):
            self.assertEqual(self.get(path)[0], 404, path)

    def test_body_is_prebuilt(self):
        """Requests copy the snapshot's prebuilt bytes; nothing is re-encoded."""
        self.fill()
        resource = TargetsResource(ClusterSet.of_one(self.cache, Settings()), Settings())
        request = DummyRequest([b""])
        request.args = {b"prom_job": [b"node"]}
        body = resource.render_GET(request)
        self.assertIs(body, self.cache.snapshot.bodies["node"])

    def test_non_ascii_job(self):
        """A non-ASCII or invalid UTF-8 job name is a clean 404."""
        self.fill()
        self.assertEqual(self.get("/targets?prom_job=%C3%A9t%C3%A9")[0], 404)
        self.assertEqual(self.get("/targets?prom_job=%ff%fe")[0], 404)


class HealthTests(WebTestCase):
    """``/-/healthy`` and ``/-/ready``."""

    def test_healthy(self):
        """/-/healthy is 200 while the process runs, data or not."""
        self.assertEqual(self.get("/-/healthy")[0], 200)

    def test_ready_needs_data(self):
        """/-/ready is 503 before the first poll and 200 after it."""
        self.assertEqual(self.get("/-/ready")[0], 503)
        self.fill()
        self.assertEqual(self.get("/-/ready")[0], 200)

    def test_ready_goes_stale(self):
        """/-/ready turns 503 once the data is older than three intervals."""
        self.fill()
        self.clock.advance(180)
        self.assertEqual(self.get("/-/ready")[0], 200)
        self.clock.advance(1)
        self.assertEqual(self.get("/-/ready")[0], 503)
