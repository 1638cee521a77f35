"""
The daemon's own metrics, served at ``GET /metrics``.

:class:`Metrics` is three things at once: the poller's observer
(``poll_succeeded`` / ``poll_failed``), the web site's request counter
(``count_request``) and a prometheus_client collector in a registry of its own
(never the global one). Its numbers are plain ints and floats, turned into
metric families only when Prometheus scrapes, so counting a request costs one
dict update, and ages are computed at scrape time from the injected clock.
"""
import platform
import re

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

import twisted
from slurm_sd._version import __version__
from slurm_sd.web.resources import GetResource, NotFound

#: Request paths counted under their own label; every other path is ``other``.
#: A fixed set: a label never holds a raw path or query string (or a token).
PATH_LABELS = {b"/targets": "/targets", b"/metrics": "/metrics",
               b"/-/healthy": "/-/healthy", b"/-/ready": "/-/ready"}

#: Poll results counted from the start (at 0), so ``increase()`` sees the first one.
POLL_RESULTS = ("success", "fetch_error", "response_too_large", "bad_response", "internal")

#: Upper bounds (seconds) of the poll duration histogram's buckets.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def result_label(kind):
    """``FetchError`` -> ``fetch_error``: the poller's failure kind as a label value."""
    return _CAMEL.sub("_", kind).lower()


class _Histogram:
    """Cumulative bucket counts and a sum, for one label value."""

    def __init__(self):
        self.counts = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds):
        """Count one observation of ``seconds``."""
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.count += 1
        self.sum += seconds

    def buckets(self):
        """``[(le, cumulative count), ...]`` ending with ``+Inf``."""
        return ([(repr(bound), count) for bound, count in zip(DURATION_BUCKETS, self.counts)]
                + [("+Inf", self.count)])


class Metrics:
    """
    Counts polls, requests and reloads, and exposes them in :attr:`registry`.

    :param clock: an ``IReactorTime``; timestamps and ages come from it.
    :param config: the :class:`~slurm_sd.config.model.Config` in effect at start.
    :param process_metrics: also export ``process_*`` (CPU, memory, fds) from /proc.
    """

    def __init__(self, clock, config, process_metrics=True):
        self._clock = clock
        self._polls = dict.fromkeys(POLL_RESULTS, 0)
        self._durations = {"success": _Histogram(), "failure": _Histogram()}
        self._last_success = None
        self._nodes = None
        self._skipped = None
        self._targets = {}
        self._requests = {}
        self._interval = config.interval
        self._reload_ok = True
        self._reload_at = clock.seconds()
        self._token_expiry = {}
        #: The registry ``/metrics`` serves; holds only our collectors.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        if process_metrics:
            ProcessCollector(registry=self.registry)

    # The poller's observer interface.

    def poll_succeeded(self, snapshot, seconds):
        """A poll replaced the cache with ``snapshot`` after ``seconds``."""
        self._polls["success"] += 1
        self._durations["success"].observe(seconds)
        self._last_success = self._clock.seconds()
        self._nodes = snapshot.nodes
        self._skipped = snapshot.skipped
        self._targets = dict(snapshot.targets)

    def poll_failed(self, kind, seconds):
        """A poll failed with error class ``kind`` (or ``internal``) after ``seconds``."""
        label = result_label(kind)
        self._polls[label] = self._polls.get(label, 0) + 1
        self._durations["failure"].observe(seconds)

    # The site's request counter and the reloader's reports.

    def count_request(self, path, code):
        """
        Count one answered request.

        :param path: the request path (bytes, no query string).
        :param code: the HTTP status code sent.
        """
        key = (PATH_LABELS.get(path, "other"), code)
        self._requests[key] = self._requests.get(key, 0) + 1

    def config_loaded(self, config):
        """A configuration (at start, or by a reload) is now in effect."""
        self._interval = config.interval
        self._reload_ok = True
        self._reload_at = self._clock.seconds()
        # A cluster the reload removed sends no token any more.
        names = {name for name, _ in config.cluster_configs()}
        self._token_expiry = {c: e for c, e in self._token_expiry.items() if c in names}

    def token_expiry(self, exp, cluster):
        """Cluster ``cluster``'s token expires at ``exp`` (Unix time); None: no token, or no exp."""
        if exp is None:
            self._token_expiry.pop(cluster, None)
        else:
            self._token_expiry[cluster] = exp

    def config_failed(self):
        """A reload found a bad configuration and kept the running one."""
        self._reload_ok = False

    # The collector interface.

    def collect(self):
        """The metric families, as of now (called by the registry on each scrape)."""
        now = self._clock.seconds()
        polls = CounterMetricFamily("slurm_sd_polls", "Polls of slurmrestd by result "
                                    "(success or the kind of failure).", labels=["result"])
        for result, count in self._polls.items():
            polls.add_metric([result], count)
        yield polls

        durations = HistogramMetricFamily("slurm_sd_poll_duration_seconds", "How long polls "
                                          "took (fetch, decode, convert, render).",
                                          labels=["result"])
        for result, histogram in self._durations.items():
            durations.add_metric([result], histogram.buckets(), histogram.sum)
        yield durations

        yield GaugeMetricFamily("slurm_sd_last_success_timestamp_seconds", "When the last "
                                "successful poll ended (Unix time; 0 before the first).",
                                value=0.0 if self._last_success is None else self._last_success)
        age = float("inf") if self._last_success is None else now - self._last_success
        yield GaugeMetricFamily("slurm_sd_data_age_seconds", "Seconds since the node list "
                                "being served was fetched (+Inf before the first "
                                "successful poll).", value=age)
        yield GaugeMetricFamily("slurm_sd_poll_interval_seconds", "The configured seconds "
                                "between polls.", value=self._interval)
        if self._nodes is not None:
            yield GaugeMetricFamily("slurm_sd_nodes", "Nodes in the last good node list.",
                                    value=self._nodes)
            yield GaugeMetricFamily("slurm_sd_nodes_skipped", "Node entries of the last "
                                    "good node list dropped (no name, or a duplicate).",
                                    value=self._skipped)
        targets = GaugeMetricFamily("slurm_sd_targets", "Targets served per job, as of the "
                                    "last good poll.", labels=["job"])
        for job, count in self._targets.items():
            targets.add_metric([job], count)
        yield targets

        requests = CounterMetricFamily("slurm_sd_http_requests", "HTTP requests answered, "
                                       "by path and status code.", labels=["path", "code"])
        for (path, code), count in sorted(self._requests.items()):
            requests.add_metric([path, str(code)], count)
        yield requests

        yield GaugeMetricFamily("slurm_sd_config_last_reload_successful", "1 if the last "
                                "configuration load (start or SIGHUP) succeeded, else 0.",
                                value=1 if self._reload_ok else 0)
        yield GaugeMetricFamily("slurm_sd_config_last_reload_success_timestamp_seconds",
                                "When the configuration in effect was loaded (Unix time).",
                                value=self._reload_at)
        if self._token_expiry:
            expiry = GaugeMetricFamily("slurm_sd_token_expiry_timestamp_seconds", "When the "
                                       "token sent to slurmrestd expires (its exp claim, "
                                       "Unix time), per cluster.", labels=["cluster"])
            for cluster, exp in sorted(self._token_expiry.items()):
                expiry.add_metric([cluster], exp)
            yield expiry
        build = GaugeMetricFamily("slurm_sd_build_info", "Always 1; the labels say which "
                                  "slurm-sd, Twisted and Python are running.",
                                  labels=["version", "twisted_version", "python_version"])
        build.add_metric([__version__, twisted.__version__, platform.python_version()], 1)
        yield build


class MetricsResource(GetResource):
    """
    ``GET /metrics``: a registry in Prometheus' text format (or OpenMetrics,
    when the scraper asks for it).

    :param registry: the ``CollectorRegistry`` to expose.
    """

    isLeaf = True

    def __init__(self, registry):
        GetResource.__init__(self)
        self._registry = registry

    def render_GET(self, request):
        """The exposition; 404 for ``/metrics/anything``."""
        if request.postpath not in ([], [b""]):
            return NotFound().render(request)
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return encoder(self._registry)
