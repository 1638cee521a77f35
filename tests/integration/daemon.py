"""
Run the slurm-sd daemon for real, as ``twistd -n --pidfile= slurm-sd --config PATH``, and
read its HTTP interface.
"""
import json
import os
import subprocess
import sys
import time

from tests.integration import support


def program(name):
    """The program ``name`` that belongs to this Python (the venv's), else the one on PATH."""
    path = support.find_program(name)
    if path is None:
        support.unavailable("{} not found beside {} nor on PATH".format(name, sys.executable))
    return path


def twistd():
    """The venv's ``twistd``."""
    return program("twistd")


def console_script():
    """The venv's ``slurm-sd`` console script."""
    return program("slurm-sd")


def daemon_env():
    """Our environment with the repo root first on PYTHONPATH (finds slurm_sd and the
    twistd plugin in twisted/plugins even when the package is not installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(support.REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("SLURM_JWT", None)
    return env


def write_config(path, url, port, jobs, interval=2, api_version="v0.0.38", user=None,
                 token_file=None, cluster_name=None):
    """
    Write a daemon config file (SPEC 2) and return its path. ``jobs`` is the list of
    one-key mappings, as in the file.
    """
    slurmrestd = {"url": url, "api_version": api_version, "timeout": 20}
    if user is not None:
        slurmrestd["user"] = user
    if token_file is not None:
        slurmrestd["token_file"] = token_file
    config = {
        "slurmrestd": slurmrestd,
        "interval": interval,
        "listen": "tcp:{}:interface=127.0.0.1".format(port),
        "jobs": jobs,
    }
    if cluster_name is not None:
        config["cluster_name"] = cluster_name
    with open(path, "w") as f:
        json.dump(config, f, indent=2)  # JSON is YAML
    return path


class Daemon:
    """One ``twistd -n --pidfile= slurm-sd`` process, its log, and its base URL."""

    def __init__(self, config_path, port, log_path, cwd, env=None):
        """Remember how to start it (``env``: variables to add to its environment)."""
        self.config_path = config_path
        self.env = env or {}
        self.port = port
        self.url = "http://127.0.0.1:{}".format(port)
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None

    def start(self, wait="listening", serve=False):
        """
        Start the daemon; wait until its port answers (``wait="listening"``), or until
        ``/targets`` answers 200 (``wait="data"``), or not at all (``None``).

        :param serve: start it as ``slurm-sd serve`` instead of ``twistd -n``.
        """
        self._log = open(self.log_path, "ab")
        command = ([console_script(), "serve"] if serve
                   else [twistd(), "-n", "--pidfile=", "slurm-sd"])
        self.proc = subprocess.Popen(
            command + ["--config", self.config_path],
            env=dict(daemon_env(), **self.env), cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait is not None:
            support.wait_for(lambda: self._answers(wait), 30, "slurm-sd to serve ({})".format(wait))

    def _answers(self, wait):
        if self.proc.poll() is not None:
            raise AssertionError("slurm-sd exited with status {}:\n{}".format(
                self.proc.returncode, self.log_tail()))
        status, _, _ = support.http_get(self.url + "/targets")
        if wait == "data" and status != 200:
            raise support.NotReady("/targets answers {}".format(status))

    def stop(self):
        """SIGTERM by pid (SIGKILL after 15 s); return the exit status. Processes the
        daemon had started (a decode worker, say) must be gone within 5 s after it:
        ``self.leftovers`` lists any that are not."""
        if self.proc is None:
            return None
        children = support.descendants(self.proc.pid)
        status = support.stop_popen(self.proc, timeout=15)
        self._log.close()
        self.proc = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(support.alive(p) for p in children):
            time.sleep(0.1)
        self.leftovers = [p for p in children if support.alive(p)]
        for pid in self.leftovers:
            support.stop_pid(pid, timeout=1)
        return status

    def get(self, path):
        """GET ``path`` on the daemon; return (status, headers, body)."""
        return support.http_get(self.url + path)

    def targets(self, job):
        """``/targets?prom_job=JOB`` decoded; NotReady unless it answers 200."""
        status, headers, body = self.get("/targets?prom_job=" + job)
        if status != 200:
            raise support.NotReady("/targets?prom_job={} answered {}: {!r}".format(
                job, status, body[:300]))
        return json.loads(body)

    def log_tail(self, lines=40):
        """The end of the daemon's log."""
        return support.tail(self.log_path, lines)

    def log_text(self):
        """The whole log."""
        with open(self.log_path, errors="replace") as f:
            return f.read()
