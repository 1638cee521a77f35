"""
A decoded node list as bytes and back: one cluster's entry of the state file
(:mod:`slurm_sd.service.state`).

MessagePack of arrays (each node its fields in :class:`~slurm_sd.pipeline.nodes.Node`
order), written by the decode worker and read back, typed, at start: a foreign or
damaged entry fails to decode instead of serving nonsense.
"""
from operator import attrgetter

import attr
import msgspec

from slurm_sd.pipeline.nodes import Node, NodeList

_FIELDS = tuple(field.name for field in attr.fields(Node))
_node_tuple = attrgetter(*_FIELDS)

_Text = str
_Texts = tuple[str, ...]
#: One node: the types of Node's fields, in order.
_NodeTuple = tuple[_Text, _Text, _Text, _Texts, _Text, _Texts, _Text, _Texts, _Texts,
                   _Text, _Text]


class _Entry(msgspec.Struct, array_like=True):
    """The stored form of a :class:`NodeList`."""

    cluster_name: str
    skipped: int
    nodes: list[_NodeTuple]


_decoder = msgspec.msgpack.Decoder(_Entry)


class StoredFormatError(ValueError):
    """Bytes that are not a stored node list."""


def encode_node_list(node_list):
    """
    ``node_list`` as bytes, or None when it holds text that cannot be stored (a
    lone surrogate, which UTF-8 cannot carry).
    """
    entry = _Entry(node_list.cluster_name, node_list.skipped,
                   [_node_tuple(node) for node in node_list.nodes])
    try:
        return msgspec.msgpack.encode(entry)
    except UnicodeEncodeError:
        return None


def decode_node_list(data):
    """
    The :class:`NodeList` that :func:`encode_node_list` stored in ``data``.

    :raises StoredFormatError: when ``data`` is not one.
    """
    try:
        entry = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise StoredFormatError(str(error))
    nodes = tuple(Node(*fields) for fields in entry.nodes)
    if any(not node.name for node in nodes):
        raise StoredFormatError("a node without a name")
    return NodeList(nodes=nodes, cluster_name=entry.cluster_name, skipped=entry.skipped)
