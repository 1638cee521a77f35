"""
The real Slurm 24.11 and 26.05 node lists in tests/fixtures (captured from the chroot
clusters, see its README.rst) convert to exactly the groups that tests/integration/expected.py,
written from SPEC 3.1 apart from the daemon's code, computes from the same bodies.
"""
import json
import os

from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.pipeline.convert import convert
from slurm_sd.pipeline.decode import decode_nodes
from tests.fakes import SAMPLES, fixture
from tests.integration import expected
from tests.pipeline.test_convert import make_config

CAPTURES = sorted(name for name in os.listdir(SAMPLES)
                  if name.startswith(("slurm-24.11-", "slurm-26.05-"))
                  and name.endswith(".json") and "nodes" in name
                  and name != "slurm-24.11-v0.0.40-nodes-varied.json")  # another cluster
JOBS = "  - node: {port: 9100}\n  - dcgm: {port: 9400, partitions: [gpu]}\n"


class ReleaseCaptureTests(SynchronousTestCase):
    """Every 24.11 / 26.05 capture, slurmrestd's and scontrol's alike."""

    def test_captures_present(self):
        """Both releases' captures are there: every served version, both states, scontrol."""
        for release, versions in (("24.11", (40, 41, 42)), ("26.05", (42, 43, 44, 45))):
            for suffix in ("", "-drain-down"):
                for minor in versions:
                    self.assertIn("slurm-{}-v0.0.{}-nodes{}.json".format(
                        release, minor, suffix), CAPTURES)
                self.assertIn("slurm-{}-scontrol-show-nodes{}.json".format(
                    release, suffix), CAPTURES)

    def test_groups_as_expected(self):
        """Each capture converts to the groups expected.py derives from its body."""
        config = make_config(JOBS)
        for name in CAPTURES:
            body = fixture(name)
            decoded = json.loads(body)
            got = convert(decode_nodes(body), config)
            self.assertEqual(got, {
                "node": expected.groups(decoded, "node", 9100),
                "dcgm": expected.groups(decoded, "dcgm", 9400, partitions=["gpu"]),
            }, name)

    def test_varied_states(self):
        """After the drain, down and job, cpu01 is mixed+drain, cpu02 down+not_responding,
        and the GRES node gpu01 unknown+not_responding, in every varied capture."""
        config = make_config("  - n: {port: 1, group_by: node}\n")
        varied = [name for name in CAPTURES if name.endswith("-drain-down.json")]
        self.assertEqual(len(varied), 9)
        for name in varied:
            groups = convert(decode_nodes(fixture(name)), config)["n"]
            states = {g["labels"]["__meta_slurm_node"]: (g["labels"]["__meta_state"],
                      g["labels"]["__meta_slurm_node_state"],
                      g["labels"].get("__meta_slurm_gres")) for g in groups}
            self.assertEqual(states, {
                "cpu01": ("drain", "mixed+drain", None),
                "cpu02": ("down", "down+not_responding", None),
                "gpu01": ("down", "unknown+not_responding", "gpu:fake:2"),
            }, name)


class ReleaseGresTests(SynchronousTestCase):
    """SPEC 12's ``gres`` selector on the real 24.11 / 26.05 node lists, whose gpu01
    has ``Gres=gpu:fake:2`` (and cpu01, cpu02 none)."""

    def test_gres_keeps_the_gpu_node(self):
        """``gres: [gpu]`` keeps gpu01 alone in both grouping modes; ``gres: [nic]``
        keeps nothing; the GRES string is the node's own, as Slurm wrote it."""
        config = make_config(
            "  - dcgm: {port: 9400, gres: [gpu]}\n"
            "  - dcgm_node: {port: 9400, gres: [gpu], group_by: node}\n"
            "  - nic: {port: 9500, gres: [nic]}\n")
        for name in CAPTURES:
            node_list = decode_nodes(fixture(name))
            gpu01 = [node for node in node_list.nodes if node.name == "gpu01"]
            self.assertEqual([node.gres for node in gpu01], ["gpu:fake:2"], name)
            groups = convert(node_list, config)
            for job in ("dcgm", "dcgm_node"):
                targets = {t for g in groups[job] for t in g["targets"]}
                self.assertEqual(targets, {gpu01[0].address + ":9400"}, (name, job))
            self.assertEqual([g["labels"]["__meta_slurm_gres"] for g in groups["dcgm_node"]],
                             ["gpu:fake:2"], name)
            self.assertEqual(groups["nic"], [], name)
