"""The cache step: the snapshot being served, replaced whole by each good poll."""


class TargetCache:
    """
    Holds the current :class:`~slurm_sd.pipeline.render.Snapshot` and when it was taken.

    :param clock: an ``IReactorTime`` for timestamps.
    """

    def __init__(self, clock):
        self._clock = clock
        self.snapshot = None
        self.updated_at = None
        #: When the poller will next try (clock seconds), for ``Retry-After``.
        self.next_attempt_at = None
        #: Called with no arguments after each replace (the all-clusters answer).
        self.replaced = None

    def replace(self, snapshot, taken_at=None):
        """
        Serve ``snapshot`` from now on, in place of the old one.

        :param taken_at: when its data was fetched (clock seconds), if not now:
            data read back from the state file keeps its real age.
        """
        self.snapshot = snapshot
        self.updated_at = self._clock.seconds() if taken_at is None else taken_at
        if self.replaced is not None:
            self.replaced()
        return snapshot

    def age(self):
        """Seconds since the data was taken, or None before the first good poll."""
        if self.updated_at is None:
            return None
        # Never negative: a state file from a clock that ran ahead.
        return max(0.0, self._clock.seconds() - self.updated_at)

    def retry_after(self):
        """Whole seconds until the next poll attempt, at least 1."""
        if self.next_attempt_at is None:
            return 1
        return max(1, int(self.next_attempt_at - self._clock.seconds() + 0.999))
