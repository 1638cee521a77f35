"""Tests for slurm_sd.cli: ``slurm-sd check`` and ``slurm-sd dump``."""
import contextlib
import io
import json
import os
import stat

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.atomicfile import write_atomically
from slurm_sd.cli import _parser, check, dump, main
from slurm_sd.pipeline.build import build_snapshot
from tests.answers import Reply, response
from tests.fakes import SAMPLES, fixture
from tests.standin import StandIn

NODES = os.path.join(SAMPLES, "slurm-22.05-v0.0.38-nodes-varied.json")

CONFIG = """
slurmrestd:
  url: %(url)s
  user: slurm
  token_file: %(token)s
interval: 120
listen: tcp:8080:interface=127.0.0.1
jobs:
  - node: {port: 9100}
  - dcgm: {port: 9400, partitions: [gpu], exclude_states: [powered_down]}
  - ipmi: {port: 9290, group_by: node}
"""


class CLITestCase(SynchronousTestCase):
    """Writes configs into a temporary directory and collects the output."""

    def setUp(self):
        """A fresh directory, a token file and output streams."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.token = self.write("jwt", "SLURM_JWT=s3cret.jwt.value\n")
        self.out = io.BytesIO()
        self.err = io.StringIO()

    def write(self, name, text):
        """Write ``text`` to ``name`` in the directory; its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def config(self, url="http://127.0.0.1:6820", extra="", name="config.yaml"):
        """A config file polling ``url``; its path."""
        return self.write(name, CONFIG % {"url": url, "token": self.token} + extra)

    def args(self, *argv):
        """The parsed command line."""
        return _parser().parse_args(list(argv))


class CheckTests(CLITestCase):
    """``slurm-sd check``."""

    def test_good_file_summarised(self):
        """A good file exits 0 with a summary of source, auth and jobs."""
        path = self.config()
        self.assertEqual(check(path, self.out, self.err, {}), 0)
        text = self.out.getvalue().decode()
        self.assertEqual(self.err.getvalue(), "")
        self.assertIn(f"{path}: OK\n", text)
        self.assertIn("source: slurmrestd at http://127.0.0.1:6820, api_version auto", text)
        self.assertIn(f"auth: token from {self.token} (re-read on every poll), user slurm", text)
        self.assertIn("jobs: 3\n", text)
        self.assertIn("  dcgm  port 9400, group_by partition, partitions gpu, "
                      "exclude_states powered_down\n", text)
        self.assertIn("  ipmi  port 9290, group_by node\n", text)
        self.assertNotIn("s3cret", text)

    def test_bad_file_one_line(self):
        """A bad file exits 1 with the one-line error on stderr and nothing on stdout."""
        path = self.config(extra="  - node: {port: 9101}\n")
        self.assertEqual(check(path, self.out, self.err, {}), 1)
        self.assertEqual(self.err.getvalue(),
                         f"slurm-sd: {path}: jobs[3].node: duplicate job name\n")
        self.assertEqual(self.out.getvalue(), b"")

    def test_missing_file(self):
        """A missing file exits 1 naming it."""
        path = os.path.join(self.dir, "nope.yaml")
        self.assertEqual(check(path, self.out, self.err, {}), 1)
        self.assertIn(f"slurm-sd: {path}: cannot read the configuration", self.err.getvalue())

    def test_bad_listen(self):
        """A listen string that is no endpoint fails the check."""
        text = CONFIG % {"url": "http://127.0.0.1:6820", "token": self.token}
        path = self.write("config.yaml", text.replace("tcp:8080:interface=127.0.0.1",
                                                      "carrier-pigeon:7"))
        self.assertEqual(check(path, self.out, self.err, {}), 1)
        self.assertIn("listen: bad endpoint 'carrier-pigeon:7'", self.err.getvalue())

    def test_warnings(self):
        """Two jobs on one port and an unreadable token file are warned about, exit 0."""
        os.remove(self.token)
        path = self.config(extra="  - lustre: {port: 9100}\n")
        self.assertEqual(check(path, self.out, self.err, {}), 0)
        text = self.out.getvalue().decode()
        self.assertIn("warning: " + path + ": jobs[3].lustre.port: 9100 is also the port of "
                      "job 'node'\n", text)
        self.assertIn(f"warning: slurmrestd.token_file: {self.token} is not readable", text)

    def test_no_token(self):
        """Without any token the summary says no X-SLURM-* headers are sent."""
        path = self.write("c.yaml", "slurmrestd: {url: 'unix:/run/slurmrestd.sock'}\n"
                                    "jobs: [{node: {port: 9100}}]\n")
        self.assertEqual(check(path, self.out, self.err, {}), 0)
        self.assertIn("auth: no token: no X-SLURM-* headers are sent",
                      self.out.getvalue().decode())

    def test_slurm_jwt_named_not_shown(self):
        """A token from SLURM_JWT is named as the source, its value never printed."""
        path = self.write("c.yaml", "slurmrestd: {url: 'http://h:6820'}\n"
                                    "jobs: [{node: {port: 9100}}]\n")
        check(path, self.out, self.err, {"SLURM_JWT": "s3cret"})
        text = self.out.getvalue().decode()
        self.assertIn("token from the SLURM_JWT environment variable", text)
        self.assertNotIn("s3cret", text)

    def test_main_exit_status(self):
        """main() returns check's exit status (the console script exits with it)."""
        self.assertEqual(main(["check", "--config", self.config()], self.out, self.err), 0)
        self.assertEqual(main(["check", "--config", "/nonexistent.yaml"], self.out,
                              self.err), 1)

    def test_example_config_checks(self):
        """etc/config.example.yaml passes the check."""
        example = os.path.join(os.path.dirname(os.path.dirname(__file__)), "etc",
                               "config.example.yaml")
        if not os.path.exists(example):
            raise self.skipTest("no etc/config.example.yaml")
        self.assertEqual(check(example, self.out, self.err, {}), 0, self.err.getvalue())


class DumpTests(CLITestCase):
    """``slurm-sd dump``."""

    def expected(self, path, job=None):
        """The body the daemon would serve for ``job`` from the node list in NODES."""
        from slurm_sd.config.load import load
        with open(NODES, "rb") as f:
            return build_snapshot(f.read(), load(path)).bodies[job] + b"\n"

    def run_dump(self, *argv, **kwargs):
        """dump() with ``argv``; its exit status."""
        return self.successResultOf(dump(Clock(), self.args("dump", *argv), self.out,
                                         self.err, {}, **kwargs))

    def test_input_to_stdout(self):
        """--input prints every job's groups, as the daemon's /targets would."""
        path = self.config()
        self.assertEqual(self.run_dump("--config", path, "--input", NODES), 0)
        self.assertEqual(self.out.getvalue(), self.expected(path))
        self.assertEqual(self.err.getvalue(), "")
        self.assertEqual({g["labels"]["__meta_prom_job"] for g in json.loads(self.out.getvalue())},
                         {"node", "dcgm", "ipmi"})

    def test_one_job(self):
        """--job prints that job's groups only."""
        path = self.config()
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--job", "dcgm"), 0)
        self.assertEqual(self.out.getvalue(), self.expected(path, "dcgm"))

    def test_summary(self):
        """--summary prints a table of the served targets by job, cluster, partition and
        coarse state; a node in two partitions counts under each; columns line up."""
        path = self.config(extra="cluster_name: hpc1\n")
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--summary"), 0)
        lines = self.out.getvalue().decode().splitlines()
        self.assertEqual(lines[0].split(), ["JOB", "CLUSTER", "PARTITION", "STATE", "TARGETS"])
        self.assertEqual({len(line) for line in lines}, {len(lines[0])})
        rows = [line.split() for line in lines[1:]]
        self.assertIn(["dcgm", "hpc1", "gpu", "down", "2"], rows)
        self.assertIn(["ipmi", "hpc1", "gpu", "down", "4"], rows)
        # Every served target is counted once per partition it is listed under.
        served = json.loads(self.expected(path, "ipmi"))
        listed = sum(len(g["labels"]["__meta_slurm_partitions"].strip(",").split(","))
                     for g in served)
        self.assertEqual(sum(int(row[4]) for row in rows if row[0] == "ipmi"), listed)
        self.assertEqual([row[0] for row in rows], sorted(
            (row[0] for row in rows), key=["node", "dcgm", "ipmi"].index))

    def test_summary_of_a_job_without_targets(self):
        """A job that keeps no node is one row of 0 targets, not missing."""
        path = self.config(extra="cluster_name: hpc1\n")
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--summary",
                                       "--job", "dcgm"), 0)
        rows = [line.split() for line in self.out.getvalue().decode().splitlines()[1:]]
        self.assertEqual(rows, [["dcgm", "hpc1", "gpu", "down", "2"]])
        path = self.config(extra="  - none: {port: 9999, partitions: [nosuch]}\n",
                           name="none.yaml")
        self.out.seek(0), self.out.truncate()
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--summary",
                                       "--job", "none"), 0)
        self.assertEqual(self.out.getvalue().decode().splitlines()[1].split(),
                         ["none", "-", "-", "-", "0"])

    def test_pretty(self):
        """--pretty is the same JSON as served, indented."""
        path = self.config()
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--pretty"), 0)
        text = self.out.getvalue().decode()
        self.assertIn('\n  {\n    "targets": [', text)
        self.assertEqual(json.loads(text), json.loads(self.expected(path)))

    def test_summary_and_pretty_exclude_each_other(self):
        """--summary with --pretty is a usage error."""
        with contextlib.redirect_stderr(io.StringIO()) as usage:
            with self.assertRaises(SystemExit):
                self.args("dump", "--summary", "--pretty")
        self.assertIn("not allowed with argument --summary", usage.getvalue())

    def test_unknown_job(self):
        """An unknown --job exits 1 naming the known jobs, before any poll."""
        path = self.config()
        self.assertEqual(self.run_dump("--config", path, "--job", "lustre"), 1)
        self.assertEqual(self.err.getvalue(), f"slurm-sd: dump: no job 'lustre' in {path} "
                                              f"(jobs: node, dcgm, ipmi)\n")

    def test_stdin(self):
        """--input - reads the node list from stdin."""
        path = self.config()
        with open(NODES, "rb") as f:
            stdin = io.BytesIO(f.read())
        self.assertEqual(self.run_dump("--config", path, "--input", "-", stdin=stdin), 0)
        self.assertEqual(self.out.getvalue(), self.expected(path))

    def test_bad_input_one_line(self):
        """A node list that is not JSON exits 1 with one line and prints nothing."""
        path = self.config()
        bad = self.write("bad.json", "<html>")
        self.assertEqual(self.run_dump("--config", path, "--input", bad), 1)
        self.assertEqual(self.out.getvalue(), b"")
        [line] = self.err.getvalue().splitlines()
        self.assertTrue(line.startswith("slurm-sd: dump: "), line)

    def test_output_written_atomically(self):
        """--output writes the file (no temporary left behind), quietly."""
        path = self.config()
        target = os.path.join(self.dir, "targets.json")
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--output", target), 0)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), self.expected(path))
        self.assertEqual(sorted(os.listdir(self.dir)), ["config.yaml", "jwt", "targets.json"])
        self.assertEqual((self.out.getvalue(), self.err.getvalue()), (b"", ""))

    def test_failed_poll_keeps_old_output(self):
        """When the poll fails, the old --output file stays as it was."""
        path = self.config()
        target = self.write("targets.json", "[old]")
        missing = os.path.join(self.dir, "missing.json")
        self.assertEqual(self.run_dump("--config", path, "--input", missing, "--output",
                                       target), 1)
        with open(target) as f:
            self.assertEqual(f.read(), "[old]")
        self.assertIn("cannot read the node list", self.err.getvalue())

    def test_unwritable_output_one_line(self):
        """An --output in a missing directory exits 1 with one line."""
        path = self.config()
        target = os.path.join(self.dir, "no", "targets.json")
        self.assertEqual(self.run_dump("--config", path, "--input", NODES, "--output", target), 1)
        self.assertEqual(self.err.getvalue(), f"slurm-sd: dump: cannot write {target}: "
                                              f"No such file or directory\n")

    def test_polls_slurmrestd(self):
        """Without --input, dump polls slurmrestd once through the daemon's client."""
        path = self.config()
        fake = StandIn(versions=("v0.0.38",), body=fixture(
            "slurm-22.05-v0.0.38-nodes-varied.json"))

        status = self.successResultOf(dump(fake.reactor, self.args("dump", "--config", path),
                                           self.out, self.err, {}, make_source=fake.make_source))
        self.assertEqual(status, 0)
        self.assertEqual(self.out.getvalue(), self.expected(path))
        self.assertEqual(fake.paths(), ["/openapi/v3", "/slurm/v0.0.38/nodes/"])
        self.assertEqual(fake.requests[-1][1]["x-slurm-user-token"], "s3cret.jwt.value")

    def test_slurmrestd_error_one_line(self):
        """A slurmrestd error is one line on stderr and exit status 1."""
        path = self.config()
        fake = StandIn(versions=("v0.0.38",))
        fake.answers.append(Reply(response(502, b'{"errors": [{"error": "Unable to contact '
                                                b'slurm controller"}]}')))

        status = self.successResultOf(dump(fake.reactor, self.args("dump", "--config", path),
                                           self.out, self.err, {}, make_source=fake.make_source))
        self.assertEqual(status, 1)
        [line] = self.err.getvalue().splitlines()
        self.assertTrue(line.startswith("slurm-sd: dump: slurmrestd cannot reach slurmctld"),
                        line)
        self.assertNotIn("s3cret", line)

    def test_main_runs_a_reactor(self):
        """main() runs dump under task.react and exits with its status."""
        path = self.config()
        with self.assertRaises(SystemExit) as caught:
            main(["dump", "--config", path, "--input", NODES, "--job", "node"], self.out,
                 self.err, environ={}, _reactor=MemoryReactorClock())
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(self.out.getvalue(), self.expected(path, "node"))
        self.out = io.BytesIO()
        with self.assertRaises(SystemExit) as caught:
            main(["dump", "--config", path, "--job", "nope"], self.out, self.err, environ={},
                 _reactor=MemoryReactorClock())
        self.assertEqual(caught.exception.code, 1)


class WriteAtomicallyTests(SynchronousTestCase):
    """write_atomically."""

    def test_replaces_and_keeps_mode(self):
        """An existing file is replaced whole and keeps its permissions."""
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "t.json")
        with open(path, "w") as f:
            f.write("old")
        os.chmod(path, 0o640)
        write_atomically(path, b"new")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"new")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        self.assertEqual(os.listdir(directory), ["t.json"])

    def test_new_file_readable_per_umask(self):
        """A new file gets 0666 less the umask (not mkstemp's 0600), so Prometheus can read it."""
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "t.json")
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        write_atomically(path, b"[]")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
