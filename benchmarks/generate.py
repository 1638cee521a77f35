"""Generate deterministic synthetic slurmrestd ``GET /slurm/v0.0.41/nodes/`` bodies.

The node objects carry every field of the v0.0.41 node schema
(``/work/shared/slurm-openapi/v0.0.41.json``, as a 25.x slurmrestd sends it), in the
schema's order, with ``{"set", "infinite", "number"}`` objects where the schema has them,
pretty-printed the way slurmrestd prints (two-space indent, ``\\/`` for ``/``, empty
containers on two lines).  About 2.5 KB a node.

The cluster: about 40 % cloud nodes (mostly ``IDLE+CLOUD+POWERED_DOWN``), CPU, high-memory
and GPU nodes (``gres`` on GPU nodes), eight partitions with some nodes in two, mixed
states (IDLE, MIXED, ALLOCATED, DOWN+NOT_RESPONDING, IDLE+DRAIN, ...).  The same size always
gives the same bytes.

    python benchmarks/generate.py 100000 [--out benchmarks/out/nodes-100000.json]
"""
import argparse
import json
import os
import random
import sys

#: Bump when the output changes, so that cached bodies are regenerated.
GENERATOR_VERSION = 2

CLUSTER = "bench"
NOW = 1795321341
OS = "Linux 5.14.0-503.26.1.el9_5.x86_64 #1 SMP PREEMPT_DYNAMIC Fri Feb 14 05:12:44 EST 2025"
SLURM_VERSION = "25.11.7"

# (kind, share of the cluster); the rest of the node's look follows from its kind.
KINDS = (("cloud", 0.40), ("cpu", 0.35), ("highmem", 0.10), ("gpu", 0.15))

# States as slurmrestd v0.0.41 writes them: base first, then flags in Slurm's table order
# (RESERVED, UNDRAIN, CLOUD, RESUME, DRAIN, COMPLETING, NOT_RESPONDING, POWERED_DOWN, ...).
ONPREM_STATES = (
    (("IDLE",), 0.28),
    (("MIXED",), 0.25),
    (("ALLOCATED",), 0.33),
    (("ALLOCATED", "COMPLETING"), 0.02),
    (("IDLE", "DRAIN"), 0.03),
    (("MIXED", "DRAIN"), 0.02),
    (("DOWN", "NOT_RESPONDING"), 0.02),
    (("DOWN", "DRAIN", "NOT_RESPONDING"), 0.01),
    (("IDLE", "RESERVED"), 0.02),
    (("UNKNOWN", "NOT_RESPONDING"), 0.01),
    (("IDLE", "MAINTENANCE"), 0.01),
)
CLOUD_STATES = (
    (("IDLE", "CLOUD", "POWERED_DOWN"), 0.80),
    (("IDLE", "CLOUD"), 0.05),
    (("MIXED", "CLOUD"), 0.04),
    (("ALLOCATED", "CLOUD"), 0.05),
    (("IDLE", "CLOUD", "POWERING_UP"), 0.03),
    (("IDLE", "CLOUD", "POWERING_DOWN"), 0.02),
    (("DOWN", "CLOUD", "NOT_RESPONDING", "POWERED_DOWN"), 0.01),
)
REASONS = {
    "DRAIN": "Kill task failed",
    "DOWN": "Not responding",
    "MAINTENANCE": "firmware update CHG0012345",
    "UNKNOWN": "Not responding",
}


def _pick(rng, weighted):
    """Return one value of ``weighted`` ((value, weight) pairs), chosen with ``rng``."""
    x = rng.random() * sum(w for _, w in weighted)
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


def _nv(number, set_=True, infinite=False):
    """Return a v0.0.41 number object."""
    return {"set": set_, "infinite": infinite, "number": number}


def _counts(nodes):
    """Split ``nodes`` into per-kind counts (deterministic, sums to ``nodes``)."""
    counts = [int(nodes * share) for _, share in KINDS]
    counts[1] += nodes - sum(counts)
    return [(kind, n) for (kind, _), n in zip(KINDS, counts)]


def _node(rng, kind, index, serial):
    """Return one node object (a dict in schema order)."""
    if kind == "cloud":
        name = "cloud%05d" % index
        state = _pick(rng, CLOUD_STATES)
        partitions = ["cloud"] if index % 4 else ["cloud", "cloud-spot"]
        features = ["cloud", "c6i.8xlarge", "x86_64", "zone-%s" % "abc"[index % 3]]
        cpus, cores, sockets, threads, memory = 32, 16, 1, 2, 63000
        arch = "x86_64" if "POWERED_DOWN" not in state else ""
        gres = ""
    elif kind == "gpu":
        name = "gpu%05d" % index
        state = _pick(rng, ONPREM_STATES)
        partitions = ["gpu"] if index % 5 else ["gpu", "gpu-interactive"]
        model = "a100" if index % 3 else "h100"
        features = ["gpu", model, "amd", "epyc", "zen3", "avx2", "ib-hdr", "nvlink"]
        cpus, cores, sockets, threads, memory = 128, 32, 2, 2, 1024000
        arch = "x86_64"
        gres = "gpu:%s:8(S:0-1),nvme:1" % model
    elif kind == "highmem":
        name = "mem%05d" % index
        state = _pick(rng, ONPREM_STATES)
        partitions = ["highmem"] if index % 6 else ["highmem", "long"]
        features = ["cpu", "amd", "epyc", "zen4", "avx512", "ib-ndr", "highmem"]
        cpus, cores, sockets, threads, memory = 192, 48, 2, 2, 2048000
        arch = "x86_64"
        gres = ""
    else:
        name = "cpu%05d" % index
        state = _pick(rng, ONPREM_STATES)
        if index % 10 == 0:
            partitions = ["batch", "debug"]
        elif index % 7 == 0:
            partitions = ["batch", "long"]
        else:
            partitions = ["batch"]
        arm = index % 8 == 0
        features = (
            ["cpu", "arm", "neoverse-v2", "sve2", "ib-ndr"]
            if arm
            else ["cpu", "intel", "sapphirerapids", "avx512", "ib-ndr", "local-ssd"]
        )
        cpus, cores, sockets, threads, memory = 112, 56, 2, 1, 512000
        arch = "aarch64" if arm else "x86_64"
        gres = ""
    base = state[0]
    powered_down = "POWERED_DOWN" in state
    if base == "ALLOCATED":
        alloc = cpus
    elif base == "MIXED":
        alloc = cpus // 2 + rng.randrange(cpus // 4)
    else:
        alloc = 0
    alloc_mem = alloc * (memory // cpus)
    reason = ""
    for flag in state:
        if flag in REASONS and (flag != "DOWN" or "NOT_RESPONDING" in state):
            reason = REASONS[flag]
            break
    booted = 0 if powered_down else NOW - 86400 * (1 + index % 90) - rng.randrange(86400)
    address = "10.%d.%d.%d" % (serial >> 16 & 255, serial >> 8 & 255, serial & 255)
    return {
        "architecture": arch,
        "burstbuffer_network_address": "",
        "boards": 1,
        "boot_time": _nv(booted),
        "cluster_name": "",
        "cores": cores,
        "specialized_cores": 0,
        "cpu_binding": 0,
        "cpu_load": 0 if powered_down else rng.randrange(cpus * 100),
        "free_mem": _nv(0, set_=False) if powered_down else _nv(memory - alloc_mem - 4000),
        "cpus": cpus,
        "effective_cpus": cpus,
        "specialized_cpus": "",
        "energy": {
            "average_watts": 0,
            "base_consumed_energy": 0,
            "consumed_energy": 0,
            "current_watts": _nv(0),
            "previous_consumed_energy": 0,
            "last_collected": 0,
        },
        "external_sensors": {},
        "extra": "",
        "power": {},
        "features": features,
        "active_features": [] if powered_down else features,
        "gpu_spec": "",
        "gres": gres,
        "gres_drained": "N/A",
        "gres_used": gres.replace(":8(S:0-1)", ":%d(IDX:0-%d)" % (alloc * 8 // cpus, max(0, alloc * 8 // cpus - 1)))
        if gres
        else "",
        "instance_id": "i-%017x" % (0x0A000000000000 + index) if kind == "cloud" and not powered_down else "",
        "instance_type": "c6i.8xlarge" if kind == "cloud" else "",
        "last_busy": _nv(NOW - rng.randrange(3600)),
        "mcs_label": "",
        "specialized_memory": 0,
        "name": name,
        "next_state_after_reboot": ["INVALID"],
        "address": address,
        "hostname": name,
        "state": list(state),
        "operating_system": "" if powered_down else OS,
        "owner": "",
        "partitions": partitions,
        "port": 6818,
        "real_memory": memory,
        "res_cores_per_gpu": 0,
        "comment": "",
        "reason": reason,
        "reason_changed_at": _nv(NOW - 3600 * (index % 48) if reason else 0),
        "reason_set_by_user": "root" if reason else "",
        "resume_after": _nv(0),
        "reservation": "maint" if "RESERVED" in state else "",
        "alloc_memory": alloc_mem,
        "alloc_cpus": alloc,
        "alloc_idle_cpus": cpus - alloc,
        "tres_used": "cpu=%d,mem=%dM" % (alloc, alloc_mem) if alloc else "",
        "tres_weighted": float(alloc),
        "slurmd_start_time": _nv(booted + 40 if booted else 0),
        "sockets": sockets,
        "threads": threads,
        "temporary_disk": 0 if kind == "cloud" else 1800000,
        "weight": {"cloud": 100, "cpu": 1, "highmem": 10, "gpu": 20}[kind],
        "tres": "cpu=%d,mem=%dM,billing=%d%s"
        % (cpus, memory, cpus, ",gres/gpu=8" if kind == "gpu" else ""),
        "version": "" if powered_down else SLURM_VERSION,
    }


def _scalar(value):
    """Format a JSON scalar as slurmrestd does (``/`` escaped as ``\\/``)."""
    if isinstance(value, str):
        return json.dumps(value).replace("/", "\\/")
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)


def _pretty(value, indent, out):
    """Append ``value`` to ``out`` (list of str) in slurmrestd's pretty-printed layout."""
    if isinstance(value, dict):
        inner = indent + "  "
        out.append("{\n")
        items = list(value.items())
        for i, (key, item) in enumerate(items):
            out.append('%s"%s": ' % (inner, key))
            _pretty(item, inner, out)
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(value, list):
        inner = indent + "  "
        out.append("[\n")
        for i, item in enumerate(value):
            out.append(inner)
            _pretty(item, inner, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(indent + "]")
    else:
        out.append(_scalar(value))


def _tail():
    """Return the text after the nodes array: last_update, meta, errors, warnings."""
    rest = {
        "last_update": _nv(NOW),
        "meta": {
            "plugin": {
                "type": "openapi/slurmctld",
                "name": "Slurm OpenAPI slurmctld",
                "data_parser": "data_parser/v0.0.41",
                "accounting_storage": "accounting_storage/slurmdbd",
            },
            "client": {
                "source": "unix:/run/slurmrestd/slurmrestd.sock(fd:9)",
                "user": "root",
                "group": "root",
            },
            "command": [],
            "slurm": {
                "version": {"major": "25", "micro": "7", "minor": "11"},
                "release": SLURM_VERSION,
                "cluster": CLUSTER,
            },
        },
        "errors": [],
        "warnings": [],
    }
    out = []
    _pretty(rest, "", out)
    # Drop the outer braces: these keys continue the top-level object.
    return "".join(out)[2:-2]


def generate(nodes, path):
    """Write a body with ``nodes`` nodes to ``path`` (atomically); return its size in bytes."""
    rng = random.Random(nodes * 7919 + GENERATOR_VERSION)
    tmp = "%s.tmp%d" % (path, os.getpid())
    serial = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write('{\n  "nodes": [\n')
        first = True
        for kind, count in _counts(nodes):
            for index in range(1, count + 1):
                serial += 1
                out = [] if first else [",\n"]
                first = False
                out.append("    ")
                _pretty(_node(rng, kind, index, serial), "    ", out)
                f.write("".join(out))
        f.write("\n  ],\n" if nodes else "  ],\n")
        f.write(_tail())
        f.write("\n}\n")
    os.replace(tmp, path)
    return os.path.getsize(path)


def body_path(out_dir, nodes):
    """Return the cached body path for ``nodes`` under ``out_dir``."""
    return os.path.join(out_dir, "nodes-v0.0.41-%d-g%d.json" % (nodes, GENERATOR_VERSION))


def ensure(out_dir, nodes):
    """Return the path of a body with ``nodes`` nodes, generating it unless cached."""
    os.makedirs(out_dir, exist_ok=True)
    path = body_path(out_dir, nodes)
    if not os.path.exists(path):
        generate(nodes, path)
    return path


def main(argv=None):
    """Command line: generate one body and print its path, size and bytes per node."""
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nodes", type=int)
    parser.add_argument("--out", help="output file (default: cached under benchmarks/out/)")
    args = parser.parse_args(argv)
    if args.out:
        size = generate(args.nodes, args.out)
        path = args.out
    else:
        path = ensure(os.path.join(here, "out"), args.nodes)
        size = os.path.getsize(path)
    print("%s %d bytes %.0f bytes/node" % (path, size, size / max(1, args.nodes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
