"""
The step between fetch and cache: decode, convert and render a node list.

The poller only ever calls :func:`process`, so where this work runs (here, on
the reactor thread, or in another process) is a change to this module alone.
"""
from twisted.internet import defer

from slurm_sd.convert import convert
from slurm_sd.decode import decode_nodes
from slurm_sd.render import render


def build_snapshot(body, config):
    """
    Decode, convert and render ``body`` synchronously.

    :param body: the raw ``/nodes/`` answer.
    :param config: the :class:`~slurm_sd.config.Config` whose jobs to build.
    :return: a :class:`~slurm_sd.render.Snapshot`.
    :raises slurm_sd.errors.BadResponse: when the body is unusable.
    """
    node_list = decode_nodes(body)
    return render(convert(node_list, config), node_count=len(node_list.nodes),
                  skipped=node_list.skipped, cluster_name=node_list.cluster_name)


def process(body, config):
    """:func:`build_snapshot` as a Deferred, the shape the poller expects."""
    return defer.maybeDeferred(build_snapshot, body, config)
