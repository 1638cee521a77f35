"""
slurm-sd (``twistd -n --pidfile= slurm-sd``) against real Slurm 24.11 and 26.05, each a
one-machine cluster run from Debian's packages in a root built by
``.ci/build-slurm-chroots`` (:mod:`chroot_cluster`): with ``api_version: auto`` through
the local-auth slurmrestd on a UNIX socket, and with JWT headers through the JWT slurmrestd
on 127.0.0.1, and with ``scontrol:`` running the root's own scontrol. What it serves
must be what that release's own ``/nodes/`` answer says
(:mod:`expected`), also after a node is drained and another downed.
"""
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import against_cluster, chroot_cluster, expected, shared
from tests.integration.cluster_base import CLUSTER_NAME, REAL_NODE, REST_USER

CLUSTERS = {release: shared.Shared(chroot_cluster.starter(release),
                                   lambda cluster: cluster.stop())
            for release in chroot_cluster.RELEASES}


def testSuite():
    """trial's hook: this module's tests, with both clusters stopped after the last one."""
    return shared.module_suite(__name__, *CLUSTERS.values())


class _ReleaseChecks(against_cluster.DaemonAgainstCluster):
    """The checks every (release, way in) pair runs; subclasses name both."""

    release = None
    nodes = chroot_cluster.NODES
    cluster_from_meta = CLUSTER_NAME  # v0.0.40+ answers name the cluster

    def test_targets_match_cluster(self):
        """/targets is what the release's slurmrestd says: every node in each of its
        partitions, cpu01 idle and active, the nodes without slurmd down (not_responding;
        unknown until a test has resumed one), the cluster name from the answer's meta."""
        served = self.wait_until_matches(lambda served: self.assert_state(
            served, REAL_NODE, "active", "idle"))
        self.assert_layout(served)
        self.assert_state(served, "gpu01", "down", "unknown+not_responding")
        for group in expected.node_groups(served["node"], "127.0.0.2:9100"):
            self.assertIn("not_responding", group["labels"]["__meta_slurm_node_state"])

    def test_drain_and_down_show_on_next_poll(self):
        """After scontrol drains cpu01 and downs cpu02, the next polls show both."""
        served = self.drain_and_down(REAL_NODE, "cpu02")
        self.assert_state(served, REAL_NODE, "drain", "idle+drain")
        self.assert_layout(served)


class _LocalAuthAuto(_ReleaseChecks):
    """``api_version: auto`` over the local-auth UNIX socket."""

    api_version = "auto"

    def config(self):
        """``url: unix:...`` of the local-auth slurmrestd, no user, no token."""
        return {"url": "unix:" + self.cluster.unix_socket}

    def test_auto_picks_newest(self):
        """With ``auto`` the daemon reads the release's newest node API version."""
        self.wait_until_matches()
        self.assertIn("offers node API {};".format(self.cluster.api_version),
                      self.daemon.log_text())


class _JwtOverTcp(_ReleaseChecks):
    """The release's newest API version, JWT headers over TCP (token from scontrol)."""

    @property
    def api_version(self):
        """The release's newest node API version, fixed in the config."""
        return chroot_cluster.RELEASES[self.release][1][-1]

    def config(self):
        """``url: http://127.0.0.1:PORT``, ``user: slurmrest``, ``token_file``."""
        token_file = os.path.join(self.tmp, "jwt")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.cluster.token() + "\n")
        return {"url": self.cluster.jwt_url, "user": REST_USER, "token_file": token_file}


class _ScontrolSource(_ReleaseChecks):
    """``url: scontrol:WRAPPER``: the release's own scontrol (``chroot ROOT scontrol``) run
    by the daemon each poll, with the cluster's ``SLURM_CONF``; no slurmrestd in the way."""

    api_version = "auto"

    def config(self):
        """``url: scontrol:`` and the wrapper script's path."""
        return {"url": "scontrol:" + self.cluster.scontrol_wrapper()}

    def environment(self):
        """``SLURM_CONF``, as the root sees it."""
        return {"SLURM_CONF": self.cluster.conf}

    def test_polls_through_scontrol(self):
        """The polls ran the wrapper (the log names the command), not slurmrestd."""
        self.wait_until_matches()
        self.assertIn("poll of command `{} show nodes --json` ok".format(
            self.cluster.scontrol_wrapper()), self.daemon.log_text())


class LocalAuth2411Tests(_LocalAuthAuto, SynchronousTestCase):
    """Slurm 24.11 (Debian trixie), local auth, ``api_version: auto`` (v0.0.42)."""

    release = "24.11"
    shared_cluster = CLUSTERS[release]


class JwtTcp2411Tests(_JwtOverTcp, SynchronousTestCase):
    """Slurm 24.11 (Debian trixie), JWT over TCP, v0.0.42."""

    release = "24.11"
    shared_cluster = CLUSTERS[release]


class Scontrol2411Tests(_ScontrolSource, SynchronousTestCase):
    """Slurm 24.11 (Debian trixie) through ``scontrol:`` (data_parser v0.0.42)."""

    release = "24.11"
    shared_cluster = CLUSTERS[release]


class LocalAuth2605Tests(_LocalAuthAuto, SynchronousTestCase):
    """Slurm 26.05 (Debian sid), local auth, ``api_version: auto`` (v0.0.45)."""

    release = "26.05"
    shared_cluster = CLUSTERS[release]


class JwtTcp2605Tests(_JwtOverTcp, SynchronousTestCase):
    """Slurm 26.05 (Debian sid), JWT over TCP, v0.0.45."""

    release = "26.05"
    shared_cluster = CLUSTERS[release]


class Scontrol2605Tests(_ScontrolSource, SynchronousTestCase):
    """Slurm 26.05 (Debian sid) through ``scontrol:`` (data_parser v0.0.45)."""

    release = "26.05"
    shared_cluster = CLUSTERS[release]
