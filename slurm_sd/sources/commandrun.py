"""
One run of a ``scontrol:`` or ``command:`` source's program (:class:`CommandRun`): its
stdout into a :class:`~slurm_sd.sources.spool.Spool` up to ``max_response_bytes``, the
end of its stderr kept to quote, SIGTERM then SIGKILL on a time-out, a cancel or too
much output, and the one-line FetchError when it fails.
"""
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.protocol import ProcessProtocol

from slurm_sd.errors import FetchError, ResponseTooLarge, SourceTimeout
from slurm_sd.exitwatch import ExitWatch
from slurm_sd.slurm import SINFO_JSON_SOURCE
from slurm_sd.sources.spool import Spool

#: Seconds between SIGTERM and SIGKILL.
KILL_GRACE = 2.0
#: How much of the output's start is kept to tell JSON from text.
_HEAD = 200
#: How much of the end of stderr is kept, to quote its last line.
_STDERR_TAIL = 4096


class CommandRun(ProcessProtocol):
    """
    One run of a command: collects its stdout and the end of its stderr; once it has
    exited and its stdout is read, :attr:`result` fires with the body or a FetchError.

    :param where: the command, for messages.
    :param is_scontrol: a ``scontrol:`` source (a missing ``--json`` gets its own line).
    """

    def __init__(self, reactor, config, where, is_scontrol):
        self.result = defer.Deferred(self._cancel)
        self._reactor = reactor
        self._config = config
        self._where = where
        self._is_scontrol = is_scontrol
        self._spool = Spool()
        self._head = b""
        self._stderr = b""
        self._failure = None
        self._kill_call = None
        self._exit_watch = ExitWatch()
        self._exit = None
        self._timeout = None
        self._reader = None
        self._stdout_done = False
        self._cancelled = False
        self._finished = False

    def read_stdout(self, reader):
        """Read stdout with ``reader`` (a :class:`~slurm_sd.sources.pipe.PipeReader`)."""
        self._reader = reader

    def stdout_ended(self, reason):
        """End-of-file on stdout (``reason`` None), or the error that ended reading it."""
        self._reader = None
        self._stdout_done = True
        if reason is not None and self._failure is None:
            self._failure = FetchError(f"reading the output of {self._where} failed: "
                                       f"{reason}")
        self._maybe_finish()

    def _cancel(self, d):
        """The poll was cancelled: end the program; the result is the CancelledError."""
        self._cancelled = True
        self.terminate()

    def connectionMade(self):
        """The program has started: it reads nothing from us, and has a deadline."""
        self.transport.closeStdin()
        self._timeout = self._reactor.callLater(self._config.timeout, self._time_out)

    def outReceived(self, data):
        """Spool stdout, unless it has grown past the limit."""
        if self._failure is not None or self.result.called:
            return
        limit = self._config.max_response_bytes
        if self._spool.size + len(data) > limit:
            self._spool.discard()
            self._failure = ResponseTooLarge(
                f"the output of {self._where} is larger than slurmrestd.max_response_bytes "
                f"({limit} bytes): raise max_response_bytes")
            self.terminate()
            return
        if len(self._head) < _HEAD:
            self._head += data[:_HEAD - len(self._head)]
        self._spool.write(data)

    def errReceived(self, data):
        """Keep the end of stderr, to quote its last line."""
        self._stderr = (self._stderr + data)[-_STDERR_TAIL:]

    def _time_out(self):
        """Too slow (or its stdout held open by a process it started): kill it."""
        self._timeout = None
        self._failure = SourceTimeout(
            f"{self._where} did not finish within {self._config.timeout:g} s and was "
            f"killed (is slurmctld slow or unreachable? raise slurmrestd.timeout)"
            f"{self.said()}")
        self.terminate()

    def terminate(self):
        """Stop reading its output; SIGTERM now, SIGKILL after :data:`KILL_GRACE`."""
        if self._reader is not None:
            self._reader.close()
            self.stdout_ended(None)
        if self._exit_watch.exited or self._kill_call is not None:
            return   # ended, or being ended
        self._signal("TERM")
        self._kill_call = self._reactor.callLater(KILL_GRACE, self._signal, "KILL")
        # Closing our ends: a program (or one it started) that keeps writing gets
        # EPIPE, and the end of the process is not held up by pipes left open.
        self.transport.loseConnection()

    def _signal(self, name):
        """Send signal ``name`` if the program still runs."""
        try:
            self.transport.signalProcess(name)
        except (net_error.ProcessExitedAlready, OSError):
            pass

    def when_ended(self):
        """A Deferred that fires (with None) once the program has exited."""
        return self._exit_watch.wait()

    def processEnded(self, reason):
        """The program has exited: tell the waiters; the result once stdout is read too."""
        self._exit = reason.value
        if self._kill_call is not None and self._kill_call.active():
            self._kill_call.cancel()
        self._kill_call = None
        self._exit_watch.exit_seen()
        self._maybe_finish()

    def _maybe_finish(self):
        """Once the program has exited and stdout is at its end: fire the result."""
        if self._finished or not (self._exit_watch.exited and self._stdout_done):
            return
        self._finished = True
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self._cancelled or self.result.called:
            self._spool.discard()
        elif self._failure is not None:
            self._spool.discard()
            self.result.errback(self._failure)
        else:
            self._ended(self._exit)

    def _ended(self, ended):
        """:meth:`processEnded` for a run that was not killed by us."""
        code = getattr(ended, "exitCode", None)
        if getattr(ended, "signal", None):
            failure = FetchError(f"{self._where} was killed by signal {ended.signal}"
                                 f"{self.said()}")
        elif code != 0 and self._is_scontrol and b"--json" in self._stderr:
            failure = self._no_json(f"failed (exit status {code})")
        elif code != 0:
            failure = FetchError(f"{self._where} failed (exit status {code})"
                                 f"{self.said(empty='; it wrote nothing on stderr')}")
        else:
            failure = self._not_a_node_list()
        if failure is not None:
            self._spool.discard()
            self.result.errback(failure)
        else:
            self.result.callback(self._spool.finish())

    def _not_a_node_list(self):
        """The error for output that cannot be a JSON node list, else None."""
        head = self._head.lstrip()
        if head.startswith(b"{"):
            return None
        if not head:
            return FetchError(f"{self._where} printed nothing on stdout{self.said()}")
        if self._is_scontrol:
            return self._no_json("printed text, not JSON")
        start = head[:60].decode("utf-8", "replace").splitlines()[0]
        return FetchError(f"the output of {self._where} is not a JSON node list (it "
                          f"begins {start!r}){self.said()}")

    def _no_json(self, what):
        """The error for an scontrol without ``--json`` (Slurm 22.05 and older)."""
        return FetchError(
            f"{self._where} {what}: this scontrol has no --json for show nodes (Slurm "
            f"22.05 or older); use slurmrestd.url: '{SINFO_JSON_SOURCE}' there"
            f"{self.said(about='--json')}")

    def said(self, empty="", about=""):
        """
        ``; it said: LINE`` to end a message, or ``empty``: the last line of stderr
        (the last one holding ``about``, if any does).
        """
        lines = [line.strip() for line in
                 self._stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        lines = [line for line in lines if about in line] or lines
        return f"; it said: {lines[-1][:300]}" if lines else empty
