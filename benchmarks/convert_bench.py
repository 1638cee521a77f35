"""Time :func:`slurm_sd.pipeline.convert.convert` alone on a generated node list.

    .venv/bin/python benchmarks/convert_bench.py [--nodes 100000] [--repeat 7]

Generates (or reuses) the benchmark body (benchmarks/generate.py), decodes it once with
:mod:`slurm_sd.pipeline.fastdecode`, then times ``convert`` with the benchmark's jobs (run.py's
CONFIG: ``node``; ``dcgm`` on the GPU partitions, ``group_by: node``; ``ipmi`` without
powered-down nodes), garbage collection off as in the worker.  Prints the first call's
time (the worker's case: one call, in fresh memory), the best and the median, and the
decode and :func:`slurm_sd.pipeline.render.render` times for scale.
"""
import argparse
import gc
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import generate  # noqa: E402
from run import JOBS_YAML  # noqa: E402  (the same jobs as the full benchmark)

from slurm_sd.config.parse import parse  # noqa: E402
from slurm_sd.pipeline.convert import convert  # noqa: E402
from slurm_sd.pipeline.fastdecode import decode_file  # noqa: E402
from slurm_sd.pipeline.render import render  # noqa: E402

CONFIG = """\
slurmrestd:
  url: unix:/nonexistent.sock
  api_version: v0.0.41
""" + JOBS_YAML


def main(argv=None):
    """Command line: decode once, time ``convert`` ``--repeat`` times, print the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    config = parse(CONFIG)
    path = generate.ensure(os.path.join(HERE, "out"), args.nodes)
    gc.disable()
    with open(path, "rb") as body:
        t0 = time.perf_counter()
        node_list = decode_file(body)
        decode_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        groups = convert(node_list, config)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    render(groups, node_count=len(node_list.nodes))
    render_s = time.perf_counter() - t0
    print("%d nodes: decode %.3f s, convert first %.3f s best %.3f s median %.3f s, "
          "render %.3f s" % (len(node_list.nodes), decode_s, times[0], min(times),
                             statistics.median(times), render_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
