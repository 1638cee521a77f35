"""Tests for slurm_sd.logs and the choice of log format: JSON lines instead of text."""
import io
import json

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.logs import json_line, json_observer

CONFIG = """
slurmrestd: {url: 'http://127.0.0.1:6820'}
logging: {format: %s}
jobs: [{node: {port: 9100}}]
"""


def event(**fields):
    """A log event as twisted.logger makes them, with ``fields`` added."""
    base = {"log_time": 1700000000.25, "log_level": LogLevel.info,
            "log_namespace": "slurm_sd.service.poller.Poller", "log_format": "poll of {where} ok",
            "where": "unix:/run/slurmrestd.sock"}
    base.update(fields)
    return base


class JSONLineTests(SynchronousTestCase):
    """json_line: one event, one line of JSON."""

    def test_fields(self):
        """A line has time, level, logger, the formatted message and the event's fields."""
        line = json_line(event(nodes=12, elapsed=0.5))
        self.assertTrue(line.endswith("\n"))
        self.assertEqual(json.loads(line), {
            "time": "2023-11-14T22:13:20.250Z", "level": "info",
            "logger": "slurm_sd.service.poller.Poller",
            "message": "poll of unix:/run/slurmrestd.sock ok",
            "where": "unix:/run/slurmrestd.sock", "nodes": 12, "elapsed": 0.5})

    def test_failure_is_one_line(self):
        """A failure's traceback goes in a field; the event is still one line."""
        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        line = json_line(event(log_failure=failure, log_level=LogLevel.critical))
        self.assertEqual(line.count("\n"), 1)
        decoded = json.loads(line)
        self.assertEqual(decoded["level"], "critical")
        self.assertIn("ZeroDivisionError", decoded["traceback"])

    def test_reserved_and_odd_values(self):
        """Event fields never replace the line's own keys; objects are left out,
        infinities written as text, and everything is ASCII."""
        line = json_line(event(message="spoof", level="spoof", obj=object(),
                               age=float("inf"), cluster="clüster"))
        decoded = json.loads(line)
        self.assertEqual((decoded["message"], decoded["level"]),
                         ("poll of unix:/run/slurmrestd.sock ok", "info"))
        self.assertNotIn("obj", decoded)
        self.assertEqual(decoded["age"], "inf")
        self.assertEqual(decoded["cluster"], "clüster")
        line.encode("ascii")

    def test_observer_writes_lines(self):
        """The observer writes one JSON line per event through a real Logger."""
        out = io.StringIO()
        log = Logger(namespace="slurm_sd.test", observer=json_observer(out))
        log.info("one {n}", n=1)
        log.error("two")
        lines = out.getvalue().splitlines()
        self.assertEqual([json.loads(l)["message"] for l in lines], ["one 1", "two"])
        self.assertEqual(json.loads(lines[1])["level"], "error")


class TwistdLoggerTests(SynchronousTestCase):
    """logging.format: json makes twistd log JSON through --logger, once per event."""

    def twistd_options(self, fmt, *extra):
        """twistd's own options parsed for ``slurm-sd`` with a config of format ``fmt``."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(CONFIG % (fmt,))
        options = ServerOptions()
        options.parseOptions(["-n", "--pidfile=", *extra, "slurm-sd", "--config", path])
        return options

    def test_json_replaces_text_observer(self):
        """With format json, twistd's logger (used instead of its text one) is ours."""
        options = self.twistd_options("json")
        self.assertIs(options["logger"], json_observer)

    def test_text_leaves_twistd_alone(self):
        """With format text, twistd keeps its own text observer."""
        self.assertIsNone(self.twistd_options("text")["logger"])

    def test_explicit_logger_wins(self):
        """An explicit --logger is not overridden by the config."""
        options = self.twistd_options("json", "--logger", "twisted.logger.textFileLogObserver")
        self.assertIsNot(options["logger"], json_observer)

    def test_explicit_logfile_wins(self):
        """An explicit --logfile keeps twistd's text log in that file."""
        self.assertIsNone(self.twistd_options("json", "--logfile", "/tmp/x.log")["logger"])


class AccessLogTests(SynchronousTestCase):
    """No access-log line per request unless logging.access_log is on."""

    def site_log(self, access_log):
        """What the site writes to its access log for two requests."""
        from twisted.web.resource import Resource

        from slurm_sd.web.site import QuietSite
        from tests.web.test_metrics_wiring import http_get
        site = QuietSite(Resource(), access_log=access_log)
        site.logFile = io.StringIO()
        http_get(site, b"/targets?prom_job=node")
        http_get(site, b"/-/ready")
        return site.logFile.getvalue()

    def test_off_by_default(self):
        """By default the site writes no access-log line."""
        self.assertEqual(self.site_log(False), "")

    def test_on_when_asked(self):
        """With access_log on, one combined-format line per request."""
        lines = self.site_log(True).splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn('"GET /targets?prom_job=node HTTP/1.1" 404', lines[0])
