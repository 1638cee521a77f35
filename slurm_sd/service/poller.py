"""
The poll loop: fetch, process, replace the cache; again every ``interval``.

A ``callLater`` chain rather than a LoopingCall, because the delay after a
failure (backoff) differs from the delay after a success. The next call is only
scheduled once the previous poll has ended, so polls never overlap, and
:meth:`Poller.poll` never fails, so the chain never breaks.
"""
import attr
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from slurm_sd.errors import BadResponse, SlurmSDError, SourceTimeout
from slurm_sd.service.guard import HOLD_RETRY, ShrinkGuard
from slurm_sd.service.keeper import StateKeeper

#: First retry delay after a failure; doubled per failure, capped at interval.
RETRY_BASE = 5.0
#: The share of ``slurmrestd.timeout`` a source's answer may take without a warning.
SLOW_SHARE = 0.8


class Poller:
    """
    Keeps a :class:`~slurm_sd.service.cache.TargetCache` filled from a node source.

    :param clock: an ``IReactorTime``.
    :param source: has ``fetch_nodes() -> Deferred[bytes]`` and ``where``.
    :param process: ``process(body, config) -> Deferred[Snapshot]``.
    :param cache: the cache to replace on success.
    :param config: the :class:`~slurm_sd.config.model.Config`.
    :param observer: optional; told ``poll_succeeded(snapshot, seconds)``,
        ``poll_failed(kind, seconds)``, ``poll_held()``, ``source_answered(seconds)``
        and ``state_loaded(snapshot, fetched_at)`` (self-metrics).
    :param state: optional :class:`~slurm_sd.service.state.StateFile`, used when
        ``config.state_file`` is set.
    :param cluster: the cluster's name, for its log lines when there are several.
    """

    log = Logger()

    def __init__(self, clock, source, process, cache, config, observer=None, cluster=None,
                 state=None):
        self.cluster = cluster
        self._clock = clock
        self.source = source
        self._process = process
        self._cache = cache
        self.config = config
        self._observer = observer
        self._call = None
        self._running = None
        self._running_source = None
        self._failures = 0
        self._stopped = True
        self._repoll = False
        #: The last failed poll's one-line reason (no secret in it), or None.
        self.last_error = None
        self._keeper = None if state is None else StateKeeper(state, cache, process, observer)
        self._guard = ShrinkGuard()
        #: Seconds the source took for its last good answer, or None.
        self.source_seconds = None

    def start(self):
        """Serve the state file's data, if any; poll at once, then keep polling."""
        self._stopped = False
        if self._keeper is not None:
            self._keeper.restore(self.config)
        self._schedule(0)

    def stop(self):
        """
        Stop polling; a poll under way is cancelled.

        :return: a Deferred firing once the sources have stopped what they had
            started (a ``scontrol:`` source's program, say).
        """
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        sources = [self.source]
        if self._running is not None:
            sources.append(self._running_source)
            self._running.cancel()
        stops = [source.stop() for source in dict.fromkeys(sources)
                 if getattr(source, "stop", None) is not None]
        return defer.gatherResults(stops).addCallback(lambda _: None)

    def reconfigure(self, source, config):
        """
        Use a new source and config from the next poll on, and poll soon: at
        once, or as soon as the poll under way (with the old config) ends.
        """
        self.source = source
        self.config = config
        self._failures = 0
        self._guard.reset()
        if self._stopped:
            return
        if self._running is None:
            self._schedule(0)
        else:
            self._repoll = True

    def _schedule(self, delay):
        """Arrange the next poll ``delay`` seconds from now."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._cache.next_attempt_at = self._clock.seconds() + delay
        self._call = self._clock.callLater(delay, self._tick)

    def _tick(self):
        """Run one poll, then schedule the next."""
        self._call = None
        d = self.poll()
        d.addCallback(lambda delay: None if self._stopped else self._schedule(delay))

    def poll(self):
        """
        Fetch, process and cache once.

        :return: a Deferred that never fails, firing with the delay before the
            next poll.
        """
        started = self._clock.seconds()
        config = self.config
        source = self._running_source = self.source
        d = defer.maybeDeferred(source.fetch_nodes)
        d.addCallback(self._fetched, started, config)
        d.addCallback(self._process, config)
        d.addCallback(self._succeeded, started)
        d.addErrback(self._failed, started, source)
        self._running = d

        def done(delay):
            self._running = None
            if self._repoll and delay is not None:
                # reconfigured during this poll: the next one uses the new config now
                self._repoll = False
                delay = 0
            return delay

        d.addBoth(done)
        return d

    def _fetched(self, body, started, config):
        """Time the source's answer (apart from decode, convert and render)."""
        seconds = self._clock.seconds() - started
        self.source_seconds = seconds
        limit = config.slurmrestd.timeout
        if seconds > SLOW_SHARE * limit:
            self.log.warn("source {where} took {seconds:.1f} s to answer, over {share:.0%} of "
                          "slurmrestd.timeout ({limit:g} s): raise slurmrestd.timeout",
                          where=self._where(), seconds=seconds, share=SLOW_SHARE,
                          limit=limit)
        if self._observer is not None:
            self._observer.source_answered(seconds)
        return body

    def _succeeded(self, snapshot, started):
        """Serve the new snapshot (unless the shrink guard holds it) and log one line."""
        self._failures = 0
        served = self._cache.snapshot
        served = None if served is None else served.nodes
        was_holding = self._guard.holding
        if not self._guard.allows(served, snapshot.nodes, self.config.max_node_drop):
            return self._held(served, snapshot.nodes)
        if was_holding and snapshot.nodes < served:
            self.log.warn("poll of {where} agrees with the one held back: serving "
                          "{nodes} nodes instead of {served}", where=self._where(),
                          nodes=snapshot.nodes, served=served)
        stored = snapshot.stored
        if stored is not None:
            snapshot = attr.evolve(snapshot, stored=None)
        self._cache.replace(snapshot)
        if self._keeper is not None:
            self._keeper.save(self.config, snapshot, stored)
        elapsed = self._clock.seconds() - started
        if snapshot.nodes == 0:
            self.log.warn("poll of {where} succeeded but slurmrestd listed no nodes; "
                          "serving empty target lists", where=self._where())
        else:
            self.log.info(
                "poll of {where} ok in {elapsed:.2f} s: {nodes} nodes, targets {targets}"
                "{skipped_text}", where=self._where(), elapsed=elapsed,
                nodes=snapshot.nodes, targets=_targets_text(snapshot.targets),
                skipped_text=(f", {snapshot.skipped} nodes skipped (no name or a "
                              f"duplicate name)" if snapshot.skipped else ""))
        if self._observer is not None:
            self._observer.poll_succeeded(snapshot, elapsed)
        return self.config.interval

    def _held(self, served, nodes):
        """Keep serving the current data after a sudden drop, and poll again soon."""
        delay = min(self.config.interval, HOLD_RETRY)
        self.log.warn("poll of {where} returned {nodes} nodes, fewer than {keep:.0%} of the "
                      "{served} served (max_node_drop {drop:g}): held back, still serving "
                      "the {served}; the drop is served if the next poll, in {delay:g} s, "
                      "agrees", where=self._where(), nodes=nodes, served=served,
                      keep=1 - self.config.max_node_drop, drop=self.config.max_node_drop,
                      delay=delay)
        if self._observer is not None:
            self._observer.poll_held()
        return delay

    def _failed(self, failure, started, source):
        """Log one line, keep the old data, and back off."""
        if failure.check(defer.CancelledError) and self._stopped:
            return None
        self._failures += 1
        delay = min(RETRY_BASE * 2 ** (self._failures - 1), self.config.interval)
        age = self._cache.age()
        kept = ("no data yet, /targets answers 503" if age is None
                else f"still serving the data from {age:.0f} s ago")
        of = "" if self.cluster is None else " of cluster {cluster}"
        if failure.check(SlurmSDError):
            reason = str(failure.value)
            explain = getattr(source, "explain", None)
            if explain is not None and failure.check(BadResponse):
                # The decode step's words, with the program that printed it.
                reason = explain(reason)
            if failure.check(SourceTimeout):
                reason += (" (no earlier answer to compare)" if self.source_seconds is None
                           else f" (its last good answer took {self.source_seconds:.1f} s)")
            redact = getattr(self.source, "redact", None)
            if redact is not None:
                # Defence in depth: an error body that echoes the token.
                reason = redact(reason)
            self.log.error("poll" + of + " failed: {reason}; {kept}; next try in {delay:g} s",
                           reason=reason, kept=kept, delay=delay, cluster=self.cluster)
            # A time-out stays counted as fetch_error, with the other fetch failures.
            kind = "FetchError" if failure.check(SourceTimeout) else type(failure.value).__name__
            self.last_error = reason
        else:
            self.log.failure("poll" + of + " failed unexpectedly; {kept}; next try in "
                             "{delay:g} s", failure, kept=kept, delay=delay,
                             cluster=self.cluster)
            kind = "internal"
            # Not the message: a bug's text may hold anything; the log has it.
            self.last_error = (f"unexpected {type(failure.value).__name__}; "
                               f"the log has the traceback")
        if self._observer is not None:
            self._observer.poll_failed(kind, self._clock.seconds() - started)
        return delay


    def _where(self):
        """What a poll asks, for a log line: the source, and the cluster if named."""
        if self.cluster is None:
            return self.source.where
        return f"cluster {self.cluster} at {self.source.where}"


def _targets_text(targets):
    """``node=12 dcgm=4`` for a log line."""
    return " ".join(f"{name}={count}" for name, count in targets.items())


class PollerService(Service):
    """Starts and stops a :class:`Poller` with the application."""

    def __init__(self, poller):
        self.poller = poller

    def startService(self):
        """Start polling."""
        Service.startService(self)
        self.poller.start()

    def stopService(self):
        """Stop polling, cancelling a poll under way; fires once its program has ended."""
        Service.stopService(self)
        return self.poller.stop()
