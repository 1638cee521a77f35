"""Tests for slurm_sd.pipeline.render's page data: nodes per state, targets per partition."""
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.pipeline.nodes import Node
from slurm_sd.pipeline.render import (
    count_partitions,
    count_states,
    merge_snapshots,
    render,
)
from slurm_sd.slurm import STATE_CLASSES


class CountStatesTests(SynchronousTestCase):
    """``count_states``."""

    def test_every_class(self):
        """Nodes are counted by coarse class; classes with no node are 0."""
        nodes = [Node("a", state="idle"), Node("b", state="mixed", flags=("drain",)),
                 Node("c", state="idle", flags=("not_responding",)), Node("d", state="idle"),
                 Node("e", state="future")]
        self.assertEqual(count_states(nodes), {"active": 2, "drain": 1, "down": 1,
                                               "powered_down": 0, "unknown": 1})
        self.assertEqual(list(count_states([])), list(STATE_CLASSES))


class CountPartitionsTests(SynchronousTestCase):
    """``count_partitions`` and what ``render`` keeps."""

    def test_partition_groups(self):
        """Targets add up per partition label; groups without one count under ""."""
        groups = [{"targets": ["a:1", "b:1"], "labels": {"__meta_slurm_partition": "p"}},
                  {"targets": ["c:1"], "labels": {"__meta_slurm_partition": "p"}},
                  {"targets": ["d:1"], "labels": {}}]
        self.assertEqual(count_partitions(groups), {"": 1, "p": 3})

    def test_node_groups(self):
        """A node group counts under each partition of ``__meta_slurm_partitions``."""
        groups = [{"targets": ["a:1"], "labels": {"__meta_slurm_partitions": ",q,p,"}},
                  {"targets": ["b:1"], "labels": {"__meta_slurm_partitions": ",q,"}}]
        self.assertEqual(list(count_partitions(groups).items()), [("p", 1), ("q", 2)])

    def test_snapshot_keeps_counts(self):
        """The snapshot carries per-job partition counts and the state counts given."""
        snapshot = render({"node": [{"targets": ["a:1"], "labels": {
            "__meta_slurm_partition": "p"}}], "ipmi": []}, node_count=1,
            states={"active": 1})
        self.assertEqual(snapshot.partitions, {"node": {"p": 1}, "ipmi": {}})
        self.assertEqual(snapshot.states, {"active": 1})

    def test_merged_counts_add_up(self):
        """Merging clusters' snapshots adds their state and partition counts."""
        one = render({"node": [{"targets": ["a:1"], "labels": {
            "__meta_slurm_partition": "p"}}]}, node_count=1, states={"active": 1, "down": 0})
        two = render({"node": [{"targets": ["b:1", "c:1"], "labels": {
            "__meta_slurm_partition": "q"}}]}, node_count=2, states={"active": 1, "down": 1})
        merged = merge_snapshots([one, two])
        self.assertEqual(merged.states, {"active": 2, "down": 1})
        self.assertEqual(merged.partitions, {"node": {"p": 1, "q": 2}})
