"""
Between one cluster's poller and the daemon's shared
:class:`~slurm_sd.service.state.StateFile`: what the cluster serves at start, and
what it writes after each served poll.
"""
from twisted.logger import Logger

from slurm_sd.service.state import cluster_key
from slurm_sd.service.stateformat import Entry


class StateKeeper:
    """
    One cluster's use of the state file (``config.state_file``; nothing without it).

    :param state: the :class:`~slurm_sd.service.state.StateFile`.
    :param cache: the cluster's :class:`~slurm_sd.service.cache.TargetCache`.
    :param process: the cluster's process step, ``process(body, config, stored=True)``.
    :param observer: optional; told ``state_loaded(snapshot, fetched_at)``.
    """

    log = Logger()

    def __init__(self, state, cache, process, observer=None):
        self._state = state
        self._cache = cache
        self._process = process
        self._observer = observer

    def restore(self, config):
        """
        Serve the node list kept in the state file, with its real age, until a poll:
        read in the thread pool, converted and rendered in the process step.
        """
        if config.state_file is None:
            return
        name = cluster_key(config)
        d = self._state.restore(config.state_file, (name,))
        d.addCallback(self._restored, name, config)

    def _restored(self, loaded, name, config):
        """Convert and render what :meth:`restore` read, unless a poll was quicker."""
        if name not in loaded or self._cache.snapshot is not None:
            return None
        fetched_at, data = loaded[name]
        d = self._process(data, config, stored=True)
        d.addCallback(self._serve, fetched_at, name, config.state_file)
        d.addErrback(lambda f: self.log.warn(
            "state file {path}: its node list cannot be used ({reason}); ignored",
            path=config.state_file, reason=f.getErrorMessage()))
        return d

    def _serve(self, snapshot, fetched_at, name, path):
        """Serve the stored node list, unless a poll was quicker."""
        if self._cache.snapshot is not None:
            return
        self._cache.replace(snapshot, taken_at=fetched_at)
        self.log.info("serving {nodes} nodes of cluster {name} from state file {path}, "
                      "fetched {age:.0f} s ago, until a poll succeeds", nodes=snapshot.nodes,
                      name=name, path=path, age=self._cache.age())
        if self._observer is not None:
            self._observer.state_loaded(snapshot, fetched_at)

    def save(self, config, snapshot, stored):
        """Write the served node list ``stored`` (in a thread; never fails)."""
        if config.state_file is None or stored is None:
            return
        self._state.save(config.state_file, Entry(cluster_key(config),
                                                  self._cache.updated_at, snapshot.nodes,
                                                  stored))
