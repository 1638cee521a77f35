"""State file tests beyond one cluster in one process: several clusters, entries kept
on disk only, and the real decode worker rendering a stored node list."""
import os
import shutil
import tempfile

from twisted.internet import reactor as global_reactor
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from slurm_sd.config.parse import parse
from slurm_sd.errors import BadResponse
from slurm_sd.pipeline.nodes import Node, NodeList
from slurm_sd.pipeline.runner import WorkerPipeline, process
from slurm_sd.pipeline.stored import decode_node_list, encode_node_list
from slurm_sd.service.state import StateFile
from slurm_sd.service.stateformat import Entry
from slurm_sd.service.stateformat import parse as parse_state
from slurm_sd.tap import build_service
from tests.logged import log_lines
from tests.service.test_state import NODES, config_text, synchronous


class SeveralClustersTests(SynchronousTestCase):
    """One state file for every cluster of a ``clusters:`` daemon (build_service)."""

    def setUp(self):
        """A temporary directory with two saved node lists."""
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, "state")
        self.events = self.enterContext(capturedLogs())
        for name, nodes in (("a.json", NODES), ("b.json", NODES.replace(b"cpu0", b"bcpu0"))):
            with open(os.path.join(self.dir, name), "wb") as handle:
                handle.write(nodes)

    def daemon(self, clusters):
        """The daemon on a MemoryReactorClock for ``clusters`` (name -> node file)."""
        text = ("clusters:\n" + "".join(
            f"  - {{name: {name}, slurmrestd: {{url: 'file:{os.path.join(self.dir, f)}'}}}}\n"
            for name, f in clusters.items())
            + f"state_file: {self.path}\ntarget_address: name\njobs: [{{node: {{port: 9100}}}}]\n")
        reactor = MemoryReactorClock()
        reactor.advance(1_000_000)
        service = build_service(reactor, parse(text, os.path.join(self.dir, "c.yaml")),
                                environ={})
        return reactor, service

    def body(self, service, cluster):
        """The cluster's /targets?prom_job=node body, or None without data."""
        snapshot = service.clusters.get(cluster).cache.snapshot
        return None if snapshot is None else snapshot.bodies["node"]

    def test_each_cluster_its_own_entry(self):
        """Both clusters' polls are in the file; at the next start only the clusters still
        configured are served from it, each its own nodes, before any poll; the next
        write keeps the stored hpc2 and leaves out hpc1, no longer configured."""
        reactor, service = self.daemon({"hpc1": "a.json", "hpc2": "b.json"})
        service.startService()
        reactor.advance(0)
        service.stopService()
        with open(self.path, "rb") as handle:
            self.assertEqual([e.name for e in parse_state(handle.read())], ["hpc1", "hpc2"])
        reactor, service = self.daemon({"hpc2": "missing.json", "hpc3": "a.json"})
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIn(b"bcpu01:9100", self.body(service, "hpc2"))
        self.assertNotIn(b'"cpu01:9100', self.body(service, "hpc2"))
        self.assertIsNone(self.body(service, "hpc3"))
        reactor.advance(0)
        self.assertIn(b"cpu01:9100", self.body(service, "hpc3"))
        with open(self.path, "rb") as handle:
            self.assertEqual([e.name for e in parse_state(handle.read())], ["hpc2", "hpc3"])


class KeptOnDiskTests(SynchronousTestCase):
    """The daemon keeps no copy of what the file holds, and reads it back to rewrite it."""

    def setUp(self):
        """A StateFile writing synchronously into a temporary directory, for hpc1 and hpc2."""
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, "state")
        self.events = self.enterContext(capturedLogs())
        self.state = StateFile(synchronous, names=lambda: ["hpc1", "hpc2"])

    def entry(self, name, node):
        """An entry of one node called ``node``."""
        return Entry(name, 5.0, 1, encode_node_list(NodeList(nodes=(Node(node),))))

    def stored(self):
        """``{cluster: node names}`` in the file."""
        with open(self.path, "rb") as handle:
            return {e.name: [n.name for n in decode_node_list(e.data).nodes]
                    for e in parse_state(handle.read())}

    def test_other_cluster_read_back(self):
        """After a write no entry's data stays in memory; writing hpc2 copies hpc1 from the
        file; a cluster no longer configured is left out."""
        self.successResultOf(self.state.save(self.path, self.entry("hpc1", "a")))
        self.assertEqual([e.data for e in self.state._entries.values()], [None])
        self.successResultOf(self.state.save(self.path, self.entry("hpc2", "b")))
        self.assertEqual(self.stored(), {"hpc1": ["a"], "hpc2": ["b"]})
        self.state._names = lambda: ["hpc2"]
        self.successResultOf(self.state.save(self.path, self.entry("hpc2", "c")))
        self.assertEqual(self.stored(), {"hpc2": ["c"]})

    def test_entry_lost_when_the_file_changed(self):
        """An entry that cannot be read back (the file was replaced) is left out, with one
        warning line; the cluster being saved is written."""
        self.successResultOf(self.state.save(self.path, self.entry("hpc1", "a")))
        with open(self.path, "wb") as handle:
            handle.write(b"something else")
        self.successResultOf(self.state.save(self.path, self.entry("hpc2", "b")))
        self.assertEqual(self.stored(), {"hpc2": ["b"]})
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertIn("the entry of cluster hpc1 could not be read back", line)


class StoredInWorkerTests(TestCase):
    """The decode worker converts and renders a stored node list (off the reactor)."""

    def test_real_worker(self):
        """A real worker renders a stored node list as the in-process path does."""
        config = parse(config_text("/nonexistent/state"))
        stored = self.successResultOf(process(NODES, config)).stored
        expected = self.successResultOf(process(stored, config, stored=True))
        self.assertIsNone(expected.stored)
        self.assertEqual(expected.nodes, 8)
        d = WorkerPipeline(global_reactor).process(stored, config, stored=True)
        d.addCallback(self.assertEqual, expected)
        return d

    def test_real_worker_bad_stored(self):
        """Bytes that are not a stored node list are a BadResponse from the real worker."""
        d = WorkerPipeline(global_reactor).process(b"\x93junk", parse(config_text("/x")),
                                                   stored=True)
        return self.assertFailure(d, BadResponse)
