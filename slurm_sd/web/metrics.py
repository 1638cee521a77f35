"""
The daemon's own metrics, served at ``GET /metrics``.

:class:`Metrics` is the poller's observer (``poll_succeeded`` /
``poll_failed``), the web site's request counter (``count_request``) and the
reloader's reporter, all writing to prometheus_client's own ``Counter``,
``Gauge`` and ``Histogram`` in a registry of its own (never the global one).
The data age is computed at scrape time from the injected clock.
docs/metrics.rst lists every metric, label and result value.
"""
import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

import twisted
from slurm_sd._version import __version__
from slurm_sd.web.polls import (  # noqa: F401 (result_label: the status page's)
    CLUSTER_METRICS,
    DURATION_RESULTS,
    POLL_RESULTS,
    ClusterMetrics,
    result_label,
)
from slurm_sd.web.resources import GetResource

#: Request paths counted under their own label; every other path is ``other``.
#: A fixed set: a label never holds a raw path or query string (or a token).
PATH_LABELS = {b"/targets": "/targets", b"/metrics": "/metrics",
               b"/-/healthy": "/-/healthy", b"/-/ready": "/-/ready"}

#: Upper bounds (seconds) of the poll duration histogram's buckets.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

class Metrics:
    """
    Counts polls, requests and reloads, and exposes them in :attr:`registry`.

    :param clock: an ``IReactorTime``; timestamps and ages come from it.
    :param config: the :class:`~slurm_sd.config.model.Config` in effect at start.
    :param process_metrics: also export ``process_*`` (CPU, memory, fds) from /proc.
    """

    def __init__(self, clock, config, process_metrics=True):
        self._clock = clock
        self._clusters = {}
        # No *_created series: they would double the exposition, and their wall-clock
        # times are not the injected clock's. (Process-wide; this is the only user.)
        disable_created_metrics()
        #: The registry ``/metrics`` serves; holds only our metrics.
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.polls = Counter("slurm_sd_polls", "Polls of slurmrestd by result (success "
                             "or the kind of failure).", ["cluster", "result"],
                             registry=registry)
        self.durations = Histogram("slurm_sd_poll_duration_seconds", "How long polls took "
                                   "(fetch, decode, convert, render).", ["cluster", "result"],
                                   buckets=DURATION_BUCKETS, registry=registry)
        self.last_success_at = Gauge(
            "slurm_sd_last_success_timestamp_seconds", "When the last successful poll "
            "ended (Unix time; 0 before the first).", ["cluster"], registry=registry)
        self.data_age = Gauge("slurm_sd_data_age_seconds", "Seconds since the node list "
                              "being served was fetched (+Inf before the first successful "
                              "poll).", ["cluster"], registry=registry)
        self.interval = Gauge("slurm_sd_poll_interval_seconds", "The configured seconds "
                              "between polls.", ["cluster"], registry=registry)
        # A cluster's series appear at its first good poll: before it there is no count.
        self.nodes = Gauge("slurm_sd_nodes", "Nodes in the last good node list.",
                           ["cluster"], registry=registry)
        self.skipped = Gauge("slurm_sd_nodes_skipped", "Node entries of the last good "
                             "node list dropped (no name, or a duplicate).", ["cluster"],
                             registry=registry)
        self.held = Counter("slurm_sd_polls_held", "Successful polls held back by the "
                            "shrink guard (max_node_drop).", ["cluster"], registry=registry)
        self.source_duration = Gauge("slurm_sd_source_duration_seconds", "How long the "
                                     "source took for its last good answer (without decode, "
                                     "convert and render).", ["cluster"], registry=registry)
        # prom_job, not job: Prometheus would rename a scraped job label exported_job.
        self.targets = Gauge("slurm_sd_targets", "Targets served per job, as of the last "
                             "good poll.", ["cluster", "prom_job"], registry=registry)
        self._requests = Counter("slurm_sd_http_requests", "HTTP requests answered, by "
                                 "path and status code.", ["path", "code"], registry=registry)
        self._reload_ok = Gauge("slurm_sd_config_last_reload_successful", "1 if the last "
                                "configuration load (start or SIGHUP) succeeded, else 0.",
                                registry=registry)
        self._reload_at = Gauge("slurm_sd_config_last_reload_success_timestamp_seconds",
                                "When the configuration in effect was loaded (Unix time).",
                                registry=registry)
        self._token_expiry = Gauge("slurm_sd_token_expiry_timestamp_seconds", "When the "
                                   "token sent to slurmrestd expires (its exp claim, Unix "
                                   "time), per cluster.", ["cluster"], registry=registry)
        self._token_clusters = set()
        Gauge("slurm_sd_build_info", "Always 1; the labels say which slurm-sd, Twisted and "
              "Python are running.", ["version", "twisted_version", "python_version"],
              registry=registry).labels(__version__, twisted.__version__,
                                        platform.python_version()).set(1)
        self._names = [name for name, _ in config.cluster_configs()]
        self.config_loaded(config)
        if process_metrics:
            ProcessCollector(registry=registry)

    def cluster(self, name):
        """The poller observer of cluster ``name`` (a :class:`ClusterMetrics`)."""
        if name not in self._clusters:
            self._clusters[name] = ClusterMetrics(self, self._clock, name)
        return self._clusters[name]

    # The poller's observer interface, for the (first) cluster.

    def poll_succeeded(self, snapshot, seconds):
        """The first cluster's poll replaced its cache with ``snapshot`` after ``seconds``."""
        self.cluster(self._names[0]).poll_succeeded(snapshot, seconds)

    def poll_failed(self, kind, seconds):
        """The first cluster's poll failed with ``kind`` (or ``internal``) after ``seconds``."""
        self.cluster(self._names[0]).poll_failed(kind, seconds)

    def poll_held(self):
        """The first cluster's shrink guard held a poll back."""
        self.cluster(self._names[0]).poll_held()

    def source_answered(self, seconds):
        """The first cluster's source answered after ``seconds``."""
        self.cluster(self._names[0]).source_answered(seconds)

    def state_loaded(self, snapshot, fetched_at):
        """The first cluster serves ``snapshot`` from the state file, fetched at ``fetched_at``."""
        self.cluster(self._names[0]).state_loaded(snapshot, fetched_at)

    # The site's request counter and the reloader's reports.

    def count_request(self, path, code):
        """
        Count one answered request.

        :param path: the request path (bytes, no query string).
        :param code: the HTTP status code sent.
        """
        self._requests.labels(PATH_LABELS.get(path, "other"), str(code)).inc()

    def config_loaded(self, config):
        """A configuration (at start, or by a reload) is now in effect: each cluster's
        interval; the series of clusters no longer there go."""
        clusters = config.cluster_configs()
        names = [name for name, _ in clusters]
        if not config.clusters and len(self._names) == 1 and self._names != names:
            # The one cluster of the single-cluster form renamed (cluster_name): its
            # poller and its numbers go on under the new name.
            (old,), (new,) = self._names, names
            if old in self._clusters:
                self._clusters[new] = self._clusters.pop(old)
                self._clusters[new].rename(new)
        for name in list(self._clusters):
            if name not in names:
                self._clusters.pop(name).forget()
        self._names = names
        for name, cluster_config in clusters:
            self.cluster(name).set_interval(cluster_config.interval)
        self._reload_ok.set(1)
        self._reload_at.set(self._clock.seconds())
        # A cluster the reload removed sends no token any more.
        for cluster in self._token_clusters - set(names):
            self.token_expiry(None, cluster)

    def token_expiry(self, exp, cluster):
        """Cluster ``cluster``'s token expires at ``exp`` (Unix time); None: no token, or no exp."""
        if exp is None:
            if cluster in self._token_clusters:
                self._token_clusters.discard(cluster)
                self._token_expiry.remove(cluster)
        else:
            self._token_clusters.add(cluster)
            self._token_expiry.labels(cluster).set(exp)

    def config_failed(self):
        """A reload found a bad configuration and kept the running one."""
        self._reload_ok.set(0)


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
        """The exposition (``/metrics/anything`` is 404: see :class:`GetResource`)."""
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return encoder(self._registry)
