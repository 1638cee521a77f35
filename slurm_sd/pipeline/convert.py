"""
NodeList + Config -> Prometheus HTTP SD target groups, per job (SPEC 3).

``convert`` returns ``{job name: [group, ...]}`` in config job order; a group is
exactly ``{"targets": [str, ...], "labels": {str: str}}``.  It is pure.

Speed at 100,000 nodes: nodes come in few *shapes* (the same partitions, state,
flags and architecture: a few hundred in a big cluster), and all a job decides
about a node, except its target and its own labels, follows from its shape (a
``features`` filter is applied to the nodes of each shape, since active features
such as racks may differ from node to node).  So one pass over the nodes sorts them
into shapes and makes each node's ``host:`` string; the jobs then filter and group
shapes, not nodes.  Each shape sorts its ``host:`` strings once for all jobs, so a
``group_by: partition`` group's targets are its shapes' sorted lists with the port
appended, and the final sort only merges those runs.  A ``group_by: node`` job
sorts just the nodes it keeps.

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
from itertools import islice
from operator import attrgetter, eq

from slurm_sd.slurm import TARGET_ADDRESSES, full_state, gres_names, state_class

# The node fields that make a shape.
_SHAPE = attrgetter("partitions", "state", "flags", "architecture")

# Labels a group computes itself; job-wide labels never replace them.
_GROUP_LABELS = frozenset({
    "__meta_slurm_partition", "__meta_state", "__meta_architecture",
    "__meta_slurm_node_state", "__meta_slurm_node", "__meta_slurm_hostname",
    "__meta_slurm_address", "__meta_slurm_partitions", "__meta_slurm_features",
    "__meta_slurm_active_features", "__meta_slurm_gres", "__meta_slurm_reason",
})

_NOT_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def convert(node_list, config):
    """
    Build every job's target groups.

    :param node_list: a :class:`slurm_sd.pipeline.nodes.NodeList`.
    :param config: a :class:`slurm_sd.config.model.Config`.
    :return: ``{job name: [{"targets": [...], "labels": {...}}, ...]}`` in
        config job order; a job with no matching node maps to ``[]``.
    """
    cluster = config.cluster_name or node_list.cluster_name
    field = config.target_address
    if field not in TARGET_ADDRESSES:
        field = "address"
    shapes = _shapes(node_list.nodes, attrgetter(field))
    result = {}
    for job in config.jobs:
        common = _job_labels(job, cluster)
        if job.group_by == "node":
            result[job.name] = _node_groups(shapes, job, common)
        else:
            result[job.name] = _partition_groups(shapes, job, common)
    return result


class _Shape:
    """
    The nodes that share partitions, state, flags and architecture, and what
    follows from those for every job.

    :ivar nodes: the whole node list.
    :ivar hosts: every node's target without the port (``host:``), by position.
    :ivar indexes: the positions of this shape's nodes, ascending.
    """

    __slots__ = ("nodes", "hosts", "indexes", "partitions", "state_class", "state",
                 "architecture", "_sorted_hosts")

    def __init__(self, nodes, hosts, indexes, partitions, state_class_, state,
                 architecture):
        self.nodes = nodes
        self.hosts = hosts
        self.indexes = indexes
        self.partitions = partitions
        self.state_class = state_class_
        self.state = state
        self.architecture = architecture
        self._sorted_hosts = None

    def sorted_hosts(self):
        """The nodes' ``host:`` targets, sorted (worked out once, for all jobs)."""
        if self._sorted_hosts is None:
            hosts = self.hosts
            self._sorted_hosts = sorted([hosts[index] for index in self.indexes])
        return self._sorted_hosts

    def having(self, keep):
        """
        The shape of just the nodes for which ``keep(node)`` is true, or None if
        there are none.
        """
        nodes = self.nodes
        indexes = [index for index in self.indexes if keep(nodes[index])]
        if not indexes:
            return None
        return _Shape(nodes, self.hosts, indexes, self.partitions, self.state_class,
                      self.state, self.architecture)


def _shapes(nodes, get_host):
    """
    The nodes grouped in :class:`_Shape` objects, in order of first appearance.

    A node's host is the target field (``get_host``), else the first non-empty of
    address, hostname and name (never empty: decode drops nameless nodes).
    """
    by_key = {}
    get = by_key.get
    hosts = []
    add_host = hosts.append
    for index, node in enumerate(nodes):
        host = get_host(node) or node.address or node.hostname or node.name
        if ":" in host and host[0] != "[":
            add_host(f"[{host}]:")
        else:
            add_host(host + ":")
        key = _SHAPE(node)
        indexes = get(key)
        if indexes is None:
            by_key[key] = [index]
        else:
            indexes.append(index)
    return [_Shape(nodes, hosts, indexes, partitions, state_class(state, flags),
                   full_state(state, flags), architecture)
            for (partitions, state, flags, architecture), indexes in by_key.items()]


def _selected(shapes, job):
    """The shapes of the nodes ``job`` keeps by state class, features and GRES."""
    exclude = job.exclude_states
    selected = [shape for shape in shapes if shape.state_class not in exclude]
    # Per node: active features (racks, ...) and GRES may differ from node to node.
    features = frozenset(job.features or ())
    gres = frozenset(job.gres or ())
    if features or gres:
        def keep(node):
            """The node has every feature active and every GRES the job names."""
            return (features.issubset(node.active_features)
                    and gres.issubset(gres_names(node.gres)))
        selected = [kept for kept in (shape.having(keep) for shape in selected)
                    if kept is not None]
    return selected


def _list_label(names):
    """``,a,b,`` for a list of names, ``""`` for none."""
    return f",{','.join(names)}," if names else ""


def _partition_groups(shapes, job, common):
    """SPEC 3.1: one group per (partition, full state, architecture)."""
    wanted = frozenset(job.partitions) if job.partitions is not None else None
    no_partition = ("",)
    members = {}
    for shape in _selected(shapes, job):
        partitions = shape.partitions
        if wanted is not None:
            partitions = [p for p in partitions if p in wanted]
            if not partitions:
                continue
        elif not partitions:
            partitions = no_partition
        if len(partitions) > 1:
            partitions = dict.fromkeys(partitions)  # a partition listed twice counts once
        for partition in partitions:
            # The class follows from the full state, so it does not split groups.
            key = (partition, shape.state, shape.architecture, shape.state_class)
            members.setdefault(key, []).append(shape)
    port = f"{job.port}"
    result = []
    for key in sorted(members):
        partition, state, architecture, state_class_ = key
        targets = [host + port for shape in members[key] for host in shape.sorted_hosts()]
        if len(targets) > 1:
            # One sorted run per shape (almost always still sorted with the port
            # appended): the sort merges them.
            targets.sort()
            if any(map(eq, targets, islice(targets, 1, None))):
                # Nodes sharing a host: one target.
                targets = sorted(set(targets))
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


def _node_groups(shapes, job, common):
    """SPEC 3.2: one group per node, with the node's own labels."""
    wanted = frozenset(job.partitions) if job.partitions is not None else None
    rows = []
    for shape in _selected(shapes, job):
        if wanted is None or not wanted.isdisjoint(shape.partitions):
            nodes = shape.nodes
            rows += [(nodes[index].name, index, shape) for index in shape.indexes]
    # By name; on a tie (never: names are unique) in node-list order.
    rows.sort()
    port = f"{job.port}"
    # Partition and feature lists repeat from node to node: each is joined once.
    list_labels = {}
    result = []
    append = result.append
    for name, index, shape in rows:
        node = shape.nodes[index]
        labels = {"__meta_slurm_node": name, "__meta_state": shape.state_class}
        if shape.architecture:
            labels["__meta_architecture"] = shape.architecture
        labels["__meta_slurm_node_state"] = shape.state
        if node.hostname:
            labels["__meta_slurm_hostname"] = node.hostname
        if node.address:
            labels["__meta_slurm_address"] = node.address
        for name_, names in (("__meta_slurm_partitions", shape.partitions),
                             ("__meta_slurm_features", node.features),
                             ("__meta_slurm_active_features", node.active_features)):
            if names:
                label = list_labels.get(names)
                if label is None:
                    label = list_labels[names] = _list_label(names)
                labels[name_] = label
        if node.gres:
            labels["__meta_slurm_gres"] = node.gres
        if node.reason:
            labels["__meta_slurm_reason"] = node.reason
        labels.update(common)
        append({"targets": [shape.hosts[index] + port], "labels": labels})
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
