"""
Self-renewing tokens (SPEC 9) against the real JWT slurmrestd of each real release in
the tests (Slurm 22.05 from this machine's packages, 24.11 and 26.05 from their Debian
roots): a ``token_command`` of ``scontrol token lifespan=N`` and the daemon's own tokens
minted with the cluster's ``jwt_hs256.key``, each kept up across several token
lifetimes. Slurm has no lower bound on ``lifespan`` (on 22.05 ``lifespan=1`` gives a
token that slurmrestd refuses, with a 500, two seconds later), so lifetimes of a few
seconds make several expiries fit in a short test.
"""
import json
import os
import re
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import (
    chroot_cluster,
    daemon,
    expected,
    shared,
    slurm_cluster,
    support,
)

#: Seconds: each token lives LIFESPAN, is renewed RENEW_BEFORE before its exp, and the
#: daemon polls every INTERVAL, so a token is renewed about every LIFESPAN - RENEW_BEFORE.
LIFESPAN = 6
RENEW_BEFORE = 2
INTERVAL = 1
#: How long each test watches the daemon: more than three token lifetimes.
WATCH = 3 * LIFESPAN + 4
JOBS = [{"node": {"port": 9100}}]


def _start_cluster():
    programs = support.require(slurm_cluster.PROGRAMS + ("twistd",), root=True)
    cluster = slurm_cluster.SlurmCluster(programs)
    cluster.start()
    return cluster


#: Each release's test cluster, started by the first test that needs it.
CLUSTERS = {"22.05": shared.Shared(_start_cluster, lambda cluster: cluster.stop())}
CLUSTERS.update({release: shared.Shared(chroot_cluster.starter(release), lambda c: c.stop())
                 for release in chroot_cluster.RELEASES})


def testSuite():
    """trial's hook: this module's tests, with the clusters stopped after the last one."""
    return shared.module_suite(__name__, *CLUSTERS.values())


class _RenewingTokenTests:
    """Mixin: a daemon whose token renews itself, watched across several expiries."""

    #: Which release's cluster (a key of :data:`CLUSTERS`).
    release = "22.05"

    def setUp(self):
        """Start (or reuse) the cluster, then a daemon with :meth:`token_keys`."""
        self.cluster = CLUSTERS[self.release].get()
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-tokens-", dir=self.cluster.work)
        os.chmod(self.tmp, 0o755)
        port = support.free_port()
        slurmrestd = {"url": self.cluster.jwt_url, "api_version": self.cluster.api_version,
                      "user": slurm_cluster.REST_USER, "timeout": 20,
                      "token_renew_before": RENEW_BEFORE, **self.token_keys()}
        path = os.path.join(self.tmp, "config.yaml")
        with open(path, "w") as handle:
            json.dump({"slurmrestd": slurmrestd, "interval": INTERVAL,
                       "listen": "tcp:{}:interface=127.0.0.1".format(port),
                       "jobs": JOBS}, handle)   # JSON is YAML
        self.daemon = daemon.Daemon(path, port, os.path.join(self.tmp, "slurm-sd.log"),
                                    cwd=self.tmp)
        self.addCleanup(self._stop_daemon)
        self.daemon.start(wait="data")

    def token_keys(self):
        """The token keys of the ``slurmrestd`` section."""
        raise NotImplementedError

    def _stop_daemon(self):
        self.daemon.stop()
        self.assertEqual([], self.daemon.leftovers, "processes outlived slurm-sd")

    def expiry(self):
        """slurm_sd_token_expiry_timestamp_seconds from /metrics, or None."""
        status, _, body = self.daemon.get("/metrics")
        self.assertEqual(200, status)
        match = re.search(rb'^slurm_sd_token_expiry_timestamp_seconds\{cluster="[^"]*"\} '
                          rb'(\S+)$', body, re.M)
        return float(match.group(1)) if match else None

    def test_served_across_expiries(self):
        """For more than three token lifetimes /targets answers 200 with the cluster's
        nodes every time, the exported expiry moves on at least three times and is never
        in the past, slurmrestd refuses at most one request, and no token is logged."""
        want = expected.groups(self.cluster.nodes_json(), "node", 9100)
        expiries = set()
        deadline = time.monotonic() + WATCH
        while time.monotonic() < deadline:
            self.assertEqual(want, self.daemon.targets("node"))
            exp = self.expiry()
            self.assertIsNotNone(exp, "no token expiry on /metrics")
            expiries.add(exp)
            time.sleep(0.5)
        log = self.daemon.log_text()
        self.assertGreaterEqual(len(expiries), 4, (sorted(expiries), self.daemon.log_tail()))
        refused = log.count("refused the token") + log.count("poll failed")
        self.assertLessEqual(refused, 1, log[-3000:])
        self.assertNotIn("eyJ", log)   # every JWT starts so
        self.assertNotIn("Traceback", log)
        self.assertNotIn("renewed before every poll", log)


class TokenCommandTests(_RenewingTokenTests, SynchronousTestCase):
    """``token_command: [env, SLURM_CONF=..., scontrol, token, username=slurmrest,
    lifespan=6]``: scontrol asks slurmctld (over munge) for each new token."""

    def token_keys(self):
        """The command, with the cluster's slurm.conf."""
        return {"token_command": ["env", "SLURM_CONF=" + self.cluster.conf]
                + self.cluster.command("scontrol", "token",
                                       "username=" + slurm_cluster.REST_USER,
                                       "lifespan={}".format(LIFESPAN))}


class JwtKeyFileTests(_RenewingTokenTests, SynchronousTestCase):
    """``jwt_key_file`` = the cluster's own ``jwt_hs256.key``: the daemon's HS256 tokens
    (iat, exp, sun) are accepted by the real slurmrestd."""

    def token_keys(self):
        """The key slurmctld verifies tokens with, and a short lifespan."""
        return {"jwt_key_file": self.cluster.path("etc/jwt_hs256.key"),
                "token_lifespan": LIFESPAN}


class TokenCommand2411Tests(TokenCommandTests):
    """``token_command`` against Slurm 24.11's JWT slurmrestd (its scontrol, in its root)."""

    release = "24.11"


class JwtKeyFile2411Tests(JwtKeyFileTests):
    """The daemon's own tokens against Slurm 24.11's JWT slurmrestd."""

    release = "24.11"


class TokenCommand2605Tests(TokenCommandTests):
    """``token_command`` against Slurm 26.05's JWT slurmrestd (its scontrol, in its root)."""

    release = "26.05"


class JwtKeyFile2605Tests(JwtKeyFileTests):
    """The daemon's own tokens against Slurm 26.05's JWT slurmrestd."""

    release = "26.05"
