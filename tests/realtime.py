"""
Waiting on the real reactor, for the few tests that need real sockets: never a sleep,
always a Deferred with a deadline.
"""
from twisted.internet import defer, reactor

#: Deadline for anything a test waits on.
DEADLINE = 5


def deadline(d, seconds=DEADLINE):
    """``d``, failed with TimeoutError if it has not fired within ``seconds``."""
    return d.addTimeout(seconds, reactor)


def wait_until(condition, step=0.01):
    """A Deferred firing once ``condition()`` is true (checked every ``step`` s)."""
    pending = []

    def cancel(d):
        if pending and pending[0].active():
            pending[0].cancel()

    d = defer.Deferred(cancel)

    def check():
        pending[:] = []
        if condition():
            d.callback(None)
        else:
            pending.append(reactor.callLater(step, check))
    check()
    return d
