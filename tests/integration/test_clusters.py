"""
One slurm-sd (``twistd -n --pidfile= slurm-sd``) serving two real clusters at once
(SPEC 10): Slurm 22.05 from this machine's packages and Slurm 24.11 from its Debian
root, each through its own local-auth slurmrestd. Each cluster's groups carry its name;
when one cluster's slurmctld stops, the other keeps updating and the stopped one's last
data stays served.
"""
import json
import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import (
    chroot_cluster,
    daemon,
    expected,
    shared,
    slurm_cluster,
    support,
)
from tests.integration.cluster_base import REAL_NODE

INTERVAL = 2


def _start_both():
    """Both clusters, started one after the other (the second stops the first if it fails)."""
    programs = support.require(slurm_cluster.PROGRAMS + chroot_cluster.HOST_PROGRAMS
                               + ("twistd",), root=True)
    old = slurm_cluster.SlurmCluster(programs)
    old.start()
    try:
        new = chroot_cluster.ChrootCluster("24.11", programs)
        new.start()
    except BaseException:
        old.stop()
        raise
    return {"c2205": old, "c2411": new}


def _stop_both(clusters):
    """Stop both clusters, each by the pids it started."""
    for cluster in clusters.values():
        cluster.stop()


CLUSTERS = shared.Shared(_start_both, _stop_both)


def testSuite():
    """trial's hook: this module's tests, with both clusters stopped after the last one."""
    return shared.module_suite(__name__, CLUSTERS)


class TwoReleasesTests(SynchronousTestCase):
    """A daemon with ``clusters:`` c2205 (22.05) and c2411 (24.11)."""

    def setUp(self):
        """Both clusters, and a daemon polling both every 2 s."""
        self.clusters = CLUSTERS.get()
        first = self.clusters["c2205"]
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-clusters-", dir=first.work)
        os.chmod(self.tmp, 0o755)
        port = support.free_port()
        config = {
            "clusters": [{"name": name, "slurmrestd": {
                "url": "unix:" + cluster.unix_socket, "timeout": 20}}
                for name, cluster in self.clusters.items()],
            "interval": INTERVAL,
            "listen": "tcp:{}:interface=127.0.0.1".format(port),
            "jobs": [{"node": {"port": 9100}}],
        }
        path = os.path.join(self.tmp, "config.yaml")
        with open(path, "w") as f:
            json.dump(config, f)
        self.daemon = daemon.Daemon(path, port, os.path.join(self.tmp, "slurm-sd.log"),
                                    cwd=self.tmp)
        self.addCleanup(self.daemon.stop)
        self.daemon.start(wait="data")

    def expected(self, name):
        """What cluster ``name``'s own slurmrestd calls for, labelled with ``name``."""
        body = self.clusters[name].nodes_json()
        return expected.groups(body, "node", 9100, cluster_name=name)

    def served(self, name):
        """What the daemon serves for cluster ``name`` alone."""
        return self.daemon.targets("node&cluster=" + name)

    def matches(self, name):
        """NotReady until the daemon serves cluster ``name`` as its slurmrestd says."""
        served, wanted = self.served(name), self.expected(name)
        if served != wanted:
            raise support.NotReady("cluster {}: served {} expected {}".format(
                name, served, wanted))
        return served

    def test_both_served_and_one_outlives_the_other(self):
        """Each cluster's groups are its own and labelled with its name, the merged
        answer is both in config order; after c2411's slurmctld stops, a node drained
        on c2205 shows at its next polls while c2411's last data stays served."""
        for name in self.clusters:
            served = support.wait_for(lambda: self.matches(name), 8 * INTERVAL + 10,
                                      "cluster {} served".format(name))
            self.assertEqual({g["labels"]["__meta_slurm_cluster"] for g in served}, {name})
        merged = self.daemon.targets("node")
        self.assertEqual(merged, self.served("c2205") + self.served("c2411"))

        stale = self.served("c2411")
        [slurmctld] = [proc for name, proc in self.clusters["c2411"]._procs
                       if name == "slurmctld"]
        support.stop_popen(slurmctld, timeout=10)
        old = self.clusters["c2205"]
        old.update_node(REAL_NODE, "drain")
        self.addCleanup(old.resume, REAL_NODE)

        def drained():
            served = self.matches("c2205")
            states = {g["labels"]["__meta_state"] for g in served
                      if any(t.startswith(slurm_cluster.NODES[REAL_NODE][0] + ":")
                             for t in g["targets"])}
            if states != {"drain"}:
                raise support.NotReady("{} is {}".format(REAL_NODE, states))
        support.wait_for(drained, 8 * INTERVAL + 10, REAL_NODE + " drained on c2205")

        def c2411_failing():
            if "poll of cluster c2411 failed" not in self.daemon.log_text():
                raise support.NotReady("no failed poll of c2411 yet")
        support.wait_for(c2411_failing, 8 * INTERVAL + 30, "a failed poll of c2411")
        self.assertEqual(self.served("c2411"), stale)
        self.assertEqual(self.daemon.get("/targets?prom_job=node")[0], 200)
