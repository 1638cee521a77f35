"""
The node list as plain frozen records, whatever API version it came from.

:mod:`slurm_sd.pipeline.decode` builds these from slurmrestd's JSON; :mod:`slurm_sd.pipeline.convert`
reads them.  Nothing here knows about JSON or API versions.
"""
import attr


@attr.s(frozen=True, slots=True)
class Node:
    """
    One Slurm node, reduced to what service discovery needs.

    Text fields are ``""`` and list fields ``()`` when Slurm left them out.

    :ivar name: NodeName, never empty.
    :ivar hostname: NodeHostname.
    :ivar address: NodeAddr.
    :ivar partitions: partition names, in Slurm's order.
    :ivar state: lower-case base state: ``idle``, ``allocated``, ``mixed``,
        ``down``, ``error``, ``future``, ``unknown`` or ``invalid``.
    :ivar flags: lower-case state flags in Slurm's order, e.g.
        ``("drain", "not_responding")``.
    :ivar architecture: e.g. ``x86_64``; ``""`` before the node registered.
    :ivar features: configured features.
    :ivar active_features: currently active features.
    :ivar gres: the generic resources string, e.g. ``gpu:a100:4``.
    :ivar reason: why the node is down or drained.
    """

    name = attr.ib()
    hostname = attr.ib(default="")
    address = attr.ib(default="")
    partitions = attr.ib(default=())
    state = attr.ib(default="unknown")
    flags = attr.ib(default=())
    architecture = attr.ib(default="")
    features = attr.ib(default=())
    active_features = attr.ib(default=())
    gres = attr.ib(default="")
    reason = attr.ib(default="")


@attr.s(frozen=True, slots=True)
class NodeList:
    """
    The nodes of one slurmrestd answer.

    :ivar nodes: the usable nodes, in Slurm's order, names unique.
    :ivar cluster_name: the cluster named in the response, ``""`` if none.
    :ivar skipped: how many node entries were dropped (no usable name, or a
        name seen before).
    """

    nodes = attr.ib(default=())
    cluster_name = attr.ib(default="")
    skipped = attr.ib(default=0)
