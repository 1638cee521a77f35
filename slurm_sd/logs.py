"""
JSON log lines (``logging.format: json``): one JSON object per line on stdout.

twistd sets up its log observer after ``makeService`` and uses the one named by
its ``--logger`` option *instead of* its text observer, so JSON lines replace
the text lines rather than doubling them. :meth:`slurm_sd.tap.Options.postOptions`
sets that option to :func:`json_observer` when the configuration asks for
JSON and no ``--logger``, ``--logfile`` or ``--syslog`` was given; the same
works by hand with ``twistd --logger slurm_sd.logs.json_observer ...``.
"""
import json
import math
import sys
from datetime import datetime, timezone

from twisted.logger import FileLogObserver, formatEvent

#: Keys of the line itself; an event field of the same name never replaces them.
RESERVED = frozenset({"time", "level", "logger", "message", "traceback"})

#: Fields of old-style (twisted.python.log) events that are not worth a key.
_LEGACY = frozenset({"isError", "system", "time", "format", "message", "printed", "why"})


def _scalar(value):
    """``value`` when JSON can hold it as it is, else None (and NaN/inf as text)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return None


def json_line(event):
    """
    One log event as a line of JSON: ``time`` (ISO 8601, UTC), ``level``,
    ``logger`` (the namespace), ``message`` (the formatted text), the event's
    own scalar fields (``where``, ``elapsed``, ``nodes``, ...) and, for a
    failure, ``traceback``. ASCII only, whatever the locale.
    """
    when = datetime.fromtimestamp(event.get("log_time", 0), timezone.utc)
    level = event.get("log_level")
    line = {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.name if level is not None else "info",
        "logger": event.get("log_namespace", "-"),
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        line["traceback"] = failure.getTraceback()
    for key, value in event.items():
        if key.startswith("log_") or key in RESERVED or key in _LEGACY:
            continue
        value = _scalar(value)
        if value is not None and value != line["message"]:
            line[key] = value
    return json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n"


def json_observer(out=None):
    """
    A log observer writing :func:`json_line` lines to ``out`` (stdout when
    None), for twistd's ``--logger``. stdout is taken when this is called, that
    is before twistd redirects ``sys.stdout`` into the log.
    """
    return FileLogObserver(sys.stdout if out is None else out, json_line)
