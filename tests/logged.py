"""
Reading the log events a test caught with ``twisted.logger.capturedLogs``
(``self.events = self.enterContext(capturedLogs())``).
"""
from twisted.logger import LogLevel, formatEvent

_ORDER = list(LogLevel.iterconstants())


def log_lines(events, level=None, since=0, or_worse=False):
    """
    The formatted events from index ``since`` on: all of them, those at ``level``, or
    (``or_worse``) those at ``level`` or above.
    """
    def wanted(event):
        found = event.get("log_level", LogLevel.info)
        if level is None:
            return True
        return _ORDER.index(found) >= _ORDER.index(level) if or_worse else found == level
    return [formatEvent(e) for e in events[since:] if wanted(e)]
