"""
One raw node entry, of any API version v0.0.37 .. v0.0.46, as a :class:`Node`.

Version differences:

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
becomes ``""`` or ``()``.
"""
from slurm_sd.pipeline.nodes import Node
from slurm_sd.slurm import BASE_STATES, KNOWN_FLAGS

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
    JSON value, or None when missing); :mod:`slurm_sd.pipeline.fastdecode` uses it.
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
