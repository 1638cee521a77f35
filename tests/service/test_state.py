"""Tests for the state file (slurm_sd.service.state): written after good polls, read at start."""
import errno
import json
import os
import shutil
import tempfile

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.atomicfile import write_atomically
from slurm_sd.config.parse import parse
from slurm_sd.pipeline.nodes import Node, NodeList
from slurm_sd.pipeline.runner import process
from slurm_sd.pipeline.stored import decode_node_list, encode_node_list
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.poller import Poller
from slurm_sd.service.state import StateFile
from slurm_sd.service.stateformat import VERSION, Entry, compose
from slurm_sd.service.stateformat import parse as parse_state
from slurm_sd.web.metrics import Metrics
from slurm_sd.web.site import make_root
from tests.logged import log_lines
from tests.service.test_poller import ScriptedSource

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")

with open(os.path.join(FIXTURES, "slurm-22.05-v0.0.38-nodes.json"), "rb") as _handle:
    #: Eight nodes, cpu01 to gpu04.
    NODES = _handle.read()


def config_text(state_file, port=9100, extra=""):
    """A config with one job on ``port`` and ``state_file``."""
    return (f"slurmrestd: {{url: 'http://127.0.0.1:6820'}}\ninterval: 100\n"
            f"state_file: {state_file}\ntarget_address: name\n{extra}"
            f"jobs:\n  - node: {{port: {port}}}\n")


def synchronous(f, *args):
    """A run_in_thread that runs at once."""
    return defer.maybeDeferred(f, *args)


class CodecTests(SynchronousTestCase):
    """The stored node list and the file format, without a poller."""

    def test_node_list_round_trip(self):
        """A node list comes back from its stored form field for field."""
        node_list = NodeList(nodes=(Node("a", "ha", "10.0.0.1", ("p", "q"), "idle", ("drain",),
                                         "x86_64", ("f",), ("f",), "gpu:2", "why"),
                                    Node("b")), cluster_name="c", skipped=2)
        self.assertEqual(decode_node_list(encode_node_list(node_list)), node_list)

    def test_lone_surrogate_is_not_stored(self):
        """A node list UTF-8 cannot carry gives None rather than an exception."""
        self.assertIsNone(encode_node_list(NodeList(nodes=(Node("a\ud800"),))))

    def test_file_round_trip(self):
        """Every entry of a composed file is parsed back, in order."""
        entries = [Entry("hpc1", 10.5, 3, b"abc"), Entry("hpc2", 20.0, 0, b"")]
        self.assertEqual(parse_state(compose(entries)), entries)

    def test_header_names_format_and_version(self):
        """The first line is a JSON header naming the format, its version and the clusters."""
        header = json.loads(compose([Entry("hpc1", 10.5, 3, b"abc")]).split(b"\n")[0])
        self.assertEqual((header["format"], header["version"]), ("slurm-sd-state", VERSION))
        self.assertEqual(header["clusters"][0]["name"], "hpc1")
        self.assertEqual(header["clusters"][0]["fetched_at"], 10.5)


class StateFileTests(SynchronousTestCase):
    """The poller writes the state file and a new one serves it at once."""

    def setUp(self):
        """A temporary directory, a Clock at Unix time 1,000,000 and a log catcher."""
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, "state")
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.events = self.enterContext(capturedLogs())

    def daemon(self, text, source=None, write=write_atomically):
        """A started poller with its cache and metrics; the source never answers by default."""
        config = parse(text, os.path.join(self.dir, "config.yaml"))
        cache = TargetCache(self.clock)
        metrics = Metrics(self.clock, config, process_metrics=False)
        poller = Poller(self.clock, source or ScriptedSource(defer.Deferred()), process,
                        cache, config, observer=metrics, state=StateFile(synchronous, write))
        poller.start()
        self.clock.advance(0)
        self.addCleanup(poller.stop)
        return poller, cache, metrics

    def written(self, text=None):
        """Poll NODES once at time 1,000,000 with ``text``'s config, and stop."""
        poller, _, _ = self.daemon(text or config_text(self.path), ScriptedSource(NODES))
        poller.stop()

    def warnings(self):
        """The warning lines logged so far."""
        return log_lines(self.events, LogLevel.warn)

    def get(self, cache, poller, path):
        """``(code, body)`` of a GET through the real root."""
        response = self.successResultOf(StubTreq(make_root(cache, poller)).get("http://sd" + path))
        return response.code, self.successResultOf(response.content())

    def test_written_after_poll(self):
        """A good poll writes the decoded node list, named by cluster, with its fetch time."""
        self.written()
        with open(self.path, "rb") as handle:
            [entry] = parse_state(handle.read())
        self.assertEqual((entry.name, entry.fetched_at, entry.nodes), ("default", 1_000_000, 8))
        self.assertEqual(decode_node_list(entry.data).nodes[0].name, "cpu01")
        self.assertEqual([os.path.basename(self.path)], os.listdir(self.dir))

    def test_served_at_start_with_real_age(self):
        """At start the stored nodes are served before any poll, and ready and the data-age
        metric tell their real age."""
        self.written()
        self.clock.advance(120)
        poller, cache, metrics = self.daemon(config_text(self.path))
        code, body = self.get(cache, poller, "/targets?prom_job=node")
        self.assertEqual(code, 200)
        self.assertIn(b"cpu01:9100", body)
        self.assertEqual(cache.age(), 120)
        self.assertEqual(self.get(cache, poller, "/-/ready")[0], 200)
        samples = {s.name: s.value for family in metrics.registry.collect() for s in family.samples}
        self.assertEqual(samples["slurm_sd_data_age_seconds"], 120)
        self.assertEqual(samples["slurm_sd_nodes"], 8)

    def test_current_job_config_applies(self):
        """Stored node lists are converted with the config in effect, not the old one."""
        self.written()
        poller, cache, _ = self.daemon(config_text(self.path, port=9999))
        body = self.get(cache, poller, "/targets?prom_job=node")[1]
        self.assertIn(b"cpu01:9999", body)
        self.assertNotIn(b":9100", body)

    def test_older_than_three_intervals(self):
        """A state file older than three intervals is served, and /-/ready says not ready."""
        self.written()
        self.clock.advance(301)
        poller, cache, _ = self.daemon(config_text(self.path))
        self.assertEqual(self.get(cache, poller, "/targets?prom_job=node")[0], 200)
        code, body = self.get(cache, poller, "/-/ready")
        self.assertEqual(code, 503)
        self.assertIn(b"301 s old", body)

    def test_fresh_poll_replaces(self):
        """The first good poll replaces the stored data and the age starts again."""
        self.written()
        self.clock.advance(500)
        source = ScriptedSource(defer.Deferred())
        poller, cache, _ = self.daemon(config_text(self.path), source)
        self.assertEqual(cache.age(), 500)
        source.answers[:0] = [NODES]
        poller.stop()   # cancels the poll that never answers
        poller.start()
        self.clock.advance(0)
        self.assertEqual(cache.age(), 0)
        self.assertEqual(cache.snapshot.nodes, 8)

    def test_poll_quicker_than_restore(self):
        """A poll that ends before the (threaded) restore keeps its fresher data."""
        self.written()
        self.clock.advance(500)
        later = []

        def in_thread(f, *args):
            d = defer.Deferred()
            later.append(lambda: d.callback(f(*args)))
            return d
        config = parse(config_text(self.path), os.path.join(self.dir, "config.yaml"))
        cache = TargetCache(self.clock)
        poller = Poller(self.clock, ScriptedSource(NODES), process, cache, config,
                        state=StateFile(in_thread))
        poller.start()
        self.addCleanup(poller.stop)
        self.assertIsNone(cache.snapshot)
        self.clock.advance(0)
        [restore] = later   # the poll's write waits for the restore
        restore()
        self.assertEqual(cache.age(), 0)
        self.assertEqual(len(later), 2)
        later[1]()
        with open(self.path, "rb") as handle:
            [entry] = parse_state(handle.read())
        self.assertEqual(entry.fetched_at, 1_000_500)

    def test_missing_file_is_silent(self):
        """No state file yet: nothing served, nothing logged above info."""
        _, cache, _ = self.daemon(config_text(self.path))
        self.assertIsNone(cache.snapshot)
        self.assertEqual(self.warnings(), [])

    def assert_ignored(self, content, reason):
        """A file holding ``content`` is one warning line naming it and ``reason``."""
        with open(self.path, "wb") as handle:
            handle.write(content)
        _, cache, _ = self.daemon(config_text(self.path))
        self.assertIsNone(cache.snapshot)
        [line] = self.warnings()
        self.assertIn(self.path, line)
        self.assertIn(reason, line)
        self.assertIn("ignored", line)

    def good_bytes(self):
        """A real state file's bytes."""
        self.written()
        with open(self.path, "rb") as handle:
            return handle.read()

    def test_truncated(self):
        """A cut-off file is ignored with one warning."""
        self.assert_ignored(self.good_bytes()[:-10], "cut off")

    def test_corrupt(self):
        """A file with a flipped byte in its entry is ignored with one warning."""
        data = bytearray(self.good_bytes())
        data[-20] ^= 0xFF
        self.assert_ignored(bytes(data), "damaged")

    def test_foreign(self):
        """A file that is not ours (a node list, say) is ignored with one warning."""
        self.assert_ignored(NODES, "not a slurm-sd state file")

    def test_empty(self):
        """An empty file is ignored with one warning."""
        self.assert_ignored(b"", "not a slurm-sd state file")

    def test_newer_format(self):
        """A file in a newer format version is ignored with one warning saying so."""
        data = self.good_bytes().replace(b'"version": 1', b'"version": 2', 1)
        self.assert_ignored(data, "newer")

    def test_unreadable(self):
        """A state_file that cannot be read (a directory) is one warning and ignored."""
        os.mkdir(self.path)
        _, cache, _ = self.daemon(config_text(self.path))
        self.assertIsNone(cache.snapshot)
        [line] = self.warnings()
        self.assertIn(f"state file {self.path} cannot be read", line)

    def test_other_cluster_ignored(self):
        """A state file from a config with another cluster_name is ignored, with one line."""
        self.written(config_text(self.path, extra="cluster_name: hpc1\n"))
        _, cache, _ = self.daemon(config_text(self.path, extra="cluster_name: hpc2\n"))
        self.assertIsNone(cache.snapshot)
        [line] = self.warnings()
        self.assertIn("holds clusters hpc1 but not hpc2", line)

    def test_only_matching_cluster_used(self):
        """Of a file with several clusters only the configured one is served."""
        nodes = NodeList(nodes=(Node("other01"),))
        write_atomically(self.path, compose([
            Entry("hpc1", 999_990.0, 1, encode_node_list(nodes)),
            Entry("hpc2", 999_950.0, 1, encode_node_list(NodeList(nodes=(Node("mine01"),))))]))
        poller, cache, _ = self.daemon(config_text(self.path, extra="cluster_name: hpc2\n"))
        body = self.get(cache, poller, "/targets?prom_job=node")[1]
        self.assertIn(b"mine01:9100", body)
        self.assertNotIn(b"other01", body)
        self.assertEqual(cache.age(), 50)

    def test_failed_write_goes_on_serving(self):
        """A write that fails (disk full) is one warning line and the poll is served."""
        def full(path, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _, cache, _ = self.daemon(config_text(self.path), ScriptedSource(NODES), write=full)
        self.assertEqual(cache.snapshot.nodes, 8)
        [line] = self.warnings()
        self.assertIn(f"cannot write state file {self.path} (No space left on device)", line)

    def test_unwritable_directory(self):
        """A state_file in a directory that does not exist: one warning, serving goes on."""
        path = os.path.join(self.dir, "gone", "state")
        _, cache, _ = self.daemon(config_text(path), ScriptedSource(NODES))
        self.assertEqual(cache.snapshot.nodes, 8)
        [line] = self.warnings()
        self.assertIn(f"cannot write state file {path}", line)

    def test_no_state_file_configured(self):
        """Without state_file nothing is encoded or written."""
        config = parse(config_text(self.path).replace(f"state_file: {self.path}\n", ""))
        snapshot = self.successResultOf(process(NODES, config))
        self.assertIsNone(snapshot.stored)
        self.assertEqual(os.listdir(self.dir), [])
