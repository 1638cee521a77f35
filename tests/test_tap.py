"""Tests for slurm_sd.tap and the twistd plugin: the wiring, without twistd."""
import io
import json
import os
import sys

from twisted.application.service import IServiceMaker
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.plugin import IPlugin, getPlugins
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd import __version__
from slurm_sd.tap import (
    DESCRIPTION,
    TAPNAME,
    ListeningService,
    Options,
    build_service,
    makeService,
)
from tests.fakes import SAMPLES

GOOD = """
slurmrestd:
  url: unix:/run/slurmrestd/slurmrestd.socket
  api_version: v0.0.38
listen: tcp:9911:interface=127.0.0.1
jobs:
  - node: {port: 9100}
"""


def opener_for(files):
    """An ``open`` replacement serving ``files`` (path -> text)."""
    def opener(path, encoding=None):
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return io.StringIO(files[path])
    return opener


def parse(argv, files=None):
    """Options parsed from ``argv`` with ``files`` as the file system."""
    options = Options(opener=opener_for(files or {"/etc/slurm-sd/config.yaml": GOOD}))
    options.parseOptions(argv)
    return options


class OptionsTests(SynchronousTestCase):
    """Command-line parsing and the config file."""

    def test_default_config_path(self):
        """Without --config, /etc/slurm-sd/config.yaml is read."""
        self.assertEqual(parse([]).config.listen, "tcp:9911:interface=127.0.0.1")

    def test_overrides(self):
        """Command-line options override the file's values."""
        options = parse(["--interval", "30", "--api-version", "v0.0.40", "--user", "slurm",
                         "--listen", "unix:/run/sd.sock", "--slurmrestd", "http://127.0.0.1:6820"])
        config = options.config
        self.assertEqual((config.interval, config.slurmrestd.api_version, config.slurmrestd.user,
                          config.listen, config.slurmrestd.url),
                         (30.0, "v0.0.40", "slurm", "unix:/run/sd.sock", "http://127.0.0.1:6820"))

    def test_token_not_in_repr(self):
        """A --token never shows in the config's repr (and so in no log line)."""
        options = parse(["--token", "s3cret"])
        self.assertEqual(options.config.slurmrestd.token, "s3cret")
        self.assertNotIn("s3cret", repr(options.config))

    def test_bad_file_one_line(self):
        """A bad config file ends start-up with one line naming file and key path."""
        files = {"/c.yaml": GOOD.replace("port: 9100", "port: 99999")}
        with self.assertRaises(SystemExit) as caught:
            parse(["--config", "/c.yaml"], files)
        self.assertEqual(str(caught.exception.code),
                         "slurm-sd: /c.yaml: jobs[0].node.port: must be from 1 to 65535, got 99999")

    def test_missing_file(self):
        """A missing config file is one line naming it."""
        with self.assertRaises(SystemExit) as caught:
            parse(["--config", "/nope.yaml"], {})
        self.assertIn("/nope.yaml: cannot read the configuration", str(caught.exception.code))

    def test_bad_option_value(self):
        """A bad option value names the option."""
        with self.assertRaises(SystemExit) as caught:
            parse(["--interval", "soon"])
        self.assertIn("--interval: must be a number of seconds", str(caught.exception.code))

    def test_unknown_option(self):
        """An unknown option is one line too."""
        with self.assertRaises(SystemExit) as caught:
            parse(["--bogus"])
        self.assertIn("bogus", str(caught.exception.code))
        self.assertNotIn("\n", str(caught.exception.code))


class ServiceTests(SynchronousTestCase):
    """makeService on a MemoryReactor."""

    def test_listens_and_polls(self):
        """Starting the service listens on the endpoint and starts the first poll."""
        reactor = MemoryReactorClock()
        service = build_service(reactor, parse([]).config, environ={})
        service.startService()
        self.addCleanup(service.stopService)
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (9911, "127.0.0.1"))
        reactor.advance(0)
        [(path, *_)] = reactor.unixClients
        self.assertEqual(path, "/run/slurmrestd/slurmrestd.socket")

    def test_unix_listen(self):
        """A unix: listen endpoint listens on that socket."""
        reactor = MemoryReactorClock()
        service = build_service(reactor, parse(["--listen", "unix:/run/sd.sock"]).config,
                                environ={})
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(reactor.unixServers[0][0], "/run/sd.sock")

    def test_bad_listen(self):
        """A listen string that is not an endpoint is one line naming the key."""
        with self.assertRaises(SystemExit) as caught:
            build_service(MemoryReactorClock(), parse(["--listen", "carrier-pigeon:7"]).config)
        self.assertIn("listen: bad endpoint 'carrier-pigeon:7'", str(caught.exception.code))

    def test_file_source_serves_targets(self):
        """With a file: source, one clock step fills /targets from the saved node list."""
        from treq.testing import StubTreq

        from slurm_sd.web.site import make_root
        config = parse(["--slurmrestd", "file:" + SAMPLES + "/slurm-22.05-v0.0.38-nodes.json"]).config
        reactor = MemoryReactorClock()
        service = build_service(reactor, config, environ={})
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0)
        http = StubTreq(make_root(service.cache, service.poller))
        response = self.successResultOf(http.get("http://sd/targets?prom_job=node"))
        groups = json.loads(self.successResultOf(response.content()))
        targets = sorted(t for group in groups for t in group["targets"])
        self.assertIn("127.0.0.1:9100", targets)
        self.assertEqual({g["labels"]["__meta_prom_job"] for g in groups}, {"node"})


class PluginTests(SynchronousTestCase):
    """The twistd dropin."""

    def test_plugin(self):
        """twistd finds a slurm-sd IServiceMaker whose options are ours."""
        makers = [p for p in getPlugins(IServiceMaker) if p.tapname == "slurm-sd"]
        self.assertEqual(len(makers), 1)
        self.assertTrue(IPlugin.providedBy(makers[0]))
        self.assertIs(makers[0].options, Options)
        self.assertIs(makers[0].makeService.__func__ if hasattr(makers[0].makeService, "__func__")
                      else makers[0].makeService, makeService)

    def test_plugin_matches_serve(self):
        """The dropin and ``slurm-sd serve`` describe the same command."""
        [maker] = [p for p in getPlugins(IServiceMaker) if p.tapname == "slurm-sd"]
        self.assertEqual((maker.tapname, maker.description), (TAPNAME, DESCRIPTION))


class _RefusingEndpoint:
    """A server endpoint whose port is taken."""

    def listen(self, factory):
        """Fail as a taken TCP port does."""
        return defer.fail(CannotListenError("127.0.0.1", 8080, OSError(98, "Address already in use")))


class ListeningTests(SynchronousTestCase):
    """A port that cannot be listened on ends the daemon, even before the reactor runs."""

    def test_taken_port_stops_once_running(self):
        """twistd listens before the reactor runs: the stop is scheduled for when it
        runs (a stop() before run() is ignored), exit status 1 after shutdown, one line."""
        reactor = MemoryReactorClock()
        service = ListeningService(reactor, "tcp:8080", _RefusingEndpoint(), object())
        with capturedLogs() as events:
            service.privilegedStartService()
        self.assertFalse(reactor.hasStopped)
        reactor.run()
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(reactor.triggers["after"]["shutdown"], [(os._exit, (1,), {})])
        lines = [formatEvent(event) for event in events]
        self.assertEqual(lines, ["cannot listen on tcp:8080: Couldn't listen on "
                                 "127.0.0.1:8080: [Errno 98] Address already in use."])


    def test_taken_port_polls_nothing(self):
        """The daemon that cannot listen starts no poll: the fatal line is the last."""
        reactor = MemoryReactorClock()
        service = build_service(reactor, parse([]).config, environ={})
        [listening] = [s for s in service if isinstance(s, ListeningService)]
        listening.endpoint = _RefusingEndpoint()
        with capturedLogs() as events:
            service.privilegedStartService()
            service.startService()
            reactor.advance(0)
        self.addCleanup(service.stopService)
        self.assertEqual(reactor.unixClients, [], "no poll of slurmrestd")
        self.assertEqual([formatEvent(e) for e in events if e["log_level"].name != "debug"
                          ][-1:], ["cannot listen on tcp:9911:interface=127.0.0.1: Couldn't "
                                   "listen on 127.0.0.1:8080: [Errno 98] Address already "
                                   "in use."])


class VersionTests(SynchronousTestCase):
    """``twistd slurm-sd --version``."""

    def test_version(self):
        """--version prints slurm-sd's version and exits 0 without reading a config."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        with self.assertRaises(SystemExit) as caught:
            Options(opener=opener_for({})).parseOptions(["--version"])
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(out.getvalue(), f"slurm-sd {__version__}\n")
