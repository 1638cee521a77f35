"""Tests for the shrink guard (max_node_drop) and the source's answer time, on a Clock."""
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.config.summary import summary
from slurm_sd.errors import ConfigError, SourceTimeout
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.guard import ShrinkGuard
from slurm_sd.service.poller import Poller
from slurm_sd.web.metrics import Metrics
from tests.logged import log_lines
from tests.service.test_poller import ScriptedSource


def config(extra="", interval=300):
    """A one-job config with ``extra`` top-level lines."""
    return parse(f"slurmrestd: {{url: 'http://127.0.0.1:6820', timeout: 100}}\n"
                 f"interval: {interval}\n{extra}jobs:\n  - node: {{port: 9100}}\n")


def nodes_process(body, config):
    """A process step whose body is the node count, as ASCII digits."""
    count = int(body)
    groups = [{"targets": [f"n{i}:9100" for i in range(count)], "labels": {}}] if count else []
    return defer.succeed(render({"node": groups}, node_count=count))


class SlowSource(ScriptedSource):
    """Answers after ``delay`` seconds of the test's Clock."""

    def __init__(self, clock, delay, *answers):
        ScriptedSource.__init__(self, *answers)
        self.clock = clock
        self.delay = delay

    def fetch_nodes(self):
        """The next answer, ``delay`` seconds from now."""
        d = ScriptedSource.fetch_nodes(self)
        later = defer.Deferred()
        self.clock.callLater(self.delay, d.chainDeferred, later)
        return later


class GuardTests(SynchronousTestCase):
    """A sudden drop is held back once and served when the next poll agrees."""

    def setUp(self):
        """A Clock, a cache, metrics and a log catcher."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.events = self.enterContext(capturedLogs())

    def start(self, *answers, cfg=None):
        """A started poller reading ``answers`` (node counts as bytes)."""
        cfg = cfg or config()
        self.metrics = Metrics(self.clock, cfg, process_metrics=False)
        self.source = ScriptedSource(*answers)
        poller = Poller(self.clock, self.source, nodes_process, self.cache, cfg,
                        observer=self.metrics)
        poller.start()
        self.clock.advance(0)
        self.addCleanup(poller.stop)
        return poller

    def served(self):
        """The node count being served."""
        return self.cache.snapshot.nodes

    def held(self):
        """slurm_sd_polls_held_total as exported."""
        return {s.name: s.value for family in self.metrics.registry.collect()
                for s in family.samples}["slurm_sd_polls_held_total"]

    def test_drop_held_once_then_served(self):
        """100 -> 10 nodes: held (one warning, counted), retried within 60 s, and served
        when the retry agrees."""
        self.start(b"100", b"10", b"10")
        self.assertEqual(self.held(), 0)
        self.clock.advance(300)
        self.assertEqual(self.served(), 100)
        self.assertEqual(self.held(), 1)
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertIn("returned 10 nodes, fewer than 50% of the 100 served", line)
        self.assertEqual(self.source.calls, 2)
        self.clock.advance(59.9)
        self.assertEqual(self.source.calls, 2)
        self.clock.advance(0.1)
        self.assertEqual(self.source.calls, 3)
        self.assertEqual(self.served(), 10)
        self.assertEqual(self.held(), 1)
        self.assertIn("agrees with the one held back", log_lines(self.events, LogLevel.warn)[-1])

    def test_zero_is_a_drop(self):
        """A poll with zero nodes is held back like any other drop."""
        self.start(b"8", b"0")
        self.clock.advance(300)
        self.assertEqual(self.served(), 8)
        self.assertEqual(self.held(), 1)

    def test_recovery_ends_the_hold(self):
        """A held drop followed by a full poll serves the full one and starts over."""
        self.start(b"100", b"10", b"100", b"10")
        self.clock.advance(300)
        self.clock.advance(60)
        self.assertEqual(self.served(), 100)
        self.clock.advance(300)
        self.assertEqual(self.served(), 100)
        self.assertEqual(self.held(), 2)

    def test_small_drop_passes(self):
        """A drop to exactly half (the default 0.5) is served at once."""
        self.start(b"100", b"50")
        self.clock.advance(300)
        self.assertEqual(self.served(), 50)
        self.assertEqual(self.held(), 0)

    def test_one_turns_it_off(self):
        """max_node_drop: 1 serves a drop to zero at once."""
        self.start(b"100", b"0", cfg=config("max_node_drop: 1\n"))
        self.clock.advance(300)
        self.assertEqual(self.served(), 0)

    def test_zero_holds_any_drop(self):
        """max_node_drop: 0 holds back even one node less."""
        self.start(b"100", b"99", cfg=config("max_node_drop: 0\n"))
        self.clock.advance(300)
        self.assertEqual(self.served(), 100)

    def test_retry_is_interval_when_shorter(self):
        """With an interval under 60 s the retry after a hold comes after the interval."""
        self.start(b"100", b"1", b"1", cfg=config(interval=20))
        self.clock.advance(20)
        self.assertEqual(self.served(), 100)
        self.clock.advance(20)
        self.assertEqual(self.served(), 1)

    def test_failure_between_keeps_the_hold(self):
        """A failed poll between two low polls does not restart the count."""
        self.start(b"100", b"10", SourceTimeout("x"), b"10")
        self.clock.advance(300)
        self.clock.advance(60)
        self.assertEqual(self.served(), 100)
        self.clock.advance(5)
        self.assertEqual(self.served(), 10)

    def test_unit(self):
        """Before any data everything is allowed; served 0 allows 0."""
        guard = ShrinkGuard()
        self.assertTrue(guard.allows(None, 0, 0.5))
        self.assertTrue(guard.allows(0, 0, 0.5))
        self.assertFalse(guard.allows(2, 0, 0.5))
        self.assertTrue(guard.allows(2, 0, 0.5))


class NewKeysConfigTests(SynchronousTestCase):
    """The max_node_drop and state_file keys, and the timeout's default."""

    def test_defaults(self):
        """max_node_drop is 0.5, state_file none, slurmrestd.timeout 180 s."""
        cfg = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\njobs: [{node: {port: 1}}]\n")
        self.assertEqual((cfg.max_node_drop, cfg.state_file, cfg.slurmrestd.timeout),
                         (0.5, None, 180.0))

    def test_state_file_relative_to_config(self):
        """A relative state_file is taken from the config file's directory."""
        cfg = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\nstate_file: state\n"
                    "jobs: [{node: {port: 1}}]\n", "/etc/slurm-sd/config.yaml")
        self.assertEqual(cfg.state_file, "/etc/slurm-sd/state")

    def test_check_summary(self):
        """slurm-sd check's summary names the state file and the guard's setting."""
        lines, _ = summary(config("state_file: /var/lib/slurm-sd/state\nmax_node_drop: 1\n"),
                           {})
        self.assertIn("state_file: /var/lib/slurm-sd/state; max_node_drop 1 (shrink guard off)",
                      lines)
        self.assertIn("state_file: none; max_node_drop 0.5", summary(config(), {})[0])

    def test_state_file_not_a_string(self):
        """A state_file that is not a string is one line naming the key."""
        with self.assertRaises(ConfigError) as caught:
            config("state_file: [a]\n")
        self.assertIn("state_file: must be a string", str(caught.exception))

    def test_out_of_range(self):
        """Values outside 0..1 are one line naming the key."""
        for bad in ("1.5", "-0.1", "yes", "'half'"):
            with self.assertRaises(ConfigError) as caught:
                config(f"max_node_drop: {bad}\n")
            self.assertIn("max_node_drop:", str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))


class SourceTimeTests(SynchronousTestCase):
    """The source's answer time: a metric, a warning near the timeout, and in time-outs."""

    def setUp(self):
        """A Clock, a cache and a log catcher."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.events = self.enterContext(capturedLogs())

    def start(self, source):
        """A started poller with metrics on ``source``; process takes no clock time."""
        self.metrics = Metrics(self.clock, config(), process_metrics=False)
        poller = Poller(self.clock, source, nodes_process, self.cache, config(),
                        observer=self.metrics)
        poller.start()
        self.clock.advance(0)
        self.addCleanup(poller.stop)
        return poller

    def exported(self):
        """slurm_sd_source_duration_seconds, or None."""
        return {s.name: s.value for family in self.metrics.registry.collect()
                for s in family.samples}.get("slurm_sd_source_duration_seconds")

    def test_metric(self):
        """The metric is the source's time alone, absent before the first answer."""
        self.start(SlowSource(self.clock, 12.5, b"3"))
        self.assertIsNone(self.exported())
        self.clock.advance(12.5)
        self.assertEqual(self.exported(), 12.5)
        self.assertEqual(log_lines(self.events, LogLevel.warn), [])

    def test_warning_past_eighty_percent(self):
        """An answer after more than 80 % of slurmrestd.timeout logs one warning naming the key."""
        self.start(SlowSource(self.clock, 81, b"3"))
        self.clock.advance(81)
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertIn("took 81.0 s to answer, over 80% of slurmrestd.timeout (100 s): "
                      "raise slurmrestd.timeout", line)

    def test_timeout_line_says_last_answer_time(self):
        """A time-out's line says how long the last good answer took."""
        self.start(SlowSource(self.clock, 42, b"3", SourceTimeout("slurmrestd at x did not "
                                                                  "answer within 100 s")))
        self.clock.advance(42)
        self.clock.advance(300)
        self.clock.advance(42)
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn("did not answer within 100 s (its last good answer took 42.0 s)", line)

    def test_first_timeout(self):
        """A time-out before any good answer says there is none to compare."""
        self.start(ScriptedSource(SourceTimeout("did not answer within 100 s")))
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn("(no earlier answer to compare)", line)
        polls = {(s.name, s.labels.get("result")): s.value
                 for family in self.metrics.registry.collect() for s in family.samples}
        self.assertEqual(polls[("slurm_sd_polls_total", "fetch_error")], 1)
