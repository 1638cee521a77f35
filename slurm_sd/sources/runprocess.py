"""
Run a short-lived command off the reactor and collect its stdout:
:func:`run_process` (argv, no shell; bounded in time and in output).

Used for ``slurmrestd.token_command``; made to be shared by any source that
runs a program (``scontrol:``, ``command:``).
"""
import os
import shutil

from twisted.internet import defer
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol

from slurm_sd.errors import FetchError

#: How much of stderr's end is kept to find its last line.
STDERR_TAIL_BYTES = 4096


class ProcessFailed(FetchError):
    """
    A command that failed: could not start, non-zero exit, a signal, a
    time-out or too much output. ``str()`` is one line; ``last_stderr`` is
    the last non-empty line it wrote to stderr ("" if none).
    """

    def __init__(self, message, last_stderr=""):
        super().__init__(message)
        self.last_stderr = last_stderr


def last_line(data):
    """The last non-empty line of ``data`` (bytes), decoded, or ``""``."""
    for line in reversed(data.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


class _Collector(ProcessProtocol):
    """Keeps stdout (up to a limit) and the end of stderr; fires when the process ends."""

    def __init__(self, clock, what, timeout, max_bytes):
        self._clock = clock
        self._what = what
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._stdout = []
        self._size = 0
        self._stderr = b""
        self._trouble = None   # why we killed it, if we did
        self._timer = None
        # Cancelling fails the result at once; the kill makes the process go too.
        self.result = defer.Deferred(canceller=lambda d: self._kill("was cancelled"))

    def connectionMade(self):
        """Nothing to send it; start the clock."""
        self.transport.closeStdin()
        self._timer = self._clock.callLater(self._timeout, self._kill,
                                            f"did not finish within {self._timeout:g} s")

    def outReceived(self, data):
        """Keep stdout, killing the process past ``max_bytes``."""
        if self._trouble is not None:
            return
        self._size += len(data)
        if self._size > self._max_bytes:
            self._stdout = []
            self._kill(f"printed more than {self._max_bytes} bytes")
            return
        self._stdout.append(data)

    def errReceived(self, data):
        """Keep the end of stderr, for its last line."""
        self._stderr = (self._stderr + data)[-STDERR_TAIL_BYTES:]

    def _kill(self, why):
        """Stop the process; the result fires once it has ended."""
        if self._trouble is not None:
            return   # already killed
        self._trouble = why
        try:
            self.transport.signalProcess("KILL")
        except Exception:
            pass   # already gone: processEnded follows

    def processEnded(self, reason):
        """Fire the result: stdout on exit status 0, else a ProcessFailed."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.result.called:
            return
        stderr = last_line(self._stderr)
        said = f": {stderr}" if stderr else " (it wrote nothing to stderr)"
        if self._trouble is not None:
            self.result.errback(ProcessFailed(f"{self._what} {self._trouble} and was "
                                              f"killed{said}", stderr))
        elif reason.check(ProcessDone):
            self.result.callback(b"".join(self._stdout))
        elif reason.value.signal is not None:
            self.result.errback(ProcessFailed(
                f"{self._what} was killed by signal {reason.value.signal}{said}", stderr))
        else:
            self.result.errback(ProcessFailed(
                f"{self._what} exited with status {reason.value.exitCode}{said}", stderr))


def child_environment(environ, drop=()):
    """``environ`` as a dict for a child, without the variables named in ``drop``."""
    return {name: value for name, value in environ.items() if name not in drop}


def run_process(reactor, argv, timeout, max_bytes, env, what=None):
    """
    Run ``argv`` (no shell) and collect its stdout.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param argv: the program (looked up on ``env``'s ``PATH`` unless it holds
        a ``/``) and its arguments.
    :param timeout: seconds before the process is killed.
    :param max_bytes: the most stdout kept; more kills the process.
    :param env: the child's whole environment (a dict).
    :param what: how messages name the command (default: its argv[0]).
    :return: a Deferred firing with stdout (bytes) when it exits with status 0,
        else failing with :class:`ProcessFailed`; cancelling it kills the process.
    """
    what = what or argv[0]
    program = argv[0]
    if "/" not in program:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            return defer.fail(ProcessFailed(
                f"{what}: {program} not found on PATH ({env.get('PATH', os.defpath)}); "
                f"give its full path"))
        program = found
    elif not os.access(program, os.X_OK):
        return defer.fail(ProcessFailed(f"{what}: {program} is not an executable file"))
    collector = _Collector(reactor, what, timeout, max_bytes)
    try:
        reactor.spawnProcess(collector, program, list(argv), env=env,
                             childFDs={0: "w", 1: "r", 2: "r"})
    except OSError as error:
        return defer.fail(ProcessFailed(f"{what}: cannot start {program}: {error.strerror}"))
    return collector.result
