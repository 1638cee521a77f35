"""
A throw-away one-machine Slurm 22.05 cluster for the integration tests, built from Debian's
packages in a temporary directory (see shared/slurm-samples/README.md for why each setting).

One node, ``cpu01``, has a real slurmd; the others are only defined, each with its own
loopback ``NodeAddr`` (127.0.0.2, ...) and a port where nothing listens, so slurmctld marks
them NOT_RESPONDING a few seconds after start (``start`` waits for that, so node states
do not change on their own during the tests). Two slurmrestd serve the REST API: one with
``rest_auth/local`` on a UNIX socket, one with ``rest_auth/jwt`` on 127.0.0.1.
:meth:`SlurmCluster.stop` stops exactly the processes :meth:`SlurmCluster.start` started,
by process id.
"""
import pwd
import subprocess

from tests.integration import cluster_base
from tests.integration.cluster_base import CLUSTER_NAME, REAL_NODE, REST_USER  # noqa: F401

PROGRAMS = ("munged", "slurmctld", "slurmd", "slurmrestd", "scontrol")
API_VERSION = "v0.0.38"

# name -> (NodeAddr, partitions in slurm.conf order, gres); cpu01 runs the real slurmd.
NODES = {
    "cpu01": ("127.0.0.1", ("debug", "batch"), ""),
    "cpu02": ("127.0.0.2", ("batch",), ""),
    "cpu03": ("127.0.0.3", ("batch",), ""),
    "cpu04": ("127.0.0.4", ("batch",), ""),
    "gpu01": ("127.0.0.5", ("batch", "gpu"), "gpu:a100:4"),
    "gpu02": ("127.0.0.6", ("batch", "gpu"), "gpu:a100:4"),
    "gpu03": ("127.0.0.7", ("gpu",), "gpu:v100:2"),
    "gpu04": ("127.0.0.8", ("gpu",), "gpu:v100:2"),
}
# Defined with State=FUTURE: slurmctld knows it, the REST API never lists it.
FUTURE_NODE = ("big01", "127.0.0.9")

_NODE_LINES = """\
NodeName=cpu01 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=500 Features=cpu,intel Weight=1
NodeName=cpu0[2-4] NodeAddr=127.0.0.[2-4] Port={dead_port} CPUs=64 Boards=1 SocketsPerBoard=2 CoresPerSocket=16 ThreadsPerCore=2 RealMemory=257000 Features=cpu,amd,avx2 Weight=1
NodeName=gpu0[1-2] NodeAddr=127.0.0.[5-6] Port={dead_port} CPUs=32 Boards=1 SocketsPerBoard=2 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=515000 Features=gpu,a100,nvlink Gres=gpu:a100:4 Weight=10
NodeName=gpu0[3-4] NodeAddr=127.0.0.[7-8] Port={dead_port} CPUs=32 Boards=1 SocketsPerBoard=2 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=257000 Features=gpu,v100 Gres=gpu:v100:2 Weight=10
NodeName=big01 NodeAddr=127.0.0.9 Port={dead_port} CPUs=128 RealMemory=1000000 Features=cpu,bigmem State=FUTURE
PartitionName=debug Nodes=cpu01 Default=YES MaxTime=01:00:00 State=UP
PartitionName=batch Nodes=cpu0[1-4],gpu0[1-2],big01 MaxTime=7-00:00:00 State=UP
PartitionName=gpu Nodes=gpu0[1-4] MaxTime=2-00:00:00 State=UP
"""


def ensure_user(name):
    """Create system user ``name`` (no home, no shell) unless it exists; return its uid."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             "--user-group", name],
            capture_output=True, text=True,
        )
    try:
        return pwd.getpwnam(name).pw_uid  # also when a concurrent run created it first
    except KeyError:
        raise AssertionError("useradd {} failed: {}".format(name, proc.stderr.strip()))


class SlurmCluster(cluster_base.ClusterBase):
    """
    The 22.05 test cluster on this machine, in a directory under /tmp (see
    :class:`cluster_base.ClusterBase` for its life cycle and attributes).
    """

    api_version = API_VERSION
    # The packaged openapi/dbv0.0.3x plugins are fatal without slurmdbd.
    openapi_plugins = "openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36"

    def __init__(self, programs, slurmd_timeout=30):
        """:param programs: name -> path, from :func:`support.require`."""
        super().__init__(slurmd_timeout)
        self.programs = programs

    def _prepare(self):
        self.rest_uid = ensure_user(REST_USER)
        self._make_work("/tmp", self.rest_uid)
        self.conf_work = self.work

    def command(self, program, *args):
        """The installed ``program`` with ``args``."""
        return [self.programs[program], *args]

    def node_lines(self):
        """The nodes of :data:`NODES` and :data:`FUTURE_NODE`, and three partitions."""
        return _NODE_LINES
