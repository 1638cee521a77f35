"""
The state file: the last good node list of each cluster, kept across restarts
(``state_file``, SPEC 11); its format is :mod:`slurm_sd.service.stateformat`.

It holds node lists only: no token, no password, no config.
"""
import glob
import os

import attr
from twisted.internet import defer
from twisted.logger import Logger

from slurm_sd.atomicfile import write_atomically
from slurm_sd.config.model import DEFAULT_CLUSTER
from slurm_sd.service.stateformat import StateFormatError, parse, place, read_back


def cluster_key(config):
    """The name the config's (single) cluster is stored under."""
    return config.cluster_name or DEFAULT_CLUSTER


class StateFile:
    """
    Reads the state file at start, and writes it after each served poll, in a
    thread: at 100,000 nodes the write (about 10 MB, two fsyncs) must not hold up
    ``/targets``.

    :param run_in_thread: ``run_in_thread(f, *args) -> Deferred``, e.g.
        ``deferToThreadPool`` bound to the reactor and its pool; tests pass a
        synchronous one.
    :param write: ``write(path, data)``; :func:`write_atomically` unless a test
        says otherwise.
    :param names: optional; no arguments, the names of the clusters configured now
        (entries of others are left out of the file). Without it every cluster
        saved or restored is kept.
    """

    log = Logger()

    def __init__(self, run_in_thread, write=write_atomically, names=None):
        self._run_in_thread = run_in_thread
        self._write = write
        self._names = names
        self._entries = {}
        self._lock = defer.DeferredLock()

    def restore(self, path, names):
        """
        Read the stored node lists of the clusters called ``names``, in the thread;
        one warning line for an unusable file, nothing for a missing one.

        :return: a Deferred that never fails, firing with ``{name: (fetched_at,
            stored node list)}``: bytes for
            :func:`slurm_sd.pipeline.stored.decode_node_list` (decoded and rendered
            in the decode worker, off the reactor: a few seconds of CPU at 100,000
            nodes).
        """
        # Under the lock: a write must not start while the read removes left-overs.
        d = self._lock.run(self._run_in_thread, _read, path, names)
        d.addCallback(self._restored, path, names)
        d.addErrback(self._unusable, path)
        return d

    def _restored(self, read, path, names):
        """On the reactor: keep the entries for later writes, log a mismatch."""
        entries, matching, rendered = read
        if entries and not rendered:
            self.log.warn("state file {path} holds clusters {stored} but not {wanted} "
                          "(cluster_name); ignored", path=path,
                          stored=", ".join(e.name for e in entries), wanted=", ".join(names))
        for name, entry in matching.items():
            # A poll that was quicker has left a newer entry.
            self._entries.setdefault(name, attr.evolve(entry, data=None))
        return rendered

    def _unusable(self, failure, path):
        """One warning line for a file that cannot be used."""
        if failure.check(_Unusable):
            self.log.warn("state file {path} {reason}; ignored", path=path,
                          reason=failure.value)
        else:
            self.log.failure("state file {path} cannot be used; ignored", failure, path=path)
        return {}

    def save(self, path, entry):
        """
        Write ``entry`` (an :class:`Entry`) with the other clusters' last entries;
        a failure is one warning line.

        :return: a Deferred that never fails, firing when the file is written.
        """
        self._entries[entry.name] = entry
        return self._lock.run(self._write_entries, path).addErrback(self._failed, path)

    def _write_entries(self, path):
        """
        Under the lock, so with the entries of every restore before it: the
        entries of the configured clusters, written in the thread.
        """
        if self._names is not None:
            names = set(self._names())
            self._entries = {name: entry for name, entry in self._entries.items()
                             if name in names}
        entries = list(self._entries.values())
        d = self._run_in_thread(_write_file, self._write, path, entries)
        d.addCallback(self._written, path, entries)
        return d

    def _written(self, result, path, entries):
        """On the reactor: forget the data the file now holds; say what was lost."""
        placed, lost = result
        for before, after in zip([e for e in entries if e.name not in lost], placed):
            if self._entries.get(before.name) is before:   # not replaced meanwhile
                self._entries[before.name] = after
        for name in lost:
            self._entries.pop(name, None)
            self.log.warn("state file {path}: the entry of cluster {name} could not be "
                          "read back to write it again; left out until its next poll",
                          path=path, name=name)

    def _failed(self, failure, path):
        """One line; the data being served is untouched."""
        if failure.check(OSError):
            reason = failure.value.strerror or failure.value
            self.log.warn("cannot write state file {path} ({reason}); serving goes on, "
                          "the file keeps older data", path=path, reason=reason)
        else:
            self.log.failure("cannot write state file {path}", failure, path=path)


def _write_file(write, path, entries):
    """
    In the thread: write ``entries``, reading back from ``path`` those whose data
    only the file holds.

    :return: ``(the entries as placed in the new file, names of entries lost)``.
    """
    whole, lost = [], []
    for entry in entries:
        full = entry if entry.data is not None else read_back(path, entry)
        if full is None:
            lost.append(entry.name)
        else:
            whole.append(full)
    data, placed = place(whole)
    write(path, data)
    return placed, lost


class _Unusable(Exception):
    """Why a state file cannot be used, after "state file PATH"."""


def _read(path, names):
    """
    In the thread: ``(all entries, {name: matching entry}, {name: (fetched_at,
    stored node list)})``, or three empty ones for a missing file.

    :raises _Unusable: when the file cannot be read or is not a usable state file.
    """
    _remove_leftovers(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return [], {}, {}
    except OSError as error:
        raise _Unusable(f"cannot be read ({error.strerror or error})")
    try:
        entries = parse(data)
    except StateFormatError as error:
        raise _Unusable(f"is not usable ({error})")
    matching = {entry.name: entry for entry in entries if entry.name in names}
    rendered = {name: (entry.fetched_at, entry.data) for name, entry in matching.items()}
    return entries, matching, rendered


def _remove_leftovers(path):
    """
    Remove the temporary files of writes killed half-way (``kill -9``, a crash):
    :func:`write_atomically`'s ``.NAME.*.tmp`` beside ``path``, else each such kill
    would leave one behind for good.
    """
    directory, name = os.path.split(os.path.abspath(path))
    pattern = os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.tmp")
    for leftover in glob.glob(pattern):
        try:
            os.unlink(leftover)
        except OSError:
            pass
