"""
twistd wiring: ``twistd -n --pidfile= slurm-sd --config PATH [options]``, or
``slurm-sd serve --config PATH [options]`` (:func:`run_foreground`).

Only :func:`makeService` touches the global reactor; :func:`build_service`
takes one, so tests run the whole daemon on a ``MemoryReactor``.
"""
import os
import signal

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service, ServiceMaker
from twisted.internet import defer, threads
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions, runApp

from slurm_sd._version import __version__
from slurm_sd.config.load import DEFAULT_CONFIG_PATH, OVERRIDES, load
from slurm_sd.config.model import DEFAULT_CLUSTER
from slurm_sd.errors import ConfigError, SecretFileError
from slurm_sd.pipeline.runner import make_pipeline
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.clusters import Cluster, ClusterSet
from slurm_sd.service.observers import Observers
from slurm_sd.service.poller import Poller
from slurm_sd.service.reload import Reloader, ReloadService
from slurm_sd.service.state import StateFile
from slurm_sd.sources.choose import make_source
from slurm_sd.sources.tokenwatch import TokenWatch
from slurm_sd.web.auth import protect
from slurm_sd.web.metrics import Metrics, MetricsResource
from slurm_sd.web.site import QuietSite, make_root
from slurm_sd.web.status import StatusPage
from slurm_sd.web.tls import wrap as tls_wrap
from slurm_sd.web.webauth import UsersAuth, thread_runner
from slurm_sd.web.webfiles import WebConfigFiles

log = Logger()


class Options(usage.Options):
    """Command-line options; every one but --config overrides the file."""

    optParameters = [
        ["config", "c", DEFAULT_CONFIG_PATH, "The YAML configuration file."],
        ["slurmrestd", None, None, "slurmrestd URL (http://HOST:PORT, unix:/PATH, file:/PATH)."],
        ["api-version", None, None, "Slurm REST API version (auto, v0.0.40, ...)."],
        ["user", None, None, "Slurm user name sent as X-SLURM-USER-NAME."],
        ["token-file", None, None, "File holding the JWT sent as X-SLURM-USER-TOKEN."],
        ["token", None, None, "The JWT itself (discouraged: visible in ps)."],
        ["listen", None, None, "Server endpoint string, e.g. tcp:8080:interface=127.0.0.1."],
        ["interval", None, None, "Seconds between polls."],
    ]

    def __init__(self, opener=open):
        usage.Options.__init__(self)
        self._opener = opener
        self.config = None

    def opt_version(self):
        """Print slurm-sd's version and exit."""
        print(f"slurm-sd {__version__}")
        raise SystemExit(0)

    def parseOptions(self, options=None):
        """
        Parse, and end the process with one line on any error.

        twistd would print its whole help before a UsageError's line; an
        operator reading a supervisord log wants the one line only.
        """
        try:
            usage.Options.parseOptions(self, options)
        except usage.UsageError as error:
            raise SystemExit(f"slurm-sd: {error}")

    def postOptions(self):
        """Load and check the configuration file and the overrides."""
        try:
            self.config = self.load_config()
        except ConfigError as error:
            raise usage.UsageError(str(error))
        self._choose_log_format(getattr(self, "parent", None))

    def _choose_log_format(self, twistd_options):
        """
        With ``logging.format: json``, have twistd log through
        :func:`slurm_sd.logs.json_observer` *instead of* its text observer.

        twistd reads its ``logger`` option after this runs (its own
        postOptions comes after ours); explicit ``--logger``, ``--logfile``
        or ``--syslog`` options win.
        """
        if self.config.logging.format != "json" or twistd_options is None:
            return
        if (twistd_options.get("logger") is None and not twistd_options.get("syslog")
                and twistd_options.get("logfile") in (None, "", "-")):
            twistd_options["logger"] = "slurm_sd.logs.json_observer"

    def load_config(self):
        """
        Read the configuration file again, with the same command-line overrides
        (what a SIGHUP reload uses).

        :raises ConfigError: when it is bad.
        """
        overrides = {name: self[name] for name in OVERRIDES}
        return load(self["config"], overrides, opener=self._opener)


def build_service(reactor, config, environ=None, load_config=None, signals=signal):
    """
    The daemon as a MultiService: the poller plus the web server, and a SIGHUP
    reload when ``load_config`` is given.

    :param reactor: provides IReactorTime and whatever ``config.listen`` needs
        (and ``callFromThread``, for reloads).
    :param load_config: optional; no arguments, returns the configuration
        read again (see :meth:`Options.load_config`).
    :param signals: the ``signal`` module, or a stand-in for tests.
    """
    for warning in config.warnings:
        log.warn("{remark}", remark=warning)
    metrics = Metrics(reactor, config)
    watches = {}

    def token_watch(name):
        """Cluster ``name``'s TokenWatch, kept across reloads (token expiry, warnings)."""
        if name not in watches:
            watches[name] = TokenWatch(reactor, observer=metrics, cluster=name)
        return watches[name]

    clusters = ClusterSet(config)
    status = StatusPage(reactor, clusters)
    # One state file for every cluster; each entry is one cluster's.
    state = StateFile(in_thread(reactor), names=clusters.names)

    def make_cluster(name, cluster_config, several):
        """One cluster's pipeline: source, worker, poll loop and cache (SPEC 10)."""
        cache = TargetCache(reactor)
        pipeline = make_pipeline(reactor)
        observers = Observers(metrics.cluster(name))
        poller = Poller(reactor, make_source(reactor, cluster_config, environ,
                                             token_watch(name)),
                        pipeline.process, cache, cluster_config, observer=observers,
                        cluster=name if several else None, state=state)
        observers.add(status.watch(poller))
        return Cluster(name, cache, poller, pipeline)

    for name, cluster_config in config.cluster_configs():
        clusters.add(make_cluster(name, cluster_config, bool(config.clusters)))
    root = make_root(clusters, clusters,
                     extra={b"metrics": MetricsResource(metrics.registry)}, status=status)
    web_files = None
    try:
        if config.web_config_file is not None:
            web_files = WebConfigFiles(config.web_config_file)
            root = UsersAuth(root, web_files, thread_runner(reactor))
        else:
            root = protect(root, clusters)   # http_auth
    except ConfigError as error:
        raise SystemExit(f"slurm-sd: {config.source}: web_config_file: {error}")
    except SecretFileError as error:
        raise SystemExit(f"slurm-sd: {config.source}: {error}")
    # The injected reactor, not the global one, keeps the connections' timeouts.
    site = QuietSite(root, access_log=config.logging.access_log,
                     count_request=metrics.count_request, reactor=reactor)
    listening = site
    if web_files is not None and web_files.context is not None:
        listening = tls_wrap(site, web_files.current_context)
    try:
        endpoint = serverFromString(reactor, config.listen)
    except Exception as error:
        # Also OSError and OpenSSL errors: ssl: reads its key and certificate here.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise SystemExit(f"slurm-sd: {config.source}: listen: bad endpoint "
                         f"{config.listen!r}: {reason}")
    top = MultiService()
    clusters.setServiceParent(top)
    # A daemon that cannot listen polls nothing: no poll line after the fatal one.
    ListeningService(reactor, config.listen, endpoint, listening,
                     on_failure=clusters.disownServiceParent).setServiceParent(top)
    if load_config is not None:
        reloader = Reloader(load_config, clusters,
                            lambda new: make_source(
                                reactor, new, environ,
                                token_watch(new.cluster_name or DEFAULT_CLUSTER)),
                            site, metrics,
                            make_cluster=make_cluster, auth=root)
        ReloadService(reactor, reloader.reload, signals).setServiceParent(top)
        top.reloader = reloader
    top.clusters = clusters
    # The first cluster's, which is the only one in the single-cluster form.
    top.poller = clusters.clusters()[0].poller
    top.cache = clusters.clusters()[0].cache
    top.metrics = metrics
    top.status = status
    top.site = site
    return top


def in_thread(reactor):
    """
    ``run(f, *args) -> Deferred``: in the reactor's thread pool, or at once
    where there is none (``MemoryReactor`` in tests).
    """
    if IReactorThreads.providedBy(reactor):
        return lambda f, *args: threads.deferToThreadPool(reactor, reactor.getThreadPool(),
                                                          f, *args)
    return lambda f, *args: defer.maybeDeferred(f, *args)


class ListeningService(StreamServerEndpointService):
    """Listens on the configured endpoint; failing to is fatal, in one line."""

    def __init__(self, reactor, description, endpoint, factory, on_failure=None):
        StreamServerEndpointService.__init__(self, endpoint, factory)
        self._reactor = reactor
        self._description = description
        #: Called when listening fails (the daemon stops its polls before they start).
        self._on_failure = on_failure

    def privilegedStartService(self):
        """Start listening; on failure log one line and exit with status 1."""
        # Not the parent's: it would log the failure as a traceback and go on.
        Service.privilegedStartService(self)
        self._waitingForPort = self.endpoint.listen(self.factory)
        self._waitingForPort.addCallbacks(self._listening, self._cannot_listen)

    def _listening(self, port):
        """Say where we listen."""
        log.info("serving /targets on {listen}", listen=self._description)
        return port

    def _cannot_listen(self, failure):
        """A daemon that cannot listen is useless: stop, exit status 1."""
        log.critical("cannot listen on {listen}: {reason}", listen=self._description,
                     reason=failure.getErrorMessage())
        if self._on_failure is not None:
            self._on_failure()
        # twistd has no exit-status hook; leave after the reactor has shut down.
        self._reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        # twistd listens before the reactor runs, when stop() would be ignored.
        self._reactor.callWhenRunning(self._reactor.stop)


#: What the twistd plugin (twisted/plugins/slurm_sd_plugin.py) registers.
TAPNAME = "slurm-sd"
DESCRIPTION = "Prometheus HTTP service discovery for Slurm"


class _ForegroundOptions(ServerOptions):
    """twistd's options with slurm-sd as the only command, found without a plugin scan."""

    @property
    def subCommands(self):
        """slurm-sd, the way twistd lists a plugin."""
        maker = ServiceMaker(TAPNAME, __name__, DESCRIPTION, TAPNAME)
        self.loadedPlugins = {TAPNAME: maker}
        yield TAPNAME, None, maker.options, DESCRIPTION


def run_foreground(argv):
    """
    ``slurm-sd serve [options]``: what ``twistd -n --pidfile= slurm-sd [options]``
    does, in the foreground and with no pid file; returns when the daemon stops.
    """
    options = _ForegroundOptions()
    try:
        options.parseOptions(["--nodaemon", "--pidfile=", TAPNAME, *argv])
    except usage.UsageError as error:
        raise SystemExit(f"slurm-sd serve: {error}")
    runApp(options)


def makeService(options):
    """The twistd entry point: the daemon on the global reactor."""
    from twisted.internet import reactor
    return build_service(reactor, options.config, load_config=options.load_config)
