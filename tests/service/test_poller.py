"""Tests for slurm_sd.service.poller: the poll loop."""
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import BadResponse, FetchError
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.observers import Observers
from slurm_sd.service.poller import Poller, PollerService
from tests.logged import log_lines

CONFIG = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\ninterval: 300\n"
               "jobs:\n  - node: {port: 9100}\n")


class ScriptedSource:
    """A node source whose answers the test scripts: bytes, exceptions or Deferreds."""

    where = "scripted"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def fetch_nodes(self):
        """The next scripted answer."""
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else b"default"
        if isinstance(answer, Exception):
            return defer.fail(answer)
        if isinstance(answer, defer.Deferred):
            return answer
        return defer.succeed(answer)


def fake_process(body, config):
    """A process step that makes a one-target snapshot named after ``body``."""
    if body == b"bad":
        return defer.fail(BadResponse("slurmrestd answered with a body that is not JSON"))
    if body == b"bug":
        return defer.fail(ZeroDivisionError("a bug"))
    groups = [{"targets": [body.decode() + ":9100"], "labels": {}}] if body else []
    return defer.succeed(render({"node": groups}, node_count=len(groups)))


class PollerTests(SynchronousTestCase):
    """Cadence, failure handling and caching of the poll loop."""

    def setUp(self):
        """A poller on a Clock with an empty cache."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.events = self.enterContext(capturedLogs())

    def poller(self, source, config=CONFIG):
        """A started poller reading ``source``."""
        poller = Poller(self.clock, source, fake_process, self.cache, config)
        poller.start()
        return poller

    def served(self):
        """The body the cache serves for job node."""
        return self.cache.snapshot.bodies["node"] if self.cache.snapshot else None

    def test_first_poll_at_once_then_every_interval(self):
        """The first poll runs at start; the next ones every interval."""
        source = ScriptedSource(b"a", b"b", b"c")
        self.poller(source)
        self.clock.advance(0)
        self.assertEqual(source.calls, 1)
        self.assertEqual(self.served(), b'[{"targets":["a:9100"],"labels":{}}]')
        self.clock.advance(299)
        self.assertEqual(source.calls, 1)
        self.clock.advance(1)
        self.assertEqual(source.calls, 2)
        self.assertIn(b"b:9100", self.served())

    def test_polls_never_overlap(self):
        """A slow poll delays the next one instead of running beside it."""
        slow = defer.Deferred()
        source = ScriptedSource(slow, b"b")
        self.poller(source)
        self.clock.advance(0)
        self.clock.advance(1000)
        self.assertEqual(source.calls, 1)
        slow.callback(b"a")
        self.clock.advance(299)
        self.assertEqual(source.calls, 1)
        self.clock.advance(1)
        self.assertEqual(source.calls, 2)

    def test_failure_keeps_last_good_data(self):
        """When a poll fails, the previous targets are still served."""
        source = ScriptedSource(b"a", FetchError("slurmrestd answered 500"), b"bad")
        self.poller(source)
        self.clock.advance(0)
        good = self.served()
        self.clock.advance(300)
        self.assertEqual(self.served(), good)
        self.clock.advance(5)
        self.assertEqual(source.calls, 3)
        self.assertEqual(self.served(), good)

    def test_backoff_doubles_and_caps_at_interval(self):
        """Retries come after 5, 10, 20, ... seconds, never later than interval."""
        source = ScriptedSource(*[FetchError("down")] * 9)
        self.poller(source)
        times = []
        for _ in range(9):
            self.clock.advance(self.cache.next_attempt_at - self.clock.seconds())
            times.append(self.clock.seconds())
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertEqual(gaps, [5, 10, 20, 40, 80, 160, 300, 300])

    def test_success_resets_backoff(self):
        """After a good poll, the next failure retries after 5 s again."""
        source = ScriptedSource(FetchError("x"), FetchError("x"), b"a", FetchError("x"))
        self.poller(source)
        self.clock.advance(0)
        self.clock.advance(5)
        self.clock.advance(10)
        self.assertIsNotNone(self.cache.snapshot)
        self.clock.advance(300)
        self.assertEqual(self.cache.next_attempt_at - self.clock.seconds(), 5)

    def test_failure_logged_in_one_line(self):
        """A failed poll logs one error line with the reason, the data kept and the retry."""
        source = ScriptedSource(b"a", FetchError("cannot connect to slurmrestd at x"))
        self.poller(source)
        self.clock.advance(0)
        self.clock.advance(300)
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn("poll failed: cannot connect to slurmrestd at x", line)
        self.assertIn("still serving the data from 300 s ago", line)
        self.assertIn("next try in 5 s", line)
        self.assertNotIn("\n", line)

    def test_unexpected_error_does_not_kill_loop(self):
        """A bug in processing is logged with its traceback and the loop goes on."""
        source = ScriptedSource(b"bug", b"a")
        self.poller(source)
        self.clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.clock.advance(5)
        self.assertIn(b"a:9100", self.served())

    def test_zero_nodes_is_data_with_warning(self):
        """A 200 with no nodes, once confirmed past the shrink guard, replaces the cache
        with [] and logs a warning."""
        source = ScriptedSource(b"a", b"", b"")
        self.poller(source)
        self.clock.advance(0)
        self.clock.advance(300)
        self.assertIn(b"a:9100", self.served())
        self.clock.advance(60)
        self.assertEqual(self.served(), b"[]")
        self.assertTrue(any("listed no nodes" in line
                            for line in log_lines(self.events, LogLevel.warn)))

    def test_retry_after_before_first_poll(self):
        """Before the first good poll, next_attempt_at tells when the next try is."""
        source = ScriptedSource(FetchError("x"))
        self.poller(source)
        self.clock.advance(0)
        self.assertIsNone(self.cache.snapshot)
        self.assertEqual(self.cache.retry_after(), 5)

    def test_service_stop_cancels(self):
        """Stopping the service cancels the poll under way and schedules nothing."""
        hanging = defer.Deferred()
        source = ScriptedSource(hanging)
        poller = Poller(self.clock, source, fake_process, self.cache, CONFIG)
        service = PollerService(poller)
        service.startService()
        self.clock.advance(0)
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1000)
        self.assertEqual(source.calls, 1)

    def test_reconfigure_polls_with_new_config(self):
        """A new config and source take effect at once."""
        source = ScriptedSource(b"a")
        poller = self.poller(source)
        self.clock.advance(0)
        other = ScriptedSource(b"z")
        poller.reconfigure(other, CONFIG)
        self.clock.advance(0)
        self.assertEqual(other.calls, 1)
        self.assertIn(b"z:9100", self.served())


class LastErrorTests(SynchronousTestCase):
    """``Poller.last_error`` and :class:`Observers`, for the status page."""

    def setUp(self):
        """A Clock and an empty cache."""
        self.clock = Clock()
        self.cache = TargetCache(self.clock)
        self.events = self.enterContext(capturedLogs())

    def test_last_error_line(self):
        """A failed poll keeps its one-line reason; a bug keeps only its type."""
        source = ScriptedSource(FetchError("slurmrestd answered 502"), b"bug")
        poller = Poller(self.clock, source, fake_process, self.cache, CONFIG)
        poller.start()
        self.assertIsNone(poller.last_error)
        self.clock.advance(0)
        self.assertEqual(poller.last_error, "slurmrestd answered 502")
        self.clock.advance(5)
        self.assertEqual(poller.last_error,
                         "unexpected ZeroDivisionError; the log has the traceback")
        self.flushLoggedErrors(ZeroDivisionError)

    def test_observers_told_in_order(self):
        """Observers passes each report to every observer, in the order added."""
        heard = []

        class Observer:
            """Records what it hears, under its name."""

            def __init__(self, name):
                self.name = name

            def poll_succeeded(self, snapshot, seconds):
                """A good poll."""
                heard.append((self.name, "ok"))

            def poll_failed(self, kind, seconds):
                """A failed poll."""
                heard.append((self.name, kind))

        observers = Observers(Observer("a"))
        observers.add(Observer("b"))
        poller = Poller(self.clock, ScriptedSource(b"x", FetchError("no")), fake_process,
                        self.cache, CONFIG, observer=observers)
        poller.start()
        self.clock.advance(0)
        self.clock.advance(300)
        self.assertEqual(heard, [("a", "ok"), ("b", "ok"), ("a", "FetchError"),
                                 ("b", "FetchError")])

    def test_observers_pass_any_report(self):
        """A report only some observers take reaches those, and no error is raised."""
        heard = []

        class Holder:
            """Takes only poll_held."""

            def poll_held(self, *args):
                """A held poll."""
                heard.append(args)

        observers = Observers(object(), Holder())
        observers.poll_held(3)
        self.assertEqual(heard, [(3,)])
        self.assertRaises(AttributeError, getattr, observers, "_private")
