"""
Node lists printed by a program: ``slurmrestd.url: scontrol:`` (``scontrol show nodes
--json``) and ``command:ARGV`` (any program, run without a shell, e.g. ``sinfo --json``).

The program runs off the reactor (``spawnProcess``) with the daemon's environment less
``SLURM_JWT``; its stdout, a pipe read up to 1 MiB a turn (:mod:`slurm_sd.sources.pipe`),
goes piece by piece into a :class:`~slurm_sd.sources.spool.Spool`, as a slurmrestd body
does, so 250 MB of output never sits in the daemon's memory and the decode worker reads
it from the spool file.  :class:`~slurm_sd.sources.commandrun.CommandRun` watches each
run: it is killed (SIGTERM, then SIGKILL) after ``slurmrestd.timeout``, past
``max_response_bytes``, when the poll is cancelled and when the daemon stops.
"""
import os
import shlex
import shutil

from twisted.internet import defer

from slurm_sd.errors import FetchError
from slurm_sd.slurm import SCONTROL_NODES_ARGS
from slurm_sd.sources.commandrun import CommandRun
from slurm_sd.sources.pipe import PipeReader, stdout_pipe
from slurm_sd.sources.tokens import JWT_VARIABLE


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
        protocol = CommandRun(self._reactor, self._config, self.where,
                              self._config.url.startswith("scontrol:"))
        try:
            read_fd, write_fd = stdout_pipe()
        except OSError as error:
            return defer.fail(FetchError(f"cannot start {self.where}: {error}"))
        try:
            self._reactor.spawnProcess(protocol, program, self._argv, env=env,
                                       childFDs={0: "w", 1: write_fd, 2: "r"})
        except OSError as error:
            os.close(read_fd)
            return defer.fail(FetchError(f"cannot start {self.where}: {error}"))
        finally:
            os.close(write_fd)   # the child has its own copy
        protocol.read_stdout(PipeReader(self._reactor, read_fd, protocol.outReceived,
                                        protocol.stdout_ended))
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
