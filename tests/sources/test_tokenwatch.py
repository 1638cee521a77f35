"""Tests for slurm_sd.sources.tokenwatch: the expiry metric and the warnings."""
import jwt
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.sources.tokenwatch import TokenWatch, duration_text
from slurm_sd.web.metrics import Metrics

DAY = 86400


def make_jwt(exp, n=0):
    """An HS256 JWT expiring at ``exp``."""
    return jwt.encode({"exp": exp, "n": n}, b"k" * 32, algorithm="HS256")


class TokenWatchTests(SynchronousTestCase):
    """TokenWatch tells the metrics each token's exp and warns once per token."""

    def setUp(self):
        """A clock at t=10^9, metrics and a watch feeding them, a log observer."""
        self.clock = Clock()
        self.clock.advance(10 ** 9)
        config = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
                       "jobs: [{node: {port: 9100}}]\n")
        self.metrics = Metrics(self.clock, config, process_metrics=False)
        self.watch = TokenWatch(self.clock, observer=self.metrics, cluster="hpc1")
        self.events = self.enterContext(capturedLogs())

    def gauge(self):
        """The value of slurm_sd_token_expiry_timestamp_seconds, or None when absent."""
        return self.metrics.registry.get_sample_value(
            "slurm_sd_token_expiry_timestamp_seconds", {"cluster": "hpc1"})

    def warnings(self):
        """The warning lines logged."""
        return [formatEvent(e) for e in self.events if e["log_level"].name == "warn"]

    def test_gauge_follows_token(self):
        """The gauge is the exp of the token last seen; absent for no token or no exp."""
        self.assertIsNone(self.gauge())
        self.watch.seen(make_jwt(10 ** 9 + 7 * DAY), "slurmrestd.token_file")
        self.assertEqual(self.gauge(), 10 ** 9 + 7 * DAY)
        self.watch.seen("not-a-jwt", "slurmrestd.token_file")
        self.assertIsNone(self.gauge())
        self.watch.seen(make_jwt(10 ** 9 + 9 * DAY), "--token")
        self.assertEqual(self.gauge(), 10 ** 9 + 9 * DAY)
        self.watch.seen(None, None)
        self.assertIsNone(self.gauge())
        self.assertEqual(self.warnings(), [])

    def test_one_series_per_cluster(self):
        """Each cluster's watch sets its own series; a cluster with no token has none."""
        other = TokenWatch(self.clock, observer=self.metrics, cluster="hpc2")
        self.watch.seen(make_jwt(10 ** 9 + 7 * DAY), "--token")
        other.seen(make_jwt(10 ** 9 + 8 * DAY), "slurmrestd.token_file")
        self.assertEqual(self.gauge(), 10 ** 9 + 7 * DAY)
        self.assertEqual(self.metrics.registry.get_sample_value(
            "slurm_sd_token_expiry_timestamp_seconds", {"cluster": "hpc2"}), 10 ** 9 + 8 * DAY)
        other.seen(None, None)
        self.assertIsNone(self.metrics.registry.get_sample_value(
            "slurm_sd_token_expiry_timestamp_seconds", {"cluster": "hpc2"}))
        self.assertEqual(self.gauge(), 10 ** 9 + 7 * DAY)

    def test_removed_cluster_series_dropped(self):
        """A reload without the cluster drops its series."""
        self.watch.seen(make_jwt(10 ** 9 + 7 * DAY), "--token")
        self.metrics.config_loaded(parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
                                         "cluster_name: hpc1\njobs: [{node: {port: 1}}]\n"))
        self.assertEqual(self.gauge(), 10 ** 9 + 7 * DAY)
        self.metrics.config_loaded(parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
                                         "cluster_name: hpc2\njobs: [{node: {port: 1}}]\n"))
        self.assertIsNone(self.gauge())

    def test_static_token_warned_once_within_a_day(self):
        """A token that cannot be renewed and expires within a day: one warning, once."""
        token = make_jwt(10 ** 9 + 3 * 3600)
        for _ in range(3):
            self.watch.seen(token, "slurmrestd.token_file")
        [line] = self.warnings()
        self.assertIn("the slurmrestd token from slurmrestd.token_file expires in 3.0 h "
                      "(at 2001-09-09T04:46:40Z)", line)
        self.assertNotIn(token, line)
        self.watch.seen(make_jwt(10 ** 9 + 3600, n=1), "slurmrestd.token_file")
        self.assertEqual(len(self.warnings()), 2)

    def test_expired_token_warned(self):
        """An expired token: one warning saying slurmrestd will refuse it."""
        self.watch.seen(make_jwt(10 ** 9 - 300), "SLURM_JWT")
        self.watch.seen(make_jwt(10 ** 9 - 300), "SLURM_JWT")
        [line] = self.warnings()
        self.assertIn("from SLURM_JWT expired 5 min ago", line)
        self.assertIn("slurmrestd will refuse it", line)

    def test_renewing_origin_quiet(self):
        """A renewed token with more than token_renew_before left is not warned about;
        one that expires sooner (renewed before every poll) or has expired is."""
        self.watch.seen(make_jwt(10 ** 9 + 1800), "slurmrestd.token_command", 600)
        self.assertEqual(self.warnings(), [])
        self.watch.seen(make_jwt(10 ** 9 + 300), "slurmrestd.token_command", 600)
        self.watch.seen(make_jwt(10 ** 9 - 1), "slurmrestd.token_command", 600)
        first, second = self.warnings()
        self.assertIn("slurmrestd.token_command gave a token that expires in 5 min", first)
        self.assertIn("sooner than slurmrestd.token_renew_before (600 s)", first)
        self.assertIn("expired 1 s ago", second)

    def test_duration_text(self):
        """Durations read naturally."""
        self.assertEqual([duration_text(s) for s in (40, 720, 3 * 3600, 3 * DAY, -90)],
                         ["40 s", "12 min", "3.0 h", "3.0 d", "90 s"])
