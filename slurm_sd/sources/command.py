"""
Node lists printed by a program: ``slurmrestd.url: scontrol:`` (``scontrol show nodes
--json``) and ``command:ARGV`` (any program, run without a shell, e.g. ``sinfo --json``).

The program runs off the reactor (``spawnProcess``) with the daemon's environment less
``SLURM_JWT``; its stdout goes chunk by chunk into a
:class:`~slurm_sd.sources.spool.Spool`, as a slurmrestd body does, so 250 MB of output
never sits in the daemon's memory and the decode worker reads it from the spool file.
It is killed (SIGTERM, then SIGKILL) after ``slurmrestd.timeout``, past
``max_response_bytes``, when the poll is cancelled and when the daemon stops.
"""
import os
import shlex
import shutil

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.protocol import ProcessProtocol

from slurm_sd.errors import FetchError, ResponseTooLarge
from slurm_sd.slurm import SCONTROL_NODES_ARGS, SINFO_JSON_SOURCE
from slurm_sd.sources.spool import Spool
from slurm_sd.sources.tokens import JWT_VARIABLE

#: Seconds between SIGTERM and SIGKILL.
KILL_GRACE = 2.0
#: How much of the output's start is kept to tell JSON from text.
_HEAD = 200
#: How much of the end of stderr is kept, to quote its last line.
_STDERR_TAIL = 4096


def command_argv(url):
    """The argv a ``scontrol:`` or ``command:`` URL runs."""
    if url.startswith("scontrol:"):
        return [url[len("scontrol:"):] or "scontrol", *SCONTROL_NODES_ARGS]
    return shlex.split(url[len("command:"):])


def command_environment(environ):
    """The program's environment: ``environ`` without the token it may hold."""
    return {name: value for name, value in environ.items() if name != JWT_VARIABLE}


class CommandSource:
    """
    Runs a program per poll; its stdout is the node list.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param config: the :class:`~slurm_sd.config.model.SlurmrestdConfig` (``url``,
        ``timeout``, ``max_response_bytes``).
    :param environ: the daemon's environment (default ``os.environ``).
    """

    def __init__(self, reactor, config, environ=None):
        self._reactor = reactor
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._argv = command_argv(config.url)
        self._running = set()
        self._last_said = ""

    @property
    def where(self):
        """The source for messages: ``command `scontrol show nodes --json```."""
        return f"command `{shlex.join(self._argv)}`"

    def fetch_nodes(self):
        """
        Run the program once.

        :return: a Deferred firing with its stdout (bytes, or a
            :class:`~slurm_sd.sources.spool.SpooledBody` the caller closes) or failing
            with a one-line :class:`~slurm_sd.errors.FetchError`; cancelling it kills
            the program.
        """
        env = command_environment(self._environ)
        try:
            program = self._find(self._argv[0], env)
        except FetchError as error:
            return defer.fail(error)
        protocol = _CommandProtocol(self._reactor, self._config, self.where,
                                    self._config.url.startswith("scontrol:"))
        try:
            self._reactor.spawnProcess(protocol, program, self._argv, env=env,
                                       childFDs={0: "w", 1: "r", 2: "r"})
        except OSError as error:
            return defer.fail(FetchError(f"cannot start {self.where}: {error}"))
        self._running.add(protocol)
        protocol.when_ended().addCallback(lambda _: self._running.discard(protocol))
        return protocol.result.addCallback(self._succeeded, protocol)

    def _succeeded(self, body, protocol):
        """Remember what the run said on stderr, for :meth:`explain`."""
        self._last_said = protocol.said()
        return body

    def explain(self, reason):
        """
        ``reason`` (why the output was no usable node list, found by the decode
        step) with the program named and its last stderr line quoted.
        """
        return f"{reason} (in the output of {self.where}{self._last_said})"

    def _find(self, program, env):
        """The path of ``program``: as given when it has a slash, else from ``PATH``."""
        if "/" in program:
            if os.access(program, os.X_OK) and not os.path.isdir(program):
                return program
            reason = "does not exist" if not os.path.exists(program) else "is not executable"
            raise FetchError(f"cannot run {self.where}: {program} {reason}")
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise FetchError(f"cannot run {self.where}: {program} is not on the daemon's "
                             f"PATH ({env.get('PATH', os.defpath)}); name it with a full path")
        return found

    def stop(self):
        """
        Kill the programs still running.

        :return: a Deferred firing once they have all exited.
        """
        waiting = []
        for protocol in list(self._running):
            protocol.terminate()
            waiting.append(protocol.when_ended())
        return defer.gatherResults(waiting).addCallback(lambda _: None)


class _CommandProtocol(ProcessProtocol):
    """Collects one run's stdout and the end of its stderr; its end is the result."""

    def __init__(self, reactor, config, where, is_scontrol):
        self.result = defer.Deferred(lambda d: self.terminate())
        self._reactor = reactor
        self._config = config
        self._where = where
        self._is_scontrol = is_scontrol
        self._spool = Spool()
        self._head = b""
        self._stderr = b""
        self._failure = None
        self._kill_call = None
        self._has_ended = False
        self._end_waiters = []
        self._timeout = None

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
        """Too slow: kill it."""
        self._timeout = None
        self._failure = FetchError(
            f"{self._where} did not finish within {self._config.timeout:g} s and was "
            f"killed (is slurmctld slow or unreachable? raise slurmrestd.timeout)"
            f"{self.said()}")
        self.terminate()

    def terminate(self):
        """SIGTERM now, SIGKILL after :data:`KILL_GRACE`; stop reading its output."""
        if self._has_ended or self._kill_call is not None:
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
        if self._has_ended:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._end_waiters.append(waiter)
        return waiter

    def processEnded(self, reason):
        """Fire the result: the output, or why there is none."""
        self._has_ended = True
        for call in (self._timeout, self._kill_call):
            if call is not None and call.active():
                call.cancel()
        self._timeout = self._kill_call = None
        try:
            if self.result.called:
                self._spool.discard()   # cancelled
            elif self._failure is not None:
                self._spool.discard()
                self.result.errback(self._failure)
            else:
                self._ended(reason.value)
        finally:
            waiters, self._end_waiters = self._end_waiters, []
            for waiter in waiters:
                waiter.callback(None)

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
