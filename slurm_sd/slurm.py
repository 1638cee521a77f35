"""
What slurm-sd knows of Slurm, defined once: the node API versions it reads, the
base states and state flags of those versions, the coarse state classes of
``__meta_state`` and the node fields a target address can come from.
"""
import re
from functools import lru_cache

#: The oldest and newest node API versions slurm-sd reads (v0.0.36 has no node
#: ``partitions``; v0.0.46 is Slurm 26.11's).
OLDEST_MINOR = 37
NEWEST_MINOR = 46

#: The API versions whose node lists we can convert, oldest first.
SUPPORTED_VERSIONS = tuple(f"v0.0.{minor}" for minor in range(OLDEST_MINOR, NEWEST_MINOR + 1))

#: ``v0.0.37 to v0.0.46``, for messages.
VERSION_RANGE = f"{SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}"

VERSION_PATTERN = re.compile(r"v(\d+)\.(\d+)\.(\d+)\Z")

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

#: The coarse classes of ``__meta_state`` (what ``exclude_states`` takes).
STATE_CLASSES = ("active", "drain", "down", "powered_down", "unknown")

#: Node fields a target's host can come from (``target_address``).
TARGET_ADDRESSES = ("address", "hostname", "name")

# A GRES entry's socket or index suffix, e.g. ``(S:0-1)`` or ``(IDX:0,2)``.
_GRES_SUFFIX = re.compile(r"\([^)]*\)")

_POWER_FLAGS = frozenset({"powered_down", "powering_down", "powering_up"})
_DRAIN_FLAGS = frozenset({"drain", "fail", "power_drain"})
_UNKNOWN_STATES = frozenset({"unknown", "invalid", "error", "future"})


def version_key(version):
    """Sort key for ``v0.0.40``-style versions."""
    return tuple(int(part) for part in version[1:].split("."))


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


@lru_cache(maxsize=4096)
def gres_names(gres):
    """
    The GRES names in a node's ``gres`` string (SPEC 12): the name before the
    first ``:`` of each comma-separated entry, so ``gpu:a100:4(S:0-1),nic:1``
    has ``gpu`` and ``nic``; ``""`` and Slurm's ``(null)`` have none.
    """
    entries = _GRES_SUFFIX.sub("", gres or "").split(",")
    return frozenset(name for name in (entry.split(":", 1)[0].strip() for entry in entries)
                     if name)


#: What ``slurmrestd.url: scontrol:`` runs after the program: the node list as JSON,
#: the same body as slurmrestd's ``/nodes/`` (Slurm 23.11 and later).
SCONTROL_NODES_ARGS = ("show", "nodes", "--json")

#: The source that prints the node list on Slurm 22.05, whose scontrol has no
#: ``--json`` (its ``sinfo --json`` prints the ``/slurm/v0.0.38/nodes/`` body).
SINFO_JSON_SOURCE = "command:sinfo --json"
