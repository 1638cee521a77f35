"""
Tests for slurm_sd.sources.command: the ``scontrol:`` and ``command:`` sources, driven
by a fake process reactor (each failure: exit status, signal, time-out, size, output).
"""
import os
import shutil
import stat
import tempfile

import attr
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from slurm_sd.config.parse import parse
from slurm_sd.errors import BadResponse, FetchError, ResponseTooLarge
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller, PollerService
from slurm_sd.sources.choose import make_source
from slurm_sd.sources.command import CommandSource
from slurm_sd.sources.commandrun import KILL_GRACE
from slurm_sd.sources.spool import SPOOL_OVER, SpooledBody, take_bytes

CONNECT_FAILURE = b"scontrol: error: Unable to contact slurm controller (connect failure)"


class FakeProcess:
    """What spawnProcess returns: records signals and closed pipes; ends on demand."""

    def __init__(self, protocol, reactor):
        self.protocol = protocol
        self.reactor = reactor
        self.signals = []
        self.stdin_closed = False
        self.lost = False
        self.ended = False

    def closeStdin(self):
        """Record that stdin was closed."""
        self.stdin_closed = True

    def loseConnection(self):
        """Record that our ends of the pipes were closed."""
        self.lost = True

    def signalProcess(self, name):
        """Record the signal, or say the process is gone."""
        if self.ended:
            raise net_error.ProcessExitedAlready()
        self.signals.append(name)

    def end(self, code=0, signal=None, stdout=True):
        """The process exits with ``code`` (or dies of ``signal``); with ``stdout``, the
        read end of its stdout pipe is read first (end-of-file: the fake never wrote)."""
        if stdout:
            self.eof()
        self.ended = True
        if code == 0 and signal is None:
            reason = net_error.ProcessDone(0)
        else:
            reason = net_error.ProcessTerminated(exitCode=None if signal else code,
                                                 signal=signal)
        self.protocol.processEnded(Failure(reason))

    def eof(self):
        """Let the reactor read the stdout pipe: end-of-file, as nothing holds it open."""
        for reader in list(self.reactor.readers):
            reader.doRead()


@implementer(IReactorProcess)
class FakeProcessReactor(Clock):
    """A Clock that records spawnProcess calls and connects a :class:`FakeProcess`."""

    def __init__(self):
        Clock.__init__(self)
        self.spawned = []
        self.refuse = None
        self.readers = set()

    def addReader(self, reader):
        """Record a reader; the test makes it read (see :meth:`FakeProcess.eof`)."""
        self.readers.add(reader)

    def removeReader(self, reader):
        """Forget a reader."""
        self.readers.discard(reader)

    def spawnProcess(self, protocol, executable, args=(), env=None, path=None, uid=None,
                     gid=None, usePTY=0, childFDs=None):
        """Record the call and start the fake process (or raise ``refuse``)."""
        if self.refuse is not None:
            raise self.refuse
        process = FakeProcess(protocol, self)
        self.spawned.append(attr.make_class("Spawned", [
            "executable", "args", "env", "childFDs", "process"])(
                executable, list(args), env, childFDs, process))
        protocol.makeConnection(process)
        return process


def config(url, extra=""):
    """A whole configuration with ``url`` and a 10 s timeout."""
    return parse(f"slurmrestd: {{url: {url!r}, timeout: 10, max_response_bytes: "
                 f"{4 * SPOOL_OVER}{extra}}}\njobs: [{{node: {{port: 9100}}}}]\n")


class CommandSourceTests(SynchronousTestCase):
    """CommandSource on a fake process reactor."""

    def setUp(self):
        """A fake reactor and a PATH directory holding an executable ``scontrol`` and ``sinfo``."""
        self.reactor = FakeProcessReactor()
        self.bin = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.bin)
        for name in ("scontrol", "sinfo"):
            path = os.path.join(self.bin, name)
            with open(path, "w") as handle:
                handle.write("#!/bin/sh\n")
            os.chmod(path, stat.S_IRWXU)
        self.environ = {"PATH": self.bin, "SLURM_CONF": "/etc/slurm/slurm.conf",
                        "SLURM_JWT": "secret-token"}

    def source(self, url="scontrol:"):
        """The source ``make_source`` builds for ``url``."""
        return make_source(self.reactor, config(url), self.environ)

    def start(self, url="scontrol:"):
        """Start one poll; return (result Deferred, fake process)."""
        d = self.source(url).fetch_nodes()
        return d, self.reactor.spawned[-1].process

    def test_scontrol_from_path(self):
        """``scontrol:`` runs scontrol from PATH as `scontrol show nodes --json`, stdin
        closed, stdout and stderr read, with SLURM_CONF but without SLURM_JWT."""
        source = self.source()
        self.assertIsInstance(source, CommandSource)
        source.fetch_nodes()
        spawned = self.reactor.spawned[0]
        self.assertEqual(os.path.join(self.bin, "scontrol"), spawned.executable)
        self.assertEqual(["scontrol", "show", "nodes", "--json"], spawned.args)
        self.assertEqual({"PATH": self.bin, "SLURM_CONF": "/etc/slurm/slurm.conf"},
                         spawned.env)
        self.assertEqual({0: "w", 2: "r"}, {k: v for k, v in spawned.childFDs.items()
                                             if k != 1})
        self.assertIsInstance(spawned.childFDs[1], int)   # the pipe read in 1 MiB pieces
        self.assertEqual(1, len(self.reactor.readers))
        self.assertTrue(spawned.process.stdin_closed)
        self.assertEqual("command `scontrol show nodes --json`", source.where)

    def test_scontrol_path_named(self):
        """``scontrol:/path`` runs that binary."""
        path = os.path.join(self.bin, "scontrol")
        self.start("scontrol:" + path)
        self.assertEqual(path, self.reactor.spawned[0].executable)
        self.assertEqual([path, "show", "nodes", "--json"], self.reactor.spawned[0].args)

    def test_command_split_like_a_shell(self):
        """``command:`` splits its words like a shell would; no shell runs them."""
        self.start("command:sinfo --json -p 'gpu batch'")
        self.assertEqual(["sinfo", "--json", "-p", "gpu batch"], self.reactor.spawned[0].args)
        self.assertEqual(os.path.join(self.bin, "sinfo"), self.reactor.spawned[0].executable)

    def test_output_is_the_body(self):
        """The stdout chunks, in order, are the body."""
        d, process = self.start()
        process.protocol.errReceived(b"scontrol: warning: something harmless\n")
        process.protocol.childDataReceived(1, b'{"nodes": ')
        process.protocol.childDataReceived(1, b"[]}")
        self.assertNoResult(d)
        process.end(0)
        self.assertEqual(b'{"nodes": []}', self.successResultOf(d))

    def test_big_output_spooled(self):
        """Output past the spool threshold is handed over in a file, not as bytes."""
        d, process = self.start()
        chunk = b" " * 65536
        process.protocol.childDataReceived(1, b"{")
        for _ in range(SPOOL_OVER // len(chunk) + 2):
            process.protocol.childDataReceived(1, chunk)
        process.end(0)
        body = self.successResultOf(d)
        self.assertIsInstance(body, SpooledBody)
        data = take_bytes(body)
        self.assertEqual(1 + (SPOOL_OVER // len(chunk) + 2) * len(chunk), len(data))
        self.assertEqual(b"{", data[:1])

    def test_nonzero_exit_quotes_stderr(self):
        """A non-zero exit fails the poll with the last stderr line."""
        d, process = self.start()
        process.protocol.errReceived(b"scontrol: debug: first\n" + CONNECT_FAILURE + b"\n")
        process.end(1)
        error = self.failureResultOf(d, FetchError).value
        self.assertEqual("command `scontrol show nodes --json` failed (exit status 1); it "
                         "said: " + CONNECT_FAILURE.decode(), str(error))

    def test_nonzero_exit_silent(self):
        """A non-zero exit with nothing on stderr says so."""
        d, process = self.start("command:sinfo --json")
        process.end(2)
        self.assertIn("failed (exit status 2); it wrote nothing on stderr",
                      str(self.failureResultOf(d, FetchError).value))

    def test_signal(self):
        """A program killed by a signal fails the poll, naming the signal."""
        d, process = self.start()
        process.protocol.errReceived(b"last words")
        process.end(signal=11)
        self.assertIn("was killed by signal 11; it said: last words",
                      str(self.failureResultOf(d, FetchError).value))

    def test_timeout_terminates_then_kills(self):
        """After slurmrestd.timeout the program gets SIGTERM (and our pipe ends are
        closed), SIGKILL after the grace time; the poll fails once it has exited."""
        d, process = self.start()
        process.protocol.errReceived(b"scontrol: error: slurm_receive_msg: timeout\n")
        self.reactor.advance(9.9)
        self.assertEqual([], process.signals)
        self.reactor.advance(0.1)
        self.assertEqual(["TERM"], process.signals)
        self.assertTrue(process.lost)
        self.reactor.advance(KILL_GRACE)
        self.assertEqual(["TERM", "KILL"], process.signals)
        self.assertNoResult(d)   # the next poll cannot start while it runs
        process.end(signal=9)
        message = str(self.failureResultOf(d, FetchError).value)
        self.assertIn("did not finish within 10 s and was killed", message)
        self.assertIn("it said: scontrol: error: slurm_receive_msg: timeout", message)
        self.assertEqual([], self.reactor.getDelayedCalls())

    def test_exit_in_grace_time_no_kill(self):
        """A program that exits on SIGTERM gets no SIGKILL, and no timer is left."""
        d, process = self.start()
        self.reactor.advance(10)
        process.end(signal=15)
        self.failureResultOf(d, FetchError)
        self.assertEqual([], self.reactor.getDelayedCalls())
        self.assertEqual(["TERM"], process.signals)

    def test_output_read_after_exit(self):
        """The result waits for the end of stdout when the exit is seen first."""
        d, process = self.start()
        process.protocol.childDataReceived(1, b'{"nodes": []}')
        process.end(0, stdout=False)
        self.assertNoResult(d)
        process.eof()
        self.assertEqual(b'{"nodes": []}', self.successResultOf(d))
        self.assertEqual(set(), self.reactor.readers)

    def test_stdout_held_open_times_out(self):
        """A program that exits while something it started keeps stdout open fails the
        poll at the time-out; the pipe is closed."""
        d, process = self.start()
        process.end(0, stdout=False)
        self.reactor.advance(10)
        self.assertIn("did not finish within 10 s", str(self.failureResultOf(d, FetchError).value))
        self.assertEqual(set(), self.reactor.readers)
        self.assertEqual([], self.reactor.getDelayedCalls())

    def test_too_large(self):
        """Output past max_response_bytes kills the program and fails the poll."""
        d, process = self.start()
        process.protocol.childDataReceived(1, b"{" + b" " * (4 * SPOOL_OVER - 1))
        self.assertEqual([], process.signals)
        process.protocol.childDataReceived(1, b" ")
        self.assertEqual(["TERM"], process.signals)
        process.protocol.childDataReceived(1, b" more")   # already read: ignored
        process.end(signal=15)
        error = self.failureResultOf(d, ResponseTooLarge).value
        self.assertIn("larger than slurmrestd.max_response_bytes (4194304 bytes)", str(error))

    def test_text_output_not_a_node_list(self):
        """Output that does not start like JSON fails the poll, quoting its start."""
        d, process = self.start("command:sinfo --json")
        process.protocol.childDataReceived(1, b"PARTITION AVAIL TIMELIMIT\n")
        process.protocol.errReceived(b"sinfo: warning: odd\n")
        process.end(0)
        self.assertEqual("the output of command `sinfo --json` is not a JSON node list (it "
                         "begins 'PARTITION AVAIL TIMELIMIT'); it said: sinfo: warning: odd",
                         str(self.failureResultOf(d, FetchError).value))

    def test_empty_output(self):
        """A program that prints nothing fails the poll."""
        d, process = self.start("command:sinfo --json")
        process.end(0)
        self.assertIn("printed nothing on stdout", str(self.failureResultOf(d, FetchError).value))

    def test_scontrol_without_json_unrecognized(self):
        """22.05's scontrol (exit 1, unrecognized --json) gets the line to use
        command:sinfo --json."""
        d, process = self.start()
        process.protocol.errReceived(b"scontrol: unrecognized option '--json'\n"
                                     b'Try "scontrol --help" for more information\n')
        process.end(1)
        message = str(self.failureResultOf(d, FetchError).value)
        self.assertIn("this scontrol has no --json for show nodes (Slurm 22.05 or older); "
                      "use slurmrestd.url: 'command:sinfo --json' there; it said: "
                      "scontrol: unrecognized option '--json'", message)

    def test_scontrol_printing_text(self):
        """An scontrol that prints text for show nodes --json gets the same line."""
        d, process = self.start()
        process.protocol.childDataReceived(1, b"NodeName=cpu01 Arch=x86_64 CoresPerSocket=1\n")
        process.end(0)
        self.assertIn("printed text, not JSON: this scontrol has no --json",
                      str(self.failureResultOf(d, FetchError).value))

    def test_not_on_path(self):
        """A program not on PATH fails the poll in one line, and nothing is spawned."""
        self.environ["PATH"] = "/nonexistent"
        d = self.source("command:nosuchprogram --json").fetch_nodes()
        self.assertIn("nosuchprogram is not on the daemon's PATH (/nonexistent)",
                      str(self.failureResultOf(d, FetchError).value))
        self.assertEqual([], self.reactor.spawned)

    def test_path_not_executable(self):
        """A named binary that is missing or not executable fails the poll in one line."""
        plain = os.path.join(self.bin, "plain")
        open(plain, "w").close()
        d = self.source("scontrol:" + plain).fetch_nodes()
        self.assertIn(plain + " is not executable", str(self.failureResultOf(d, FetchError).value))
        d = self.source("scontrol:/nonexistent/scontrol").fetch_nodes()
        self.assertIn("does not exist", str(self.failureResultOf(d, FetchError).value))

    def test_spawn_refused(self):
        """spawnProcess failing (no more processes) fails the poll in one line."""
        self.reactor.refuse = OSError(11, "Resource temporarily unavailable")
        d = self.source().fetch_nodes()
        self.assertIn("cannot start command `scontrol show nodes --json`",
                      str(self.failureResultOf(d, FetchError).value))
        self.assertEqual([], self.reactor.getDelayedCalls())

    def test_cancel_and_stop_wait_for_the_end(self):
        """Cancelling the poll terminates the program; stop() fires once it has exited."""
        source = self.source()
        d = source.fetch_nodes()
        process = self.reactor.spawned[0].process
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(["TERM"], process.signals)
        stopped = source.stop()
        self.assertNoResult(stopped)
        self.reactor.advance(KILL_GRACE)
        self.assertEqual("KILL", process.signals[-1])
        process.end(signal=9)
        self.assertIsNone(self.successResultOf(stopped))
        self.successResultOf(source.stop())


class PollerWithCommandTests(SynchronousTestCase):
    """The poller's hooks for program sources: stopping waits, decode errors name it."""

    def setUp(self):
        """A fake process reactor, a poller on ``command:sinfo --json``, log capture."""
        self.reactor = FakeProcessReactor()
        self.config = config("command:/bin/true --json")
        self.source = make_source(self.reactor, self.config, {"PATH": "/bin"})
        self.cache = TargetCache(self.reactor)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def poller(self, process):
        """A poller on the source with the ``process`` step."""
        return Poller(self.reactor, self.source, process, self.cache, self.config)

    def test_stop_service_waits_for_the_program(self):
        """The daemon stopping terminates a running program and waits for it to exit;
        nothing is logged as a failure."""
        service = PollerService(self.poller(lambda body, config: defer.succeed(body)))
        service.startService()
        self.reactor.advance(0)
        process = self.reactor.spawned[0].process
        stopped = service.stopService()
        self.assertEqual(["TERM"], process.signals)
        self.assertNoResult(stopped)
        process.end(signal=15)
        self.successResultOf(stopped)
        self.assertFalse([e for e in self.events if e.get("log_level") == LogLevel.error])

    def test_decode_error_names_the_program(self):
        """A node list the decode step rejects is logged with the program and its
        last stderr line."""
        def reject(body, config):
            return defer.fail(BadResponse("slurmrestd reported errors: Unspecified error"))
        poller = self.poller(reject)
        poller.start()
        self.reactor.advance(0)
        process = self.reactor.spawned[0].process
        process.protocol.childDataReceived(1, b'{"errors": [{"error": "x"}], "nodes": []}')
        process.protocol.errReceived(b"sinfo: error: slurmctld unreachable\n")
        process.end(0)
        errors = [formatEvent(e) for e in self.events if e.get("log_level") == LogLevel.error]
        self.assertEqual(1, len(errors))
        self.assertIn("poll failed: slurmrestd reported errors: Unspecified error (in the "
                      "output of command `/bin/true --json`; it said: sinfo: error: "
                      "slurmctld unreachable)", errors[0])
        poller.stop()
