"""
Waiting on the real reactor, for the few tests that need real sockets or processes:
never a sleep or a polling loop, always a Deferred fired by the event itself, with a
deadline.
"""
from twisted.internet import defer, reactor

#: Deadline for anything a test waits on.
DEADLINE = 5


def deadline(d, seconds=DEADLINE):
    """``d``, failed with TimeoutError if it has not fired within ``seconds``."""
    return d.addTimeout(seconds, reactor)


def first_snapshot(cache):
    """A Deferred firing with the first snapshot ``cache`` serves (at once if it has one)."""
    if cache.snapshot is not None:
        return defer.succeed(cache.snapshot)
    d = defer.Deferred()
    replace = cache.replace

    def replaced(snapshot):
        del cache.replace          # the class's method again
        replace(snapshot)
        d.callback(snapshot)
        return snapshot
    cache.replace = replaced
    return d


def poll_ended(poller):
    """A Deferred firing once the poll under way, if any, has ended."""
    running = poller._running
    if running is None:
        return defer.succeed(None)
    d = defer.Deferred()

    def ended(result):
        d.callback(None)
        return result
    running.addBoth(ended)
    return d
