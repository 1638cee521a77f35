"""
Tests for the process step in a worker: slurm_sd.pipeline.worker (the child's side) and
slurm_sd.pipeline.runner's WorkerPipeline (the daemon's side).
"""
import io
import json
import os
import pickle
import sys
import tempfile

import attr
from twisted.internet import defer, error
from twisted.internet import reactor as global_reactor
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from slurm_sd.config.parse import parse
from slurm_sd.errors import BadResponse, WorkerError
from slurm_sd.pipeline import runner as pipeline
from slurm_sd.pipeline import worker
from slurm_sd.pipeline.convert import convert
from slurm_sd.pipeline.decode import decode_nodes
from slurm_sd.pipeline.render import count_states, render
from slurm_sd.pipeline.runner import WorkerPipeline, make_pipeline
from slurm_sd.sources.spool import Spool
from tests.fakes import fixture
from tests.logged import log_lines

CONFIG = parse("slurmrestd: {url: 'unix:/run/slurmrestd.sock', timeout: 30}\n"
               "jobs:\n  - node: {port: 9100}\n  - dcgm: {port: 9400, partitions: [gpu], "
               "group_by: node}\n")
NODES = fixture("slurm-24.11-v0.0.40-nodes-varied.json")
ERRORS = b'{"nodes": [], "errors": [{"error": "slurmctld gone", "error_number": 1}]}'


def reference(body, config=CONFIG):
    """The snapshot the reference decoder gives for ``body``."""
    node_list = decode_nodes(body)
    return render(convert(node_list, config), node_count=len(node_list.nodes),
                  skipped=node_list.skipped, cluster_name=node_list.cluster_name,
                  states=count_states(node_list.nodes))


def spooled(body):
    """``body`` as a SpooledBody."""
    spool = Spool(threshold=0)
    spool.write(body)
    return spool.finish()


class BuildTests(SynchronousTestCase):
    """worker.build_snapshot, the in-process path."""

    def test_any_body_form(self):
        """Bytes, a descriptor and a SpooledBody give the reference's snapshot."""
        expected = reference(NODES)
        self.assertEqual(worker.build_snapshot(NODES, CONFIG), expected)
        body = spooled(NODES)
        self.addCleanup(body.close)
        self.assertEqual(worker.build_snapshot(body, CONFIG), expected)
        self.assertEqual(worker.build_snapshot(body.fileno(), CONFIG), expected)

    def test_process_closes_spooled_body(self):
        """pipeline.process builds in-process and closes a SpooledBody."""
        body = spooled(NODES)
        self.assertEqual(self.successResultOf(pipeline.process(body, CONFIG)),
                         reference(NODES))
        self.assertTrue(body.file.closed)

    def test_run(self):
        """worker.run reads the config, writes ("ok", snapshot) or ("bad", message)."""
        for body, expected in ((NODES, ("ok", reference(NODES))),
                               (ERRORS, ("bad", "slurmrestd reported errors: "
                                                "slurmctld gone (error_number 1)"))):
            with tempfile.TemporaryFile() as handle:
                handle.write(body)
                handle.flush()
                out, err = io.BytesIO(), io.StringIO()
                worker.run(handle.fileno(), io.BytesIO(pickle.dumps(CONFIG)), out, err)
            self.assertEqual(pickle.loads(out.getvalue()), expected)
            self.assertEqual(err.getvalue(), "")

    def test_run_notes_fallback(self):
        """A body the fast decoder gives up on is noted on stderr, one line."""
        with tempfile.TemporaryFile() as handle:
            handle.write(b'{"nodes": [1, {"name": "n1"}]}')
            handle.flush()
            out, err = io.BytesIO(), io.StringIO()
            worker.run(handle.fileno(), io.BytesIO(pickle.dumps(CONFIG)), out, err)
        self.assertEqual(pickle.loads(out.getvalue())[0], "ok")
        self.assertIn("fast decoder gave up", err.getvalue())
        self.assertEqual(err.getvalue().count("\n"), 1)


class FakeProcessTransport:
    """What spawnProcess returns: records stdin, signals."""

    def __init__(self):
        self.stdin = []
        self.stdin_closed = False
        self.signals = []

    def write(self, data):
        """Record data for the child's stdin."""
        self.stdin.append(data)

    def closeStdin(self):
        """Record the close."""
        self.stdin_closed = True

    def signalProcess(self, signal):
        """Record the signal."""
        self.signals.append(signal)


@implementer(IReactorProcess)
class FakeProcessReactor(Clock):
    """A Clock that records spawnProcess; descriptors given to the child are dup()ed."""

    def __init__(self):
        Clock.__init__(self)
        self.spawned = []

    def spawnProcess(self, protocol, executable, args=(), env=None, path=None, uid=None,
                     gid=None, usePTY=0, childFDs=None):
        """Record the call, as the child would see it."""
        transport = FakeProcessTransport()
        fds = {child: os.dup(parent) for child, parent in childFDs.items()
               if isinstance(parent, int)}
        self.spawned.append(attr.make_class("Spawned", [
            "protocol", "executable", "args", "env", "childFDs", "fds", "transport"])(
                protocol, executable, args, env, childFDs, fds, transport))
        protocol.makeConnection(transport)
        return transport


class WorkerPipelineTests(SynchronousTestCase):
    """WorkerPipeline: the daemon's side of the worker, with a fake process reactor."""

    def setUp(self):
        """A fake process reactor, and a log observer."""
        self.reactor = FakeProcessReactor()
        self.events = self.enterContext(capturedLogs())

    def tearDown(self):
        """Close the descriptors the fake children were given."""
        for spawned in self.reactor.spawned:
            for fd in spawned.fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass

    def start(self, body=NODES, config=CONFIG):
        """Start one process step; return its Deferred and the spawned child."""
        d = WorkerPipeline(self.reactor, executable="/py").process(body, config)
        [spawned] = self.reactor.spawned
        return d, spawned

    def run_child(self, spawned, stderr=""):
        """Do the child's work in-process, then end it with exit status 0."""
        out = os.fdopen(spawned.fds.pop(worker.RESULT_FD), "wb")
        with out:
            worker.run(spawned.fds[worker.BODY_FD], io.BytesIO(b"".join(spawned.transport.stdin)),
                       out, io.StringIO())
        if stderr:
            spawned.protocol.childDataReceived(2, stderr.encode())
        spawned.protocol.processEnded(Failure(error.ProcessDone(0)))

    def test_spawn(self):
        """The worker runs worker.main with our sys.path, the body on fd 3, stdin closed."""
        d, spawned = self.start()
        self.assertEqual(spawned.args[:2], ["/py", "-c"])
        self.assertIn("from slurm_sd.pipeline.worker import main; main()", spawned.args[2])
        self.assertEqual(json.loads(spawned.args[3]), sys.path)
        self.assertEqual(sorted(spawned.childFDs), [0, 1, 2, 3, 4])
        self.assertTrue(spawned.transport.stdin_closed)
        self.assertEqual(os.pread(spawned.fds[3], len(NODES) + 1, 0), NODES)
        self.assertNoResult(d)

    def test_snapshot(self):
        """The worker's snapshot is the in-process one."""
        d, spawned = self.start()
        self.run_child(spawned)
        self.assertEqual(self.successResultOf(d), reference(NODES))

    def test_spooled_body(self):
        """A SpooledBody is handed to the worker and closed in the daemon."""
        body = spooled(NODES)
        d, spawned = self.start(body)
        self.assertTrue(body.file.closed)
        self.run_child(spawned)
        self.assertEqual(self.successResultOf(d), reference(NODES))

    def test_bad_response(self):
        """An unusable body fails with the BadResponse the in-process path gives."""
        d, spawned = self.start(ERRORS)
        self.run_child(spawned)
        failure = self.failureResultOf(d, BadResponse)
        self.assertEqual(str(failure.value),
                         "slurmrestd reported errors: slurmctld gone (error_number 1)")

    def test_token_not_passed(self):
        """The worker gets the config without the slurmrestd token."""
        config = attr.evolve(CONFIG, slurmrestd=attr.evolve(CONFIG.slurmrestd, token="s3"))
        d, spawned = self.start(config=config)
        sent = pickle.loads(b"".join(spawned.transport.stdin))
        self.assertIsNone(sent.slurmrestd.token)
        self.assertEqual(sent, attr.evolve(config, slurmrestd=CONFIG.slurmrestd))
        self.assertNotIn(b"s3", b"".join(spawned.transport.stdin))

    def test_remarks_logged(self):
        """What a successful worker says on stderr is logged as warnings."""
        d, spawned = self.start()
        self.run_child(spawned, stderr="the fast decoder gave up (x)\n")
        self.successResultOf(d)
        self.assertEqual(log_lines(self.events, LogLevel.warn),
                         ["decode worker: the fast decoder gave up (x)"])

    def test_crash(self):
        """A worker that dies fails the step in one line; its traceback is logged."""
        d, spawned = self.start()
        spawned.protocol.childDataReceived(2, b"Traceback (most recent call last):\n"
                                              b"  ...\nMemoryError: out\n")
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(exitCode=1)))
        failure = self.failureResultOf(d, WorkerError)
        self.assertEqual(str(failure.value),
                         "the decode worker failed (exit status 1): MemoryError: out")
        [logged] = log_lines(self.events, LogLevel.error)
        self.assertIn("Traceback", logged)

    def test_killed(self):
        """A worker killed by a signal says so."""
        d, spawned = self.start()
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(signal=9)))
        failure = self.failureResultOf(d, WorkerError)
        self.assertIn("killed by signal 9", str(failure.value))

    def test_unreadable_answer(self):
        """A worker that exits 0 without an answer fails the step."""
        d, spawned = self.start()
        spawned.protocol.processEnded(Failure(error.ProcessDone(0)))
        failure = self.failureResultOf(d, WorkerError)
        self.assertIn("answer is unreadable", str(failure.value))

    def test_timeout(self):
        """A worker still running after slurmrestd.timeout is killed and the step fails."""
        d, spawned = self.start()
        self.reactor.advance(29)
        self.assertEqual(spawned.transport.signals, [])
        self.reactor.advance(1)
        self.assertEqual(spawned.transport.signals, ["KILL"])
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(signal=9)))
        failure = self.failureResultOf(d, WorkerError)
        self.assertIn("took longer than 30 s (slurmrestd.timeout)", str(failure.value))

    def test_cancel(self):
        """Cancelling the step (the poller stopping) kills the worker."""
        d, spawned = self.start()
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(spawned.transport.signals, ["KILL"])
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(signal=9)))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop_kills_and_waits(self):
        """stop() kills a running worker and fires only once it has exited."""
        workers = WorkerPipeline(self.reactor, executable="/py")
        d = workers.process(NODES, CONFIG)
        [spawned] = self.reactor.spawned
        stopped = workers.stop()
        self.assertEqual(spawned.transport.signals, ["KILL"])
        self.assertNoResult(stopped)
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(signal=9)))
        self.successResultOf(stopped)
        self.failureResultOf(d, WorkerError)
        self.successResultOf(workers.stop())

    def test_pipeline_service_waits(self):
        """Stopping the PipelineService waits for the killed worker to exit."""
        workers = WorkerPipeline(self.reactor, executable="/py")
        service = pipeline.PipelineService(workers)
        service.startService()
        workers.process(NODES, CONFIG).addErrback(lambda f: None)
        [spawned] = self.reactor.spawned
        stopping = service.stopService()
        self.assertNoResult(stopping)
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(signal=9)))
        self.successResultOf(stopping)

    def test_make_pipeline(self):
        """The daemon uses a worker when the reactor can spawn, else works in-process."""
        self.assertIs(make_pipeline(MemoryReactorClock()).process, pipeline.process)
        chosen = make_pipeline(self.reactor).process
        self.assertIsInstance(chosen.__self__, WorkerPipeline)

    def test_worker_environment_has_no_token(self):
        """The worker's environment is the daemon's without SLURM_JWT."""
        self.patch(os, "environ", {"SLURM_JWT": "s3cret", "PATH": "/bin", "LANG": "C"})
        d, spawned = self.start()
        self.assertEqual(spawned.env, {"PATH": "/bin", "LANG": "C"})

    def test_failure_remarks_one_line(self):
        """A failed worker's traceback is logged as one line."""
        d, spawned = self.start()
        spawned.protocol.childDataReceived(2, b"Traceback (most recent call last):\n"
                                              b"  ...\nMemoryError: out\n")
        spawned.protocol.processEnded(Failure(error.ProcessTerminated(exitCode=1)))
        self.failureResultOf(d, WorkerError)
        self.assertEqual(log_lines(self.events, LogLevel.error), [
            "decode worker failed: Traceback (most recent call last): |   ... | MemoryError: out"])

    def test_spawn_failure_does_not_block_stop(self):
        """A worker that cannot be spawned fails the poll, and stopping waits for nothing."""
        def refuse(*args, **kwargs):
            raise OSError(11, "Resource temporarily unavailable")
        self.patch(self.reactor, "spawnProcess", refuse)
        pipeline = WorkerPipeline(self.reactor, executable="/py")
        failure = self.failureResultOf(pipeline.process(NODES, CONFIG), WorkerError)
        self.assertIn("cannot start the decode worker", str(failure.value))
        self.successResultOf(pipeline.stop())


class RealWorkerTests(TestCase):
    """One real worker process."""

    def test_real_worker(self):
        """python -m slurm_sd.pipeline.worker builds the same snapshot as the in-process path."""
        d = WorkerPipeline(global_reactor).process(spooled(NODES), CONFIG)
        d.addCallback(self.assertEqual, reference(NODES))
        return d

    def test_niced(self):
        """The worker lowers its own CPU priority by WORKER_NICENESS."""
        import subprocess
        out = subprocess.run(
            [sys.executable, "-c", "import os; from slurm_sd.pipeline import worker; "
             "worker.lower_priority(); print(os.nice(0))"],
            capture_output=True, text=True, check=True,
            env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                os.path.dirname(worker.__file__)))))
        self.assertEqual(int(out.stdout), min(19, os.nice(0) + worker.WORKER_NICENESS))

    def test_real_worker_bad_body(self):
        """A body that is not JSON is a BadResponse from the real worker."""
        d = WorkerPipeline(global_reactor).process(b"x", CONFIG)
        return self.assertFailure(d, BadResponse)

    def test_worker_cannot_run(self):
        """A worker that exits non-zero fails the step with a WorkerError."""
        if not os.path.exists("/bin/false"):
            raise SkipTest("no /bin/false")
        d = WorkerPipeline(global_reactor, executable="/bin/false").process(NODES, CONFIG)
        return self.assertFailure(d, WorkerError)

