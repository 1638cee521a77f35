"""The floor: a bare msgspec decode of a node-list body into Structs of the needed fields.

    python benchmarks/floor.py BODY.json

Run in a fresh process (run.py starts one per measurement).  Reads the whole file into
memory, then times one ``msgspec.json.decode`` into Structs holding only the fields
service discovery needs (name, hostname, address, partitions, state, architecture,
features, active_features, gres, reason, meta.slurm.cluster), and prints one JSON line:

    {"read_s": ..., "decode_s": ..., "nodes": ..., "peak_rss_bytes": ...}

This is the least work any decoder must do; the daemon's refresh (fetch, decode, convert,
render, swap) is compared with it.
"""
import json
import resource
import sys
import time
from typing import Optional

import msgspec


class _Slurm(msgspec.Struct):
    """meta.slurm: only the cluster name."""

    cluster: str = ""


class _Meta(msgspec.Struct):
    """meta: only meta.slurm."""

    slurm: Optional[_Slurm] = None


class FloorNode(msgspec.Struct, gc=False):
    """The node fields service discovery needs."""

    name: str = ""
    hostname: str = ""
    address: str = ""
    partitions: list[str] = []
    state: list[str] = []
    architecture: str = ""
    features: list[str] = []
    active_features: list[str] = []
    gres: str = ""
    reason: str = ""


class FloorResponse(msgspec.Struct):
    """The response: nodes and meta."""

    nodes: list[FloorNode] = []
    meta: Optional[_Meta] = None


def main(argv=None):
    """Time one decode of the file named on the command line; print a JSON line."""
    path = (argv or sys.argv[1:])[0]
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        body = f.read()
    t1 = time.perf_counter()
    resp = msgspec.json.decode(body, type=FloorResponse)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"read_s": t1 - t0, "decode_s": t2 - t1, "nodes": len(resp.nodes),
                      "peak_rss_bytes": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
