"""
Where the process step runs: a fresh worker process per poll (:class:`WorkerPipeline`,
what the daemon uses), or this process (:class:`InProcessPipeline`,
for reactors that cannot spawn).  Both have ``process(body, config)`` and ``stop()``.

Decoding 100,000 nodes takes about a second of CPU; on the reactor thread that would
stall every ``/targets`` request for as long (a thread would not help: the GIL).
"""
import json
import os
import pickle
import sys
import tempfile

import attr
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from slurm_sd.errors import BadResponse, WorkerError
from slurm_sd.exitwatch import ExitWatch
from slurm_sd.pipeline.build import build_snapshot, close_body
from slurm_sd.pipeline.worker import BODY_FD, RESULT_FD
from slurm_sd.sources.spool import SpooledBody
from slurm_sd.sources.tokens import JWT_VARIABLE

# The worker's command: ``python -c _BOOT SYS_PATH_AS_JSON``.
_BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
         "from slurm_sd.pipeline.worker import main; main()")

#: How much of a worker's stdout/stderr is kept for the log.
_MAX_REMARKS = 64 * 1024


def process(body, config, stored=False):
    """:func:`build_snapshot` in this process, as a Deferred; closes ``body``."""
    try:
        return defer.maybeDeferred(build_snapshot, body, config, stored=stored)
    finally:
        close_body(body)


class InProcessPipeline:
    """The process step on the calling thread: nothing to stop."""

    process = staticmethod(process)

    def stop(self):
        """Nothing runs outside this process."""
        return defer.succeed(None)


def make_pipeline(reactor):
    """
    The daemon's pipeline: a :class:`WorkerPipeline` when ``reactor`` can start
    processes, else (``MemoryReactor`` in tests) an :class:`InProcessPipeline`.
    Both have ``process(body, config)`` and ``stop()``.
    """
    if IReactorProcess.providedBy(reactor):
        return WorkerPipeline(reactor)
    return InProcessPipeline()


class PipelineService(Service):
    """Stops a pipeline's workers (and waits for them) when the daemon stops."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def stopService(self):
        """Kill the running workers; the Deferred fires when they have exited."""
        Service.stopService(self)
        return self.pipeline.stop()



class WorkerPipeline:
    """
    ``process(body, config)`` in a fresh worker process
    (:func:`slurm_sd.pipeline.worker.main`) per poll.

    One process per poll, not a long-lived one: its memory (tens of MB at 100,000
    nodes) goes back to the system at once when it exits, a crash or a leak cannot
    outlive one poll, and start-up (under 0.1 s) is nothing next to the interval.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param executable: the Python to run the worker with.
    """

    log = Logger()

    def __init__(self, reactor, executable=sys.executable):
        self._reactor = reactor
        self._executable = executable
        self._workers = set()

    def stop(self):
        """
        Kill the workers still running.

        :return: a Deferred that fires once they have all exited, so that the
            daemon never leaves a worker behind when it stops.
        """
        waiting = []
        for protocol in list(self._workers):
            protocol.kill()
            waiting.append(protocol.when_ended())
        return defer.gatherResults(waiting).addCallback(lambda _: None)

    def process(self, body, config, stored=False):
        """
        Build the snapshot of ``body`` in a worker process; closes ``body``.

        :param stored: ``body`` is a stored node list (the state file's), not JSON.

        :return: a Deferred firing with the :class:`~slurm_sd.pipeline.render.Snapshot`, or
            failing with :class:`~slurm_sd.errors.BadResponse` (unusable body) or
            :class:`WorkerError`; cancelling it kills the worker.
        """
        result_file = None
        try:
            result_file = tempfile.TemporaryFile()
            body_file = body.file if isinstance(body, SpooledBody) else _to_file(body)
            try:
                protocol = self._spawn(body_file, result_file, config, stored)
            finally:
                body_file.close()   # the child has its own descriptor
        except OSError as e:
            if result_file is not None:
                result_file.close()
            return defer.fail(WorkerError(f"cannot start the decode worker: {e}"))
        finally:
            close_body(body)
        return protocol.result

    def _spawn(self, body_file, result_file, config, stored=False):
        """Start the worker; return its protocol."""
        protocol = _WorkerProtocol(result_file, config.slurmrestd.timeout, self.log)
        # The child imports what this process would import: this very slurm_sd,
        # wherever it was loaded from (a checkout, a virtualenv, site-packages).
        self._reactor.spawnProcess(
            protocol, self._executable,
            [self._executable, "-c", _BOOT, json.dumps(sys.path)], env=worker_environment(),
            childFDs={0: "w", 1: "r", 2: "r", BODY_FD: body_file.fileno(),
                      RESULT_FD: result_file.fileno()})
        # Only a worker that started is waited for when the daemon stops.
        self._workers.add(protocol)
        protocol.when_ended().addCallback(lambda _: self._workers.discard(protocol))
        # The token is not the worker's business.
        config = attr.evolve(config, slurmrestd=attr.evolve(config.slurmrestd, token=None))
        request = (config, True) if stored else config
        protocol.transport.write(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        protocol.transport.closeStdin()
        protocol.timeout = self._reactor.callLater(config.slurmrestd.timeout,
                                                   protocol.time_out)
        return protocol


def worker_environment():
    """The daemon's environment for a worker, without the token it may hold."""
    return {name: value for name, value in os.environ.items() if name != JWT_VARIABLE}


def _to_file(body):
    """``body`` (bytes) in an unnamed temporary file."""
    handle = tempfile.TemporaryFile()
    handle.write(body)
    handle.flush()
    return handle


class _WorkerProtocol(ProcessProtocol):
    """Watches one worker and turns its end into the result."""

    def __init__(self, result_file, limit, log):
        self.result = defer.Deferred(self._cancel)
        self._exit_watch = ExitWatch()
        self.timeout = None
        self._result_file = result_file
        self._limit = limit
        self._log = log
        self._remarks = []
        self._remarks_size = 0
        self._timed_out = False

    def childDataReceived(self, fd, data):
        """stdout or stderr: remarks, kept up to a limit."""
        if self._remarks_size < _MAX_REMARKS:
            self._remarks.append(data)
            self._remarks_size += len(data)

    def time_out(self):
        """The worker took too long: kill it."""
        self.timeout = None
        self._timed_out = True
        self._kill()

    def _cancel(self, d):
        """The poll was cancelled: kill the worker."""
        self._kill()

    def when_ended(self):
        """A Deferred that fires (with None) once the worker process has exited."""
        return self._exit_watch.wait()

    def kill(self):
        """SIGKILL the worker if it still runs."""
        self._kill()

    def _kill(self):
        """SIGKILL the worker if it still runs."""
        try:
            self.transport.signalProcess("KILL")
        except net_error.ProcessExitedAlready:
            pass

    def processEnded(self, reason):
        """Fire the result: the snapshot, or why there is none."""
        if self.timeout is not None and self.timeout.active():
            self.timeout.cancel()
        self.timeout = None
        try:
            self._ended(reason.value)
        finally:
            self._result_file.close()
            self._exit_watch.exit_seen()

    def _ended(self, ended):
        """:meth:`processEnded`, with the result file still open."""
        remarks = b"".join(self._remarks).decode("utf-8", "replace").strip()
        code = getattr(ended, "exitCode", None)
        if code == 0:
            for line in remarks.splitlines():
                self._log.warn("decode worker: {line}", line=line)
        elif remarks:
            # One line, whatever the worker printed (a traceback, say).
            self._log.error("decode worker failed: {remarks}",
                            remarks=" | ".join(remarks.splitlines()))
        if self.result.called:
            return
        if self._timed_out:
            self.result.errback(WorkerError(
                f"the decode worker took longer than {self._limit:g} s "
                f"(slurmrestd.timeout) and was killed"))
            return
        if code != 0:
            last = remarks.splitlines()[-1] if remarks else "no message"
            self.result.errback(WorkerError(
                f"the decode worker failed ({_how(ended)}): {last}"))
            return
        try:
            self._result_file.seek(0)
            # Straight from the file: each body is copied once, into its bytes object.
            kind, value = pickle.load(self._result_file)
        except Exception as e:
            self.result.errback(WorkerError(f"the decode worker's answer is unreadable: {e}"))
            return
        if kind == "ok":
            self.result.callback(value)
        else:
            self.result.errback(BadResponse(value))


def _how(ended):
    """How a process ended, in a few words."""
    if getattr(ended, "signal", None):
        return f"killed by signal {ended.signal}"
    return f"exit status {getattr(ended, 'exitCode', '?')}"
