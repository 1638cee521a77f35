"""
Reloading the configuration on SIGHUP.

:class:`Reloader` re-reads the file (with the same command-line overrides as
at start), and either applies it to the running poller, site and metrics, or
logs one line and keeps the running configuration. :class:`ReloadService`
installs the SIGHUP handler while the daemon runs; the handler only hands the
work to the reactor thread (``callFromThread``, as twistd's own SIGUSR1 log
rotation does), so nothing runs inside the signal handler itself.

``listen`` and ``logging.format`` are bound when the daemon starts: a reload
that changes them says that a restart is needed and keeps the running values.
"""
import signal

import attr
from twisted.application.service import Service
from twisted.logger import Logger

from slurm_sd.config import ConfigError

#: Settings a reload cannot apply to a running daemon (dotted key path).
RESTART_ONLY = ("listen", "logging.format")


def _show(value):
    """A setting's value as written in a log line."""
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        value = sorted(value)
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _settings(config):
    """``{dotted key: value}`` of everything but the jobs; the token as a flag."""
    out = {}
    for name in ("url", "api_version", "user", "token_file", "timeout",
                 "max_response_bytes"):
        out[f"slurmrestd.{name}"] = getattr(config.slurmrestd, name)
    out["slurmrestd.token"] = "(set)" if config.slurmrestd.token else None
    for name in ("interval", "cluster_name", "listen", "target_address"):
        out[name] = getattr(config, name)
    auth = config.http_auth
    for name in ("username", "password_file", "bearer_token_file"):
        out[f"http_auth.{name}"] = getattr(auth, name) if auth is not None else None
    out["logging.format"] = config.logging.format
    out["logging.access_log"] = config.logging.access_log
    return out


_JOB_FIELDS = ("port", "partitions", "features", "exclude_states", "scheme",
               "metrics_path", "params", "labels", "group_by")


def describe_changes(old, new):
    """
    What differs between two configurations, as short phrases for one log line
    (``interval 300 -> 60``, ``job ipmi added``, ``job dcgm: port 9400 -> 9401``).
    The token's value is never shown.
    """
    changes = []
    before, after = _settings(old), _settings(new)
    for key, value in after.items():
        if before[key] != value:
            if key == "slurmrestd.token":
                changes.append("slurmrestd.token changed")
            else:
                changes.append(f"{key} {_show(before[key])} -> {_show(value)}")
    old_jobs = {job.name: job for job in old.jobs}
    new_jobs = {job.name: job for job in new.jobs}
    for name in new_jobs:
        if name not in old_jobs:
            changes.append(f"job {name} added (port {new_jobs[name].port})")
    for name in old_jobs:
        if name not in new_jobs:
            changes.append(f"job {name} removed")
    for name, job in new_jobs.items():
        was = old_jobs.get(name)
        if was is None or was == job:
            continue
        fields = [f"{field} {_show(getattr(was, field))} -> {_show(getattr(job, field))}"
                  for field in _JOB_FIELDS if getattr(was, field) != getattr(job, field)]
        changes.append(f"job {name}: " + ", ".join(fields))
    kept = [job.name for job in old.jobs if job.name in new_jobs]
    if kept != [job.name for job in new.jobs if job.name in old_jobs]:
        changes.append("job order changed")
    return changes


class Reloader:
    """
    Loads the configuration again and applies it to the running daemon.

    :param load_config: no arguments; returns a new
        :class:`~slurm_sd.config.Config` or raises ``ConfigError``.
    :param poller: the :class:`~slurm_sd.poller.Poller`; its ``config`` is the
        configuration in effect (the web resources read it on every request).
    :param make_source: ``make_source(config)``, a new fetch step for a
        changed ``slurmrestd`` section.
    :param site: the :class:`~slurm_sd.web.QuietSite` (its ``access_log``).
    :param metrics: the :class:`~slurm_sd.metrics.Metrics`, or None.
    """

    log = Logger()

    def __init__(self, load_config, poller, make_source, site, metrics=None):
        self._load_config = load_config
        self._poller = poller
        self._make_source = make_source
        self._site = site
        self._metrics = metrics

    def reload(self):
        """
        Load and apply the configuration; never raises.

        :return: the configuration in effect afterwards (the old one when the
            new one is bad).
        """
        old = self._poller.config
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
            before, after = _settings(old)[key], _settings(new)[key]
            if before != after:
                self.log.warn("configuration reload: {key} {after} needs a restart of "
                              "slurm-sd; keeping {before} until then", key=key,
                              before=_show(before), after=_show(after))
        new = attr.evolve(new, listen=old.listen,
                          logging=attr.evolve(new.logging, format=old.logging.format))
        for warning in new.warnings:
            self.log.warn("{remark}", remark=warning)
        changes = describe_changes(old, new)
        source = self._poller.source
        if new.slurmrestd != old.slurmrestd:
            source = self._make_source(new)
        self._poller.reconfigure(source, new)
        self._site.access_log = new.logging.access_log
        if self._metrics is not None:
            self._metrics.config_loaded(new)
        self.log.info("configuration reloaded from {source}: {changes}", source=new.source,
                      changes="; ".join(changes) if changes else "nothing changed")
        return new

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
