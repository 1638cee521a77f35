"""
NodeList + Config -> Prometheus HTTP SD target groups, per job (SPEC 3).

``convert`` returns ``{job name: [group, ...]}`` in config job order; a group is
exactly ``{"targets": [str, ...], "labels": {str: str}}``.  It is pure and makes
one pass over the nodes per job (plus one shared pass), so it stays fast at
100,000 nodes.

Decisions beyond the spec:

- An IPv6 address as target host is written in brackets: ``[fe80::1]:9100``.
- Per-group labels (``__meta_state``, ``__meta_slurm_partition``, ...) win over
  a ``params``/``labels`` entry of the same name; ``scheme``, ``metrics_path``
  and ``params`` win over static ``labels``.  Label names from ``params`` and
  ``labels`` are sanitised to ``[a-zA-Z_][a-zA-Z0-9_]*`` (the config already
  rejects bad ones; this is a second line of defence).
- ``group_by: node`` groups are sorted by node name; each lists all of the
  node's partitions in ``__meta_slurm_partitions``, also when the job selects
  some of them.
"""
import re
from operator import attrgetter

#: The coarse classes of ``__meta_state``, in the order they are tested.
STATE_CLASSES = ("down", "powered_down", "drain", "unknown", "active")

_POWER_FLAGS = frozenset({"powered_down", "powering_down", "powering_up"})
_DRAIN_FLAGS = frozenset({"drain", "fail", "power_drain"})
_UNKNOWN_STATES = frozenset({"unknown", "invalid", "error", "future"})

_TARGET_FIELDS = ("address", "hostname", "name")

# Labels a group computes itself; job-wide labels never replace them.
_GROUP_LABELS = frozenset({
    "__meta_slurm_partition", "__meta_state", "__meta_architecture",
    "__meta_slurm_node_state", "__meta_slurm_node", "__meta_slurm_hostname",
    "__meta_slurm_address", "__meta_slurm_partitions", "__meta_slurm_features",
    "__meta_slurm_active_features", "__meta_slurm_gres", "__meta_slurm_reason",
})

_NOT_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def state_class(state, flags):
    """
    The coarse class of a node state (SPEC 3.1), the first that applies.

    :param state: the lower-case base state, e.g. ``mixed``.
    :param flags: the lower-case flags, e.g. ``("drain",)``.
    :return: ``down`` (base down, or not_responding), ``powered_down``
        (powered_down, powering_down or powering_up), ``drain`` (drain,
        fail or power_drain), ``unknown`` (base unknown, invalid, error or
        future), else ``active``.
    """
    if state == "down":
        return "down"
    if flags:
        if "not_responding" in flags:
            return "down"
        if not _POWER_FLAGS.isdisjoint(flags):
            return "powered_down"
        if not _DRAIN_FLAGS.isdisjoint(flags):
            return "drain"
    if state in _UNKNOWN_STATES:
        return "unknown"
    return "active"


def full_state(state, flags):
    """
    The full state for ``__meta_slurm_node_state``: base first, then the flags
    in Slurm's order, joined by ``+`` (``unknown+drain+not_responding``).
    """
    if not flags:
        return state
    return "+".join((state, *flags))


def convert(node_list, config):
    """
    Build every job's target groups.

    :param node_list: a :class:`slurm_sd.nodes.NodeList`.
    :param config: a :class:`slurm_sd.config.Config`.
    :return: ``{job name: [{"targets": [...], "labels": {...}}, ...]}`` in
        config job order; a job with no matching node maps to ``[]``.
    """
    cluster = config.cluster_name or node_list.cluster_name
    field = config.target_address
    if field not in _TARGET_FIELDS:
        field = "address"
    prepared = _prepare(node_list.nodes, field)
    by_name = None
    result = {}
    for job in config.jobs:
        common = _job_labels(job, cluster)
        if job.group_by == "node":
            if by_name is None:
                by_name = sorted(prepared, key=_node_name)
            result[job.name] = _node_groups(by_name, job, common)
        else:
            result[job.name] = _partition_groups(prepared, job, common)
    return result


def _node_name(entry):
    """Sort key of a prepared entry: the node name."""
    return entry[0].name


def _prepare(nodes, field):
    """
    ``[(node, host, class, full state), ...]``, worked out once for all jobs.

    The host is the ``field`` attribute, else the first non-empty of address,
    hostname and name (never empty: decode drops nameless nodes).
    """
    states = {}
    get_host = attrgetter(field)
    prepared = []
    append = prepared.append
    for node in nodes:
        key = (node.state, node.flags)
        classified = states.get(key)
        if classified is None:
            classified = states[key] = (state_class(*key), full_state(*key))
        host = get_host(node) or node.address or node.hostname or node.name
        if ":" in host and host[0] != "[":
            host = f"[{host}]"
        append((node, host, classified[0], classified[1]))
    return prepared


def _partition_groups(prepared, job, common):
    """SPEC 3.1: one group per (partition, full state, architecture)."""
    exclude = job.exclude_states
    wanted = frozenset(job.partitions) if job.partitions is not None else None
    needed = frozenset(job.features) if job.features else None
    no_partition = ("",)
    groups = {}
    for node, host, state_class_, state in prepared:
        if state_class_ in exclude:
            continue
        if needed is not None and not needed.issubset(node.active_features):
            continue
        partitions = node.partitions
        if wanted is not None:
            partitions = [p for p in partitions if p in wanted]
            if not partitions:
                continue
        elif not partitions:
            partitions = no_partition
        architecture = node.architecture
        for partition in partitions:
            # The class follows from the full state, so it does not split groups.
            key = (partition, state, architecture, state_class_)
            hosts = groups.get(key)
            if hosts is None:
                groups[key] = {host}
            else:
                hosts.add(host)
    suffix = f":{job.port}"
    result = []
    for key in sorted(groups):
        partition, state, architecture, state_class_ = key
        targets = [host + suffix for host in groups[key]]
        targets.sort()
        labels = {}
        if partition:
            labels["__meta_slurm_partition"] = partition
        labels["__meta_state"] = state_class_
        if architecture:
            labels["__meta_architecture"] = architecture
        labels["__meta_slurm_node_state"] = state
        labels.update(common)
        result.append({"targets": targets, "labels": labels})
    return result


def _node_groups(prepared, job, common):
    """SPEC 3.2: one group per node, with the node's own labels."""
    exclude = job.exclude_states
    wanted = frozenset(job.partitions) if job.partitions is not None else None
    needed = frozenset(job.features) if job.features else None
    suffix = f":{job.port}"
    result = []
    append = result.append
    for node, host, state_class_, state in prepared:
        if state_class_ in exclude:
            continue
        if needed is not None and not needed.issubset(node.active_features):
            continue
        if wanted is not None and wanted.isdisjoint(node.partitions):
            continue
        labels = {"__meta_slurm_node": node.name, "__meta_state": state_class_}
        if node.architecture:
            labels["__meta_architecture"] = node.architecture
        labels["__meta_slurm_node_state"] = state
        if node.hostname:
            labels["__meta_slurm_hostname"] = node.hostname
        if node.address:
            labels["__meta_slurm_address"] = node.address
        if node.partitions:
            labels["__meta_slurm_partitions"] = f",{','.join(node.partitions)},"
        if node.features:
            labels["__meta_slurm_features"] = f",{','.join(node.features)},"
        if node.active_features:
            labels["__meta_slurm_active_features"] = f",{','.join(node.active_features)},"
        if node.gres:
            labels["__meta_slurm_gres"] = node.gres
        if node.reason:
            labels["__meta_slurm_reason"] = node.reason
        labels.update(common)
        append({"targets": [host + suffix], "labels": labels})
    return result


def _job_labels(job, cluster):
    """The labels every group of ``job`` carries, empty values left out."""
    labels = {}
    if cluster:
        labels["__meta_slurm_cluster"] = cluster
    labels["__meta_prom_job"] = job.name
    if job.scheme:
        labels["__scheme__"] = job.scheme
    if job.metrics_path:
        labels["__metrics_path__"] = job.metrics_path
    for name, value in job.params:
        name = label_name(f"__param_{name}")
        if name and value is not None and value != "":
            labels.setdefault(name, str(value))
    for name, value in job.labels:
        name = label_name(name)
        if name and value is not None and value != "":
            labels.setdefault(name, str(value))
    return {name: value for name, value in labels.items() if name not in _GROUP_LABELS}


def label_name(name):
    """
    ``name`` as a valid Prometheus label name: characters outside
    ``[a-zA-Z0-9_]`` become ``_`` and a leading digit gets a ``_`` prefix;
    ``""`` stays ``""`` (callers drop it).
    """
    name = _NOT_LABEL_CHARS.sub("_", str(name))
    if name[:1].isdigit():
        name = "_" + name
    return name
