"""
The reference decoder: slurmrestd's ``/nodes/`` body (any API version) -> NodeList.

Three steps that can be swapped separately: :func:`parse_body` (bytes -> plain
objects, stdlib :mod:`json`), :func:`read_envelope` (the top-level object -> the
raw node entries and the cluster name, or :class:`BadResponse` for ``errors`` / no
``nodes``) and :func:`build_node_list` (raw entries -> :class:`NodeList`, through
:func:`slurm_sd.pipeline.nodefields.normalize_node`).

A node without a non-empty string ``name`` is skipped, and so is a later node
with a name already seen (both counted in ``NodeList.skipped``).  The cluster name
is read only from the envelope (``meta.slurm.cluster``, v0.0.40+), never from a
node's ``cluster_name`` (the federation cluster, ``""`` outside a federation).
"""
import json

from slurm_sd.errors import BadResponse
from slurm_sd.pipeline.nodefields import normalize_node
from slurm_sd.pipeline.nodes import NodeList

_MAX_ERRORS_SHOWN = 3
_MAX_TEXT = 300


def decode_nodes(body):
    """
    Turn a slurmrestd ``/nodes/`` body into a :class:`NodeList`.

    :param body: the raw response body (bytes; a str is accepted too).
    :return: a :class:`NodeList`.
    :raises BadResponse: the body is not UTF-8 JSON, not a JSON object,
        carries a non-empty ``errors`` list, or has no ``nodes`` list.
    """
    raw_nodes, cluster_name = read_envelope(parse_body(body))
    return build_node_list(raw_nodes, cluster_name)


def parse_body(body):
    """
    Parse a body as UTF-8 JSON into plain Python objects.

    :raises BadResponse: not UTF-8, or not JSON.
    """
    if isinstance(body, str):
        text = body
    else:
        try:
            text = str(body, "utf-8")
        except UnicodeDecodeError as error:
            raise BadResponse(
                f"slurmrestd answered with a body that is not JSON (not UTF-8: "
                f"{error.reason} at byte {error.start})") from None
    if not text.strip():
        raise BadResponse("slurmrestd answered with a body that is not JSON "
                          "(an empty body)")
    try:
        return json.loads(text)
    except RecursionError:
        raise BadResponse("slurmrestd answered with a body that is not JSON "
                          "(nested too deeply)") from None
    except ValueError as error:
        # JSONDecodeError, and the int-digits limit of Python 3.11+.
        if text[:100].lstrip().startswith("<"):
            raise BadResponse("slurmrestd answered with a body that is not JSON (an HTML "
                              "or XML page: does slurmrestd.url point at slurmrestd?)") from None
        raise BadResponse(f"slurmrestd answered with a body that is not JSON "
                          f"({_clip(str(error))})") from None


def read_envelope(document):
    """
    Check a parsed response and take out what the nodes need.

    :param document: the parsed body.
    :return: ``(raw_nodes, cluster_name)``: the ``nodes`` list as found and
        ``meta.slurm.cluster`` (``""`` when absent).
    :raises BadResponse: not an object, non-empty ``errors``, no ``nodes`` list.
    """
    if not isinstance(document, dict):
        raise BadResponse(f"slurmrestd answered with JSON that is not an object "
                          f"({_kind(document)})")
    problems = describe_errors(document.get("errors"))
    if problems:
        raise BadResponse(f"slurmrestd reported errors: {problems}")
    raw_nodes = document.get("nodes")
    if not isinstance(raw_nodes, list):
        detail = "" if raw_nodes is None else f" (\"nodes\" is {_kind(raw_nodes)})"
        raise BadResponse(f'slurmrestd response has no "nodes" list{detail}')
    return raw_nodes, _cluster_name(document.get("meta"))


def describe_errors(errors):
    """
    Summarise a response's ``errors`` member in one line.

    Error objects carry ``error``, optionally ``description``, and a number
    under ``errno`` (v0.0.36 .. v0.0.38) or ``error_number`` (v0.0.39+).

    :return: e.g. ``"Unspecified error (errno -1)"``; ``""`` when there are
        no errors (missing, null or empty).
    """
    if isinstance(errors, (dict, str)) and errors:
        errors = [errors]
    if not isinstance(errors, list) or not errors:
        return ""
    shown = [_describe_error(entry) for entry in errors[:_MAX_ERRORS_SHOWN]]
    if len(errors) > _MAX_ERRORS_SHOWN:
        shown.append(f"and {len(errors) - _MAX_ERRORS_SHOWN} more")
    return "; ".join(shown)


def _describe_error(entry):
    """One error object as ``description: error (errno N)``."""
    if isinstance(entry, str):
        return _clip(entry) or "unknown error"
    if not isinstance(entry, dict):
        return "unknown error"
    parts = []
    for key in ("description", "error"):
        text = entry.get(key)
        if isinstance(text, str):
            text = _clip(text)
            if text and text not in parts:
                parts.append(text)
    message = ": ".join(parts) or "unknown error"
    for key in ("errno", "error_number"):
        number = entry.get(key)
        if isinstance(number, int) and not isinstance(number, bool):
            return f"{message} ({key} {number})"
    return message


def _cluster_name(meta):
    """``meta.slurm.cluster`` (v0.0.40+), or ``""``."""
    if isinstance(meta, dict):
        slurm = meta.get("slurm")
        if isinstance(slurm, dict):
            cluster = slurm.get("cluster")
            if isinstance(cluster, str):
                return cluster.strip()
    return ""


def build_node_list(raw_nodes, cluster_name, normalize=None):
    """
    Normalise raw node entries into a :class:`NodeList`.

    The first node of each name is kept; unusable and repeated entries are
    counted in ``skipped``.

    :param raw_nodes: an iterable of raw entries.
    :param normalize: turns one entry into a :class:`Node` or None;
        :func:`normalize_node` (for parsed JSON objects) by default.
    :raises BadResponse: when there are entries but none is usable: that is
        an answer we cannot read (a renamed field?), not an empty cluster, and
        serving it would drop every target.
    """
    normalize = normalize_node if normalize is None else normalize
    nodes = []
    seen = set()
    skipped = 0
    for raw in raw_nodes:
        node = normalize(raw)
        if node is None or node.name in seen:
            skipped += 1
            continue
        seen.add(node.name)
        nodes.append(node)
    if skipped and not nodes:
        raise BadResponse(f"slurmrestd listed {skipped} nodes but none has a usable "
                          f"name (is this an API version slurm-sd does not know?)")
    return NodeList(nodes=tuple(nodes), cluster_name=cluster_name, skipped=skipped)


def _clip(text):
    """One line of at most a few hundred characters."""
    text = " ".join(text.split())
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT - 3] + "..."
    return text


def _kind(value):
    """A short name for a JSON value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
