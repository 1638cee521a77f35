"""
One cluster's poll series in the self-metrics: :class:`ClusterMetrics`, the observer
of that cluster's poller, writing to :class:`~slurm_sd.web.metrics.Metrics`' families
with the ``cluster`` label.
"""
import re

#: Every value of ``slurm_sd_polls_total``'s ``result`` label, exported from the
#: start (at 0) so that ``increase()`` sees the first one; ``internal`` is any
#: failure not named here (a bug).
POLL_RESULTS = ("success", "fetch_error", "response_too_large", "bad_response",
                "worker_error", "internal")

#: The ``result`` values of the poll duration histogram.
DURATION_RESULTS = ("success", "failure")

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def result_label(kind):
    """
    ``FetchError`` -> ``fetch_error``: the poller's failure kind as one of
    :data:`POLL_RESULTS` (``internal`` for a kind not declared there).
    """
    label = _CAMEL.sub("_", kind).lower()
    return label if label in POLL_RESULTS else "internal"


#: The series kept per cluster (label ``cluster``: its name, ``default`` in the
#: single-cluster form without ``cluster_name``).
CLUSTER_METRICS = ("slurm_sd_polls", "slurm_sd_poll_duration_seconds",
                   "slurm_sd_last_success_timestamp_seconds", "slurm_sd_data_age_seconds",
                   "slurm_sd_poll_interval_seconds", "slurm_sd_nodes",
                   "slurm_sd_nodes_skipped", "slurm_sd_targets", "slurm_sd_polls_held",
                   "slurm_sd_source_duration_seconds",
                   "slurm_sd_token_expiry_timestamp_seconds")


class ClusterMetrics:
    """
    One cluster's poll series: the observer of its poller.

    :param metrics: the :class:`Metrics` whose metric families it writes to.
    :param clock: an ``IReactorTime``.
    :param name: the ``cluster`` label's value.
    """

    def __init__(self, metrics, clock, name):
        self._metrics = metrics
        self._clock = clock
        self._last_success = None
        self._jobs = ()
        self._interval = None
        self.name = None
        self.rename(name)

    def rename(self, name):
        """Export this cluster's numbers under ``name`` from now on."""
        if self.name is not None:
            self.forget()
        self.name = name
        m = self._metrics
        for result in POLL_RESULTS:
            m.polls.labels(name, result)
        for result in DURATION_RESULTS:
            m.durations.labels(name, result)
        m.data_age.labels(name).set_function(self._data_age)
        m.held.labels(name)
        if self._interval is not None:
            m.interval.labels(name).set(self._interval)
        m.last_success_at.labels(name).set(self._last_success or 0)

    def forget(self):
        """Export none of this cluster's series any more (removed, or renamed)."""
        m, name = self._metrics, self.name
        for family in (m.last_success_at, m.data_age, m.interval, m.nodes, m.skipped,
                       m.held, m.source_duration):
            _remove(family, name)
        for result in POLL_RESULTS:
            _remove(m.polls, name, result)
        for result in DURATION_RESULTS:
            _remove(m.durations, name, result)
        for job in self._jobs:
            _remove(m.targets, name, job)

    def set_interval(self, seconds):
        """The cluster polls every ``seconds``."""
        self._interval = seconds
        self._metrics.interval.labels(self.name).set(seconds)

    def _data_age(self):
        """Seconds since the last good poll, as of the scrape; +Inf before it."""
        if self._last_success is None:
            return float("inf")
        return self._clock.seconds() - self._last_success

    def poll_succeeded(self, snapshot, seconds):
        """A poll replaced the cache with ``snapshot`` after ``seconds``."""
        m, name = self._metrics, self.name
        m.polls.labels(name, "success").inc()
        m.durations.labels(name, "success").observe(seconds)
        self._serving(snapshot, self._clock.seconds())

    def state_loaded(self, snapshot, fetched_at):
        """``snapshot``, read back from the state file, fetched at ``fetched_at``, is served."""
        self._serving(snapshot, fetched_at)

    def poll_held(self):
        """The shrink guard held a poll back."""
        self._metrics.held.labels(self.name).inc()

    def source_answered(self, seconds):
        """The source gave its answer after ``seconds`` (before decode)."""
        self._metrics.source_duration.labels(self.name).set(seconds)

    def _serving(self, snapshot, fetched_at):
        """The series of the data now served, fetched at ``fetched_at``."""
        m, name = self._metrics, self.name
        self._last_success = fetched_at
        m.last_success_at.labels(name).set(self._last_success)
        m.nodes.labels(name).set(snapshot.nodes)
        m.skipped.labels(name).set(snapshot.skipped)
        # A job gone from the snapshot (removed by a reload) is no longer exported.
        for job in self._jobs:
            if job not in snapshot.targets:
                _remove(m.targets, name, job)
        for job, count in snapshot.targets.items():
            m.targets.labels(name, job).set(count)
        self._jobs = tuple(snapshot.targets)

    def poll_failed(self, kind, seconds):
        """A poll failed with error class ``kind`` (or ``internal``) after ``seconds``."""
        self._metrics.polls.labels(self.name, result_label(kind)).inc()
        self._metrics.durations.labels(self.name, "failure").observe(seconds)


def _remove(family, *labels):
    """Drop the series of ``labels`` from ``family``, if it has one."""
    try:
        family.remove(*labels)
    except KeyError:
        pass
