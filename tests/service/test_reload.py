"""Tests for slurm_sd.service.reload: SIGHUP reloads, without real signals."""
import io
import json
import signal

import attr
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import ConfigError
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.changes import describe_changes
from slurm_sd.service.clusters import ClusterSet
from slurm_sd.service.poller import Poller
from slurm_sd.service.reload import Reloader, ReloadService
from slurm_sd.tap import Options, build_service
from slurm_sd.web.metrics import Metrics
from slurm_sd.web.site import QuietSite, make_root
from tests.fakes import SAMPLES
from tests.logged import log_lines
from tests.service.test_poller import ScriptedSource, fake_process

BASE = """
slurmrestd: {url: 'http://127.0.0.1:6820'}
interval: 300
listen: tcp:8080:interface=127.0.0.1
jobs:
  - node: {port: 9100}
  - dcgm: {port: 9400, partitions: [gpu]}
"""


def config(text=BASE, **replace):
    """``text`` parsed, with ``old: new`` string replacements applied first."""
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse(text, source="/etc/slurm-sd/config.yaml")


class FakeSignals:
    """Stands in for the ``signal`` module: records handlers, sends nothing."""

    SIGHUP = signal.SIGHUP

    def __init__(self):
        self.handlers = {signal.SIGHUP: signal.SIG_DFL}

    def signal(self, number, handler):
        """Install ``handler``; return the previous one."""
        previous = self.handlers.get(number)
        self.handlers[number] = handler
        return previous

    def send(self, number):
        """Call the handler as the interpreter would on a signal."""
        self.handlers[number](number, None)


class ThreadCallReactor(MemoryReactorClock):
    """A MemoryReactorClock that queues ``callFromThread`` calls until told to run them."""

    def __init__(self):
        super().__init__()
        self.from_thread = []

    def callFromThread(self, f, *args, **kwargs):
        """Queue ``f``; the reactor loop would run it soon."""
        self.from_thread.append((f, args, kwargs))

    def run_thread_calls(self):
        """Run what ``callFromThread`` queued."""
        calls, self.from_thread = self.from_thread, []
        for f, args, kwargs in calls:
            f(*args, **kwargs)


class DescribeChangesTests(SynchronousTestCase):
    """The one-line summary of what a reload changed."""

    def test_nothing(self):
        """Identical configurations have no changes."""
        self.assertEqual(describe_changes(config(), config()), [])

    def test_settings_and_jobs(self):
        """Changed settings, added, removed and changed jobs are each named."""
        new = config(**{"interval: 300": "interval: 60",
                        "port: 9400, partitions: [gpu]": "port: 9401, partitions: [gpu, a100]",
                        "  - node: {port: 9100}\n": "  - ipmi: {port: 9290}\n"})
        self.assertEqual(describe_changes(config(), new), [
            "interval 300 -> 60",
            "job ipmi added (port 9290)",
            "job node removed",
            "job dcgm: port 9400 -> 9401, partitions [gpu] -> [gpu, a100]",
        ])

    def test_token_value_never_shown(self):
        """A changed --token is reported without its value."""
        old = config()
        new = attr.evolve(old, slurmrestd=attr.evolve(old.slurmrestd, token="s3cret-jwt"))
        changes = describe_changes(old, new)
        self.assertEqual(changes, ["slurmrestd.token changed"])
        self.assertNotIn("s3cret", repr(changes))

    def test_job_order(self):
        """Reordering jobs (which orders the all-jobs answer) is reported."""
        new = config(BASE.replace("  - node: {port: 9100}\n", "") + "  - node: {port: 9100}\n")
        self.assertEqual(describe_changes(config(), new), ["job order changed"])


class ReloaderTests(SynchronousTestCase):
    """Reloader on a real Poller over a Clock."""

    def setUp(self):
        """A started poller that has polled once, and a reloader reading ``self.next``."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.source = ScriptedSource(b"a", b"b", b"c")
        self.metrics = Metrics(self.clock, config(), process_metrics=False)
        self.poller = Poller(self.clock, self.source, fake_process, self.cache, config(),
                             observer=self.metrics)
        self.poller.start()
        self.clock.advance(0)
        self.site = QuietSite(make_root(self.cache, self.poller))
        self.made = []
        self.next = config()
        self.events = self.enterContext(capturedLogs())
        self.reloader = Reloader(self.load, ClusterSet.of_one(self.cache, self.poller),
                                 self.make_source, self.site, self.metrics)

    def load(self):
        """The 'file' as it is now: ``self.next``, raised if it is an error."""
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def make_source(self, new):
        """A new scripted source, recorded."""
        source = ScriptedSource(b"z")
        self.made.append((new, source))
        return source

    def test_good_reload_applies_and_polls(self):
        """A good new config is in effect at once and a poll with it starts at once."""
        self.next = config(**{"interval: 300": "interval: 60",
                              "  - node: {port: 9100}\n": "  - ipmi: {port: 9290}\n"})
        self.reloader.reload()
        self.assertEqual([job.name for job in self.poller.config.jobs], ["ipmi", "dcgm"])
        self.assertEqual(self.poller.config.interval, 60)
        self.clock.advance(0)
        self.assertEqual(self.source.calls, 2)
        self.clock.advance(59)
        self.assertEqual(self.source.calls, 2)
        self.clock.advance(1)
        self.assertEqual(self.source.calls, 3)
        self.assertEqual(self.made, [], "slurmrestd unchanged: the source is kept")

    def test_logs_what_changed_in_one_line(self):
        """A reload logs one info line naming the file and what changed."""
        self.next = config(**{"interval: 300": "interval: 60"})
        self.reloader.reload()
        [line] = [l for l in log_lines(self.events, LogLevel.info) if "reloaded" in l]
        self.assertEqual(line, "configuration reloaded from /etc/slurm-sd/config.yaml: "
                               "interval 300 -> 60")

    def test_unchanged_reload_says_so(self):
        """A reload of an unchanged file says nothing changed."""
        self.reloader.reload()
        self.assertIn("configuration reloaded from /etc/slurm-sd/config.yaml: nothing changed",
                      log_lines(self.events, LogLevel.info))

    def test_new_slurmrestd_new_source(self):
        """A changed slurmrestd section gets a new source, used by the next poll."""
        self.next = config(**{"127.0.0.1:6820": "127.0.0.2:6820"})
        self.reloader.reload()
        [(new, source)] = self.made
        self.assertEqual(new.slurmrestd.url, "http://127.0.0.2:6820")
        self.clock.advance(0)
        self.assertEqual(source.calls, 1)
        self.assertIn(b"z:9100", self.cache.snapshot.bodies["node"])

    def test_bad_config_keeps_running_one(self):
        """A bad new config is logged in one line and the running one stays."""
        running = self.poller.config
        self.next = ConfigError("/etc/slurm-sd/config.yaml", "jobs[0].node.port",
                                "must be from 1 to 65535, got 0")
        self.assertIs(self.reloader.reload(), running)
        self.assertIs(self.poller.config, running)
        [line] = log_lines(self.events, LogLevel.error)
        self.assertEqual(line, "configuration reload failed, still running the previous "
                               "configuration: /etc/slurm-sd/config.yaml: jobs[0].node.port: "
                               "must be from 1 to 65535, got 0")
        self.assertEqual(self.metrics.registry.get_sample_value(
            "slurm_sd_config_last_reload_successful"), 0)
        self.clock.advance(0)
        self.assertEqual(self.source.calls, 1, "no extra poll for a failed reload")

    def test_unexpected_error_keeps_running_one(self):
        """A bug while loading is logged with its traceback and the running config stays."""
        running = self.poller.config
        self.next = ZeroDivisionError("a bug")
        self.assertIs(self.reloader.reload(), running)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_listen_needs_restart(self):
        """A new listen address is not applied: a warning says a restart is needed."""
        self.next = config(**{"tcp:8080:interface=127.0.0.1": "tcp:9090",
                              "interval: 300": "interval: 60"})
        self.reloader.reload()
        self.assertEqual(self.poller.config.listen, "tcp:8080:interface=127.0.0.1")
        self.assertEqual(self.poller.config.interval, 60)
        [warning] = log_lines(self.events, LogLevel.warn)
        self.assertEqual(warning, "configuration reload: listen tcp:9090 needs a restart of "
                                  "slurm-sd; keeping tcp:8080:interface=127.0.0.1 until then")

    def test_access_log_applied(self):
        """logging.access_log takes effect at once."""
        self.next = config(BASE + "logging: {access_log: true}\n")
        self.reloader.reload()
        self.assertTrue(self.site.access_log)

    def test_port_collision_warned(self):
        """A new config with two jobs on one port logs the warning."""
        self.next = config(**{"port: 9400": "port: 9100"})
        self.reloader.reload()
        self.assertTrue(any("9100 is also the port of job 'node'" in line
                            for line in log_lines(self.events, LogLevel.warn)))

    def test_metrics_follow(self):
        """The metrics show the new interval after a reload."""
        self.next = config(**{"interval: 300": "interval: 60"})
        self.reloader.reload()
        self.assertEqual(self.metrics.registry.get_sample_value(
            "slurm_sd_poll_interval_seconds", {"cluster": "default"}), 60)


class PollerReconfigureTests(SynchronousTestCase):
    """Poller.reconfigure while a poll is under way."""

    def test_repoll_after_running_poll(self):
        """A reconfigure during a poll starts another poll as soon as that one ends."""
        from twisted.internet import defer
        clock = Clock()
        slow = defer.Deferred()
        source = ScriptedSource(slow, b"b")
        poller = Poller(clock, source, fake_process, TargetCache(clock), config())
        poller.start()
        clock.advance(0)
        poller.reconfigure(source, config(**{"interval: 300": "interval: 60"}))
        clock.advance(0)
        self.assertEqual(source.calls, 1, "polls never overlap")
        slow.callback(b"a")
        clock.advance(0)
        self.assertEqual(source.calls, 2)
        clock.advance(60)
        self.assertEqual(source.calls, 3)


class ReloadServiceTests(SynchronousTestCase):
    """The SIGHUP handler."""

    def test_handler_schedules_reload_on_reactor(self):
        """SIGHUP only queues the reload for the reactor; it runs from there."""
        reactor = ThreadCallReactor()
        signals = FakeSignals()
        reloads = []
        service = ReloadService(reactor, lambda: reloads.append(1), signals)
        service.startService()
        signals.send(signal.SIGHUP)
        self.assertEqual(reloads, [])
        reactor.run_thread_calls()
        self.assertEqual(reloads, [1])

    def test_stop_restores_previous_handler(self):
        """Stopping the service puts the previous SIGHUP handler back."""
        signals = FakeSignals()
        service = ReloadService(ThreadCallReactor(), lambda: None, signals)
        service.startService()
        self.assertIsNot(signals.handlers[signal.SIGHUP], signal.SIG_DFL)
        service.stopService()
        self.assertIs(signals.handlers[signal.SIGHUP], signal.SIG_DFL)


class DaemonReloadTests(SynchronousTestCase):
    """SIGHUP through the daemon as makeService builds it."""

    def test_sighup_adds_a_job(self):
        """After an edit and a SIGHUP, /targets serves the new job from the file's data."""
        path = "/etc/slurm-sd/config.yaml"
        text = ("slurmrestd: {url: 'file:%s/slurm-22.05-v0.0.38-nodes.json'}\n"
                "jobs:\n  - node: {port: 9100}\n" % (SAMPLES,))
        files = {path: text}
        options = Options(opener=lambda p, encoding=None: io.StringIO(files[p]))
        options.parseOptions(["--config", path, "--listen", "tcp:9911"])
        reactor = ThreadCallReactor()
        signals = FakeSignals()
        service = build_service(reactor, options.config, environ={},
                                load_config=options.load_config, signals=signals)
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0)
        http = StubTreq(make_root(service.cache, service.poller))
        response = self.successResultOf(http.get("http://sd/targets?prom_job=ipmi"))
        self.assertEqual(response.code, 404)

        files[path] = text + "  - ipmi: {port: 9290}\n"
        signals.send(signal.SIGHUP)
        reactor.run_thread_calls()
        reactor.advance(0)
        response = self.successResultOf(http.get("http://sd/targets?prom_job=ipmi"))
        self.assertEqual(response.code, 200)
        groups = json.loads(self.successResultOf(response.content()))
        self.assertTrue(all(t.endswith(":9290") for g in groups for t in g["targets"]))
        self.assertEqual(service.poller.config.listen, "tcp:9911",
                         "command-line overrides still apply after a reload")
