"""
A real Prometheus discovers its targets from slurm-sd (``http_sd_configs``) on a real
Slurm 22.05 cluster, keeps them while the daemon restarts, and the Prometheus example in
``etc/`` passes ``promtool check config`` and relabels as its comments say.
"""
import os
import re
import signal
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import (
    daemon,
    expected,
    prometheus,
    shared,
    slurm_cluster,
    support,
)

INTERVAL = 2
EXAMPLE = os.path.join(str(support.REPO_ROOT), "etc", "prometheus.yml")


def _start_cluster():
    programs = support.require(
        slurm_cluster.PROGRAMS + prometheus.PROGRAMS + ("twistd",), root=True)
    cluster = slurm_cluster.SlurmCluster(programs)
    cluster.start()
    cluster.programs.update(programs)
    return cluster


CLUSTER = shared.Shared(_start_cluster, lambda cluster: cluster.stop())


def testSuite():
    """trial's hook: this module's tests, with the cluster stopped after the last one."""
    return shared.module_suite(__name__, CLUSTER)


class PromtoolTests(SynchronousTestCase):
    """``promtool check config`` on the example in etc/."""

    def test_example_config_is_valid(self):
        """etc/prometheus.yml passes `promtool check config`."""
        programs = support.require(("promtool",))
        status, out = prometheus.check_config(programs["promtool"], EXAMPLE)
        self.assertEqual(0, status, out)


class _WithDaemonAndPrometheus:
    """Mixin: the shared cluster, a daemon on the local-auth socket, and helpers to
    start Prometheus against it."""

    jobs = [{"node": {"port": 9100}}, {"dcgm": {"port": 9400, "partitions": ["gpu"]}}]

    def setUp(self):
        """Start (or reuse) the cluster, then a daemon polling it every 2 s."""
        self.cluster = CLUSTER.get()
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-prom-test-", dir=self.cluster.work)
        os.chmod(self.tmp, 0o755)
        self.port = support.free_port()
        self.daemon = self.start_daemon("unix:" + self.cluster.unix_socket, "good")

    def start_daemon(self, url, name, wait="data", port=None):
        """Start a daemon on our port (or ``port``) polling ``url``; it is stopped when
        the test ends."""
        port = self.port if port is None else port
        path = daemon.write_config(
            os.path.join(self.tmp, name + ".yaml"), url=url, port=port,
            jobs=self.jobs, interval=INTERVAL, cluster_name=slurm_cluster.CLUSTER_NAME)
        d = daemon.Daemon(path, port, os.path.join(self.tmp, name + ".log"),
                          cwd=self.tmp)
        self.addCleanup(d.stop)
        d.start(wait=wait)
        return d

    def start_prometheus(self, config_text):
        """Start Prometheus with ``config_text``; it is stopped when the test ends."""
        prom = prometheus.Prometheus(self.cluster.programs)
        prom.start(config_text)
        self.addCleanup(prom.stop)
        return prom

    def expected_groups(self):
        """The SD groups per job that the cluster's node list calls for right now."""
        body = self.cluster.nodes_json()
        out = {}
        for entry in self.jobs:
            (job, options), = entry.items()
            out[job] = expected.groups(body, job, options["port"],
                                       partitions=options.get("partitions"),
                                       cluster_name=slurm_cluster.CLUSTER_NAME)
        return out

    def wait(self, prom, condition, what, timeout=40):
        """:func:`support.wait_for` with Prometheus' and the daemon's logs on failure."""
        try:
            return support.wait_for(condition, timeout, what, interval=0.5)
        except AssertionError as e:
            raise AssertionError("{}\n--- prometheus ---\n{}\n--- slurm-sd ---\n{}".format(
                e, prom.log_tail(20), self.daemon.log_tail(20)))


    def wait_failed_refreshes(self, prom, before, count, since):
        """Wait until Prometheus has counted ``count`` more failed SD refreshes than
        ``before``, and until its discovery updates (at most every 5 s) have been
        applied since ``since``."""
        def failures_counted():
            now = prom.metric("prometheus_sd_http_failures_total")
            if now < before + count:
                raise support.NotReady("prometheus_sd_http_failures_total {} -> {}".format(
                    before, now))
        self.wait(prom, failures_counted, "failed SD refreshes to be counted")
        time.sleep(max(0.0, 7 - (time.monotonic() - since)))


def _discovered_meta(prom):
    """Per scrape job, the sorted (address, __meta_* labels) Prometheus has discovered,
    leaving out Prometheus' own ``__meta_url``."""
    out = {}
    for target in prom.active_targets():
        labels = target["discoveredLabels"]
        meta = tuple(sorted((k, v) for k, v in labels.items()
                            if k.startswith("__meta_") and k != "__meta_url"))
        out.setdefault(target["scrapePool"], []).append((labels["__address__"], meta))
    return {job: sorted(targets) for job, targets in out.items()}


def _compare(got, want):
    """
    Problems (a list of lines) with ``got`` (from :func:`_discovered_meta`) against
    ``want`` ({job: {address: [acceptable __meta_* label tuples]}}): every wanted
    address discovered once, nothing else, each with one of its acceptable label sets.
    """
    problems = []
    for job in sorted(set(want) | set(got)):
        wanted = want.get(job, {})
        seen = [address for address, _ in got.get(job, [])]
        if sorted(seen) != sorted(wanted):
            problems.append("{}: targets {} expected {}".format(job, sorted(seen),
                                                                sorted(wanted)))
            continue
        for address, meta in got[job]:
            if meta not in wanted[address]:
                problems.append("{}: {} has {} expected one of {}".format(
                    job, address, meta, wanted[address]))
    return problems


class PrometheusDiscoveryTests(_WithDaemonAndPrometheus, SynchronousTestCase):
    """Prometheus with two http_sd jobs (node, dcgm) pointing at the daemon."""

    def setUp(self):
        """The cluster and daemon, then Prometheus refreshing its SD every second."""
        super().setUp()
        self.prom = self.start_prometheus(
            prometheus.sd_config(["node", "dcgm"], self.daemon.url, refresh_interval="1s"))

    def wait_until_discovered(self):
        """
        Wait until Prometheus has discovered exactly the targets that the cluster calls
        for, each with the labels of one of its groups; return (what it discovered, the
        expected label sets per job and address).

        Prometheus keeps one target per distinct label set after relabeling: with no
        relabeling a node in two partitions (cpu01, gpu01, gpu02 here) is one target,
        whose discovered labels are those of one of its groups, not always the same one.
        """
        def matches():
            want = {}
            for job, groups in self.expected_groups().items():
                for address, meta in expected.flat(groups):
                    want.setdefault(job, {}).setdefault(address, []).append(meta)
            got = _discovered_meta(self.prom)
            problems = _compare(got, want)
            if problems:
                raise support.NotReady("\n".join(problems))
            return got, want
        return self.wait(self.prom, matches, "Prometheus to discover every target")

    def test_lists_every_target_with_its_labels(self):
        """/api/v1/targets lists every node for job node (8 targets: a node in two
        partitions is one target when no relabel rule tells them apart) and the 4 gpu
        nodes for dcgm, each with the __meta_* labels slurm-sd serves for it."""
        got, _ = self.wait_until_discovered()
        self.assertEqual(
            sorted(addr + ":9100" for addr, _, _ in slurm_cluster.NODES.values()),
            [address for address, _ in got["node"]])
        self.assertEqual(4, len(got["dcgm"]))
        for job, targets in got.items():
            for address, meta in targets:
                meta = dict(meta)
                self.assertEqual(slurm_cluster.CLUSTER_NAME, meta["__meta_slurm_cluster"])
                self.assertEqual(job, meta["__meta_prom_job"])
                self.assertIn("__meta_slurm_partition", meta)

    def test_keeps_targets_while_daemon_restarts(self):
        """
        While the daemon is down and then restarted without data (503 until its first
        poll, here never, since its slurmrestd socket does not exist), Prometheus keeps
        the targets it had and counts failed SD refreshes; with data again it still
        lists them.
        """
        _, before = self.wait_until_discovered()
        failures = self.prom.metric("prometheus_sd_http_failures_total")

        self.daemon.stop()
        time.sleep(2)  # a couple of refreshes with the port closed
        self.daemon = self.start_daemon(
            "unix:" + os.path.join(self.tmp, "no-such-slurmrestd.sock"), "no-data",
            wait="listening")
        status, headers, _ = self.daemon.get("/targets?prom_job=node")
        self.assertEqual(503, status)
        self.assertGreaterEqual(int(headers["retry-after"]), 1)

        self.wait_failed_refreshes(self.prom, failures, 10, time.monotonic())
        self.assertEqual([], _compare(_discovered_meta(self.prom), before))

        self.daemon.stop()
        self.daemon = self.start_daemon("unix:" + self.cluster.unix_socket, "good-again")
        self.wait_until_discovered()


class ExampleRelabelingTests(_WithDaemonAndPrometheus, SynchronousTestCase):
    """Prometheus runs a copy of etc/prometheus.yml (only slurm-sd's address and the
    refresh interval changed) against the daemon serving jobs node, dcgm and ipmi."""

    # dcgm without a partition selector here, so that the keep-active rule has both
    # kinds of target to sort (only cpu01 has a slurmd and is active).
    jobs = [{"node": {"port": 9100}}, {"dcgm": {"port": 9400}}, {"ipmi": {"port": 9290}}]

    def example_config(self):
        """etc/prometheus.yml with our daemon's port and a 1 s SD refresh."""
        with open(EXAMPLE) as f:
            text = f.read()
        text, n = re.subn(r"127\.0\.0\.1:8080\b", "127.0.0.1:{}".format(self.port), text)
        self.assertGreaterEqual(n, 3, "etc/prometheus.yml no longer uses 127.0.0.1:8080")
        text, n = re.subn(r"refresh_interval: 1m\b", "refresh_interval: 1s", text)
        self.assertGreaterEqual(n, 3, "etc/prometheus.yml no longer refreshes every 1m")
        return text

    def test_example_relabels_as_documented(self):
        """
        node and ipmi keep every target with instance = the host and a partition label;
        dcgm keeps only __meta_state="active" targets and drops the others.
        """
        prom = self.start_prometheus(self.example_config())

        def want():
            groups = self.expected_groups()
            out = {}
            for job, extra in (("node", True), ("dcgm", False), ("ipmi", False)):
                kept = []
                for address, labels in expected.flat(groups[job]):
                    labels = dict(labels)
                    if job == "dcgm" and labels["__meta_state"] != "active":
                        continue
                    result = {"job": job, "instance": address.rsplit(":", 1)[0],
                              "partition": labels["__meta_slurm_partition"]}
                    if extra:
                        result["slurm_state"] = labels["__meta_state"]
                    kept.append(tuple(sorted(result.items())))
                out[job] = sorted(kept)
            return out

        def matches():
            wanted = want()
            got = {}
            for target in prom.active_targets():
                if target["scrapePool"] == "slurm-sd":
                    continue
                got.setdefault(target["scrapePool"], []).append(
                    tuple(sorted(target["labels"].items())))
            got = {job: sorted(v) for job, v in got.items()}
            for job in wanted:
                got.setdefault(job, [])
            if got != wanted:
                raise support.NotReady("got {!r}\n want {!r}".format(got, wanted))
            return got
        got = self.wait(prom, matches, "the example's relabeled targets")
        self.assertEqual(2, len(got["dcgm"]), "cpu01 in debug and batch")

        dropped = [t["discoveredLabels"] for t in prom.api("targets?state=dropped")
                   ["droppedTargets"] if t["discoveredLabels"].get("job") == "dcgm"]
        self.assertEqual(9, len(dropped), dropped)
        self.assertNotIn("active", {t["__meta_state"] for t in dropped})

        # The example's own static job scrapes slurm-sd's /metrics.
        self.assertIn("slurm-sd", {t["scrapePool"] for t in prom.active_targets()})


class ReplicaTests(_WithDaemonAndPrometheus, SynchronousTestCase):
    """SPEC 13: two replicas polling the same cluster, one Prometheus job listing both
    as two http_sd_configs."""

    jobs = [{"node": {"port": 9100}}]

    def setUp(self):
        """The cluster, replica A (the mixin's daemon), replica B on another port, and
        Prometheus discovering job node from both."""
        super().setUp()
        self.replica_b = self.start_daemon("unix:" + self.cluster.unix_socket, "replica-b",
                                           port=support.free_port())
        self.prom = self.start_prometheus(prometheus.sd_config(
            ["node"], [self.daemon.url, self.replica_b.url], refresh_interval="1s"))

    def scraped_once(self):
        """The addresses Prometheus scrapes for job node, once each and all of them (else
        NotReady)."""
        want = sorted(address for address, _ in expected.flat(self.expected_groups()["node"]))
        want = sorted(set(want))
        got = sorted(t["labels"]["instance"] for t in self.prom.active_targets()
                     if t["scrapePool"] == "node")
        if got != want:
            raise support.NotReady("scraped {} expected each of {} once".format(got, want))
        pool = self.prom.metric("prometheus_target_scrape_pool_targets", scrape_job="node")
        if pool != len(want):
            raise support.NotReady("scrape pool holds {} targets, {} expected".format(
                pool, len(want)))
        return got

    def test_each_target_once_and_all_stay_when_a_replica_dies(self):
        """Both replicas serve the same groups; Prometheus scrapes each target once;
        after replica A is killed (SIGKILL) and several SD refreshes fail, every target
        is still there, still once."""
        self.assertEqual(self.daemon.targets("node"), self.replica_b.targets("node"))
        before = self.wait(self.prom, self.scraped_once, "each target scraped once")

        failures = self.prom.metric("prometheus_sd_http_failures_total")
        workers = support.descendants(self.daemon.proc.pid)
        os.kill(self.daemon.proc.pid, signal.SIGKILL)
        started = time.monotonic()
        for pid in workers:  # a decode worker it had running, orphaned by the kill
            support.stop_pid(pid, timeout=1)
        self.wait_failed_refreshes(self.prom, failures, 3, started)
        self.assertEqual(before, self.scraped_once())
