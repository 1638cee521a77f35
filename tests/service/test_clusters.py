"""Tests for several clusters in one daemon (SPEC 10): config, serving, readiness, reload."""
import io
import json
import os
import shutil

from treq.testing import StubTreq
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.load import apply_overrides
from slurm_sd.config.parse import parse
from slurm_sd.errors import ConfigError
from slurm_sd.service.changes import describe_changes
from slurm_sd.tap import Options, build_service
from slurm_sd.web.site import make_root
from tests.fakes import SAMPLES
from tests.web.test_metrics import value

V38 = os.path.join(SAMPLES, "slurm-22.05-v0.0.38-nodes.json")
V37 = os.path.join(SAMPLES, "slurm-22.05-v0.0.37-nodes.json")

TWO = """
clusters:
  - name: hpc1
    slurmrestd: {url: 'file:%s'}
  - name: gpu
    slurmrestd: {url: 'file:%s'}
    interval: 60
interval: 120
listen: tcp:9911:interface=127.0.0.1
jobs:
  - node: {port: 9100}
  - dcgm: {port: 9400, partitions: [gpu]}
"""


def two(first=V38, second=V37, text=TWO):
    """The two-cluster config with these saved node lists."""
    return parse(text % (first, second), "c.yaml")


class ClusterConfigTests(SynchronousTestCase):
    """``clusters:`` in the configuration file."""

    def test_clusters_form(self):
        """Each cluster has its name, source and interval (the top-level one if unset);
        its own configuration has its name as cluster_name and every job."""
        config = two()
        self.assertEqual([c.name for c in config.clusters], ["hpc1", "gpu"])
        self.assertIsNone(config.slurmrestd)
        views = dict(config.cluster_configs())
        self.assertEqual(list(views), ["hpc1", "gpu"])
        self.assertEqual(views["hpc1"].interval, 120)
        self.assertEqual(views["gpu"].interval, 60)
        self.assertEqual(views["gpu"].cluster_name, "gpu")
        self.assertEqual(views["gpu"].slurmrestd.url, "file:" + V37)
        self.assertEqual([job.name for job in views["gpu"].jobs], ["node", "dcgm"])
        self.assertEqual(views["gpu"].clusters, ())

    def test_single_form_is_one_cluster(self):
        """The single-cluster form is one cluster named by cluster_name, else default."""
        text = "slurmrestd: {url: 'file:/x'}\njobs:\n  - node: {port: 9100}\n"
        config = parse(text, "c.yaml")
        self.assertEqual(config.cluster_configs(), (("default", config),))
        config = parse(text + "cluster_name: hpc1\n", "c.yaml")
        self.assertEqual(config.cluster_configs(), (("hpc1", config),))

    def test_errors(self):
        """Bad cluster lists are one line each, naming the key path."""
        base = "jobs:\n  - node: {port: 9100}\n"
        one = "  - name: hpc1\n    slurmrestd: {url: 'file:/x'}\n"
        for text, message in (
                ("slurmrestd: {url: 'file:/x'}\nclusters:\n" + one,
                 "clusters: and slurmrestd exclude each other"),
                ("clusters:\n" + one + one, "clusters[1].name: duplicate cluster name 'hpc1'"),
                ("clusters:\n  - name: 'hpc 1'\n    slurmrestd: {url: 'file:/x'}\n",
                 "clusters[0].name: cluster name 'hpc 1' may hold only letters"),
                ("clusters:\n  - name: hpc1\n", "clusters[0].slurmrestd: is required"),
                ("clusters:\n" + one + "  - name: b\n    slurmrestd: {url: 'ftp://x'}\n",
                 "clusters[1].slurmrestd.url: must be http://HOST:PORT"),
                ("clusters:\n" + one + "  - name: b\n    slurmrestd: {url: 'file:/x', "
                 "tiemout: 3}\n", "clusters[1].slurmrestd.tiemout: unknown key"),
                ("clusters:\n" + one + "  - name: b\n    slurmrestd: {url: 'file:/x'}\n"
                 "    interval: 0\n", "clusters[1].interval: must be at least 1"),
                ("clusters: []\n", "clusters: must be a non-empty list"),
                ("clusters:\n" + one + "cluster_name: x\n",
                 "cluster_name: does not apply with clusters")):
            with self.assertRaises(ConfigError) as caught:
                parse(text + base, "c.yaml")
            self.assertTrue(str(caught.exception).startswith("c.yaml: " + message),
                            str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_source_overrides_do_not_apply(self):
        """--slurmrestd and the other source options are refused with clusters, naming
        the option; --interval still applies (the default of every cluster)."""
        with self.assertRaises(ConfigError) as caught:
            apply_overrides(two(), {"slurmrestd": "file:/x", "interval": None})
        self.assertIn("--slurmrestd: does not apply with clusters", str(caught.exception))
        config = apply_overrides(two(), {"interval": "30"})
        self.assertEqual(dict(config.cluster_configs())["hpc1"].interval, 30)

    def test_changes(self):
        """A reload's log line names clusters added, removed and changed."""
        old = two()
        new = parse((TWO % (V38, V37)).replace("name: gpu", "name: cloud")
                    .replace("interval: 60", "interval: 90"), "c.yaml")
        self.assertEqual(describe_changes(old, new), [
            "cluster cloud added", "cluster gpu removed"])
        new = two(second=V38)
        self.assertEqual(describe_changes(old, new), [
            f"clusters.gpu.slurmrestd.url file:{V37} -> file:{V38}"])


class ClusterServingTests(SynchronousTestCase):
    """The daemon with two clusters, on a MemoryReactorClock."""

    def start(self, config):
        """Build and start the daemon; a client for its resources."""
        self.reactor = MemoryReactorClock()
        self.service = build_service(self.reactor, config, environ={})
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.http = StubTreq(make_root(self.service.clusters, self.service.clusters))

    def get(self, path):
        """(status, headers, body) of GET ``path``."""
        response = self.successResultOf(self.http.get("http://sd" + path))
        return response.code, response.headers, self.successResultOf(response.content())

    def groups(self, path):
        """The SD groups at ``path``, which must answer 200."""
        code, _, body = self.get(path)
        self.assertEqual(code, 200, body)
        return json.loads(body)

    def test_merged_in_config_order_and_one_cluster(self):
        """/targets serves every cluster's groups, clusters in config order, each
        labelled with its cluster; &cluster= serves only that cluster's."""
        self.start(two())
        self.reactor.advance(0)
        merged = self.groups("/targets?prom_job=node")
        clusters = [g["labels"]["__meta_slurm_cluster"] for g in merged]
        self.assertEqual(clusters, sorted(clusters, key=["hpc1", "gpu"].index))
        self.assertEqual(set(clusters), {"hpc1", "gpu"})
        hpc1 = self.groups("/targets?prom_job=node&cluster=hpc1")
        gpu = self.groups("/targets?prom_job=node&cluster=gpu")
        self.assertEqual(merged, hpc1 + gpu)
        self.assertEqual({g["labels"]["__meta_slurm_cluster"] for g in gpu}, {"gpu"})
        self.assertEqual(self.groups("/targets"), self.groups("/targets?cluster=hpc1")
                         + self.groups("/targets?cluster=gpu"))

    def test_merged_body_is_prebuilt(self):
        """Two requests get the same bytes object: no merging per request."""
        self.start(two())
        self.reactor.advance(0)
        merged = self.service.clusters.merged
        self.assertIs(merged.snapshot.bodies["node"], merged.snapshot.bodies["node"])
        self.assertEqual(merged.snapshot.nodes, sum(
            c.cache.snapshot.nodes for c in self.service.clusters.clusters()))

    def test_unknown_and_repeated_cluster(self):
        """An unknown cluster is 404 naming the clusters; one given twice is 400."""
        self.start(two())
        self.reactor.advance(0)
        code, _, body = self.get("/targets?prom_job=node&cluster=nope")
        self.assertEqual(code, 404)
        self.assertEqual(json.loads(body)["clusters"], ["hpc1", "gpu"])
        code, _, _ = self.get("/targets?prom_job=node&cluster=gpu&cluster=hpc1")
        self.assertEqual(code, 400)

    def test_merged_waits_for_every_cluster(self):
        """Until every cluster has data the merged answer is 503 with Retry-After, and
        /-/ready names the cluster without data; the cluster with data serves alone."""
        missing = self.mktemp()
        self.start(two(second=missing))
        with capturedLogs() as events:
            self.reactor.advance(0)
        code, headers, _ = self.get("/targets?prom_job=node")
        self.assertEqual(code, 503)
        self.assertGreaterEqual(int(headers.getRawHeaders("retry-after")[0]), 1)
        self.assertEqual(self.get("/targets?prom_job=node&cluster=gpu")[0], 503)
        self.assertTrue(self.groups("/targets?prom_job=node&cluster=hpc1"))
        code, _, body = self.get("/-/ready")
        self.assertEqual((code, body), (503, b"slurm-sd is not ready: no node list of "
                                             b"cluster gpu yet.\n"))
        failed = [e for e in events if "failed" in e.get("log_format", "")]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["cluster"], "gpu", "the log line names the cluster")

    def test_failing_cluster_keeps_its_data_and_never_delays_another(self):
        """A cluster whose source breaks keeps its last data while the other polls on
        its own interval."""
        second = self.mktemp()
        shutil.copy(V37, second)
        self.start(two(second=second))
        self.reactor.advance(0)
        before = self.groups("/targets?prom_job=node&cluster=gpu")
        os.remove(second)
        hpc1 = self.service.clusters.get("hpc1").cache
        self.reactor.advance(60)   # gpu polls and fails
        self.assertEqual(self.groups("/targets?prom_job=node&cluster=gpu"), before)
        self.assertEqual(self.get("/targets?prom_job=node")[0], 200)
        self.reactor.advance(60)   # hpc1's interval is 120: it polled again
        self.assertEqual(hpc1.age(), 0)


class _DaemonFromFile:
    """Mixin: the two-cluster daemon from a 'file' that the test rewrites, started and
    polled once."""

    def setUp(self):
        """Build, start and poll once."""
        self.path = "/etc/slurm-sd/config.yaml"
        self.files = {self.path: TWO % (V38, V37)}
        options = Options(opener=lambda p, encoding=None: io.StringIO(self.files[p]))
        options.parseOptions(["--config", self.path])
        self.reactor = MemoryReactorClock()
        self.service = build_service(self.reactor, options.config, environ={},
                                     load_config=options.load_config)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.reactor.advance(0)
        self.clusters = self.service.clusters
        self.registry = self.service.metrics.registry


class ClusterReloadTests(_DaemonFromFile, SynchronousTestCase):
    """SIGHUP reload adding, removing and changing clusters."""

    def test_add_remove_and_change(self):
        """A new cluster starts polling, a removed one stops and is no longer served, a
        changed one polls its new source; the others keep their pollers."""
        hpc1 = self.clusters.get("hpc1")
        self.files[self.path] = (TWO % (V37, V38)).replace("name: gpu", "name: cloud")
        with capturedLogs() as events:
            self.service.reloader.reload()
        self.assertEqual(self.clusters.names(), ["hpc1", "cloud"])
        self.assertIs(self.clusters.get("hpc1"), hpc1)
        self.assertFalse(hpc1.poller.source.where.endswith(V38))
        self.reactor.advance(0)
        self.assertEqual(self.clusters.get("cloud").cache.age(), 0)
        self.assertEqual(hpc1.cache.age(), 0)
        lines = [e["log_format"].format(**e) for e in events
                 if e["log_format"].startswith("configuration reloaded")]
        self.assertEqual(len(lines), 1)
        self.assertIn("cluster cloud added; cluster gpu removed", lines[0])

    def test_to_single_form_and_back(self):
        """Going from clusters to the single-cluster form and back keeps serving."""
        self.files[self.path] = ("slurmrestd: {url: 'file:%s'}\ncluster_name: hpc1\n"
                                 "jobs:\n  - node: {port: 9100}\n" % (V38,))
        self.service.reloader.reload()
        self.assertEqual(self.clusters.names(), ["hpc1"])
        self.reactor.advance(0)
        http = StubTreq(make_root(self.clusters, self.clusters))
        response = self.successResultOf(http.get("http://sd/targets?prom_job=node"))
        self.assertEqual(response.code, 200)


class ClusterMetricsTests(_DaemonFromFile, SynchronousTestCase):
    """Self-metrics with a ``cluster`` label per cluster (SPEC 10)."""

    def test_per_cluster_series(self):
        """Each cluster's polls, nodes, targets, interval and data age are its own."""
        for cluster, interval in (("hpc1", 120), ("gpu", 60)):
            snapshot = self.service.clusters.get(cluster).cache.snapshot
            self.assertEqual(value(self.registry, "slurm_sd_polls_total", cluster=cluster,
                                   result="success"), 1)
            self.assertEqual(value(self.registry, "slurm_sd_nodes", cluster=cluster),
                             snapshot.nodes)
            self.assertEqual(value(self.registry, "slurm_sd_targets", cluster=cluster,
                                   prom_job="node"), snapshot.targets["node"])
            self.assertEqual(value(self.registry, "slurm_sd_poll_interval_seconds",
                                   cluster=cluster), interval)
        self.reactor.advance(60)   # gpu polls again, hpc1 not yet
        self.assertEqual(value(self.registry, "slurm_sd_data_age_seconds", cluster="hpc1"), 60)
        self.assertEqual(value(self.registry, "slurm_sd_data_age_seconds", cluster="gpu"), 0)
        self.assertIsNone(value(self.registry, "slurm_sd_nodes", cluster="default"))

    def test_removed_cluster_loses_its_series(self):
        """A cluster a reload removes exports nothing more; the others keep theirs."""
        self.files[self.path] = (TWO % (V38, V37)).replace(
            "  - name: gpu\n    slurmrestd: {url: 'file:%s'}\n    interval: 60\n" % (V37,), "")
        self.service.reloader.reload()
        self.assertEqual(self.service.clusters.names(), ["hpc1"])
        names = {labels for (name, labels), _ in self._samples()
                 if ("cluster", "gpu") in labels}
        self.assertEqual(names, set())
        self.assertEqual(value(self.registry, "slurm_sd_polls_total", cluster="hpc1",
                               result="success"), 1)

    def _samples(self):
        """Every (name, labels) -> value exported now."""
        from tests.web.test_metrics import samples
        return samples(self.registry).items()


class RenamedClusterMetricsTests(SynchronousTestCase):
    """The single-cluster form renamed by cluster_name keeps its numbers."""

    def test_rename(self):
        """After cluster_name changes, the series are under the new name only."""
        path = "/etc/slurm-sd/config.yaml"
        text = "slurmrestd: {url: 'file:%s'}\njobs:\n  - node: {port: 9100}\n" % (V38,)
        files = {path: text}
        options = Options(opener=lambda p, encoding=None: io.StringIO(files[p]))
        options.parseOptions(["--config", path])
        reactor = MemoryReactorClock()
        service = build_service(reactor, options.config, environ={},
                                load_config=options.load_config)
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0)
        registry = service.metrics.registry
        self.assertEqual(value(registry, "slurm_sd_polls_total", result="success"), 1)
        files[path] = text + "cluster_name: hpc1\n"
        service.reloader.reload()
        self.assertIsNone(value(registry, "slurm_sd_polls_total", result="success"))
        reactor.advance(0)
        self.assertEqual(value(registry, "slurm_sd_polls_total", cluster="hpc1",
                               result="success"), 1)
        self.assertEqual(value(registry, "slurm_sd_data_age_seconds", cluster="hpc1"), 0)
