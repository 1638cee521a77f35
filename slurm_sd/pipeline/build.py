"""
Decode, convert and render in one call: the whole process step, wherever it runs.

:class:`slurm_sd.pipeline.runner.WorkerPipeline` runs :func:`build_snapshot` in a child
process; :mod:`slurm_sd.pipeline.runner` also runs it here (:func:`~slurm_sd.pipeline.runner.process` (tests, ``slurm-sd
dump``).  ``body`` is what the fetch step gives: ``bytes``, or a
:class:`~slurm_sd.sources.spool.SpooledBody`, which is closed when done with.
"""
from slurm_sd.pipeline.convert import convert
from slurm_sd.pipeline.fastdecode import decode_bytes, decode_file
from slurm_sd.pipeline.render import count_states, render
from slurm_sd.sources.spool import SpooledBody


def build_snapshot(body, config, note=None):
    """
    Decode, convert and render ``body``: the worker's whole job, and the in-process
    path (:func:`process`, tests, ``slurm-sd dump``).

    :param body: bytes, or a file: a descriptor or anything with ``fileno()`` (a
        :class:`~slurm_sd.sources.spool.SpooledBody`, an open binary file).
    :param config: the :class:`~slurm_sd.config.model.Config` whose jobs to build.
    :param note: called with a line worth logging, if any.
    :return: a :class:`~slurm_sd.pipeline.render.Snapshot`.
    :raises BadResponse: when the body is unusable.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        node_list = decode_bytes(body, note=note)
    else:
        node_list = decode_file(body, note=note)
    return render(convert(node_list, config), node_count=len(node_list.nodes),
                  skipped=node_list.skipped, cluster_name=node_list.cluster_name,
                  states=count_states(node_list.nodes))


def close_body(body):
    """Close ``body`` if it is a file."""
    if isinstance(body, SpooledBody):
        body.close()
