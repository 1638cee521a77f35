"""Tests for slurm_sd.web.metrics: the self-metrics and GET /metrics."""
import re

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd import __version__
from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.web.metrics import (
    CLUSTER_METRICS,
    POLL_RESULTS,
    Metrics,
    MetricsResource,
    result_label,
)
from slurm_sd.web.site import make_root

CONFIG = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\ninterval: 60\n"
               "jobs:\n  - node: {port: 9100}\n  - dcgm: {port: 9400}\n")


def samples(registry_or_text):
    """``{(name, frozenset(labels.items())): value}`` of a registry or exposition text."""
    if not isinstance(registry_or_text, str):
        from prometheus_client import generate_latest
        registry_or_text = generate_latest(registry_or_text).decode()
    out = {}
    for family in text_string_to_metric_families(registry_or_text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(registry, name, **labels):
    """One sample's value, or None when it is not exported; a per-cluster series is the
    ``default`` cluster's unless ``cluster`` is given."""
    family = re.sub(r"_(total|bucket|count|sum)\Z", "", name)
    if family in CLUSTER_METRICS:
        labels.setdefault("cluster", "default")
    return samples(registry).get((name, frozenset(labels.items())))


class MetricsTests(SynchronousTestCase):
    """The collector's numbers, on a Clock."""

    def setUp(self):
        """Metrics on a Clock that starts at Unix time 1000."""
        self.clock = Clock()
        self.clock.advance(1000)
        self.metrics = Metrics(self.clock, CONFIG, process_metrics=False)
        self.registry = self.metrics.registry

    def succeed(self, seconds=2.0):
        """Report a good poll of 2 nodes with node=2, dcgm=1 targets."""
        snapshot = render({"node": [{"targets": ["a:9100", "b:9100"], "labels": {}}],
                           "dcgm": [{"targets": ["b:9400"], "labels": {}}]},
                          node_count=2, skipped=1)
        self.metrics.poll_succeeded(snapshot, seconds)

    def test_own_registry(self):
        """The metrics live in their own registry, not prometheus_client's global one."""
        self.assertIsNot(self.registry, REGISTRY)
        self.assertIsNone(REGISTRY.get_sample_value("slurm_sd_polls_total",
                                                    {"result": "success"}))

    def test_polls_by_result_start_at_zero(self):
        """Every poll result is exported at 0 before any poll, so increase() sees the first."""
        for result in ("success", "fetch_error", "response_too_large", "bad_response",
                       "worker_error", "internal"):
            self.assertEqual(value(self.registry, "slurm_sd_polls_total", result=result), 0)
        results = {dict(labels)["result"] for (name, labels) in samples(self.registry)
                   if name == "slurm_sd_polls_total"}
        self.assertEqual(results, set(POLL_RESULTS))

    def test_undeclared_kind_is_internal(self):
        """A failure kind not declared up front is counted as internal: no new label value."""
        self.metrics.poll_failed("SomethingNewError", 1.0)
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", result="internal"), 1)
        results = {dict(labels)["result"] for (name, labels) in samples(self.registry)
                   if name == "slurm_sd_polls_total"}
        self.assertEqual(results, set(POLL_RESULTS))

    def test_no_created_series(self):
        """No *_created series: their wall-clock times would not be the injected clock's."""
        self.succeed()
        self.metrics.count_request(b"/targets", 200)
        names = {name for (name, labels) in samples(self.registry)}
        self.assertEqual([name for name in names if name.endswith("_created")], [])

    def test_targets_label_is_prom_job(self):
        """Targets per job carry prom_job (and cluster), never job (Prometheus would rename
        it exported_job)."""
        self.succeed()
        labels = {key for (name, labels) in samples(self.registry)
                  if name == "slurm_sd_targets" for key, _ in labels}
        self.assertEqual(labels, {"cluster", "prom_job"})

    def test_polls_counted_by_result(self):
        """Successes and each kind of failure are counted under their own label."""
        self.succeed()
        self.metrics.poll_failed("FetchError", 1.0)
        self.metrics.poll_failed("FetchError", 1.0)
        self.metrics.poll_failed("BadResponse", 1.0)
        self.metrics.poll_failed("internal", 1.0)
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", result="success"), 1)
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", result="fetch_error"), 2)
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", result="bad_response"), 1)
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", result="internal"), 1)

    def test_result_label(self):
        """Error class names become snake_case label values."""
        self.assertEqual([result_label(k) for k in ("FetchError", "ResponseTooLarge",
                                                    "internal")],
                         ["fetch_error", "response_too_large", "internal"])
        self.assertEqual(result_label("WorkerError"), "worker_error")

    def test_last_success_from_clock(self):
        """The last success time is the injected clock's, 0 before the first success."""
        self.assertEqual(value(self.registry, "slurm_sd_last_success_timestamp_seconds"), 0)
        self.clock.advance(5)
        self.succeed()
        self.clock.advance(100)
        self.metrics.poll_failed("FetchError", 1.0)
        self.assertEqual(value(self.registry, "slurm_sd_last_success_timestamp_seconds"), 1005)

    def test_data_age_computed_at_scrape_time(self):
        """The data age grows with the clock between scrapes, +Inf before any data."""
        self.assertEqual(value(self.registry, "slurm_sd_data_age_seconds"), float("inf"))
        self.succeed()
        self.assertEqual(value(self.registry, "slurm_sd_data_age_seconds"), 0)
        self.clock.advance(42)
        self.assertEqual(value(self.registry, "slurm_sd_data_age_seconds"), 42)

    def test_poll_duration_histogram(self):
        """Poll durations land in the histogram of their outcome."""
        self.succeed(seconds=0.3)
        self.succeed(seconds=7)
        self.metrics.poll_failed("FetchError", 60)
        registry = self.registry
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_count",
                               result="success"), 2)
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_sum",
                               result="success"), 7.3)
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_bucket",
                               result="success", le="0.5"), 1)
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_bucket",
                               result="success", le="10.0"), 2)
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_bucket",
                               result="failure", le="30.0"), 0)
        self.assertEqual(value(registry, "slurm_sd_poll_duration_seconds_bucket",
                               result="failure", le="+Inf"), 1)

    def test_nodes_and_targets_per_job(self):
        """Nodes seen, nodes skipped and targets per job come from the last good poll."""
        self.assertIsNone(value(self.registry, "slurm_sd_nodes"))
        self.succeed()
        self.assertEqual(value(self.registry, "slurm_sd_nodes"), 2)
        self.assertEqual(value(self.registry, "slurm_sd_nodes_skipped"), 1)
        self.assertEqual(value(self.registry, "slurm_sd_targets", prom_job="node"), 2)
        self.assertEqual(value(self.registry, "slurm_sd_targets", prom_job="dcgm"), 1)

    def test_removed_job_disappears(self):
        """A job missing from the next snapshot (removed by a reload) is no longer exported."""
        self.succeed()
        self.metrics.poll_succeeded(render({"node": []}, node_count=0), 1)
        self.assertEqual(value(self.registry, "slurm_sd_targets", prom_job="node"), 0)
        self.assertIsNone(value(self.registry, "slurm_sd_targets", prom_job="dcgm"))

    def test_requests_by_fixed_path_label(self):
        """Requests are counted by a fixed path label and code; other paths are 'other'."""
        for path, code in ((b"/targets", 200), (b"/targets", 200), (b"/targets", 503),
                           (b"/metrics", 200), (b"/-/ready", 503), (b"/-/healthy", 200),
                           (b"/secret-token-here", 404), (b"/x", 404)):
            self.metrics.count_request(path, code)
        registry = self.registry
        self.assertEqual(value(registry, "slurm_sd_http_requests_total",
                               path="/targets", code="200"), 2)
        self.assertEqual(value(registry, "slurm_sd_http_requests_total",
                               path="/targets", code="503"), 1)
        self.assertEqual(value(registry, "slurm_sd_http_requests_total",
                               path="/-/ready", code="503"), 1)
        self.assertEqual(value(registry, "slurm_sd_http_requests_total",
                               path="other", code="404"), 2)
        paths = {dict(labels).get("path") for (name, labels) in samples(registry)
                 if name == "slurm_sd_http_requests_total"}
        self.assertEqual(paths, {"/targets", "/metrics", "/-/ready", "/-/healthy", "other"})

    def test_interval_and_reload_status(self):
        """The interval in effect and the last reload's outcome are exported."""
        self.assertEqual(value(self.registry, "slurm_sd_poll_interval_seconds"), 60)
        self.assertEqual(value(self.registry, "slurm_sd_config_last_reload_successful"), 1)
        self.metrics.config_failed()
        self.assertEqual(value(self.registry, "slurm_sd_config_last_reload_successful"), 0)
        self.clock.advance(10)
        self.metrics.config_loaded(parse(
            "slurmrestd: {url: 'http://h:1'}\ninterval: 30\njobs: [{node: {port: 1}}]\n"))
        self.assertEqual(value(self.registry, "slurm_sd_poll_interval_seconds"), 30)
        self.assertEqual(value(self.registry, "slurm_sd_config_last_reload_successful"), 1)
        self.assertEqual(value(
            self.registry, "slurm_sd_config_last_reload_success_timestamp_seconds"), 1010)

    def test_build_info(self):
        """The build info carries our version."""
        build = [dict(labels) for (name, labels) in samples(self.registry)
                 if name == "slurm_sd_build_info"]
        self.assertEqual(len(build), 1)
        self.assertEqual(build[0]["version"], __version__)
        self.assertEqual(set(build[0]), {"version", "twisted_version", "python_version"})

    def test_process_metrics(self):
        """With process_metrics (the default), process_* metrics are exported where /proc is."""
        import os
        if not os.path.exists("/proc/self/stat"):
            raise self.skipTest("no /proc")
        metrics = Metrics(self.clock, CONFIG)
        self.assertIsNotNone(value(metrics.registry, "process_resident_memory_bytes"))


class MetricsResourceTests(SynchronousTestCase):
    """``GET /metrics`` through the resource tree."""

    def setUp(self):
        """A root with /metrics, reachable through StubTreq."""
        self.clock = Clock()
        self.metrics = Metrics(self.clock, CONFIG, process_metrics=False)

        class Settings:
            """Stands in for the poller: the config in effect."""

            config = CONFIG

        root = make_root(TargetCache(self.clock), Settings(),
                         extra={b"metrics": MetricsResource(self.metrics.registry)})
        self.http = StubTreq(root)

    def get(self, path, headers=None):
        """``(code, content type, body)`` of a GET of ``path``."""
        response = self.successResultOf(self.http.get("http://sd" + path, headers=headers))
        body = self.successResultOf(response.content())
        return response.code, response.headers.getRawHeaders("content-type")[0], body

    def test_text_format(self):
        """/metrics answers 200 in Prometheus' text format."""
        code, content_type, body = self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        self.assertEqual(samples(body.decode())[("slurm_sd_polls_total", frozenset(
            {("cluster", "default"), ("result", "success")}))], 0)

    def test_openmetrics_when_asked(self):
        """A scraper asking for OpenMetrics gets it."""
        code, content_type, body = self.get(
            "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        self.assertEqual(code, 200)
        self.assertTrue(content_type.startswith("application/openmetrics-text"), content_type)
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_below_metrics_is_404(self):
        """/metrics/anything is 404, not the metrics."""
        self.assertEqual(self.get("/metrics/x")[0], 404)

    def test_other_methods_405(self):
        """POST and PUT /metrics are 405."""
        for method in ("POST", "PUT"):
            response = self.successResultOf(self.http.request(method, "http://sd/metrics"))
            self.assertEqual(response.code, 405, method)
