"""
slurm-sd (``twistd -n --pidfile= slurm-sd --config ...``) against a real Slurm 22.05
cluster: through the local-auth slurmrestd on a UNIX socket and through the JWT
slurmrestd on 127.0.0.1.
"""
import os
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import against_cluster, shared, slurm_cluster, support
from tests.integration.against_cluster import INTERVAL


def _start_cluster():
    programs = support.require(slurm_cluster.PROGRAMS + ("twistd",), root=True)
    cluster = slurm_cluster.SlurmCluster(programs)
    cluster.start()
    return cluster


CLUSTER = shared.Shared(_start_cluster, lambda cluster: cluster.stop())


def testSuite():
    """trial's hook: this module's tests, with the cluster stopped after the last one."""
    return shared.module_suite(__name__, CLUSTER)


class _DaemonAgainstCluster(against_cluster.DaemonAgainstCluster):
    """The shared 22.05 cluster and its layout."""

    shared_cluster = CLUSTER
    api_version = slurm_cluster.API_VERSION
    nodes = slurm_cluster.NODES
    future_address = slurm_cluster.FUTURE_NODE[1]


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
