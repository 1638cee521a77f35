"""
slurmrestd's ``/nodes/`` body (any API version v0.0.37 .. v0.0.45) -> NodeList.

All knowledge of the JSON envelope and of the per-version node shapes lives
here, in three steps that can be swapped separately:

1. :func:`parse_body`: bytes -> plain Python objects (stdlib :mod:`json`);
2. :func:`read_envelope`: the top-level object -> the raw node entries and
   the cluster name, or :class:`BadResponse` for ``errors`` / no ``nodes``;
3. :func:`normalize_node`: one raw node dict -> :class:`Node` (pure, lenient).

Version differences handled in :func:`normalize_node`:

- ``state``: a lower-case base-state string plus an upper-case ``state_flags``
  list (v0.0.37/38), or one upper-case list, base state first (v0.0.39+).
  Both shapes are accepted in every version, in any letter case.  The first
  known base state is the base; a missing or unrecognised one (an unknown
  word in the first slot) becomes ``unknown``.  Flags keep Slurm's order,
  lower-cased, without repeats; flags we do not know are kept if they look
  like a flag name (``[a-z_][a-z0-9_]*``), so that they show in the full
  state, and dropped otherwise (Slurm prints unnamed bits as ``?``).  An
  sinfo-like ``"idle+drain"`` string is read as base and flags.
- ``features``/``active_features``/``partitions``: a comma string (<= v0.0.38)
  or a list of strings (v0.0.39+); either way names are split on commas,
  stripped, empty ones and non-strings dropped, duplicates dropped.
- ``{"set", "infinite", "number"}`` objects (v0.0.39+) only appear in numeric
  fields, none of which we read.

Leniency: unknown keys are ignored; a missing, null or wrong-typed field
becomes ``""`` or ``()``; a node without a non-empty string ``name`` is
skipped, and so is a later node with a name already seen (both counted in
``NodeList.skipped``).  The cluster name is read only from the envelope
(``meta.slurm.cluster``, v0.0.40+), never from a node's ``cluster_name``
(which is the federation cluster and ``""`` outside a federation).
"""
import json

from slurm_sd.errors import BadResponse
from slurm_sd.nodes import Node, NodeList

#: The base states of every API version, lower case.
BASE_STATES = ("unknown", "down", "idle", "allocated", "error", "mixed", "future",
               "invalid")

#: State flags named in the v0.0.37 .. v0.0.45 specs and state tables, lower case.
KNOWN_FLAGS = (
    "reserved", "undrain", "cloud", "resume", "drain", "completing",
    "not_responding", "powered_down", "fail", "powering_up", "maintenance",
    "reboot_requested", "reboot_canceled", "powering_down", "dynamic_future",
    "reboot_issued", "planned", "invalid_reg", "power_down", "power_up",
    "power_drain", "power_down_asap", "power_down_force", "dynamic_norm",
    "external", "blocked", "perfctrs", "dynamic",
)

# Exact spellings seen on the wire -> our spelling; anything else takes the
# slow path in _state().
_BASE = {spelling: state for state in BASE_STATES
         for spelling in (state, state.upper())}
_FLAGS = {spelling: flag for flag in KNOWN_FLAGS
          for spelling in (flag, flag.upper())}

# Results of _names() and _state() by their raw input; cleared when full.
_NAMES_CACHE = {}
_STATE_CACHE = {}
_CACHE_SIZE = 4096

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


def normalize_node(raw):
    """
    One raw node object, of any API version, as a :class:`Node`.

    :return: the node, or None when ``raw`` is not an object or has no
        usable (non-empty string) ``name``.
    """
    if not isinstance(raw, dict):
        return None
    get = raw.get
    return node_from_fields(
        get("name"), get("hostname"), get("address"), get("partitions"), get("state"),
        get("state_flags"), get("architecture"), get("features"), get("active_features"),
        get("gres"), get("reason"))


def node_from_fields(name, hostname, address, partitions, state, state_flags,
                     architecture, features, active_features, gres, reason):
    """
    :func:`normalize_node` for a node whose fields were taken out already (any
    JSON value, or None when missing); :mod:`slurm_sd.fastdecode` uses it.
    """
    if not isinstance(name, str):
        return None
    name = name.strip()
    if not name:
        return None
    state, flags = _state(state, state_flags)
    return Node(
        name,
        hostname if isinstance(hostname, str) else "",
        address if isinstance(address, str) else "",
        _names(partitions),
        state,
        flags,
        architecture if isinstance(architecture, str) else "",
        _names(features),
        _names(active_features),
        gres if isinstance(gres, str) else "",
        reason if isinstance(reason, str) else "",
    )


def _names(value):
    """A comma string or a list of strings as a tuple of distinct non-empty names."""
    if isinstance(value, str):
        key = value
    elif isinstance(value, list):
        key = tuple(value)
    else:
        return ()
    return _cached(_NAMES_CACHE, key, _parse_names, value)


def _parse_names(value):
    """The uncached work of :func:`_names`."""
    if isinstance(value, list):
        value = ",".join([item for item in value if isinstance(item, str)])
    names = [name.strip() for name in value.split(",")]
    return tuple(dict.fromkeys([name for name in names if name]))


def _state(state, state_flags):
    """
    ``(base, flags)`` from ``state`` (a string, or a list with the base state
    first) and, for v0.0.37/38, ``state_flags``.
    """
    if isinstance(state, list):
        state = tuple(state)
    elif not isinstance(state, str):
        state = None
    state_flags = tuple(state_flags) if isinstance(state_flags, list) else ()
    return _cached(_STATE_CACHE, (state, state_flags), _parse_state, state, state_flags)


def _parse_state(state, state_flags):
    """The uncached work of :func:`_state`; ``state`` is a str, tuple or None."""
    if isinstance(state, str):
        # v0.0.37/38 send the base alone; tolerate an sinfo-like "idle+drain".
        tokens = state.split("+")
    else:
        tokens = state or ()
    base = None
    flags = []
    for index, token in enumerate(tokens):
        known = _BASE.get(token) if isinstance(token, str) else None
        if known is None:
            # The first slot holds the base state: an unknown word there is a
            # base state we do not know, not a flag.
            known = _flag(token, flags, unknown_ok=index > 0)
            if known is None:
                continue
        if base is None:
            base = known
        # A second base state in one node is meaningless: dropped.
    for token in state_flags:
        _flag(token, flags, unknown_ok=True)
    return base or "unknown", tuple(dict.fromkeys(flags))


def _cached(cache, key, compute, *args):
    """
    ``compute(*args)``, remembered under ``key`` in ``cache``.

    Nodes of one cluster share a handful of feature lists, partition lists
    and states, so this saves time and lets them share the same tuples.
    """
    try:
        return cache[key]
    except KeyError:
        pass
    except TypeError:
        # Unhashable junk inside a list (e.g. an object): not worth caching.
        return compute(*args)
    result = compute(*args)
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = result
    return result


def _flag(token, flags, unknown_ok):
    """
    Append ``token`` to ``flags`` if it is a flag; return its base state
    if it is a base state in an unusual spelling, else None.

    :param unknown_ok: also take flags we do not know, if they look like one.
    """
    if not isinstance(token, str):
        return None
    flag = _FLAGS.get(token)
    if flag is None:
        token = token.strip().lower()
        if token in _BASE:
            return _BASE[token]
        flag = _FLAGS.get(token)
        if flag is None:
            if not (unknown_ok and token.isascii() and token.isidentifier()):
                return None  # "?" (a bit the release has no name for), junk
            flag = token
    flags.append(flag)
    return None


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
