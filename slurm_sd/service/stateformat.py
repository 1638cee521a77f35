"""
The state file's format (``state_file``, SPEC 11; :mod:`slurm_sd.service.state`
reads and writes it).

The file is one JSON header line, then one entry per cluster, back to back::

    {"format": "slurm-sd-state", "version": 1, "clusters": [
      {"name": "hpc1", "fetched_at": 1764750000.5, "nodes": 100000,
       "bytes": 9876543, "crc32": 123456789}]}\\n
    <entry of hpc1: the node list, slurm_sd.pipeline.stored>

The header can be read without the entries (``head -1``), a cut-off file is
seen by its length, a damaged entry by its CRC. It holds node lists only: no
token, no password, no config.
"""
import json
import zlib

import attr

#: The header's ``format``: what a foreign file lacks.
FORMAT = "slurm-sd-state"
#: The format version written; a higher one is from a newer slurm-sd and ignored.
VERSION = 1
#: A header line longer than this is not ours.
_MAX_HEADER = 1024 * 1024


class StateFormatError(ValueError):
    """A file that is not a usable state file; ``str()`` says why, in a few words."""


@attr.s(frozen=True, slots=True)
class Entry:
    """
    One cluster's stored node list: ``data`` as :mod:`slurm_sd.pipeline.stored`
    wrote it, or None once it is in the file at ``where`` (``(offset, size, crc)``):
    the daemon does not keep a copy of what the file holds.
    """

    name = attr.ib()
    fetched_at = attr.ib()
    nodes = attr.ib()
    data = attr.ib(repr=False)
    where = attr.ib(default=None, eq=False)


def compose(entries):
    """The state file's bytes for ``entries`` (a list of :class:`Entry` with data)."""
    return b"".join(place(entries)[0])


def place(entries):
    """
    ``(the file's bytes as a list of pieces, the entries as placed in it, without
    their data)``: pieces, so that a big file is not copied once more to be written.
    """
    crcs = [zlib.crc32(entry.data) for entry in entries]
    header = json.dumps({"format": FORMAT, "version": VERSION, "clusters": [
        {"name": entry.name, "fetched_at": entry.fetched_at, "nodes": entry.nodes,
         "bytes": len(entry.data), "crc32": crc} for entry, crc in zip(entries, crcs)]}
    ).encode("utf-8") + b"\n"
    placed, offset = [], len(header)
    for entry, crc in zip(entries, crcs):
        placed.append(attr.evolve(entry, data=None, where=(offset, len(entry.data), crc)))
        offset += len(entry.data)
    return [header] + [entry.data for entry in entries], placed


def parse(data):
    """
    The entries of a state file's bytes.

    :raises StateFormatError: when ``data`` is foreign, newer, cut off or damaged.
    """
    end = data.find(b"\n", 0, _MAX_HEADER)
    try:
        header = json.loads(data[:end]) if end > 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StateFormatError("not a slurm-sd state file")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StateFormatError(f"format version {version!r}, written by a newer "
                               f"slurm-sd (this one reads version {VERSION})")
    try:
        clusters = [(c["name"], float(c["fetched_at"]), int(c["nodes"]), int(c["bytes"]),
                     int(c["crc32"])) for c in header["clusters"]]
    except (KeyError, TypeError, ValueError):
        raise StateFormatError("its header is damaged")
    offset = end + 1
    if len(data) != offset + sum(size for _, _, _, size, _ in clusters):
        raise StateFormatError(f"its length ({len(data)} bytes) is not what its header "
                               f"says: cut off, or damaged")
    entries = []
    for name, fetched_at, nodes, size, crc in clusters:
        chunk = data[offset:offset + size]
        if zlib.crc32(chunk) != crc:
            raise StateFormatError(f"the entry of cluster {name!r} is damaged (CRC)")
        entries.append(Entry(name, fetched_at, nodes, chunk, (offset, size, crc)))
        offset += size
    return entries


def read_back(path, entry):
    """``entry`` with its data read from ``path`` at ``entry.where``, or None."""
    offset, size, crc = entry.where
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size)
    except OSError:
        return None
    if len(chunk) != size or zlib.crc32(chunk) != crc:
        return None
    return attr.evolve(entry, data=chunk)
