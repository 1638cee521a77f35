"""
The poll loop against the stand-in slurmrestd: odd nodes are served leniently, and the
loop itself survives a run of faults (tests/sources/faultcase.py, on the in-memory wire).
"""

from twisted.logger import LogLevel

from slurm_sd.service import poller as poller_module
from tests.answers import BreakOff, Reply, Silent, response
from tests.fakes import captured
from tests.sources.faultcase import GOOD, NEWER, FaultTestCase
from tests.standin import nodes_body


class OddNodeTests(FaultTestCase):
    """Nodes with missing or odd fields: the usable ones are served, never a failure."""

    def test_odd_fields(self):
        """Odd nodes are read leniently, unusable ones skipped and counted in one line."""
        self.make_poller()
        nodes = [
            {"name": "ok01", "address": "10.0.0.1", "partitions": ["batch"],
             "state": "idle", "state_flags": []},
            {"address": "10.0.0.2", "partitions": ["batch"]},                # no name
            {"name": None, "address": "10.0.0.3"},                          # null name
            {"name": "nopart", "address": "10.0.0.4"},                      # no partitions
            {"name": "nulls", "address": None, "hostname": None, "partitions": None,
             "state": None, "state_flags": None, "features": None,
             "architecture": None, "reason": None, "gres": None},
            {"name": "weird", "address": "10.0.0.6", "partitions": ["batch"],
             "state": ["SLEEPING", "HIBERNATING"], "features": 42,
             "active_features": {"gpu": True}},
            {"name": "odd", "address": "10.0.0.7", "partitions": "batch,gpu",
             "state": "idle", "state_flags": ["DRAIN", 5, None, "?"],
             "features": ["gpu", 3, None]},
            {"name": "ok01", "address": "10.9.9.9", "partitions": ["evil"]},  # duplicate
            "not-a-node", None, [],
        ]
        self.standin.nodes = Reply(response(200, nodes_body(nodes)))
        mark = self.mark()
        self.poll()
        self.assertEqual(self.cache.snapshot.nodes, 5)
        self.assertEqual(self.cache.snapshot.skipped, 6)
        lines = self.since(mark, LogLevel.info)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("6 nodes skipped", lines[0])
        groups = self.served()
        targets = {t for g in groups for t in g["targets"]}
        self.assertEqual(targets, {"10.0.0.1:9100", "10.0.0.4:9100", "nulls:9100",
                                   "10.0.0.6:9100", "10.0.0.7:9100"})
        states = {(tuple(g["targets"]), g["labels"].get("__meta_slurm_partition"),
                   g["labels"]["__meta_slurm_node_state"]) for g in groups}
        # An unknown word in the base-state slot is the unknown state; later
        # unknown words are kept as flags (decode's rule).
        self.assertIn((("10.0.0.6:9100",), "batch", "unknown+hibernating"), states)
        self.assertIn((("10.0.0.7:9100",), "gpu", "idle+drain"), states)
        self.assertIn((("10.0.0.4:9100", "nulls:9100"), None, "unknown"), states)
        self.assertNotIn("evil", {p for _, p, _ in states})


class LoopTests(FaultTestCase):
    """The real poll loop, started as the daemon starts it, on the stand-in's clock."""

    def test_loop_survives_faults_and_recovers(self):
        """Through a run of failures the loop keeps retrying and picks up good data again."""
        self.patch(poller_module, "RETRY_BASE", 0.05)
        poller = self.make_poller(interval=0.1)
        self.addCleanup(poller.stop)
        self.standin.answers = [
            Reply(response(200, GOOD)), Silent(),
            Reply(captured("slurm-24.11-v0.0.40-nodes-slurmctld-down.http")),
            BreakOff(response(200, NEWER), 500), Reply(response(200, b""))]
        self.standin.nodes = Reply(response(200, NEWER))
        poller.start()

        def recovered():
            snapshot = self.cache.snapshot
            return snapshot is not None and b"mixed+drain" in snapshot.bodies["node"]
        self.run_clock(recovered)
        errors = self.since(0, LogLevel.error)
        self.assertEqual(len(errors), 4, errors)
