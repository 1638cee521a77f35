"""
slurm-sd (``twistd -n --pidfile= slurm-sd --config ...``) against a real Slurm 22.05
cluster: through the local-auth slurmrestd on a UNIX socket and through the JWT
slurmrestd on 127.0.0.1.
"""
import os
import platform
import signal
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import daemon, expected, shared, slurm_cluster, support

INTERVAL = 2
JOBS = [{"node": {"port": 9100}}, {"dcgm": {"port": 9400, "partitions": ["gpu"]}}]


def _start_cluster():
    programs = support.require(slurm_cluster.PROGRAMS + ("twistd",), root=True)
    cluster = slurm_cluster.SlurmCluster(programs)
    cluster.start()
    return cluster


CLUSTER = shared.Shared(_start_cluster, lambda cluster: cluster.stop())


def testSuite():
    """trial's hook: this module's tests, with the cluster stopped after the last one."""
    return shared.module_suite(__name__, CLUSTER)


class _DaemonAgainstCluster:
    """Mixin: a daemon per test against the shared cluster, and checks on what it serves."""

    cluster_name = None
    api_version = slurm_cluster.API_VERSION

    def setUp(self):
        """Start (or reuse) the cluster, then a daemon configured by :meth:`config`."""
        self.cluster = CLUSTER.get()
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
        for name, (addr, partitions, _) in slurm_cluster.NODES.items():
            found = sorted(g["labels"].get("__meta_slurm_partition", "")
                           for g in expected.node_groups(node_groups, addr + ":9100"))
            self.assertEqual(sorted(partitions), found, name)
        everything = [t for job in served.values() for g in job for t in g["targets"]]
        self.assertFalse([t for t in everything
                          if t.startswith(slurm_cluster.FUTURE_NODE[1] + ":")],
                         "the FUTURE node is listed")
        self.assertEqual(
            sorted(addr + ":9400" for addr, parts, _ in slurm_cluster.NODES.values()
                   if "gpu" in parts),
            sorted(t for g in served["dcgm"] for t in g["targets"]))
        self.assertEqual({"gpu"}, {g["labels"]["__meta_slurm_partition"]
                                   for g in served["dcgm"]})
        for job, groups in served.items():
            for group in groups:
                self.assertEqual(job, group["labels"]["__meta_prom_job"])
                if self.cluster_name:
                    self.assertEqual(self.cluster_name,
                                     group["labels"]["__meta_slurm_cluster"])
                else:
                    self.assertNotIn("__meta_slurm_cluster", group["labels"])
        real = expected.node_groups(node_groups, "127.0.0.1:9100")
        self.assertEqual(platform.machine(),
                         real[0]["labels"].get("__meta_architecture"))

    def assert_state(self, served, name, state_class, state_prefix):
        """Node ``name`` is in class ``state_class`` with a full state starting so."""
        addr = slurm_cluster.NODES[name][0] + ":9100"
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
        groups = expected.node_groups(served["node"], slurm_cluster.NODES[name][0] + ":9100")
        self.assertTrue(groups, name + " not served")
        for group in groups:
            self.assertIn("drain", group["labels"]["__meta_slurm_node_state"].split("+"),
                          (name, group["labels"]))


class UnixSocketLocalAuthTests(_DaemonAgainstCluster, SynchronousTestCase):
    """The daemon polls the local-auth slurmrestd over its UNIX socket, as root."""

    cluster_name = slurm_cluster.CLUSTER_NAME

    def config(self):
        """``url: unix:...``, no user, no token (local auth knows us by our uid)."""
        return {"url": "unix:" + self.cluster.unix_socket}

    def test_targets_match_cluster(self):
        """/targets lists every node in each of its partitions with its state: cpu01
        (real slurmd) idle and active, the never-registered nodes unknown+not_responding,
        hence down."""
        served = self.wait_until_matches(lambda served: self.assert_state(
            served, slurm_cluster.REAL_NODE, "active", "idle"))
        self.assert_layout(served)
        for name in ("cpu02", "cpu03", "cpu04", "gpu01", "gpu02"):
            self.assert_state(served, name, "down", "unknown+not_responding")

    def test_drain_and_down_show_on_next_poll(self):
        """After scontrol drains cpu01 and downs gpu03, the next polls show both."""
        served = self.drain_and_down("cpu01", "gpu03")
        self.assert_state(served, "cpu01", "drain", "idle+drain")
        self.assert_layout(served)

    def test_health_endpoints(self):
        """Once it has data, /-/healthy and /-/ready answer 200 and /metrics answers."""
        for path in ("/-/healthy", "/-/ready", "/metrics"):
            status, _, body = self.daemon.get(path)
            self.assertEqual(200, status, (path, body[:300]))


class TcpJwtTests(_DaemonAgainstCluster, SynchronousTestCase):
    """The daemon polls the JWT slurmrestd on 127.0.0.1 with a token from a file."""

    def config(self):
        """``url: http://127.0.0.1:PORT``, ``user: slurmrest``, ``token_file``."""
        self.token = self.cluster.token()
        self.token_file = os.path.join(self.tmp, "jwt")
        self.write_token(self.token + "\n")
        return {"url": self.cluster.jwt_url, "user": slurm_cluster.REST_USER,
                "token_file": self.token_file}

    def write_token(self, text):
        """Replace the token file (atomically, mode 0600)."""
        tmp = self.token_file + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, self.token_file)

    def test_targets_match_cluster(self):
        """/targets lists every node in each of its partitions; no cluster label, since
        v0.0.38 answers do not name the cluster and the config does not either."""
        served = self.wait_until_matches()
        self.assert_layout(served)

    def test_drain_and_down_show_on_next_poll(self):
        """After scontrol drains cpu01 and downs gpu04, the next polls show both."""
        served = self.drain_and_down("cpu01", "gpu04")
        self.assert_state(served, "cpu01", "drain", "idle+drain")
        self.assert_layout(served)

    def test_token_reread_and_last_good_data_kept(self):
        """
        With a bad token in the file the polls fail and the last good targets are still
        served (not the cluster's newer state); once the file holds a good token again,
        the next poll brings the new state. The token never appears in the log.
        """
        before = self.wait_until_matches()
        self.write_token("not-a-jwt\n")
        log_size = os.path.getsize(self.daemon.log_path)

        def failed_poll_logged():
            with open(self.daemon.log_path, errors="replace") as f:
                f.seek(log_size)
                new = f.read()
            if "500" not in new:
                raise support.NotReady("no failed poll (HTTP 500) logged yet: {!r}".format(new))
        support.wait_for(failed_poll_logged, 6 * INTERVAL, "a failed poll in the log")
        before = self.served()  # the last good poll's data

        self.addCleanup(self.cluster.resume, "cpu01")
        self.cluster.update_node("cpu01", "drain")
        self.assertNotEqual(before["node"], self.expected()["node"])
        for _ in range(3):
            # Several poll intervals with the bad token: still the old targets.
            time.sleep(INTERVAL)
            self.assertEqual(before, self.served())

        self.write_token(self.cluster.token() + "\n")
        self.wait_until_matches(lambda served: self.assert_drained(served, "cpu01"))
        log = self.daemon.log_text()
        self.assertNotIn(self.token, log)
        self.assertNotIn(self.token_file_text().strip(), log)

    def token_file_text(self):
        """What the token file holds now."""
        with open(self.token_file) as f:
            return f.read()


class AutoApiVersionTests(_DaemonAgainstCluster, SynchronousTestCase):
    """``api_version: auto`` against the JWT slurmrestd: the daemon reads /openapi/v3
    (with the auth headers) and picks the newest nodes path it supports, v0.0.38 here."""

    api_version = "auto"

    def config(self):
        """JWT over TCP, as in :class:`TcpJwtTests`, with no fixed API version."""
        token_file = os.path.join(self.tmp, "jwt")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.cluster.token() + "\n")
        return {"url": self.cluster.jwt_url, "user": slurm_cluster.REST_USER,
                "token_file": token_file}

    def test_targets_match_cluster(self):
        """With the version found from the server, /targets matches the cluster."""
        served = self.wait_until_matches()
        self.assert_layout(served)
