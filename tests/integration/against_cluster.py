"""
Checks shared by the tests that run the slurm-sd daemon (``twistd -n --pidfile= slurm-sd``)
against a real test cluster, whatever its release: start a daemon per test, compute what it
should serve from the cluster's own ``/nodes/`` answer (:mod:`expected`), wait until it
serves exactly that, and check the cluster's layout and node states in it.
"""
import os
import platform
import signal
import tempfile

from tests.integration import daemon, expected, support

INTERVAL = 2
JOBS = [{"node": {"port": 9100}}, {"dcgm": {"port": 9400, "partitions": ["gpu"]}}]


class DaemonAgainstCluster:
    """
    Mixin: a daemon per test against a shared test cluster, and checks on what it serves.
    Subclasses set ``shared_cluster`` (a :class:`shared.Shared` of the cluster), ``nodes``
    (name -> (address, partitions, gres)), ``future_address`` (a node never listed, or
    None), ``api_version`` and ``cluster_from_meta`` (the cluster name the answers carry
    in ``meta``, v0.0.40+), and define :meth:`config`.
    """

    cluster_name = None
    cluster_from_meta = None
    future_address = None

    def setUp(self):
        """Start (or reuse) the cluster, then a daemon configured by :meth:`config`."""
        self.cluster = self.shared_cluster.get()
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-daemon-", dir=self.cluster.work)
        os.chmod(self.tmp, 0o755)
        port = support.free_port()
        path = daemon.write_config(
            os.path.join(self.tmp, "config.yaml"), port=port, jobs=JOBS,
            interval=INTERVAL, cluster_name=self.cluster_name,
            api_version=self.api_version, **self.config())
        self.daemon = daemon.Daemon(path, port, os.path.join(self.tmp, "slurm-sd.log"),
                                    cwd=self.tmp, env=self.environment())
        self.addCleanup(self._stop_daemon)
        self.daemon.start(wait=self.wait)

    def config(self):
        """The ``slurmrestd`` keys of the daemon's config (url, user, token_file)."""
        raise NotImplementedError

    #: What :meth:`setUp` waits for (see :meth:`daemon.Daemon.start`).
    wait = "data"

    def environment(self):
        """Variables added to the daemon's environment (None: none)."""
        return None

    def _stop_daemon(self):
        status = self.daemon.stop()
        log = self.daemon.log_text()
        self.assertEqual([], self.daemon.leftovers, "processes outlived slurm-sd")
        self.assertNotIn("Traceback", log, "the daemon logged a traceback:\n" + log[-3000:])
        # twistd shuts down, then kills itself with the signal it got, on purpose.
        self.assertIn(status, (0, -signal.SIGTERM),
                      "slurm-sd exit status after SIGTERM:\n" + log[-2000:])

    def expected(self):
        """What the daemon should serve right now, per job, from slurmrestd's node list."""
        body = self.cluster.nodes_json()
        return {
            "node": expected.groups(body, "node", 9100, cluster_name=self.cluster_name),
            "dcgm": expected.groups(body, "dcgm", 9400, partitions=["gpu"],
                                    cluster_name=self.cluster_name),
        }

    def served(self):
        """What the daemon serves right now, per job."""
        return {job: self.daemon.targets(job) for job in ("node", "dcgm")}

    def wait_until_matches(self, check=None, timeout=8 * INTERVAL + 10):
        """
        Wait until the daemon serves exactly what the cluster's node list says now and
        ``check(served)`` passes; return what it serves. (Polls every 2 s, and a resumed
        node is NOT_RESPONDING until its next ping: the two meet within a few polls.)
        """
        def matches():
            want = self.expected()
            got = self.served()
            if got != want:
                raise support.NotReady("served {!r}\n expected {!r}".format(got, want))
            if check is not None:
                try:
                    check(got)
                except AssertionError as e:
                    raise support.NotReady(str(e))
            return got
        try:
            return support.wait_for(matches, timeout, "/targets to match the cluster",
                                    interval=0.5)
        except AssertionError as e:
            raise AssertionError("{}\n--- daemon log ---\n{}".format(e, self.daemon.log_tail()))

    def assert_layout(self, served):
        """The cluster's fixed layout shows: every node in each of its partitions, the
        FUTURE node nowhere, dcgm only on the gpu partition's nodes."""
        node_groups = served["node"]
        for name, (addr, partitions, _) in self.nodes.items():
            found = sorted(g["labels"].get("__meta_slurm_partition", "")
                           for g in expected.node_groups(node_groups, addr + ":9100"))
            self.assertEqual(sorted(partitions), found, name)
        everything = [t for job in served.values() for g in job for t in g["targets"]]
        if self.future_address is not None:
            self.assertFalse([t for t in everything
                              if t.startswith(self.future_address + ":")],
                             "the FUTURE node is listed")
        self.assertEqual(
            sorted(addr + ":9400" for addr, parts, _ in self.nodes.values()
                   if "gpu" in parts),
            sorted(t for g in served["dcgm"] for t in g["targets"]))
        self.assertEqual({"gpu"}, {g["labels"]["__meta_slurm_partition"]
                                   for g in served["dcgm"]})
        for job, groups in served.items():
            for group in groups:
                self.assertEqual(job, group["labels"]["__meta_prom_job"])
                cluster = self.cluster_name or self.cluster_from_meta
                if cluster:
                    self.assertEqual(cluster, group["labels"]["__meta_slurm_cluster"])
                else:
                    self.assertNotIn("__meta_slurm_cluster", group["labels"])
        real = expected.node_groups(node_groups, "127.0.0.1:9100")
        self.assertEqual(platform.machine(),
                         real[0]["labels"].get("__meta_architecture"))

    def assert_state(self, served, name, state_class, state_prefix):
        """Node ``name`` is in class ``state_class`` with a full state starting so."""
        addr = self.nodes[name][0] + ":9100"
        groups = expected.node_groups(served["node"], addr)
        self.assertTrue(groups, "{} ({}) not served".format(name, addr))
        for group in groups:
            labels = group["labels"]
            self.assertEqual(state_class, labels["__meta_state"], (name, labels))
            self.assertTrue(labels["__meta_slurm_node_state"].startswith(state_prefix),
                            (name, labels))

    def drain_and_down(self, drained, downed):
        """Drain one node and down another, and put both back when the test ends."""
        self.addCleanup(self.cluster.resume, downed)
        self.addCleanup(self.cluster.resume, drained)
        self.cluster.update_node(drained, "drain")
        self.cluster.update_node(downed, "down")

        def changed(served):
            self.assert_state(served, downed, "down", "down")
            self.assert_drained(served, drained)
        return self.wait_until_matches(changed)

    def assert_drained(self, served, name):
        """Node ``name`` is served with DRAIN among its state flags."""
        groups = expected.node_groups(served["node"], self.nodes[name][0] + ":9100")
        self.assertTrue(groups, name + " not served")
        for group in groups:
            self.assertIn("drain", group["labels"]["__meta_slurm_node_state"].split("+"),
                          (name, group["labels"]))
