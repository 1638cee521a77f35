"""Waiting for a child process to exit: shared by the decode worker and command sources."""
from twisted.internet import defer


class ExitWatch:
    """Whether a child process has exited, and Deferreds for whoever waits for it."""

    def __init__(self):
        self.exited = False
        self._waiters = []

    def wait(self):
        """A Deferred that fires (with None) once the process has exited."""
        if self.exited:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def exit_seen(self):
        """The process has exited: fire every waiter."""
        self.exited = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)
