"""Benchmark real Slurm as slurm-sd's source, with N cloud nodes (issue 15).

    python benchmarks/real_slurm.py [--releases 22.05,24.11,26.05] [--nodes 1000,10000]
                                    [--requests 3] [--out benchmarks/out/real_slurm.json]

As root, under ``flock /tmp/slurm-sd-integration.lock`` (it starts the integration tests'
clusters: 22.05 from this machine's packages, 24.11 and 26.05 in the roots that
``.ci/build-slurm-chroots`` builds). For each release and size it starts a cluster whose
one real node (cpu01) is joined by N ``State=CLOUD`` nodes (power saving with programs that
do nothing, ``PrivateData=cloud`` so that powered-down cloud nodes are listed at all, one
hostlist range per 65,536 nodes; 24.11 and 26.05 cap the node count at 65,536) and measures:

- slurmrestd (local auth, UNIX socket, the release's newest node API): the time of each of
  ``--requests`` successive ``GET /nodes/``, the body size, slurmrestd's RSS after each
  request and its peak (VmHWM);
- the command source (``scontrol show nodes --json``; ``sinfo --json`` on 22.05): the time
  and peak RSS of each of ``--requests`` runs;
- slurm-sd (``twistd -n slurm-sd``), once on that slurmrestd and once on the command
  source (``scontrol:`` through a ``chroot ROOT scontrol`` wrapper; ``command:sinfo
  --json`` on 22.05): the mean of its first two successful refreshes
  (``slurm_sd_poll_duration_seconds``) and the peak RSS of the daemon and of its workers
  and commands (sampled from /proc every 20 ms).

Prints a reST table and writes the results as JSON. Exit status 1 if a measurement failed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from run import MB, Sampler, machine, rst_table  # noqa: E402

from tests.integration import chroot_cluster, daemon, slurm_cluster, support  # noqa: E402

RANGE = 65536  # hosts in one hostlist range, at most
CAP = {"24.11": 65536, "26.05": 65536}  # releases that refuse more nodes (MaxNodeCount)
POWER_SAVE = """\
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=600
SuspendTimeout=60
ResumeTimeout=600
SuspendExcNodes=cpu01
PrivateData=cloud
NodeName=cpu01 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=500
"""


def cloud_lines(nodes):
    """slurm.conf lines for cpu01 plus ``nodes`` cloud nodes cn000001...; two partitions."""
    ranges = ["{:06d}-{:06d}".format(lo, min(lo + RANGE - 1, nodes))
              for lo in range(1, nodes + 1, RANGE)]
    lines = [POWER_SAVE]
    lines += ["NodeName=cn[{}] State=CLOUD CPUs=4 RealMemory=1000\n".format(r) for r in ranges]
    lines.append("PartitionName=debug Nodes=cpu01 Default=YES State=UP\n")
    lines.append("PartitionName=cloud Nodes=cn[{}] State=UP\n".format(",".join(ranges)))
    return "".join(lines)


def cluster_class(release):
    """The test cluster class of ``release``, changed to hold cloud nodes."""
    base = slurm_cluster.SlurmCluster if release == "22.05" else chroot_cluster.ChrootCluster

    class CloudCluster(base):
        """The test cluster, with cpu01 and ``cloud_nodes`` cloud nodes only."""

        start_timeout = 300  # slurmctld needs ~40 s to start with 100k nodes
        gres_conf = ""

        def node_lines(self):
            """cpu01, the cloud nodes and power saving."""
            return cloud_lines(self.cloud_nodes)

        def _settled(self):
            pass  # cloud nodes stay idle+cloud+powered_down: nothing to wait for
    return CloudCluster


def start_cluster(release, nodes):
    """A started cluster of ``release`` with ``nodes`` cloud nodes."""
    if release == "22.05":
        cls = cluster_class(release)
        cluster = cls(support.require(slurm_cluster.PROGRAMS + ("sinfo",), root=True))
    else:
        programs = support.require(chroot_cluster.HOST_PROGRAMS, root=True)
        cluster = cluster_class(release)(release, programs)
    cluster.cloud_nodes = nodes
    cluster.release = release
    cluster.start()
    return cluster


def _status_kb(pid, key):
    with open("/proc/{}/status".format(pid)) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _pid_of(cluster, name):
    return next(proc.pid for n, proc in cluster._procs if n == name)


def measure_slurmrestd(cluster, requests):
    """Time ``requests`` GETs of /nodes/; slurmrestd's RSS after each and its peak."""
    pid = _pid_of(cluster, "slurmrestd-local")
    url = "unix:{}:/slurm/{}/nodes/".format(cluster.unix_socket, cluster.api_version)
    times, rss, size = [], [], 0
    for _ in range(requests):
        start = time.monotonic()
        status, _, body = support.http_get(url, timeout=1800)
        times.append(time.monotonic() - start)
        if status != 200:
            raise AssertionError("slurmrestd answered {}: {!r}".format(status, body[:300]))
        size = len(body)
        count = len(json.loads(body)["nodes"])
        rss.append(_status_kb(pid, "VmRSS") * 1024 / MB)
    return {"seconds": times, "body_mb": size / MB, "nodes": count, "rss_mb": rss,
            "peak_mb": _status_kb(pid, "VmHWM") * 1024 / MB}


def measure_command(cluster, requests):
    """Time ``requests`` runs of the command source and read each one's peak RSS."""
    argv = (["sinfo", "--json"] if cluster.release == "22.05"
            else ["scontrol", "show", "nodes", "--json"])
    times, peaks = [], []
    for _ in range(requests):
        with tempfile.TemporaryFile() as out:
            start = time.monotonic()
            proc = subprocess.Popen(cluster.command(*argv), env=cluster.env, stdout=out,
                                    stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = status
            times.append(time.monotonic() - start)
            if status != 0:
                raise AssertionError("{} exited with status {}".format(argv, status))
        peaks.append(usage.ru_maxrss / 1024)  # kB
    return {"command": " ".join(argv), "seconds": times, "peak_mb": peaks}


def _polls(port):
    status, _, body = support.http_get("http://127.0.0.1:{}/metrics".format(port))
    text = body.decode()
    # One cluster, so one series; its labels are cluster= and result=, in either order.
    found = dict(re.findall(r'^slurm_sd_poll_duration_seconds_(sum|count)'
                            r'\{[^}]*result="success"[^}]*\} (\S+)$', text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def command_source(cluster):
    """The daemon's ``url`` for the release's command source, and the environment it
    needs: ``command:sinfo --json`` on 22.05, else ``scontrol:`` through the root."""
    env = {"SLURM_CONF": cluster.conf}
    if cluster.release == "22.05":
        return "command:sinfo --json", env
    return "scontrol:" + cluster.scontrol_wrapper(), env


def measure_daemon(cluster, work, timeout, url=None, env=None):
    """Run slurm-sd until two polls have succeeded: on the cluster's local slurmrestd, or
    on ``url`` (a command source) with ``env`` added to its environment."""
    port = support.free_port()
    work = tempfile.mkdtemp(prefix="slurm-sd-", dir=work)
    config = daemon.write_config(
        os.path.join(work, "config.yaml"), url=url or "unix:" + cluster.unix_socket,
        port=port, jobs=[{"node": {"port": 9100}}], interval=1,
        api_version="auto" if url else cluster.api_version)
    with open(config) as f:  # a timeout fit for the size (write_config's is 20 s)
        text = json.load(f)
    text["slurmrestd"]["timeout"] = timeout
    with open(config, "w") as f:
        json.dump(text, f)
    run = daemon.Daemon(config, port, os.path.join(work, "slurm-sd.log"), cwd=work, env=env)
    run.start(wait="listening")
    sampler = Sampler(run.proc.pid)
    sampler.start()
    try:
        def two_polls():
            count, total = _polls(port)
            if count < 2:
                raise support.NotReady("{} successful polls".format(count))
            return total / count
        seconds = support.wait_for(two_polls, 3 * timeout, "two successful polls", 0.5)
    finally:
        sampler.stop()
        run.stop()
    return {"refresh_seconds": seconds,
            "daemon_peak_mb": max(s[1] for s in sampler.samples) / MB,
            "workers_peak_mb": max(s[2] for s in sampler.samples) / MB}


def bench(release, nodes, args):
    """Every measurement of one release at one size."""
    if release in CAP:
        nodes = min(nodes, CAP[release] - 1)  # cpu01 counts too
    started = time.monotonic()
    cluster = start_cluster(release, nodes)
    result = {"release": release, "cloud_nodes": nodes,
              "start_seconds": time.monotonic() - started}
    try:
        result["slurmrestd"] = measure_slurmrestd(cluster, args.requests)
        result["command"] = measure_command(cluster, args.requests)
        timeout = max(60, int(10 * max(result["slurmrestd"]["seconds"])))
        result["slurm_sd"] = measure_daemon(cluster, cluster.path("run"), timeout)
        url, env = command_source(cluster)
        result["slurm_sd_command"] = dict(
            measure_daemon(cluster, cluster.path("run"), timeout, url, env), url=url)
    finally:
        cluster.stop()
    return result


def _range(values, fmt):
    return (fmt % min(values) if fmt % min(values) == fmt % max(values)
            else (fmt + "-" + fmt) % (min(values), max(values)))


def table(results):
    """The results as a reST table."""
    rows = []
    for r in results:
        rest, cmd, sd, sdc = (r["slurmrestd"], r["command"], r["slurm_sd"],
                              r["slurm_sd_command"])
        rows.append([
            r["release"], "{:,}".format(rest["nodes"]),
            _range(rest["seconds"], "%.2f") + " s", "%.1f MB" % rest["body_mb"],
            " / ".join("%.0f" % v for v in rest["rss_mb"]) + " MB (peak %.0f)" % rest["peak_mb"],
            cmd["command"].split()[0] + ": " + _range(cmd["seconds"], "%.2f") + " s, "
            + "%.0f MB" % max(cmd["peak_mb"]),
            "%.2f / %.2f s" % (sd["refresh_seconds"], sdc["refresh_seconds"]),
            "%.0f + %.0f / %.0f + %.0f MB" % (sd["daemon_peak_mb"], sd["workers_peak_mb"],
                                               sdc["daemon_peak_mb"], sdc["workers_peak_mb"]),
        ])
    return rst_table(["release", "nodes", "slurmrestd /nodes/", "body",
                      "slurmrestd RSS after 1/2/3", "command source (peak RSS)",
                      "slurm-sd refresh: slurmrestd / command",
                      "slurm-sd RSS, daemon + workers: slurmrestd / command"], rows)


def main(argv=None):
    """Run the benchmark; print the table; write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", default="22.05,24.11,26.05")
    parser.add_argument("--nodes", default="1000")
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "out", "real_slurm.json"))
    args = parser.parse_args(argv)
    results, failed = [], False
    for nodes in [int(n) for n in args.nodes.split(",")]:
        for release in args.releases.split(","):
            try:
                results.append(bench(release, nodes, args))
            except (AssertionError, OSError) as e:
                print("real_slurm: {} with {} nodes failed: {}".format(release, nodes, e))
                failed = True
    if results:
        print(table(results))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine(), "results": results}, f, indent=2)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
