"""
What slurm-sd should serve for a node list, written from SPEC 3.1 independently of the
daemon's code, for both node shapes: v0.0.37/v0.0.38 (lower-case ``state`` plus upper-case
``state_flags``, Slurm 22.05) and v0.0.39+ (one upper-case ``state`` list, base first).
"""


def base_and_flags(node):
    """A node's lower-case base state and list of flags, from either shape."""
    state = node["state"]
    if isinstance(state, list):
        return state[0].lower(), [f.lower() for f in state[1:]]
    return state.lower(), [f.lower() for f in node.get("state_flags") or []]


def full_state(node):
    """``mixed+drain``: base state then flags, lower case, in Slurm's order."""
    base, flags = base_and_flags(node)
    return "+".join([base] + flags)


def state_class(node):
    """The coarse ``__meta_state`` class of SPEC 3.1, the first that applies."""
    base, flags = base_and_flags(node)
    flags = set(flags)
    if base == "down" or "not_responding" in flags:
        return "down"
    if flags & {"powered_down", "powering_down", "powering_up"}:
        return "powered_down"
    if flags & {"drain", "fail", "power_drain"}:
        return "drain"
    if base in ("unknown", "invalid", "error", "future"):
        return "unknown"
    return "active"


def host(node):
    """Target host with ``target_address: address``: the first non-empty of address,
    hostname, name."""
    return node.get("address") or node.get("hostname") or node["name"]


def groups(body, job, port, partitions=None, cluster_name=None):
    """
    The SD groups for one job (``group_by: partition``): one per (partition, full state,
    architecture), sorted that way, targets distinct and sorted, empty labels left out.

    :param body: the decoded ``/nodes/`` answer.
    :param partitions: the job's partition selector, or None for all.
    :param cluster_name: the config's ``cluster_name``; else v0.0.40+'s
        ``meta.slurm.cluster`` names the cluster.
    """
    if not cluster_name:
        cluster_name = ((body.get("meta") or {}).get("slurm") or {}).get("cluster")
    found = {}  # (partition, full state, architecture) -> set of targets
    classes = {}  # the same key -> coarse class (a function of the full state)
    for node in body["nodes"]:
        for partition in node.get("partitions") or [""]:
            if partitions is not None and partition not in partitions:
                continue
            key = (partition, full_state(node), node.get("architecture") or "")
            found.setdefault(key, set()).add("{}:{}".format(host(node), port))
            classes[key] = state_class(node)
    out = []
    for key in sorted(found):
        partition, state, arch = key
        labels = {
            "__meta_slurm_partition": partition,
            "__meta_state": classes[key],
            "__meta_architecture": arch,
            "__meta_slurm_node_state": state,
            "__meta_slurm_cluster": cluster_name or "",
            "__meta_prom_job": job,
        }
        out.append({"targets": sorted(found[key]),
                    "labels": {k: v for k, v in labels.items() if v}})
    return out


def flat(group_list):
    """
    The targets Prometheus should discover from ``group_list``: a sorted list of
    ``(address, ((label, value), ...))``, one per target per group.
    """
    return sorted(
        (target, tuple(sorted(group["labels"].items())))
        for group in group_list for target in group["targets"]
    )


def node_groups(group_list, address):
    """The groups whose targets include ``address`` (``host:port``)."""
    return [g for g in group_list if address in g["targets"]]
