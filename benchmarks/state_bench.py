"""Time the state file's steps at 1k-100k nodes, and what the reactor feels of them.

    .venv/bin/python benchmarks/state_bench.py [--sizes 1000,10000,100000] [--runs 3]

Per size (the v0.0.41 body of benchmarks/generate.py, decoded once):

- encode: the node list to its stored form (in the decode worker, per poll);
- write: compose + write_atomically (temporary file, fsync, rename, fsync of the
  directory), as the daemon's thread pool runs it;
- reactor stall: the longest gap of a 1 ms LoopingCall on the real reactor while
  that write (or the restore) runs in the thread pool (deferToThreadPool) -- the
  delay a /targets request could see -- against the same loop with nothing to do;
- restore: reading the file (in the thread pool), then decoding and rendering
  every job (in the decode worker, as a poll's body), as at start;
- file MB: also what the daemon keeps in memory per cluster for the next write.

Median of ``--runs``; prints a reST table and writes benchmarks/out/state.json.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path[:0] = [ROOT, HERE]

import generate  # noqa: E402
from run import JOBS_YAML, MB, rst_table  # noqa: E402
from twisted.internet import defer, reactor, task, threads  # noqa: E402

from slurm_sd.atomicfile import write_atomically  # noqa: E402
from slurm_sd.config.parse import parse  # noqa: E402
from slurm_sd.pipeline.build import build_snapshot  # noqa: E402
from slurm_sd.pipeline.fastdecode import decode_bytes  # noqa: E402
from slurm_sd.pipeline.stored import encode_node_list  # noqa: E402
from slurm_sd.service.state import StateFile  # noqa: E402
from slurm_sd.service.stateformat import Entry, compose  # noqa: E402


def timed(f, *args):
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = f(*args)
    return time.perf_counter() - started, result


def run_size(nodes, runs, directory):
    """Measure one size; return its result dict."""
    with open(generate.ensure(OUT, nodes), "rb") as handle:
        node_list = decode_bytes(handle.read())
    path = os.path.join(directory, "state")
    config = parse(f"slurmrestd: {{url: 'http://127.0.0.1:1'}}\nstate_file: {path}\n"
                   + JOBS_YAML)
    encode, write, restore, render = [], [], [], []
    for _ in range(runs):
        seconds, stored = timed(encode_node_list, node_list)
        encode.append(seconds)
        entry = Entry("default", time.time(), len(node_list.nodes), stored)
        write.append(timed(lambda: write_atomically(path, compose([entry])))[0])

        def read():
            out = []
            StateFile(lambda f, *a: defer.succeed(f(*a))).restore(
                path, ("default",)).addCallback(out.append)
            return out[0]["default"][1]
        seconds, data = timed(read)
        restore.append(seconds)
        render.append(timed(build_snapshot, data, config, None, True)[0])
    return {"nodes": nodes, "file_bytes": os.path.getsize(path),
            "encode_s": statistics.median(encode), "write_s": statistics.median(write),
            "restore_read_s": statistics.median(restore),
            "restore_render_s": statistics.median(render),
            "jobs": {"write": lambda: write_atomically(path, compose([entry])),
                     "restore": read}}


def main(argv=None):
    """Run every size, print the table, write out/state.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(OUT, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="slurm-sd-state-bench-", dir=OUT)
    results = []
    try:
        for nodes in (int(s) for s in args.sizes.split(",") if s):
            print(f"== {nodes} nodes", flush=True)
            results.append(run_size(nodes, args.runs, directory))
        # A reactor cannot be restarted: every stall figure comes from one run of it.
        gaps = _gaps([result.pop("jobs") for result in results], args.runs)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rows = []
    for result, gap in zip(results, gaps):
        for kind, seconds in gap.items():
            result[f"reactor_max_gap_{kind}_ms"] = seconds * 1e3
        rows.append((result["nodes"], "%.1f" % (result["file_bytes"] / MB),
                     "%.3f" % result["encode_s"], "%.3f" % result["write_s"],
                     "%.3f / %.3f" % (result["restore_read_s"], result["restore_render_s"]),
                     "%.1f / %.1f / %.1f" % (gap["idle"] * 1e3, gap["write"] * 1e3,
                                             gap["restore"] * 1e3)))
    print(rst_table(("nodes", "file MB", "encode s (worker)", "write s (thread)",
                     "restore s: read (thread) / render (worker)",
                     "reactor max gap ms: idle / writing / restoring"), rows))
    with open(os.path.join(OUT, "state.json"), "w") as handle:
        json.dump(results, handle, indent=1)


def _gaps(jobs, runs):
    """
    Per size ``{"idle": s, "write": s, "restore": s}``: the longest gap of a 1 ms
    LoopingCall during 0.3 s of nothing, and while each job runs in the thread pool;
    worst of ``runs``, all on one run of the real reactor.
    """
    plan = [(index, kind, job) for index, size_jobs in enumerate(jobs)
            for _ in range(runs) for kind, job in sorted(size_jobs.items())]
    out = [{"idle": 0.0, "write": 0.0, "restore": 0.0} for _ in jobs]
    ticks = []
    loop = task.LoopingCall(lambda: ticks.append(time.perf_counter()))

    def gap(index, kind):
        out[index][kind] = max(out[index][kind],
                               max((b - a for a, b in zip(ticks, ticks[1:])), default=0.0))
        ticks.clear()

    def step():
        if not plan:
            loop.stop()
            reactor.stop()
            return
        index, kind, job = plan.pop(0)
        ticks.clear()

        def run():
            gap(index, "idle")
            d = threads.deferToThreadPool(reactor, reactor.getThreadPool(), job)
            d.addBoth(lambda _: (gap(index, kind), step()))
        reactor.callLater(0.3, run)

    def begin():
        loop.start(0.001)
        step()

    if plan:
        reactor.callWhenRunning(begin)
        reactor.run()
    return out


if __name__ == "__main__":
    main()
