"""
kill -9 during the state write: a real child process writes a big state file and
is killed with SIGKILL in the middle; the file it was replacing must still load.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.atomicfile import write_atomically
from slurm_sd.pipeline.nodes import Node, NodeList
from slurm_sd.pipeline.stored import decode_node_list, encode_node_list
from slurm_sd.service.state import StateFile
from slurm_sd.service.stateformat import Entry, compose

#: The child: write ``count``-node state files to argv[2] until killed. With argv[4]
#: set, stop inside write_atomically at that point ("write": half the data
#: written; "replace": written and fsynced, not yet renamed), say so and wait.
_CHILD = r"""
import json, os, sys
sys.path[:] = json.loads(sys.argv[1])
from slurm_sd import atomicfile
from slurm_sd.pipeline.nodes import Node, NodeList
from slurm_sd.pipeline.stored import encode_node_list
from slurm_sd.service.stateformat import Entry, compose
path, count, stop_at = sys.argv[2], int(sys.argv[3]), sys.argv[4]

def pause(what):
    sys.stdout.write(what + "\n")
    sys.stdout.flush()
    sys.stdin.read()          # until killed

if stop_at == "write":
    real_fdopen = os.fdopen
    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)
        def write(self, data):
            self.handle.write(data[:len(data) // 2])
            self.handle.flush()
            pause("writing")
        def __getattr__(self, name):
            return getattr(self.handle, name)
    atomicfile.os.fdopen = lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
elif stop_at == "replace":
    atomicfile.os.replace = lambda a, b: pause("replacing")

nodes = tuple(Node(f"new{i:06d}", address=f"10.1.{i // 256 % 256}.{i % 256}",
                   partitions=("batch",), state="idle") for i in range(count))
data = compose([Entry("default", 2.0, count, encode_node_list(NodeList(nodes=nodes)))])
written = 0
while True:
    atomicfile.write_atomically(path, data)
    written += 1
    sys.stdout.write(f"written {written}\n")
    sys.stdout.flush()
"""


class KillDuringWriteTests(SynchronousTestCase):
    """SIGKILL at any point of a state write leaves a readable state file."""

    def setUp(self):
        """A state file from an earlier poll: 1,000 nodes old0..."""
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, "state")
        old = tuple(Node(f"old{i:04d}") for i in range(1000))
        write_atomically(self.path, compose([
            Entry("default", 1.0, 1000, encode_node_list(NodeList(nodes=old)))]))

    def child(self, stop_at, count=100_000):
        """Start the writer child; it is killed and reaped at cleanup whatever happens."""
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(sys.path), self.path, str(count),
             stop_at], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(self.reap, proc)
        return proc

    def reap(self, proc):
        """SIGKILL the child by its pid if it still runs, and wait for it."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()

    def kill(self, proc):
        """SIGKILL the child now and check that the signal ended it."""
        os.kill(proc.pid, signal.SIGKILL)
        self.assertEqual(proc.wait(), -signal.SIGKILL)

    def load(self):
        """The state file read back as the daemon does at start: ``(fetched_at, names)``."""
        state = StateFile(lambda f, *a: defer.maybeDeferred(f, *a))
        loaded = self.successResultOf(state.restore(self.path, ("default",)))
        fetched_at, data = loaded["default"]
        node_list = decode_node_list(data)
        return fetched_at, [node.name for node in node_list.nodes]

    def temporaries(self):
        """Left-over temporary files in the state directory."""
        return [name for name in os.listdir(self.dir) if name.endswith(".tmp")]

    def test_killed_halfway_through_the_data(self):
        """Killed with half of the new data written: the previous file loads whole, and
        the left-over temporary file is removed by the next load."""
        proc = self.child("write")
        self.assertEqual(proc.stdout.readline(), b"writing\n")
        self.assertEqual(len(self.temporaries()), 1)
        self.kill(proc)
        fetched_at, names = self.load()
        self.assertEqual((fetched_at, len(names), names[0]), (1.0, 1000, "old0000"))
        self.assertEqual(self.temporaries(), [])

    def test_killed_before_the_rename(self):
        """Killed with the new data written and fsynced but not renamed: the previous
        file loads."""
        proc = self.child("replace")
        self.assertEqual(proc.stdout.readline(), b"replacing\n")
        self.kill(proc)
        self.assertEqual(self.load()[0], 1.0)

    def test_killed_while_writing_again_and_again(self):
        """A child writing 100,000-node files back to back, killed at once after its
        third write: whichever file is there loads whole (the third, or a fourth)."""
        proc = self.child("none")
        for expected in (b"written 1\n", b"written 2\n", b"written 3\n"):
            self.assertEqual(proc.stdout.readline(), expected)
        self.kill(proc)
        fetched_at, names = self.load()
        self.assertEqual((fetched_at, len(names), names[-1]), (2.0, 100_000, "new099999"))
