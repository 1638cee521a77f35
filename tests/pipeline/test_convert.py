"""
Tests for slurm_sd.pipeline.convert: state classes, full states, and the SD groups of
SPEC 3.1 - 3.3, on real 22.05 / 24.11 node lists and hand-made ones.
"""
import re

import attr
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.convert import convert, label_name
from slurm_sd.pipeline.decode import decode_nodes
from slurm_sd.pipeline.nodes import Node, NodeList
from slurm_sd.slurm import full_state, state_class
from tests.fakes import fixture

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def nodes_from(name):
    """The NodeList of a fixture body."""
    return decode_nodes(fixture(name))


def make_config(jobs, top=""):
    """A Config from a YAML ``jobs:`` list (indented two spaces) and top-level keys."""
    return parse('slurmrestd: {url: "http://slurmrestd.example:6820"}\n'
                 + top + "jobs:\n" + jobs)


def group(targets, **labels):
    """A target group as convert() builds it."""
    return {"targets": targets, "labels": labels}


def key(partition, state, architecture=""):
    """The (partition, full state, architecture) of a group, for order checks."""
    return (partition, state, architecture)


class StateClassTests(SynchronousTestCase):
    """state_class() applies the coarse classes of SPEC 3.1 in order."""

    def check(self, cases):
        """Every ((state, flags), class) pair in ``cases`` holds."""
        for (state, flags), expected in cases:
            self.assertEqual(state_class(state, flags), expected, (state, flags))

    def test_down(self):
        """Base state down, or the not_responding flag, is down whatever else is set."""
        self.check([
            (("down", ()), "down"),
            (("down", ("drain",)), "down"),
            (("down", ("powered_down",)), "down"),
            (("idle", ("not_responding",)), "down"),
            (("unknown", ("drain", "not_responding")), "down"),
            (("idle", ("powered_down", "not_responding")), "down"),
            (("future", ("not_responding",)), "down"),
        ])

    def test_powered_down(self):
        """powered_down, powering_down and powering_up give powered_down, before drain."""
        self.check([
            (("idle", ("powered_down",)), "powered_down"),
            (("idle", ("powering_down",)), "powered_down"),
            (("idle", ("powering_up",)), "powered_down"),
            (("idle", ("cloud", "powered_down")), "powered_down"),
            (("idle", ("drain", "powered_down")), "powered_down"),
            (("unknown", ("powering_up",)), "powered_down"),
        ])

    def test_drain(self):
        """drain, fail and power_drain give drain, before the unknown base states."""
        self.check([
            (("idle", ("drain",)), "drain"),
            (("mixed", ("drain",)), "drain"),
            (("allocated", ("fail",)), "drain"),
            (("idle", ("power_drain",)), "drain"),
            (("unknown", ("drain",)), "drain"),
            (("future", ("drain",)), "drain"),
            (("allocated", ("drain", "power_down_asap")), "drain"),
        ])

    def test_unknown(self):
        """Base states unknown, invalid, error and future are unknown."""
        self.check([
            (("unknown", ()), "unknown"),
            (("invalid", ()), "unknown"),
            (("error", ()), "unknown"),
            (("future", ()), "unknown"),
            (("future", ("dynamic_future",)), "unknown"),
        ])

    def test_active(self):
        """idle, allocated and mixed with no class-changing flag are active."""
        self.check([
            (("idle", ()), "active"),
            (("allocated", ()), "active"),
            (("mixed", ()), "active"),
        ])

    def test_other_flags_ignored(self):
        """Flags outside the class rules, known or not, leave the class alone."""
        for flag in ("completing", "reserved", "planned", "maintenance",
                     "reboot_requested", "reboot_issued", "reboot_canceled", "cloud",
                     "dynamic_norm", "dynamic_future", "external", "blocked",
                     "power_down", "power_up", "power_down_asap", "power_down_force",
                     "undrain", "resume", "invalid_reg", "shiny_new"):
            self.assertEqual(state_class("idle", (flag,)), "active", flag)
            self.assertEqual(state_class("error", (flag,)), "unknown", flag)

    def test_flags_as_list(self):
        """Flags may be given as a list."""
        self.assertEqual(state_class("idle", ["drain"]), "drain")


class FullStateTests(SynchronousTestCase):
    """full_state() writes base+flags in Slurm's order."""

    def test_no_flags(self):
        """Without flags the full state is the base state."""
        self.assertEqual(full_state("idle", ()), "idle")

    def test_flags_in_order(self):
        """Flags follow the base state in the order given, joined by +."""
        self.assertEqual(full_state("mixed", ("drain",)), "mixed+drain")
        self.assertEqual(full_state("unknown", ("drain", "not_responding")),
                         "unknown+drain+not_responding")
        self.assertEqual(full_state("unknown", ("not_responding", "drain")),
                         "unknown+not_responding+drain")

    def test_list(self):
        """Flags may be given as a list."""
        self.assertEqual(full_state("idle", ["cloud", "powered_down"]),
                         "idle+cloud+powered_down")


class GroupsTestCase(SynchronousTestCase):
    """Checks shared by the convert() tests."""

    def convert(self, node_list, config):
        """convert(), checking the shape every group must have."""
        result = convert(node_list, config)
        self.assertEqual(list(result), [job.name for job in config.jobs])
        for groups in result.values():
            for item in groups:
                self.assertEqual(set(item), {"targets", "labels"})
                self.assertTrue(item["targets"], "a group with no targets")
                self.assertEqual(item["targets"], sorted(set(item["targets"])))
                for name, value in item["labels"].items():
                    self.assertTrue(LABEL_NAME.match(name), name)
                    self.assertIsInstance(value, str)
                    self.assertNotEqual(value, "", name)
        return result


# The 22.05 "varied" cluster, every node at 127.0.0.1, grouped for port 9100.
VARIED_BY_ADDRESS = [
    group(["127.0.0.1:9100"], __meta_slurm_partition="batch", __meta_state="drain",
          __meta_architecture="x86_64", __meta_slurm_node_state="mixed+drain",
          __meta_prom_job="node"),
    group(["127.0.0.1:9100"], __meta_slurm_partition="batch", __meta_state="down",
          __meta_slurm_node_state="unknown+drain+not_responding", __meta_prom_job="node"),
    group(["127.0.0.1:9100"], __meta_slurm_partition="batch", __meta_state="down",
          __meta_slurm_node_state="unknown+not_responding", __meta_prom_job="node"),
    group(["127.0.0.1:9100"], __meta_slurm_partition="debug", __meta_state="drain",
          __meta_architecture="x86_64", __meta_slurm_node_state="mixed+drain",
          __meta_prom_job="node"),
    group(["127.0.0.1:9100"], __meta_slurm_partition="gpu", __meta_state="down",
          __meta_slurm_node_state="down+not_responding", __meta_prom_job="node"),
    group(["127.0.0.1:9100"], __meta_slurm_partition="gpu", __meta_state="down",
          __meta_slurm_node_state="unknown+not_responding", __meta_prom_job="node"),
]


class PartitionGroupTests(GroupsTestCase):
    """group_by: partition (SPEC 3.1) on real and hand-made node lists."""

    def test_shared_host_collapses(self):
        """Nodes sharing one address become one target in each of their groups."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - node: {port: 9100}\n"))
        self.assertEqual(result, {"node": VARIED_BY_ADDRESS})

    def test_v0037_same_groups(self):
        """The v0.0.37 capture of the same cluster gives the same groups."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.37-nodes-varied.json"),
                              make_config("  - node: {port: 9100}\n"))
        self.assertEqual(result, {"node": VARIED_BY_ADDRESS})

    def test_by_hostname(self):
        """target_address: hostname groups the varied nodes by partition, state and arch."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - node: {port: 9100}\n",
                                          "target_address: hostname\n"))
        self.assertEqual(result["node"], [
            group(["vm:9100"], __meta_slurm_partition="batch", __meta_state="drain",
                  __meta_architecture="x86_64", __meta_slurm_node_state="mixed+drain",
                  __meta_prom_job="node"),
            group(["cpu02:9100", "cpu03:9100"], __meta_slurm_partition="batch",
                  __meta_state="down", __meta_slurm_node_state="unknown+drain+not_responding",
                  __meta_prom_job="node"),
            group(["cpu04:9100", "gpu01:9100", "gpu02:9100"],
                  __meta_slurm_partition="batch", __meta_state="down",
                  __meta_slurm_node_state="unknown+not_responding", __meta_prom_job="node"),
            group(["vm:9100"], __meta_slurm_partition="debug", __meta_state="drain",
                  __meta_architecture="x86_64", __meta_slurm_node_state="mixed+drain",
                  __meta_prom_job="node"),
            group(["gpu03:9100"], __meta_slurm_partition="gpu", __meta_state="down",
                  __meta_slurm_node_state="down+not_responding", __meta_prom_job="node"),
            group(["gpu01:9100", "gpu02:9100", "gpu04:9100"], __meta_slurm_partition="gpu",
                  __meta_state="down", __meta_slurm_node_state="unknown+not_responding",
                  __meta_prom_job="node"),
        ])

    def test_by_name(self):
        """target_address: name uses the NodeName, here on the drained capture."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-drained.json"),
                              make_config("  - node: {port: 9100}\n",
                                          "target_address: name\n"))
        self.assertEqual(result["node"][0], group(
            ["cpu01:9100"], __meta_slurm_partition="batch", __meta_state="drain",
            __meta_architecture="x86_64", __meta_slurm_node_state="idle+drain",
            __meta_prom_job="node"))

    def test_fresh_cluster(self):
        """Right after start, cpu01 is active and the other nodes unknown."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.37-nodes.json"),
                              make_config("  - node: {port: 9100}\n",
                                          "target_address: name\n"))
        self.assertEqual(
            [(g["labels"].get("__meta_slurm_partition"), g["labels"]["__meta_state"],
              g["targets"]) for g in result["node"]],
            [("batch", "active", ["cpu01:9100"]),
             ("batch", "unknown", ["cpu02:9100", "cpu03:9100", "cpu04:9100",
                                   "gpu01:9100", "gpu02:9100"]),
             ("debug", "active", ["cpu01:9100"]),
             ("gpu", "unknown", ["gpu01:9100", "gpu02:9100", "gpu03:9100",
                                 "gpu04:9100"])])

    def test_host_fallback(self):
        """An empty target field falls back to address, then hostname, then name."""
        node_list = NodeList(nodes=(
            Node("n1", hostname="h1", address="", state="idle"),
            Node("n2", hostname="", address="10.0.0.2", state="idle"),
            Node("n3", hostname="", address="", state="idle"),
            Node("n4", hostname="h4", address="10.0.0.4", state="idle"),
        ))
        for field, expected in [
                ("address", ["10.0.0.2:1", "10.0.0.4:1", "h1:1", "n3:1"]),
                ("hostname", ["10.0.0.2:1", "h1:1", "h4:1", "n3:1"]),
                ("name", ["n1:1", "n2:1", "n3:1", "n4:1"])]:
            config = make_config("  - j: {port: 1}\n", f"target_address: {field}\n")
            self.assertEqual(self.convert(node_list, config)["j"][0]["targets"],
                             expected, field)

    def test_host_fallback_fixtures(self):
        """v0.0.41's node without address or hostname and v0.0.42's without address."""
        config = make_config("  - j: {port: 9100}\n")
        targets41 = {t for g in self.convert(nodes_from("v0.0.41-nodes.json"), config)["j"]
                     for t in g["targets"]}
        self.assertIn("f1:9100", targets41)
        targets42 = {t for g in self.convert(nodes_from("v0.0.42-nodes.json"), config)["j"]
                     for t in g["targets"]}
        self.assertIn("n2.cluster.example:9100", targets42)

    def test_ipv6_target(self):
        """An IPv6 address is bracketed in the target."""
        node_list = NodeList(nodes=(Node("n1", address="fd00::1", state="idle"),))
        result = self.convert(node_list, make_config("  - j: {port: 9100}\n"))
        self.assertEqual(result["j"][0]["targets"], ["[fd00::1]:9100"])

    def test_multi_partition(self):
        """A node in two partitions is a target in both partitions' groups."""
        result = self.convert(nodes_from("v0.0.42-nodes.json"),
                              make_config("  - j: {port: 9100}\n"))
        holding = [g["labels"].get("__meta_slurm_partition") for g in result["j"]
                   if "10.42.1.1:9100" in g["targets"]]
        self.assertEqual(holding, ["cpu", "gpu"])

    def test_no_partition(self):
        """Nodes in no partition form groups without __meta_slurm_partition, sorted first."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"),
                              make_config("  - j: {port: 9100}\n"))
        self.assertEqual(result["j"][0], group(
            ["10.39.2.1:9100"], __meta_state="unknown", __meta_slurm_node_state="future",
            __meta_prom_job="j"))
        self.assertEqual(sum("__meta_slurm_partition" not in g["labels"]
                             for g in result["j"]), 1)

    def test_v0039_groups(self):
        """The v0.0.39 nodes give exactly these groups, in this order."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"),
                              make_config("  - j: {port: 9100}\n"))
        self.assertEqual(
            [(g["labels"].get("__meta_slurm_partition", ""),
              g["labels"]["__meta_slurm_node_state"],
              g["labels"].get("__meta_architecture", ""),
              g["labels"]["__meta_state"], g["targets"]) for g in result["j"]],
            [("", "future", "", "unknown", ["10.39.2.1:9100"]),
             ("cpu", "down+not_responding", "x86_64", "down", ["10.39.0.3:9100"]),
             ("cpu", "idle", "x86_64", "active", ["10.39.0.1:9100"]),
             ("cpu", "mixed+drain", "x86_64", "drain", ["10.39.0.2:9100"]),
             ("debug", "mixed+drain", "x86_64", "drain", ["10.39.0.2:9100"]),
             ("gpu", "allocated", "x86_64", "active", ["10.39.1.1:9100"]),
             ("gpu", "idle+cloud+powered_down", "", "powered_down", ["10.39.1.2:9100"])])

    def test_sort_order(self):
        """Groups sort by partition, then full state, then architecture; targets sort too."""
        node_list = NodeList(nodes=(
            Node("z", address="10.0.0.9", partitions=("b",), state="idle",
                 architecture="x86_64"),
            Node("y", address="10.0.0.10", partitions=("b",), state="idle",
                 architecture="x86_64"),
            Node("x", address="10.0.0.1", partitions=("b",), state="idle",
                 architecture="aarch64"),
            Node("w", address="10.0.0.2", partitions=("b",), state="idle",
                 flags=("drain",), architecture="aarch64"),
            Node("v", address="10.0.0.3", partitions=("a",), state="mixed",
                 architecture="x86_64"),
            Node("u", address="10.0.0.4", partitions=("b",), state="allocated",
                 architecture="x86_64"),
        ))
        result = self.convert(node_list, make_config("  - j: {port: 9100}\n"))
        self.assertEqual(
            [key(g["labels"]["__meta_slurm_partition"], g["labels"]["__meta_slurm_node_state"],
                 g["labels"]["__meta_architecture"]) for g in result["j"]],
            [key("a", "mixed", "x86_64"), key("b", "allocated", "x86_64"),
             key("b", "idle", "aarch64"), key("b", "idle", "x86_64"),
             key("b", "idle+drain", "aarch64")])
        self.assertEqual(result["j"][3]["targets"], ["10.0.0.10:9100", "10.0.0.9:9100"])

    def test_spec_example(self):
        """Two idle x86_64 GPU nodes give exactly the group shown in SPEC 3.1."""
        node_list = NodeList(nodes=(
            Node("gpu02", address="gpu02", partitions=("gpu",), state="idle",
                 architecture="x86_64"),
            Node("gpu01", address="gpu01", partitions=("gpu",), state="idle",
                 architecture="x86_64"),
        ), cluster_name="testcluster")
        result = self.convert(node_list, make_config("  - node: {port: 9100}\n"))
        self.assertEqual(result, {"node": [
            {"targets": ["gpu01:9100", "gpu02:9100"],
             "labels": {"__meta_slurm_partition": "gpu",
                        "__meta_state": "active",
                        "__meta_architecture": "x86_64",
                        "__meta_slurm_node_state": "idle",
                        "__meta_slurm_cluster": "testcluster",
                        "__meta_prom_job": "node"}}]})

    def test_empty_values_left_out(self):
        """An empty architecture, partition or cluster gives no label at all."""
        node_list = NodeList(nodes=(Node("n1", state="idle"),), cluster_name="")
        result = self.convert(node_list, make_config("  - j: {port: 1}\n"))
        self.assertEqual(result["j"], [group(["n1:1"], __meta_state="active",
                                             __meta_slurm_node_state="idle",
                                             __meta_prom_job="j")])

    def test_no_nodes(self):
        """An empty node list gives every job an empty group list."""
        result = self.convert(NodeList(), make_config("  - a: {port: 1}\n"
                                                      "  - b: {port: 2, group_by: node}\n"))
        self.assertEqual(result, {"a": [], "b": []})


class SelectorTests(GroupsTestCase):
    """The per-job partitions, features and exclude_states options (SPEC 3.3)."""

    def test_partitions(self):
        """partitions: [gpu] emits the gpu groups only; gpu01 is not in a batch group."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - dcgm: {port: 9400, partitions: [gpu]}\n",
                                          "target_address: name\n"))
        self.assertEqual(result["dcgm"], [
            group(["gpu03:9400"], __meta_slurm_partition="gpu", __meta_state="down",
                  __meta_slurm_node_state="down+not_responding", __meta_prom_job="dcgm"),
            group(["gpu01:9400", "gpu02:9400", "gpu04:9400"], __meta_slurm_partition="gpu",
                  __meta_state="down", __meta_slurm_node_state="unknown+not_responding",
                  __meta_prom_job="dcgm"),
        ])

    def test_partitions_skip_partitionless(self):
        """With a partitions selector, nodes in no partition are left out."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"),
                              make_config("  - j: {port: 1, partitions: [cpu, gpu]}\n",
                                          "target_address: name\n"))
        names = sorted(t for g in result["j"] for t in g["targets"])
        self.assertEqual(names, ["c1:1", "c2:1", "c3:1", "g1:1", "g2:1"])

    def test_partitions_unknown_name(self):
        """A selected partition that no node is in gives no groups."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"),
                              make_config("  - j: {port: 1, partitions: [nosuch]}\n"))
        self.assertEqual(result["j"], [])

    def test_exclude_down(self):
        """exclude_states: [down] leaves only the drained cpu01 of the varied cluster."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - j: {port: 1, exclude_states: [down]}\n",
                                          "target_address: name\n"))
        self.assertEqual([(g["labels"]["__meta_slurm_partition"], g["targets"])
                          for g in result["j"]],
                         [("batch", ["cpu01:1"]), ("debug", ["cpu01:1"])])

    def test_exclude_several(self):
        """Several excluded classes are all left out; the others stay."""
        result = self.convert(
            nodes_from("v0.0.44-nodes.json"),
            make_config("  - j: {port: 1, exclude_states: [down, powered_down, unknown]}\n",
                        "target_address: name\n"))
        self.assertEqual(sorted({t for g in result["j"] for t in g["targets"]}),
                         ["e1:1", "e2:1", "g2:1"])

    def test_exclude_drain(self):
        """exclude_states: [drain] drops drained nodes, keeping down ones."""
        result = self.convert(nodes_from("v0.0.45-nodes.json"),
                              make_config("  - j: {port: 1, exclude_states: [drain]}\n",
                                          "target_address: name\n"))
        targets = {t for g in result["j"] for t in g["targets"]}
        self.assertEqual(targets, {"k1:1", "k3:1", "g1:1", "g2:1", "f1:1"})

    def test_features_all_required(self):
        """features: [gpu, a100] keeps nodes having both active features."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - j: {port: 1, features: [gpu, a100]}\n",
                                          "target_address: name\n"))
        self.assertEqual(sorted({t for g in result["j"] for t in g["targets"]}),
                         ["gpu01:1", "gpu02:1"])

    def test_features_active_only(self):
        """A feature that is configured but not active does not select the node."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"),
                              make_config("  - j: {port: 1, features: [gpu]}\n",
                                          "target_address: name\n"))
        self.assertEqual([g["targets"] for g in result["j"]], [["g1:1"]])

    def test_selectors_combined(self):
        """partitions, features and exclude_states apply together."""
        result = self.convert(
            nodes_from("v0.0.42-nodes.json"),
            make_config("  - j: {port: 1, partitions: [gpu, cpu], features: [l40s],"
                        " exclude_states: [down]}\n", "target_address: name\n"))
        self.assertEqual([(g["labels"]["__meta_slurm_partition"], g["targets"])
                          for g in result["j"]],
                         [("cpu", ["g1:1"]), ("gpu", ["g1:1"])])

    def test_jobs_independent(self):
        """Each job applies its own options and carries its own name, in config order."""
        result = self.convert(nodes_from("v0.0.39-nodes.json"), make_config(
            "  - zeta: {port: 9400, partitions: [gpu]}\n"
            "  - alpha: {port: 9100, exclude_states: [down, drain, powered_down, unknown]}\n",
            "target_address: name\n"))
        self.assertEqual(list(result), ["zeta", "alpha"])
        self.assertEqual(sorted(t for g in result["zeta"] for t in g["targets"]),
                         ["g1:9400", "g2:9400"])
        self.assertEqual(sorted(t for g in result["alpha"] for t in g["targets"]),
                         ["c1:9100", "g1:9100"])
        self.assertEqual({g["labels"]["__meta_prom_job"] for g in result["alpha"]},
                         {"alpha"})


class JobLabelTests(GroupsTestCase):
    """Cluster, job, scheme, metrics_path, params and static labels."""

    def test_cluster_from_config(self):
        """The config's cluster_name beats the one in the response."""
        result = self.convert(nodes_from("slurm-24.11-v0.0.40-nodes-varied.json"),
                              make_config("  - j: {port: 1}\n", "cluster_name: hpc1\n"))
        self.assertEqual({g["labels"]["__meta_slurm_cluster"] for g in result["j"]},
                         {"hpc1"})

    def test_cluster_from_response(self):
        """Without a configured cluster_name, the response's meta.slurm.cluster is used."""
        result = self.convert(nodes_from("slurm-24.11-v0.0.40-nodes-varied.json"),
                              make_config("  - j: {port: 1}\n"))
        self.assertEqual({g["labels"]["__meta_slurm_cluster"] for g in result["j"]},
                         {"testcluster"})

    def test_cluster_absent(self):
        """With no cluster name anywhere, __meta_slurm_cluster is left out."""
        for name in ("slurm-22.05-v0.0.38-nodes-varied.json", "v0.0.43-nodes.json"):
            result = self.convert(nodes_from(name), make_config("  - j: {port: 1}\n"))
            self.assertTrue(result["j"])
            for item in result["j"]:
                self.assertNotIn("__meta_slurm_cluster", item["labels"])

    def test_scheme_path_params_labels(self):
        """scheme, metrics_path, params and labels become __scheme__, ... and plain labels."""
        config = make_config(
            "  - ipmi:\n"
            "      port: 9290\n"
            "      scheme: https\n"
            "      metrics_path: /ipmi\n"
            "      params: {module: default, target_type: bmc}\n"
            "      labels: {site: north, tier: '1'}\n")
        node_list = NodeList(nodes=(Node("n1", address="10.0.0.1", partitions=("p",),
                                         state="idle", architecture="x86_64"),))
        self.assertEqual(self.convert(node_list, config), {"ipmi": [group(
            ["10.0.0.1:9290"], __meta_slurm_partition="p", __meta_state="active",
            __meta_architecture="x86_64", __meta_slurm_node_state="idle",
            __meta_prom_job="ipmi", __scheme__="https", __metrics_path__="/ipmi",
            __param_module="default", __param_target_type="bmc", site="north",
            tier="1")]})

    def test_empty_static_label_left_out(self):
        """A static label or param with an empty value is left out."""
        config = make_config("  - j: {port: 1, labels: {env: '', site: x},"
                             " params: {module: ''}}\n")
        result = self.convert(NodeList(nodes=(Node("n1", state="idle"),)), config)
        labels = result["j"][0]["labels"]
        self.assertEqual(labels["site"], "x")
        self.assertNotIn("env", labels)
        self.assertNotIn("__param_module", labels)

    def test_bad_label_names_sanitised(self):
        """params/labels names that slipped past the config still give valid label names."""
        config = make_config("  - j: {port: 1}\n")
        job = attr.evolve(config.jobs[0],
                          params=(("a-b", "1"),),
                          labels=(("1x", "y"), ("ok.k", "v"), ("", "z"), ("é", "w")))
        config = attr.evolve(config, jobs=(job,))
        labels = self.convert(NodeList(nodes=(Node("n1", state="idle"),)),
                              config)["j"][0]["labels"]
        self.assertEqual({k: v for k, v in labels.items() if not k.startswith("__meta")},
                         {"__param_a_b": "1", "_1x": "y", "ok_k": "v", "_": "w"})

    def test_group_labels_not_overridden(self):
        """A static label cannot replace a label the group computes itself."""
        config = make_config("  - j: {port: 1}\n")
        job = attr.evolve(config.jobs[0], labels=(("__meta_state", "fake"),
                                                  ("__meta_prom_job", "fake"),
                                                  ("__meta_slurm_partition", "fake")))
        config = attr.evolve(config, jobs=(job,))
        labels = self.convert(NodeList(nodes=(Node("n1", state="idle"),)),
                              config)["j"][0]["labels"]
        self.assertEqual(labels, {"__meta_state": "active", "__meta_slurm_node_state": "idle",
                                  "__meta_prom_job": "j"})

    def test_label_name(self):
        """label_name() maps odd characters to _ and protects a leading digit."""
        self.assertEqual(label_name("ok_Name1"), "ok_Name1")
        self.assertEqual(label_name("a.b-c d"), "a_b_c_d")
        self.assertEqual(label_name("9lives"), "_9lives")
        self.assertEqual(label_name(""), "")


class NodeGroupTests(GroupsTestCase):
    """group_by: node (SPEC 3.2)."""

    def test_node_labels(self):
        """Each node is a group with its own labels; lists are written ,a,b,."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - n: {port: 9100, group_by: node}\n",
                                          "target_address: hostname\n"))
        self.assertEqual(len(result["n"]), 8)
        self.assertEqual(result["n"][0], group(
            ["vm:9100"], __meta_slurm_node="cpu01", __meta_state="drain",
            __meta_architecture="x86_64", __meta_slurm_node_state="mixed+drain",
            __meta_slurm_hostname="vm", __meta_slurm_address="127.0.0.1",
            __meta_slurm_partitions=",debug,batch,",
            __meta_slurm_features=",cpu,intel,avx2,",
            __meta_slurm_active_features=",cpu,intel,avx2,",
            __meta_slurm_reason="test: draining with a running job",
            __meta_prom_job="n"))
        self.assertEqual(result["n"][6], group(
            ["gpu03:9100"], __meta_slurm_node="gpu03", __meta_state="down",
            __meta_slurm_node_state="down+not_responding", __meta_slurm_hostname="gpu03",
            __meta_slurm_address="127.0.0.1", __meta_slurm_partitions=",gpu,",
            __meta_slurm_features=",gpu,v100,", __meta_slurm_active_features=",gpu,v100,",
            __meta_slurm_gres="gpu:v100:2", __meta_slurm_reason="test: GPU fault",
            __meta_prom_job="n"))

    def test_shared_host_not_collapsed(self):
        """Nodes on one host stay separate groups, told apart by __meta_slurm_node."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - n: {port: 9100, group_by: node}\n"))
        self.assertEqual({tuple(g["targets"]) for g in result["n"]},
                         {("127.0.0.1:9100",)})
        self.assertEqual([g["labels"]["__meta_slurm_node"] for g in result["n"]],
                         ["cpu01", "cpu02", "cpu03", "cpu04", "gpu01", "gpu02",
                          "gpu03", "gpu04"])

    def test_no_partition_label(self):
        """Node groups carry no __meta_slurm_partition; a partitionless node is kept."""
        result = self.convert(nodes_from("v0.0.44-nodes.json"),
                              make_config("  - n: {port: 1, group_by: node}\n",
                                          "target_address: name\n"))
        for item in result["n"]:
            self.assertNotIn("__meta_slurm_partition", item["labels"])
        x1 = [g for g in result["n"] if g["targets"] == ["x1:1"]][0]
        self.assertEqual(x1["labels"], {
            "__meta_slurm_node": "x1", "__meta_state": "unknown",
            "__meta_slurm_node_state": "future+dynamic_future",
            "__meta_slurm_hostname": "x1", "__meta_slurm_address": "10.44.2.1",
            "__meta_slurm_cluster": "hpc44", "__meta_prom_job": "n"})

    def test_sorted_by_name(self):
        """Node groups are sorted by node name."""
        node_list = NodeList(nodes=(Node("b2", state="idle"), Node("a1", state="idle"),
                                    Node("c3", state="idle")))
        result = self.convert(node_list, make_config("  - n: {port: 1, group_by: node}\n"))
        self.assertEqual([g["targets"] for g in result["n"]], [["a1:1"], ["b2:1"], ["c3:1"]])

    def test_partitions_any(self):
        """With partitions, a node in at least one of them is kept, listing all its partitions."""
        result = self.convert(nodes_from("slurm-22.05-v0.0.38-nodes-varied.json"),
                              make_config("  - n: {port: 1, group_by: node,"
                                          " partitions: [debug, gpu]}\n",
                                          "target_address: name\n"))
        self.assertEqual([(g["targets"][0], g["labels"]["__meta_slurm_partitions"])
                          for g in result["n"]],
                         [("cpu01:1", ",debug,batch,"), ("gpu01:1", ",batch,gpu,"),
                          ("gpu02:1", ",batch,gpu,"), ("gpu03:1", ",gpu,"),
                          ("gpu04:1", ",gpu,")])

    def test_selectors(self):
        """features and exclude_states apply to node groups too."""
        result = self.convert(nodes_from("v0.0.45-nodes.json"),
                              make_config("  - n: {port: 1, group_by: node, features: [gpu],"
                                          " exclude_states: [powered_down]}\n",
                                          "target_address: name\n"))
        self.assertEqual([g["targets"] for g in result["n"]], [["g1:1"]])
        self.assertEqual(result["n"][0]["labels"]["__meta_slurm_gres"], "gpu:b200:8")

    def test_job_labels(self):
        """Node groups also carry the cluster, job name, scheme and static labels."""
        result = self.convert(nodes_from("v0.0.41-nodes.json"), make_config(
            "  - n: {port: 1, group_by: node, scheme: https, labels: {site: s}}\n",
            "cluster_name: mine\n"))
        for item in result["n"]:
            self.assertEqual(
                {k: item["labels"][k] for k in ("__meta_slurm_cluster", "__meta_prom_job",
                                                "__scheme__", "site")},
                {"__meta_slurm_cluster": "mine", "__meta_prom_job": "n",
                 "__scheme__": "https", "site": "s"})

    def test_mixed_modes(self):
        """A partition job and a node job over the same nodes each get their own shape."""
        result = self.convert(nodes_from("v0.0.43-nodes.json"), make_config(
            "  - p: {port: 1}\n  - n: {port: 2, group_by: node}\n",
            "target_address: name\n"))
        self.assertEqual(len(result["n"]), 5)
        self.assertEqual(sorted({t for g in result["p"] for t in g["targets"]}),
                         ["g1:1", "m1:1", "m2:1", "m3:1", "p1:1"])
        self.assertEqual([(g["targets"], g["labels"]["__meta_state"]) for g in result["n"]],
                         [(["g1:2"], "down"), (["m1:2"], "active"), (["m2:2"], "down"),
                          (["m3:2"], "active"), (["p1:2"], "powered_down")])


class AllVersionsTests(GroupsTestCase):
    """Every fixture body converts, and its classes come out as the states say."""

    FILES = ("slurm-22.05-v0.0.37-nodes.json", "slurm-22.05-v0.0.37-nodes-varied.json",
             "slurm-22.05-v0.0.38-nodes.json", "slurm-22.05-v0.0.38-nodes-varied.json",
             "slurm-22.05-v0.0.38-nodes-drained.json",
             "slurm-24.11-v0.0.40-nodes-varied.json", "v0.0.39-nodes.json",
             "v0.0.41-nodes.json", "v0.0.42-nodes.json", "v0.0.43-nodes.json",
             "v0.0.44-nodes.json", "v0.0.45-nodes.json",
             "v0.0.46-nodes.json")

    def test_every_fixture(self):
        """Each body gives valid groups in both modes, covering every node."""
        config = make_config("  - p: {port: 1}\n  - n: {port: 2, group_by: node}\n",
                             "target_address: name\n")
        for name in self.FILES:
            node_list = nodes_from(name)
            result = self.convert(node_list, config)
            names = sorted(n.name for n in node_list.nodes)
            self.assertEqual(sorted({t[:-2] for g in result["p"] for t in g["targets"]}),
                             names, name)
            self.assertEqual([g["labels"]["__meta_slurm_node"] for g in result["n"]],
                             names, name)

    def test_classes_per_version(self):
        """The coarse class of each hand-made node is the one its state calls for."""
        config = make_config("  - n: {port: 1, group_by: node}\n")
        expected = {
            "v0.0.39-nodes.json": dict(c1="active", c2="drain", c3="down", g1="active",
                                       g2="powered_down", s1="unknown"),
            "v0.0.41-nodes.json": dict(a1="powered_down", a2="drain", a3="unknown",
                                       g1="active", f1="unknown"),
            "v0.0.42-nodes.json": dict(n1="active", n2="drain", n3="drain", g1="active",
                                       g2="down", u1="powered_down"),
            "v0.0.43-nodes.json": dict(m1="active", m2="down", m3="active", g1="down",
                                       p1="powered_down"),
            "v0.0.44-nodes.json": dict(e1="active", e2="active", e3="down",
                                       g1="powered_down", g2="active", x1="unknown"),
            "v0.0.45-nodes.json": dict(k1="active", k2="drain", k3="down", g1="active",
                                       g2="powered_down", f1="unknown"),
            "v0.0.46-nodes.json": dict(r1="active", r2="drain", r3="unknown", g1="active",
                                       g2="powered_down", p1="active"),
        }
        for name, classes in expected.items():
            result = self.convert(nodes_from(name), config)
            self.assertEqual({g["labels"]["__meta_slurm_node"]: g["labels"]["__meta_state"]
                              for g in result["n"]}, classes, name)
