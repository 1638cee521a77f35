"""Tests for slurm_sd.sources.runprocess and slurm_sd.sources.tokencommand."""
import os
import sys

from twisted.internet import reactor
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from slurm_sd.sources.runprocess import ProcessFailed, last_line, run_process
from slurm_sd.sources.tokencommand import TokenCommand, token_from_output

ENV = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.defpath}


class FakeProcess:
    """What spawnProcess returns: records signals; ``end`` finishes the process."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.signals = []
        self.stdin_closed = False

    def closeStdin(self):
        """Record the close."""
        self.stdin_closed = True

    def signalProcess(self, signal):
        """Record the signal; a KILL ends the process."""
        self.signals.append(signal)
        if signal == "KILL":
            self.end(ProcessTerminated(signal=9))

    def end(self, reason=None):
        """The process exits (status 0 unless ``reason`` says otherwise)."""
        self.protocol.processEnded(Failure(reason or ProcessDone(0)))


@implementer(IReactorProcess)
class FakeProcessReactor(Clock):
    """A Clock that records spawnProcess calls instead of starting anything."""

    def __init__(self):
        Clock.__init__(self)
        self.spawned = []

    def spawnProcess(self, protocol, executable, args=(), env=None, path=None, uid=None,
                     gid=None, usePTY=0, childFDs=None):
        """Record the call and connect the protocol to a FakeProcess."""
        process = FakeProcess(protocol)
        self.spawned.append((executable, list(args), dict(env), process))
        protocol.makeConnection(process)
        return process


class RunProcessTests(SynchronousTestCase):
    """run_process on a fake process reactor."""

    def setUp(self):
        """A fake reactor and one run of ``python`` (found on PATH)."""
        self.reactor = FakeProcessReactor()
        self.d = run_process(self.reactor, ["python3", "-V"], 5, 100, ENV, what="the test")
        [(self.executable, self.args, self.env, self.process)] = self.reactor.spawned

    def test_stdout_on_success(self):
        """Exit status 0: the Deferred fires with all of stdout."""
        self.assertTrue(os.path.isabs(self.executable))
        self.assertEqual(self.args, ["python3", "-V"])
        self.assertEqual(self.env, ENV)
        self.assertTrue(self.process.stdin_closed)
        self.process.protocol.outReceived(b"a")
        self.process.protocol.outReceived(b"b\n")
        self.process.end()
        self.assertEqual(self.successResultOf(self.d), b"ab\n")
        self.assertFalse(self.reactor.getDelayedCalls())

    def test_exit_status_quotes_last_stderr_line(self):
        """A non-zero exit fails with the status and the last stderr line."""
        self.process.protocol.errReceived(b"scontrol: warning: one\nscontrol: error: ")
        self.process.protocol.errReceived(b"Invalid user\n\n")
        self.process.end(ProcessTerminated(exitCode=1))
        error = self.failureResultOf(self.d, ProcessFailed).value
        self.assertEqual(str(error), "the test exited with status 1: scontrol: error: "
                                     "Invalid user")
        self.assertEqual(error.last_stderr, "scontrol: error: Invalid user")

    def test_signal(self):
        """Death by a signal is a failure that names it."""
        self.process.end(ProcessTerminated(signal=15))
        error = self.failureResultOf(self.d, ProcessFailed).value
        self.assertEqual(str(error), "the test was killed by signal 15 (it wrote nothing "
                                     "to stderr)")

    def test_timeout_kills(self):
        """Past the timeout the process is killed and the failure says so."""
        self.reactor.advance(4.9)
        self.assertNoResult(self.d)
        self.reactor.advance(0.2)
        self.assertEqual(self.process.signals, ["KILL"])
        error = self.failureResultOf(self.d, ProcessFailed).value
        self.assertIn("did not finish within 5 s and was killed", str(error))

    def test_too_much_output_kills(self):
        """More stdout than max_bytes kills the process."""
        self.process.protocol.outReceived(b"x" * 101)
        self.assertEqual(self.process.signals, ["KILL"])
        error = self.failureResultOf(self.d, ProcessFailed).value
        self.assertIn("printed more than 100 bytes and was killed", str(error))

    def test_cancel_kills(self):
        """Cancelling the Deferred (the poll's timeout, a stop) kills the process."""
        self.d.cancel()
        self.assertEqual(self.process.signals, ["KILL"])
        self.failureResultOf(self.d)
        self.assertFalse(self.reactor.getDelayedCalls())

    def test_not_on_path(self):
        """A program not on PATH fails at once, in one line, with nothing spawned."""
        reactor = FakeProcessReactor()
        d = run_process(reactor, ["no-such-program-here"], 5, 100, {"PATH": "/nonexistent"})
        self.assertIn("no-such-program-here not found on PATH (/nonexistent)",
                      str(self.failureResultOf(d, ProcessFailed).value))
        self.assertEqual(reactor.spawned, [])

    def test_last_line(self):
        """last_line skips blank lines and undecodable bytes do not raise."""
        self.assertEqual(last_line(b"one\ntwo\n  \n"), "two")
        self.assertEqual(last_line(b""), "")
        self.assertEqual(last_line(b"\xff\xfe"), "\ufffd\ufffd")


class RealProcessTests(TestCase):
    """run_process on the real reactor, with a real child."""

    timeout = 30

    def test_real_child(self):
        """A real child's stdout is collected; its stderr's last line is quoted on failure."""
        d = run_process(reactor, [sys.executable, "-c", "print('SLURM_JWT=abc')"], 20,
                        1000, ENV)
        d.addCallback(self.assertEqual, b"SLURM_JWT=abc\n")
        return d

    def test_real_failure(self):
        """A real child that fails: its exit status and last stderr line."""
        d = run_process(reactor, [sys.executable, "-c",
                                  "import sys; sys.exit('scontrol: error: nope')"], 20,
                        1000, ENV, what="cmd")
        d = self.assertFailure(d, ProcessFailed)
        d.addCallback(lambda e: self.assertEqual(
            str(e), "cmd exited with status 1: scontrol: error: nope"))
        return d


class TokenCommandTests(SynchronousTestCase):
    """TokenCommand: the token from the command's stdout, without SLURM_JWT in its env."""

    def test_output_forms(self):
        """SLURM_JWT=... lines and a bare token are both understood."""
        self.assertEqual(token_from_output(b"SLURM_JWT=abc.def.ghi\n"), "abc.def.ghi")
        self.assertEqual(token_from_output(b"note\nSLURM_JWT= abc \n"), "abc")
        self.assertEqual(token_from_output(b"  abc.def.ghi\n\n"), "abc.def.ghi")

    def test_no_token_not_quoted(self):
        """Output with no token is a failure that does not quote the output."""
        for output in (b"", b"LEAKA LEAKB\n", b"LEAKC\nLEAKD\n", b"SLURM_JWT=\n"):
            with self.assertRaises(ProcessFailed) as caught:
                token_from_output(output)
            self.assertIn("printed no token", str(caught.exception))
            self.assertNotIn("LEAK", str(caught.exception))

    def test_environment_has_no_token(self):
        """The command gets the daemon's environment without SLURM_JWT."""
        reactor = FakeProcessReactor()
        environ = dict(ENV, SLURM_JWT="secret-old-token", SLURM_CONF="/etc/slurm.conf")
        d = TokenCommand(reactor, ["python3", "token"], 7, environ)()
        [(_, args, env, process)] = reactor.spawned
        self.assertEqual(args, ["python3", "token"])
        self.assertNotIn("SLURM_JWT", env)
        self.assertEqual(env["SLURM_CONF"], "/etc/slurm.conf")
        process.protocol.outReceived(b"SLURM_JWT=new\n")
        process.end()
        self.assertEqual(self.successResultOf(d), "new")

    def test_failure_names_the_key(self):
        """A failing command's message names slurmrestd.token_command and its program."""
        reactor = FakeProcessReactor()
        d = TokenCommand(reactor, ["python3", "token"], 7, ENV)()
        process = reactor.spawned[0][3]
        process.protocol.errReceived(b"scontrol: error: Unable to contact slurm controller\n")
        process.end(ProcessTerminated(exitCode=1))
        self.assertEqual(str(self.failureResultOf(d, ProcessFailed).value),
                         "slurmrestd.token_command (python3) exited with status 1: "
                         "scontrol: error: Unable to contact slurm controller")
