"""
Capture real node lists from Slurm 24.11 and 26.05 into tests/fixtures (see its README.rst):
``python -m tests.integration.capture_releases [RELEASE ...] [--out DIR]``, as root, under
``flock /tmp/slurm-sd-integration.lock``, once ``.ci/build-slurm-chroots`` has built the
roots. For each release it starts the :mod:`chroot_cluster` test cluster and writes, byte
for byte as Slurm sent them:

- ``slurm-REL-VER-nodes.json``: ``GET /slurm/VER/nodes/`` (local auth) once the nodes
  without slurmd are NOT_RESPONDING, for every version the release serves;
- ``slurm-REL-VER-nodes-drain-down.json``: the same after a job on cpu01,
  ``scontrol update nodename=cpu01 state=drain reason=...`` and ``nodename=cpu02
  state=down reason=...``;
- ``slurm-REL-scontrol-show-nodes.json`` and ``...-drain-down.json``: ``scontrol show nodes
  --json`` (default data_parser, the newest) in both states.
"""
import argparse
import os
import subprocess
import sys

from tests.integration import chroot_cluster, support
from tests.integration.cluster_base import REAL_NODE

FIXTURES = os.path.join(support.REPO_ROOT, "tests", "fixtures")
REASON = "slurm-sd fixture capture"


def _save(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print("wrote {} ({} bytes)".format(name, len(data)))


def _scontrol_json(cluster):
    proc = subprocess.run(cluster.command("scontrol", "show", "nodes", "--json"),
                          env=cluster.env, capture_output=True, timeout=60, check=True)
    return proc.stdout


def _capture(cluster, out, suffix):
    prefix = "slurm-" + cluster.release
    for version in cluster.versions:
        _save(out, "{}-{}-nodes{}.json".format(prefix, version, suffix),
              cluster.nodes_raw(version))
    _save(out, "{}-scontrol-show-nodes{}.json".format(prefix, suffix), _scontrol_json(cluster))


def _job_running(cluster):
    out = cluster.scontrol("-o", "show", "node", REAL_NODE)
    if "CPUAlloc=0" in out:
        raise support.NotReady("no CPU allocated on " + REAL_NODE)


def capture(release, out):
    """Start ``release``'s test cluster, capture both states into ``out``, stop it."""
    programs = support.require(chroot_cluster.HOST_PROGRAMS, root=True)
    cluster = chroot_cluster.ChrootCluster(release, programs)
    cluster.start()
    try:
        _capture(cluster, out, "")
        subprocess.run(cluster.command(
            "sbatch", "--job-name=capture", "--ntasks=1", "--output=/dev/null",
            "--chdir=" + cluster.conf_work, "--wrap", "sleep 600"),
            env=cluster.env, check=True, capture_output=True, timeout=60)
        support.wait_for(lambda: _job_running(cluster), 30, "the job to run on " + REAL_NODE)
        cluster.update_node(REAL_NODE, "drain", REASON)
        cluster.update_node("cpu02", "down", REASON)
        _capture(cluster, out, "-drain-down")
        subprocess.run(cluster.command("scancel", "--name=capture"), env=cluster.env,
                       timeout=60)
    finally:
        cluster.stop()


def main(argv=None):
    """Parse the command line and capture each release named (default: all)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("releases", nargs="*", default=sorted(chroot_cluster.RELEASES))
    parser.add_argument("--out", default=FIXTURES)
    args = parser.parse_args(argv)
    for release in args.releases:
        capture(release, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
