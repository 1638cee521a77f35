"""
A throw-away one-machine cluster of a newer Slurm release, run from Debian's own packages
inside a root that ``.ci/build-slurm-chroots`` built (trixie: 24.11, sid: 26.05); recipe
and pitfalls in shared/slurm-chroot/README.md.

``cpu01`` runs the real slurmd; ``cpu02`` and ``gpu01`` (``Gres=gpu:fake:2``, counted in
gres.conf without device files) are only defined, each with its own loopback address and a
dead port, so they turn NOT_RESPONDING. Every daemon runs as ``chroot ROOT PROGRAM``
(chroot execs it, so the pid we hold is the daemon's own); /proc is mounted in the root
while the cluster runs and unmounted by :meth:`ChrootCluster.stop`.
"""
import os
import subprocess

from tests.integration import cluster_base, support
from tests.integration.slurm_conf import write_file

CACHE = os.environ.get("SLURM_SD_CHROOTS", "/var/cache/slurm-sd-chroots")
HOST_PROGRAMS = ("chroot", "mount", "umount")

#: release -> (Debian suite, the node API versions its slurmrestd serves, oldest first).
RELEASES = {
    "24.11": ("trixie", ("v0.0.40", "v0.0.41", "v0.0.42")),
    "26.05": ("sid", ("v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45")),
}

# name -> (NodeAddr, partitions in slurm.conf order, gres); cpu01 runs the real slurmd.
NODES = {
    "cpu01": ("127.0.0.1", ("debug", "batch"), ""),
    "cpu02": ("127.0.0.2", ("batch",), ""),
    "gpu01": ("127.0.0.3", ("batch", "gpu"), "gpu:fake:2"),
}

_NODE_LINES = """\
NodeName=cpu01 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=500 Features=cpu,intel Weight=1
NodeName=cpu02 NodeAddr=127.0.0.2 Port={dead_port} CPUs=64 RealMemory=257000 Features=cpu,amd Weight=1
NodeName=gpu01 NodeAddr=127.0.0.3 Port={dead_port} CPUs=32 RealMemory=515000 Features=gpu,fake Gres=gpu:fake:2 Weight=10
PartitionName=debug Nodes=cpu01 Default=YES MaxTime=01:00:00 State=UP
PartitionName=batch Nodes=cpu0[1-2],gpu01 MaxTime=7-00:00:00 State=UP
PartitionName=gpu Nodes=gpu01 MaxTime=2-00:00:00 State=UP
"""
# No device behind the fake GPUs: a count is enough for slurmctld.
_GRES_CONF = "NodeName=gpu01 Name=gpu Type=fake Count=2\n"
# 24.11+ always initialise the cgroup interface; there is no cgroup to use here.
_CGROUP_CONF = "CgroupPlugin=disabled\n"


def root_of(release):
    """The root directory that holds ``release``; skips (fails under CI=true) unless
    ``.ci/build-slurm-chroots`` has built it."""
    suite, _ = RELEASES[release]
    root = os.path.join(CACHE, suite)
    if not os.path.isfile(os.path.join(root, ".slurm-sd-root")):
        support.unavailable("no Debian {} root with Slurm {} in {}: build it with "
                            "`sudo bash .ci/build-slurm-chroots`".format(suite, release, CACHE))
    return root


def _uid_in(root, name):
    with open(os.path.join(root, "etc/passwd")) as f:
        for line in f:
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
    raise AssertionError("no user {} in {}/etc/passwd".format(name, root))


class ChrootCluster(cluster_base.ClusterBase):
    """
    The test cluster of one newer release (see :class:`cluster_base.ClusterBase` for its
    life cycle and attributes; ``root`` is the Debian root, ``release`` e.g. ``24.11``).
    """

    openapi_plugins = "openapi/slurmctld"
    gres_conf = _GRES_CONF

    def __init__(self, release, programs, slurmd_timeout=30):
        """:param programs: the host's ``chroot``, ``mount`` and ``umount``."""
        super().__init__(slurmd_timeout)
        self.release = release
        self.root = root_of(release)
        self.versions = RELEASES[release][1]
        self.api_version = self.versions[-1]  # what api_version: auto picks
        self.programs = programs
        self._proc_mounted = False

    def _prepare(self):
        # Our own /proc mount (stacked on any other), undone by stop (pitfall 1).
        subprocess.run([self.programs["mount"], "-t", "proc", "proc",
                        os.path.join(self.root, "proc")], check=True)
        self._proc_mounted = True
        with open("/etc/hosts", "rb") as f:  # else localhost does not resolve (pitfall 2)
            write_file(os.path.join(self.root, "etc/hosts"), f.read(), 0o644)
        self._make_work(os.path.join(self.root, "srv"), _uid_in(self.root, cluster_base.REST_USER))
        self.conf_work = self.inside(self.work)

    def _write_extra_conf(self):
        if self.gres_conf:
            write_file(self.path("etc/gres.conf"), self.gres_conf.encode(), 0o644)
        write_file(self.path("etc/cgroup.conf"), _CGROUP_CONF.encode(), 0o644)

    def _base_env(self):
        # The root's own programs, found on the root's PATH.
        return dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")

    def command(self, program, *args):
        """``chroot ROOT program args``."""
        return [self.programs["chroot"], self.root, program, *args]

    def node_lines(self):
        """The nodes of :data:`NODES` and three partitions."""
        return _NODE_LINES

    def stop(self):
        """Stop every process (by pid), remove the work directory, unmount /proc."""
        super().stop()
        if self._proc_mounted:
            subprocess.run([self.programs["umount"], os.path.join(self.root, "proc")],
                           check=True)
            self._proc_mounted = False

    def scontrol_wrapper(self):
        """An executable ``chroot ROOT scontrol "$@"`` in the work directory (made once),
        for ``slurmrestd.url: scontrol:PATH``; it needs ``SLURM_CONF`` (:attr:`conf`)."""
        path = self.path("run/scontrol")
        if not os.path.exists(path):
            write_file(path, '#!/bin/sh\nexec {} {} /usr/bin/scontrol "$@"\n'.format(
                self.programs["chroot"], self.root).encode(), 0o755)
        return path

    def inside(self, path):
        """A path as seen from inside the root."""
        return "/" + os.path.relpath(path, self.root)


def starter(release):
    """A function that starts and returns ``release``'s test cluster (for
    :class:`shared.Shared`)."""
    def start():
        programs = support.require(HOST_PROGRAMS + ("twistd",), root=True)
        cluster = ChrootCluster(release, programs)
        cluster.start()
        return cluster
    return start
