"""
SPEC 3.2 and 3.3 from the configuration file to the served JSON: each per-job
option is read from YAML, checked with a one-line error naming its key path,
and shows in the output; two jobs on one port are warned about.
"""
import json

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import ConfigError
from slurm_sd.pipeline.build import build_snapshot
from slurm_sd.tap import build_service
from tests.logged import log_lines

HEAD = "slurmrestd: {url: 'http://127.0.0.1:6820'}\ncluster_name: hpc1\njobs:\n"

# gpu01 is in two partitions and has features a100,nvlink (nvlink not active);
# cpu01 is drained; cpu02 is down; pwr01 is powered down and in no partition.
NODES = json.dumps({"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [], "nodes": [
    {"name": "gpu01", "hostname": "gpu01.hpc", "address": "10.0.0.11",
     "partitions": ["gpu", "batch"], "state": "mixed", "state_flags": [],
     "architecture": "x86_64", "features": "a100,nvlink", "active_features": "a100",
     "gres": "gpu:a100:4", "reason": ""},
    {"name": "cpu01", "hostname": "cpu01.hpc", "address": "10.0.0.1",
     "partitions": ["batch"], "state": "idle", "state_flags": ["DRAIN"],
     "architecture": "x86_64", "features": "", "active_features": "",
     "gres": "", "reason": "bad dimm"},
    {"name": "cpu02", "hostname": "cpu02.hpc", "address": "10.0.0.2",
     "partitions": ["batch"], "state": "down", "state_flags": [],
     "architecture": "x86_64", "features": "", "active_features": "", "gres": "",
     "reason": "cable"},
    {"name": "pwr01", "hostname": "pwr01.hpc", "address": "10.0.0.9", "partitions": [],
     "state": "idle", "state_flags": ["POWERED_DOWN"], "architecture": "aarch64",
     "features": "", "active_features": "", "gres": "", "reason": ""},
]}).encode()


def served(jobs_yaml, job):
    """The groups /targets?prom_job=``job`` serves for NODES under ``jobs_yaml``."""
    snapshot = build_snapshot(NODES, parse(HEAD + jobs_yaml, "c.yaml"))
    return json.loads(snapshot.bodies[job])


def targets(groups):
    """Every target of ``groups``, sorted."""
    return sorted(t for g in groups for t in g["targets"])


class GroupByNodeTests(SynchronousTestCase):
    """SPEC 3.2: ``group_by: node``."""

    def test_one_group_per_node_with_node_labels(self):
        """Each node is its own group with the node labels and no __meta_slurm_partition."""
        groups = served("  - node: {port: 9100, group_by: node}\n", "node")
        self.assertEqual([g["targets"] for g in groups],
                         [["10.0.0.1:9100"], ["10.0.0.2:9100"], ["10.0.0.11:9100"],
                          ["10.0.0.9:9100"]])
        gpu01 = groups[2]["labels"]
        self.assertEqual(gpu01, {
            "__meta_slurm_node": "gpu01", "__meta_state": "active",
            "__meta_architecture": "x86_64", "__meta_slurm_node_state": "mixed",
            "__meta_slurm_hostname": "gpu01.hpc", "__meta_slurm_address": "10.0.0.11",
            "__meta_slurm_partitions": ",gpu,batch,", "__meta_slurm_features": ",a100,nvlink,",
            "__meta_slurm_active_features": ",a100,", "__meta_slurm_gres": "gpu:a100:4",
            "__meta_slurm_cluster": "hpc1", "__meta_prom_job": "node"})
        self.assertEqual(groups[0]["labels"]["__meta_slurm_reason"], "bad dimm")
        self.assertNotIn("__meta_slurm_partitions", groups[3]["labels"])

    def test_scraped_once_whatever_its_partitions(self):
        """A node in two partitions is one target in node mode, two groups in partition mode."""
        by_node = served("  - node: {port: 9100, group_by: node}\n", "node")
        by_partition = served("  - node: {port: 9100}\n", "node")
        self.assertEqual(targets(by_node).count("10.0.0.11:9100"), 1)
        self.assertEqual(targets(by_partition).count("10.0.0.11:9100"), 2)

    def test_partitions_any_of(self):
        """With group_by: node, partitions selects nodes in at least one of them."""
        groups = served("  - dcgm: {port: 9400, group_by: node, partitions: [gpu, debug]}\n",
                        "dcgm")
        self.assertEqual(targets(groups), ["10.0.0.11:9400"])

    def test_bad_value(self):
        """A group_by other than partition or node is one line naming the key."""
        with self.assertRaises(ConfigError) as caught:
            parse(HEAD + "  - node: {port: 9100, group_by: host}\n", "c.yaml")
        self.assertEqual(str(caught.exception), "c.yaml: jobs[0].node.group_by: must be one "
                                                "of partition, node, got 'host'")


class SelectorTests(SynchronousTestCase):
    """SPEC 3.3: partitions, features, exclude_states."""

    def test_partitions(self):
        """partitions: [gpu] puts gpu01 in the gpu group only."""
        groups = served("  - dcgm: {port: 9400, partitions: [gpu]}\n", "dcgm")
        self.assertEqual([(g["labels"]["__meta_slurm_partition"], g["targets"])
                          for g in groups], [("gpu", ["10.0.0.11:9400"])])

    def test_features_all_active(self):
        """features keeps nodes having all of them active (configured is not enough)."""
        self.assertEqual(targets(served("  - dcgm: {port: 9400, features: [a100]}\n", "dcgm")),
                         ["10.0.0.11:9400", "10.0.0.11:9400"])
        self.assertEqual(served("  - dcgm: {port: 9400, features: [a100, nvlink]}\n", "dcgm"),
                         [])

    def test_gres_in_both_grouping_modes(self):
        """gres keeps only nodes having every named GRES, grouped by partition or by node."""
        for group_by in ("partition", "node"):
            job = f"  - dcgm: {{port: 9400, gres: [gpu], group_by: {group_by}}}\n"
            self.assertEqual(sorted(set(targets(served(job, "dcgm")))), ["10.0.0.11:9400"])
            job = f"  - dcgm: {{port: 9400, gres: [gpu, nic], group_by: {group_by}}}\n"
            self.assertEqual(served(job, "dcgm"), [])

    def test_gres_with_features(self):
        """gres and features together: a node must satisfy both."""
        self.assertEqual(
            served("  - dcgm: {port: 9400, gres: [gpu], features: [nvlink]}\n", "dcgm"), [])
        self.assertEqual(
            sorted(set(targets(served("  - dcgm: {port: 9400, gres: [gpu], "
                                      "features: [a100]}\n", "dcgm")))), ["10.0.0.11:9400"])

    def test_exclude_states(self):
        """exclude_states leaves out the named coarse classes."""
        groups = served("  - node: {port: 9100, exclude_states: [down, powered_down]}\n",
                        "node")
        self.assertEqual({g["labels"]["__meta_state"] for g in groups}, {"active", "drain"})
        self.assertNotIn("10.0.0.2:9100", targets(groups))
        self.assertNotIn("10.0.0.9:9100", targets(groups))

    def test_bad_selectors(self):
        """Bad selector values are one line each, naming the key path."""
        for options, message in (
                ("features: a100", "jobs[0].j.features: must be a non-empty list of strings, "
                                   "got a string ('a100')"),
                ("partitions: []", "jobs[0].j.partitions: must be a non-empty list of "
                                   "strings, got a list"),
                ("gres: gpu", "jobs[0].j.gres: must be a non-empty list of strings, "
                              "got a string ('gpu')"),
                ("exclude_states: [idle]", "jobs[0].j.exclude_states[0]: must be one of "
                                           "active, drain, down, powered_down, unknown, "
                                           "got 'idle'")):
            with self.assertRaises(ConfigError) as caught:
                parse(HEAD + "  - j: {port: 1, %s}\n" % (options,), "c.yaml")
            self.assertEqual(str(caught.exception), "c.yaml: " + message)


class TargetLabelTests(SynchronousTestCase):
    """SPEC 3.3: scheme, metrics_path, params, labels."""

    JOB = ("  - ipmi:\n      port: 9290\n      scheme: https\n      metrics_path: /ipmi\n"
           "      params: {module: default}\n      labels: {site: north, rack: 7}\n")

    def test_emitted_on_every_group(self):
        """scheme, metrics_path and params become __scheme__, __metrics_path__ and
        __param_<name>; labels are static labels; every group of both modes has them."""
        for jobs in (self.JOB, self.JOB + "      group_by: node\n"):
            groups = served(jobs, "ipmi")
            self.assertTrue(groups)
            for group in groups:
                labels = group["labels"]
                self.assertEqual((labels["__scheme__"], labels["__metrics_path__"],
                                  labels["__param_module"], labels["site"], labels["rack"]),
                                 ("https", "/ipmi", "default", "north", "7"))

    def test_other_jobs_untouched(self):
        """One job's labels do not leak into another job's groups."""
        groups = served(self.JOB + "  - node: {port: 9100}\n", "node")
        self.assertFalse({"__scheme__", "site"} & {k for g in groups for k in g["labels"]})

    def test_bad_values(self):
        """Bad scheme, metrics_path, params and labels are one line each with the key path."""
        for options, message in (
                ("scheme: ftp", "jobs[0].j.scheme: must be one of http, https, got 'ftp'"),
                ("metrics_path: metrics", "jobs[0].j.metrics_path: must start with /, "
                                          "got 'metrics'"),
                ("params: {module: [a, b]}", "jobs[0].j.params.module: must be a string, "
                                             "got a list"),
                ("params: {a-b: c}", "jobs[0].j.params.a-b: is not a valid name (letters, "
                                     "digits and _)"),
                ("labels: {__scheme__: https}", "jobs[0].j.labels.__scheme__: names starting "
                                                "with __ are reserved (use scheme, "
                                                "metrics_path or params)"),
                ("labels: {1x: y}", "jobs[0].j.labels.1x: is not a valid name (a Prometheus "
                                    "label name: [a-zA-Z_][a-zA-Z0-9_]*)"),
                ("labels: [site]", "jobs[0].j.labels: must be a mapping, got a list")):
            with self.assertRaises(ConfigError) as caught:
                parse(HEAD + "  - j: {port: 1, %s}\n" % (options,), "c.yaml")
            self.assertEqual(str(caught.exception), "c.yaml: " + message)


class PortTests(SynchronousTestCase):
    """SPEC 3.3 ``port`` and SPEC 2's warning for two jobs on one port."""

    def test_port_range(self):
        """port must be an integer from 1 to 65535."""
        for port, message in (("0", "must be from 1 to 65535, got 0"),
                              ("65536", "must be from 1 to 65535, got 65536"),
                              ("'9100'", "must be an integer, got a string ('9100')")):
            with self.assertRaises(ConfigError) as caught:
                parse(HEAD + "  - j: {port: %s}\n" % (port,), "c.yaml")
            self.assertEqual(str(caught.exception), "c.yaml: jobs[0].j.port: " + message)

    def test_shared_port_warned_not_fatal(self):
        """Two jobs on one port parse, with a warning naming both."""
        config = parse(HEAD + "  - node: {port: 9100}\n  - lustre: {port: 9100}\n", "c.yaml")
        self.assertEqual(config.warnings, ("c.yaml: jobs[1].lustre.port: 9100 is also the "
                                           "port of job 'node'",))

    def test_distinct_ports_no_warning(self):
        """Jobs on different ports give no warning."""
        config = parse(HEAD + "  - node: {port: 9100}\n  - dcgm: {port: 9400}\n", "c.yaml")
        self.assertEqual(config.warnings, ())

    def test_shared_port_logged_at_start(self):
        """The daemon logs the shared-port warning when it starts."""
        events = self.enterContext(capturedLogs())
        config = parse(HEAD + "  - node: {port: 9100}\n  - lustre: {port: 9100}\n", "c.yaml")
        build_service(MemoryReactorClock(), config, environ={})
        self.assertEqual(log_lines(events, LogLevel.warn),
                         ["c.yaml: jobs[1].lustre.port: 9100 is also the port of job 'node'"])
