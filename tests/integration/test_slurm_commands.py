"""
slurm-sd (``twistd -n --pidfile= slurm-sd``) against the real Slurm 22.05 test cluster
with no slurmrestd in the way: ``command:sinfo --json`` (which prints the
``/slurm/v0.0.38/nodes/`` body on 22.05) serves what slurmrestd serves, and
``scontrol:`` (22.05's scontrol has no ``--json``) fails with the line that says to
use ``command:sinfo --json``.  The daemon gets ``SLURM_CONF``; munge authenticates it.
"""
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import shared, slurm_cluster, support
from tests.integration.test_slurm import CLUSTER, INTERVAL, _DaemonAgainstCluster


def testSuite():
    """trial's hook: this module's tests, with the cluster stopped after the last one."""
    return shared.module_suite(__name__, CLUSTER)


class _WithSlurmConf:
    """Mixin: the daemon runs Slurm's commands, so it gets the cluster's SLURM_CONF."""

    api_version = "auto"

    def environment(self):
        """``SLURM_CONF`` of the test cluster (``sinfo`` must be on PATH)."""
        support.require(("sinfo",), root=True)
        return {"SLURM_CONF": self.cluster.conf}


class SinfoCommandTests(_WithSlurmConf, _DaemonAgainstCluster, SynchronousTestCase):
    """``url: command:sinfo --json``: the same targets as through slurmrestd."""

    def config(self):
        """No slurmrestd, no token: sinfo run by the daemon."""
        return {"url": "command:sinfo --json"}

    def test_targets_match_cluster(self):
        """/targets lists what slurmrestd's node list says, in the same layout."""
        served = self.wait_until_matches(lambda served: self.assert_state(
            served, slurm_cluster.REAL_NODE, "active", "idle"))
        self.assert_layout(served)
        log = self.daemon.log_text()
        self.assertIn("poll of command `sinfo --json` ok", log)

    def test_drain_and_down_show_on_next_poll(self):
        """After scontrol drains cpu01 and downs gpu02, the next polls show both."""
        served = self.drain_and_down("cpu01", "gpu02")
        self.assert_state(served, "cpu01", "drain", "idle+drain")
        self.assert_layout(served)


class ScontrolOn2205Tests(_WithSlurmConf, _DaemonAgainstCluster, SynchronousTestCase):
    """``url: scontrol:`` on 22.05: each poll fails with the line to use sinfo instead."""

    wait = "listening"

    def config(self):
        """scontrol from PATH."""
        return {"url": "scontrol:"}

    def test_says_to_use_sinfo(self):
        """The failed poll's log line quotes scontrol and says to use command:sinfo --json;
        /targets answers 503 (no data yet)."""
        def logged():
            text = self.daemon.log_text()
            if "poll failed" not in text:
                raise support.NotReady("no failed poll logged yet")
            return text
        log = support.wait_for(logged, 6 * INTERVAL, "a failed poll in the log")
        line = [line for line in log.splitlines() if "poll failed" in line][0]
        self.assertIn("command `scontrol show nodes --json` failed (exit status 1): this "
                      "scontrol has no --json for show nodes (Slurm 22.05 or older); use "
                      "slurmrestd.url: 'command:sinfo --json' there; it said: scontrol: "
                      "unrecognized option '--json'", line)
        status, _, _ = self.daemon.get("/targets?prom_job=node")
        self.assertEqual(503, status)
        self.assertNotIn(os.environ.get("SLURM_JWT", "\0"), log)
