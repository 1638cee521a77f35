"""Benchmark several clusters in one daemon against one big cluster (issue 12, SPEC 10).

    .venv/bin/python benchmarks/clusters.py [--layouts 10x10000,1x100000] [--rounds 3]
                                            [--interval 40] [--out FILE]

For each layout CLUSTERSxNODES: one stand-in slurmrestd per cluster (each serving the same
generated v0.0.41 body of NODES nodes over its own UNIX socket, benchmarks/generate.py),
one daemon (``twistd -n slurm-sd``) with a ``clusters:`` entry per stand-in (a single
``slurmrestd`` section for one cluster), all polling every ``--interval`` s, so that every
cluster refreshes at the same moment, the worst case. While ``--rounds`` rounds of polls
run, a client (benchmarks/client.py) asks ``/targets?prom_job=node`` (every cluster's
groups) in a tight keep-alive loop, and /proc is sampled every 20 ms for the RSS of the
daemon and its decode workers. Reported per layout: each cluster's refresh time (fetch to
served, as the daemon logs it), the /targets latency during the run, the peak RSS of the
daemon and its workers together, and the daemon's RSS when idle between rounds.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import generate  # noqa: E402
from run import (  # noqa: E402
    JOBS_YAML,
    MB,
    OUT,
    PY,
    ROOT,
    TWISTD,
    Procs,
    Sampler,
    daemon_env,
    free_port,
    latency_stats,
    machine,
    start_standin,
)

#: A daemon log line of a good poll, with or without a cluster name.
POLL_OK = re.compile(r"poll of (?:cluster (?P<cluster>\S+) at )?\S+ ok in (?P<s>[0-9.]+) s")


def config_text(sockets, interval, port):
    """The daemon's configuration for stand-ins on ``sockets`` (one cluster each)."""
    source = "{url: 'unix:%s', api_version: v0.0.41, timeout: 300}"
    if len(sockets) == 1:
        head = "slurmrestd: %s\ncluster_name: c01\n" % (source % sockets[0],)
    else:
        head = "clusters:\n" + "".join(
            "  - name: c%02d\n    slurmrestd: %s\n" % (i + 1, source % sock)
            for i, sock in enumerate(sockets))
    return head + "interval: %s\nlisten: tcp:%d:interface=127.0.0.1\n%s" % (
        interval, port, JOBS_YAML)


def polls(log_path):
    """``{cluster: [seconds, ...]}`` of the good polls in the daemon's log so far."""
    out = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            match = POLL_OK.search(line)
            if match:
                out.setdefault(match.group("cluster") or "c01", []).append(
                    float(match.group("s")))
    return out


def run_layout(clusters, nodes, args, procs):
    """Benchmark ``clusters`` clusters of ``nodes`` nodes each; return the result dict."""
    body = generate.ensure(OUT, nodes)
    print("== %d x %d nodes (body %.1f MB)" % (clusters, nodes, os.path.getsize(body) / MB),
          flush=True)
    work = tempfile.mkdtemp(prefix="slurm-sd-bench-clusters-")
    sockets = [os.path.join(work, "c%02d.sock" % (i + 1)) for i in range(clusters)]
    port = free_port()
    cfg = os.path.join(work, "slurm-sd.yaml")
    with open(cfg, "w") as f:
        f.write(config_text(sockets, args.interval, port))
    log_path = os.path.join(OUT, "daemon-clusters-%dx%d.log" % (clusters, nodes))
    client_out = os.path.join(OUT, "client-clusters-%dx%d.json" % (clusters, nodes))
    sampler = None
    try:
        for sock in sockets:
            start_standin(procs, sock, body)
        with open(log_path, "w") as log:
            daemon = procs.start("daemon", TWISTD + ["--config", cfg], cwd=ROOT,
                                 env=daemon_env(), stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(daemon.pid)
        sampler.start()
        started = time.monotonic()
        client = procs.start("client", [
            PY, os.path.join(HERE, "client.py"), "--port", str(port),
            "--path", "/targets?prom_job=node", "--out", client_out,
            "--duration", str(args.rounds * args.interval + 600)],
            stdout=subprocess.DEVNULL)
        deadline = started + 60 + args.rounds * (args.interval + 300)
        idle_rss = []
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError("daemon exited with %s; see %s" % (daemon.returncode,
                                                                     log_path))
            done = polls(log_path)
            if len(done) == clusters and min(map(len, done.values())) >= args.rounds:
                break
            time.sleep(0.5)
            # The daemon alone, no worker running: idle between rounds.
            if sampler.samples and sampler.samples[-1][4] == 0 and done:
                idle_rss.append(sampler.samples[-1][1])
        else:
            raise RuntimeError("fewer than %d rounds before the deadline; see %s" % (
                args.rounds, log_path))
        procs.stop(client)
        sampler.stop()
        procs.stop(daemon)
        with open(client_out) as f:
            polled = json.load(f)
    finally:
        if sampler is not None:
            sampler.stop()
        procs.stop_all()
        for path in sockets + [cfg]:
            try:
                os.unlink(path)
            except OSError:
                pass
        os.rmdir(work)
    refresh = [s for times in done.values() for s in times[:args.rounds]]
    statuses = {}
    for code in polled["status"]:
        statuses[str(code)] = statuses.get(str(code), 0) + 1
    result = {
        "clusters": clusters, "nodes_per_cluster": nodes,
        "refresh_s": {"median": statistics.median(refresh), "max": max(refresh),
                      "all": refresh},
        "targets_latency": latency_stats([lat for lat, code in zip(
            polled["latency"], polled["status"]) if code == 200]),
        "statuses": statuses,
        "peak_rss_mb": max(s[1] + s[2] for s in sampler.samples) / MB,
        "idle_rss_mb": (statistics.median(idle_rss) if idle_rss
                        else sampler.samples[-1][1]) / MB,
    }
    print("   refresh per cluster: median %.2f s, max %.2f s; /targets p50 %.1f ms, p99 "
          "%.1f ms, max %.1f ms; RSS peak %.0f MB, idle %.0f MB" % (
              result["refresh_s"]["median"], result["refresh_s"]["max"],
              result["targets_latency"]["p50_ms"], result["targets_latency"]["p99_ms"],
              result["targets_latency"]["max_ms"], result["peak_rss_mb"],
              result["idle_rss_mb"]), flush=True)
    return result


def table(results):
    """The results as a reST table."""
    header = ("layout", "refresh median s", "refresh max s", "/targets p50 ms",
              "p99 ms", "max ms", "peak RSS MB", "idle RSS MB")
    rows = [("%d x %d" % (r["clusters"], r["nodes_per_cluster"]),
             "%.2f" % r["refresh_s"]["median"], "%.2f" % r["refresh_s"]["max"],
             "%.1f" % r["targets_latency"]["p50_ms"], "%.1f" % r["targets_latency"]["p99_ms"],
             "%.1f" % r["targets_latency"]["max_ms"], "%.0f" % r["peak_rss_mb"],
             "%.0f" % r["idle_rss_mb"]) for r in results]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in lines + [rule]) + "\n"


def main():
    """Run every layout; print the table; exit status 1 if a request was not a 200."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="10x10000,1x100000",
                        help="comma-separated CLUSTERSxNODES (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=40)
    parser.add_argument("--out", default=os.path.join(OUT, "clusters.json"))
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    procs = Procs()
    results = []
    try:
        for layout in args.layouts.split(","):
            clusters, nodes = (int(x) for x in layout.lower().split("x"))
            results.append(run_layout(clusters, nodes, args, procs))
    finally:
        procs.stop_all()
    with open(args.out, "w") as f:
        json.dump({"machine": machine(), "results": results}, f, indent=2)
    print(table(results))
    # After the first data, every answer must be a 200 (503 only before it).
    bad = [r for r in results if set(r["statuses"]) - {"200", "503"}]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
