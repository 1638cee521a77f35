"""
Reloading the configuration on SIGHUP.

:class:`Reloader` re-reads the file (with the same command-line overrides as
at start), and either applies it to the running poller, site and metrics, or
logs one line and keeps the running configuration. :class:`ReloadService`
installs the SIGHUP handler while the daemon runs; the handler only hands the
work to the reactor thread (``callFromThread``, as twistd's own SIGUSR1 log
rotation does), so nothing runs inside the signal handler itself.

``listen``, ``logging.format`` and ``web_config_file`` are bound when the
daemon starts: a reload that changes them says that a restart is needed and
keeps the running values (the web configuration file itself is re-read
whenever it changes: :mod:`slurm_sd.web.webfiles`).
"""
import signal

import attr
from twisted.application.service import Service
from twisted.logger import Logger

from slurm_sd.errors import ConfigError
from slurm_sd.service.changes import describe_changes, settings, show

#: Settings a reload cannot apply to a running daemon (dotted key path).
RESTART_ONLY = ("listen", "logging.format", "web_config_file")


class Reloader:
    """
    Loads the configuration again and applies it to the running daemon.

    :param load_config: no arguments; returns a new
        :class:`~slurm_sd.config.model.Config` or raises ``ConfigError``.
    :param clusters: the :class:`~slurm_sd.service.clusters.ClusterSet`; its
        ``config`` is the configuration in effect (the web resources read it on
        every request), each cluster's poller has its own part of it.
    :param make_source: ``make_source(config)``, a new fetch step for a
        changed ``slurmrestd`` section.
    :param site: the :class:`~slurm_sd.web.site.QuietSite` (its ``access_log``).
    :param metrics: the :class:`~slurm_sd.web.metrics.Metrics`, or None.
    :param make_cluster: ``make_cluster(name, config, several)``, a new
        :class:`~slurm_sd.service.clusters.Cluster` for a cluster a reload adds.
    :param auth: None, or has ``config_loaded(config)``: the web authentication,
        which reads its secret files again there, at the reload itself.
    """

    log = Logger()

    def __init__(self, load_config, clusters, make_source, site, metrics=None,
                 make_cluster=None, auth=None):
        self._load_config = load_config
        self._clusters = clusters
        self._make_source = make_source
        self._site = site
        self._metrics = metrics
        self._make_cluster = make_cluster
        self._auth = auth

    def reload(self):
        """
        Load and apply the configuration; never raises.

        :return: the configuration in effect afterwards (the old one when the
            new one is bad).
        """
        old = self._clusters.config
        try:
            new = self._load_config()
        except ConfigError as error:
            self.log.error("configuration reload failed, still running the previous "
                           "configuration: {error}", error=str(error))
            return self._failed(old)
        except Exception:
            self.log.failure("configuration reload failed unexpectedly, still running "
                             "the previous configuration")
            return self._failed(old)
        for key in RESTART_ONLY:
            before, after = settings(old)[key], settings(new)[key]
            if before != after:
                self.log.warn("configuration reload: {key} {after} needs a restart of "
                              "slurm-sd; keeping {before} until then", key=key,
                              before=show(before), after=show(after))
        # Switching between http_auth and web_config_file waits for the restart too:
        # until then the running authentication stays.
        http_auth = (old.http_auth if new.web_config_file != old.web_config_file
                     else new.http_auth)
        new = attr.evolve(new, listen=old.listen, web_config_file=old.web_config_file,
                          http_auth=http_auth,
                          logging=attr.evolve(new.logging, format=old.logging.format))
        for warning in new.warnings:
            self.log.warn("{remark}", remark=warning)
        changes = describe_changes(old, new)
        self._apply(old, new)
        self._site.access_log = new.logging.access_log
        if self._auth is not None:
            self._auth.config_loaded(new)
        if self._metrics is not None:
            self._metrics.config_loaded(new)
        self.log.info("configuration reloaded from {source}: {changes}", source=new.source,
                      changes="; ".join(changes) if changes else "nothing changed")
        return new

    def _apply(self, old, new):
        """Give each cluster its part of ``new``: clusters no longer there stop, new
        ones start, the others poll soon with their new settings (and source)."""
        clusters = self._clusters
        wanted = dict(new.cluster_configs())
        if not old.clusters and not new.clusters:
            # The one cluster of the single-cluster form: renamed, never restarted.
            (name, _), = old.cluster_configs()
            (new_name, _), = wanted.items()
            clusters.rename(name, new_name)
        for name in clusters.names():
            if name not in wanted:
                clusters.remove(name)
        for name, cluster_config in wanted.items():
            cluster = clusters.get(name)
            if cluster is None:
                clusters.add(self._make_cluster(name, cluster_config, bool(new.clusters)))
                continue
            source = cluster.poller.source
            if cluster_config.slurmrestd != cluster.poller.config.slurmrestd:
                source = self._make_source(cluster_config)
            cluster.poller.reconfigure(source, cluster_config)
        clusters.reorder(list(wanted))
        clusters.config = new

    def _failed(self, old):
        """Record a failed reload; the old config stays."""
        if self._metrics is not None:
            self._metrics.config_failed()
        return old


class ReloadService(Service):
    """
    Reloads on SIGHUP while running; the previous handler is restored on stop.

    :param reactor: provides ``callFromThread``; the reload runs there.
    :param reload: no arguments, e.g. :meth:`Reloader.reload`.
    :param signals: the ``signal`` module, or a stand-in with ``signal(num,
        handler) -> previous`` for tests.
    """

    def __init__(self, reactor, reload, signals=signal):
        self._reactor = reactor
        self._reload = reload
        self._signals = signals
        self._previous = None

    def startService(self):
        """Install the SIGHUP handler."""
        Service.startService(self)
        self._previous = self._signals.signal(self._signals.SIGHUP, self._on_signal)

    def stopService(self):
        """Put the previous SIGHUP handler back."""
        Service.stopService(self)
        if self._previous is not None:
            self._signals.signal(self._signals.SIGHUP, self._previous)
            self._previous = None

    def _on_signal(self, signum, frame):
        """The signal handler: only schedule the reload on the reactor."""
        self._reactor.callFromThread(self._reload)
