"""
What the throw-away Slurm test clusters have in common, whether they run on this machine
(Slurm 22.05, :mod:`slurm_cluster`) or in a Debian root (24.11, 26.05,
:mod:`chroot_cluster`): the slurm.conf settings, the start order of munged, slurmctld,
slurmd and two slurmrestd (local auth on a UNIX socket, JWT on 127.0.0.1), and stopping
exactly the processes started, by process id. See shared/slurm-samples/README.md for why
each setting.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from tests.integration import expected, support
from tests.integration.slurm_conf import SLURM_CONF, write_file

REST_USER = "slurmrest"
CLUSTER_NAME = "sdtest"
REAL_NODE = "cpu01"

def _exists(path):
    if not os.path.exists(path):
        raise support.NotReady(path + " does not exist yet")


class ClusterBase:
    """
    A running test cluster. ``start()`` brings it up (or stops what it started and
    raises); ``stop()`` ends every process it started and removes the work directory.

    Subclasses set ``api_version`` and ``openapi_plugins``, and define :meth:`_prepare`
    (make ``self.work`` and set ``self.conf_work``, the work directory as the daemons see
    it) and :meth:`command` (the argv that runs a Slurm program).

    Attributes once started: ``work`` (the directory, as seen from here), ``unix_socket``
    (local-auth slurmrestd), ``jwt_url`` (``http://127.0.0.1:PORT`` of the JWT slurmrestd),
    ``env`` (environment for Slurm commands: ``SLURM_CONF`` set, ``SLURM_JWT`` removed).
    """

    api_version = None
    openapi_plugins = None
    #: Seconds slurmctld may take to answer (twice that for slurmd to register).
    start_timeout = 30

    def __init__(self, slurmd_timeout=30):
        """:param slurmd_timeout: slurm.conf's ``SlurmdTimeout``."""
        self.slurmd_timeout = slurmd_timeout
        self.work = None
        self._procs = []  # (name, Popen), in start order

    def start(self):
        """Bring up munged, slurmctld, slurmd and both slurmrestd; wait until they serve."""
        try:
            self._start()
        except BaseException:
            logs = self.log_tails()
            self.stop()
            raise AssertionError("Slurm test cluster did not start:\n" + logs)

    def _prepare(self):
        raise NotImplementedError

    def command(self, program, *args):
        """The argv that runs Slurm or munge program ``program`` with ``args``."""
        raise NotImplementedError

    def _make_work(self, parent, rest_uid):
        # World-searchable: slurmrestd, running as its own user, must reach its socket.
        self.work = tempfile.mkdtemp(prefix="slurm-sd-it-", dir=parent)
        os.chmod(self.work, 0o755)
        for sub in ("etc", "munge", "state", "spool", "spool/" + REAL_NODE, "run", "log",
                    "rest"):
            os.makedirs(self.path(sub), mode=0o755, exist_ok=True)
            os.chmod(self.path(sub), 0o755)
        os.chown(self.path("rest"), rest_uid, -1)

    def _start(self):
        self.host = os.uname().nodename.split(".")[0]
        self._prepare()
        self.ctld_port = support.free_port()
        self.slurmd_port = support.free_port()
        self.dead_port = support.free_port()
        self.jwt_port = support.free_port()
        self.unix_socket = self.path("rest/slurmrestd.sock")
        self.jwt_url = "http://127.0.0.1:{}".format(self.jwt_port)
        inside = self.conf_work
        self.conf = inside + "/etc/slurm.conf"

        write_file(self.path("munge/munge.key"), os.urandom(1024), 0o400)
        write_file(self.path("etc/jwt_hs256.key"), os.urandom(32), 0o600)
        text = SLURM_CONF + self.node_lines()
        write_file(self.path("etc/slurm.conf"), text.format(
            cluster=CLUSTER_NAME, host=self.host, work=inside,
            ctld_port=self.ctld_port, slurmd_port=self.slurmd_port,
            dead_port=self.dead_port, slurmd_timeout=self.slurmd_timeout,
            cpus=os.cpu_count() or 1,
        ).encode(), 0o644)
        self._write_extra_conf()

        self.env = self._base_env()
        self.env["SLURM_CONF"] = self.conf
        self.env.pop("SLURM_JWT", None)

        self._spawn("munged", self.command(
            "munged", "--foreground", "--force",
            "--socket=" + inside + "/munge/munge.socket",
            "--key-file=" + inside + "/munge/munge.key",
            "--pid-file=" + inside + "/munge/munged.pid",
            "--log-file=" + inside + "/log/munged.log",
            "--seed-file=" + inside + "/munge/munged.seed"))
        support.wait_for(lambda: _exists(self.path("munge/munge.socket")), 10,
                         "munged's socket")
        self._spawn("slurmctld", self.command("slurmctld", "-D", "-i", "-f", self.conf))
        support.wait_for(self._ctld_up, self.start_timeout,
                         "slurmctld to answer `scontrol ping`")
        self._spawn("slurmd", self.command("slurmd", "-D", "-f", self.conf, "-N", REAL_NODE))
        self._spawn("slurmrestd-local", self.command(
            "slurmrestd", "-f", self.conf, "-u", REST_USER, "-a", "rest_auth/local",
            "-s", self.openapi_plugins, "unix:" + inside + "/rest/slurmrestd.sock"))
        self._spawn("slurmrestd-jwt", self.command(
            "slurmrestd", "-f", self.conf, "-u", REST_USER, "-a", "rest_auth/jwt",
            "-s", self.openapi_plugins, "127.0.0.1:{}".format(self.jwt_port)),
            env=dict(self.env, SLURM_JWT="daemon"))
        support.wait_for(self._real_node_registered, 2 * self.start_timeout,
                         REAL_NODE + " to register")
        support.wait_for(lambda: self._rest_ok("unix:" + self.unix_socket, {}), 30,
                         "the local-auth slurmrestd")
        token = self.token()
        support.wait_for(lambda: self._rest_ok(self.jwt_url, {
            "X-SLURM-USER-NAME": REST_USER, "X-SLURM-USER-TOKEN": token}), 30,
            "the JWT slurmrestd")
        # The nodes without slurmd turn NOT_RESPONDING after their first failed ping
        # (~8 s with MessageTimeout=3); wait for it so that states stay put in the tests.
        support.wait_for(self._settled, 60, "the nodes without slurmd to be NOT_RESPONDING")

    def node_lines(self):
        """slurm.conf's NodeName and PartitionName lines (format fields as SLURM_CONF)."""
        raise NotImplementedError

    def _write_extra_conf(self):
        """Write configuration files beside slurm.conf, if the cluster needs any."""

    def _base_env(self):
        return dict(os.environ)

    def stop(self):
        """Stop every process we started (reverse order, by pid); remove the work dir."""
        for name, proc in reversed(self._procs):
            support.stop_popen(proc, timeout=10)
            proc.log.close()
        self._procs = []
        if self.work and not os.environ.get("SLURM_SD_IT_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)

    def _spawn(self, name, argv, env=None):
        log = open(self.path("log/{}.out".format(name)), "ab")
        proc = subprocess.Popen(argv, env=env or self.env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        proc.log = log
        self._procs.append((name, proc))
        time.sleep(0.05)
        if proc.poll() is not None:
            raise support.NotReady("{} exited at once with status {}".format(
                name, proc.returncode))
        return proc

    def _check_running(self):
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise AssertionError("{} exited with status {}".format(name, proc.returncode))

    def _ctld_up(self):
        self._check_running()
        out = self.scontrol("ping", check=False)
        if "UP" not in out:
            raise support.NotReady(out.strip())

    def _real_node_registered(self):
        self._check_running()
        node = self.scontrol_node(REAL_NODE)
        state = node.get("State", "")
        if state.split("+")[0] not in ("IDLE", "MIXED", "ALLOCATED") or not node.get("Arch"):
            raise support.NotReady("{} is {}".format(REAL_NODE, state))

    def _settled(self):
        self._check_running()
        waiting = [n["name"] for n in self.nodes_json()["nodes"]
                   if n["name"] != REAL_NODE and "not_responding" not in expected.base_and_flags(n)[1]]
        if waiting:
            raise support.NotReady("still responding: " + ", ".join(waiting))

    def _rest_ok(self, base, headers):
        self._check_running()
        status, _, body = support.http_get(
            base + ("" if base.startswith("http") else ":")
            + "/slurm/{}/ping".format(self.api_version), headers=headers)
        if status != 200:
            raise support.NotReady("HTTP {}: {!r}".format(status, body[:200]))

    def path(self, rel):
        """Path of ``rel`` inside the work directory, as seen from here."""
        return os.path.join(self.work, rel)

    def scontrol(self, *args, check=True):
        """Run ``scontrol ARGS`` as root without ``SLURM_JWT``; return its stdout."""
        proc = subprocess.run(self.command("scontrol", *args), env=self.env,
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError("scontrol {} failed ({}): {}{}".format(
                " ".join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout + proc.stderr

    def token(self, lifespan=86400):
        """Mint a JWT for the slurmrestd user with ``scontrol token``; return the token."""
        out = self.scontrol("token", "username=" + REST_USER,
                            "lifespan={}".format(lifespan))
        for line in out.splitlines():
            if line.startswith("SLURM_JWT="):
                return line[len("SLURM_JWT="):].strip()
        raise AssertionError("no SLURM_JWT= in scontrol token output: " + out)

    def nodes_raw(self, api_version=None):
        """``GET /slurm/VERSION/nodes/`` from the local-auth slurmrestd: the body bytes;
        raises AssertionError on a non-200 answer."""
        status, _, body = support.http_get("unix:{}:/slurm/{}/nodes/".format(
            self.unix_socket, api_version or self.api_version))
        if status != 200:
            raise AssertionError("slurmrestd answered {}: {!r}".format(status, body[:500]))
        return body

    def nodes_json(self, api_version=None):
        """The node list as the local-auth slurmrestd returns it, decoded."""
        return json.loads(self.nodes_raw(api_version))

    def scontrol_node(self, name):
        """
        One node as ``scontrol -o show node NAME`` gives it, as a dict of its ``Key=Value``
        fields (22.05's scontrol has no ``--json``); e.g. ``State`` is ``IDLE+DRAIN``.
        """
        out = self.scontrol("-o", "show", "node", name)
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def update_node(self, name, state, reason="slurm-sd integration test"):
        """``scontrol update nodename=NAME state=STATE reason=...``."""
        self.scontrol("update", "nodename=" + name, "state=" + state, "reason=" + reason)

    def resume(self, name):
        """
        ``state=resume`` a drained or down node. Slurm then marks it NOT_RESPONDING until
        its next ping; for the real node, wait until slurmd has answered again. (Slurm
        refuses to resume a drained node that never registered: drain only the real one.)
        """
        self.update_node(name, "resume")
        if name == REAL_NODE:
            def settled():
                state = self.scontrol_node(name).get("State", "")
                if state != "IDLE":
                    raise support.NotReady("{} is {}".format(name, state))
            support.wait_for(settled, 30, name + " to be IDLE again after resume")

    def log_tails(self):
        """The end of every log in the work directory, for failure messages."""
        if not self.work or not os.path.isdir(self.path("log")):
            return "(no logs)"
        parts = []
        for name in sorted(os.listdir(self.path("log"))):
            parts.append("--- {} ---\n{}".format(name, support.tail(self.path("log/" + name), 15)))
        return "\n".join(parts)

