"""
Decode, convert and render in one call: the whole process step, wherever it runs.

:class:`slurm_sd.pipeline.runner.WorkerPipeline` runs :func:`build_snapshot` in a child
process; :mod:`slurm_sd.pipeline.runner` also runs it here (:func:`~slurm_sd.pipeline.runner.process` (tests, ``slurm-sd
dump``).  ``body`` is what the fetch step gives: ``bytes``, or a
:class:`~slurm_sd.sources.spool.SpooledBody`, which is closed when done with.
"""
import os

import attr

from slurm_sd.errors import BadResponse
from slurm_sd.pipeline.convert import convert
from slurm_sd.pipeline.fastdecode import decode_bytes, decode_file
from slurm_sd.pipeline.render import count_states, render
from slurm_sd.pipeline.stored import (
    StoredFormatError,
    decode_node_list,
    encode_node_list,
)
from slurm_sd.sources.spool import SpooledBody


def build_snapshot(body, config, note=None, stored=False):
    """
    Decode, convert and render ``body``: the worker's whole job, and the in-process
    path (:func:`process`, tests, ``slurm-sd dump``).

    :param body: bytes, or a file: a descriptor or anything with ``fileno()`` (a
        :class:`~slurm_sd.sources.spool.SpooledBody`, an open binary file).
    :param config: the :class:`~slurm_sd.config.model.Config` whose jobs to build.
    :param note: called with a line worth logging, if any.
    :param stored: ``body`` is a node list as the state file keeps it
        (:mod:`slurm_sd.pipeline.stored`), not slurmrestd's JSON.
    :return: a :class:`~slurm_sd.pipeline.render.Snapshot`; with ``config.state_file``
        set, its ``stored`` holds the node list for the state file (encoded here, in
        the worker, not on the reactor).
    :raises BadResponse: when the body is unusable.
    """
    if stored:
        try:
            node_list = decode_node_list(_whole(body))
        except StoredFormatError as error:
            raise BadResponse(f"the stored node list is unreadable: {error}")
        return render_node_list(node_list, config)
    if isinstance(body, (bytes, bytearray, memoryview)):
        node_list = decode_bytes(body, note=note)
    else:
        node_list = decode_file(body, note=note)
    snapshot = render_node_list(node_list, config)
    if config.state_file is None:
        return snapshot
    stored = encode_node_list(node_list)
    if stored is None and note is not None:
        note("the node list holds text UTF-8 cannot carry; state_file not written")
    return attr.evolve(snapshot, stored=stored)


def render_node_list(node_list, config):
    """Convert and render a decoded node list with ``config``'s jobs."""
    return render(convert(node_list, config), node_count=len(node_list.nodes),
                  skipped=node_list.skipped, cluster_name=node_list.cluster_name,
                  states=count_states(node_list.nodes))


def _whole(body):
    """All of ``body``: bytes, or read from a descriptor / file (from offset 0)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    fd = body if isinstance(body, int) else body.fileno()
    pieces, offset = [], 0
    while True:
        piece = os.pread(fd, 1 << 20, offset)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        offset += len(piece)


def close_body(body):
    """Close ``body`` if it is a file."""
    if isinstance(body, SpooledBody):
        body.close()
