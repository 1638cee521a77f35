"""
Small blocking helpers shared by the integration harness: requirements, free ports, polling
with a deadline, HTTP over TCP or a UNIX socket, and stopping a process by its id.
"""
import errno
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import SkipTest

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "install them with `sudo bash .ci/install-system-packages`"


class NotReady(Exception):
    """A :func:`wait_for` condition is not true yet (the message says what is missing)."""


def find_program(name):
    """
    Return the path of executable ``name``: beside ``sys.executable`` first (the venv's
    ``twistd``, ``supervisord``), then ``PATH`` plus the sbin directories, else ``None``.
    """
    here = shutil.which(name, path=os.path.dirname(sys.executable))
    if here:
        return here
    path = os.environ.get("PATH", os.defpath)
    for extra in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
        if extra not in path.split(os.pathsep):
            path += os.pathsep + extra
    return shutil.which(name, path=path)


def unavailable(reason):
    """
    Skip the calling test for ``reason``; under ``CI=true`` fail it instead, since CI
    installs everything and a skip there would hide a broken install step.
    """
    if os.environ.get("CI") == "true":
        raise AssertionError("CI=true and " + reason)
    raise SkipTest(reason)


def require(programs, root=False):
    """
    Check that every program in ``programs`` is installed (and that we are root, if
    ``root``); otherwise skip (or fail under ``CI=true``) with how to install them.

    :return: dict name -> absolute path.
    """
    found = {name: find_program(name) for name in programs}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        unavailable(
            "{} not installed: {} (supervisord/supervisorctl come from pip: "
            "`pip install supervisor`, in the test extras)".format(", ".join(missing),
                                                                INSTALL_HINT)
        )
    if root and os.geteuid() != 0:
        unavailable(
            "these tests start slurmctld, slurmd and slurmrestd, which switches users, so "
            "they need root (run the tests as root; the packages: {})".format(INSTALL_HINT)
        )
    return found


def free_port():
    """Return a TCP port that is free on 127.0.0.1 right now (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what, interval=0.2):
    """
    Call ``condition()`` every ``interval`` seconds until it returns without raising
    :class:`NotReady` (or ``OSError``/``http.client.HTTPException``), at most ``timeout``
    seconds; return its value, or raise ``AssertionError`` naming ``what`` and the last
    reason.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return condition()
        except (NotReady, OSError, http.client.HTTPException) as e:
            last = "{}: {}".format(type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise AssertionError(
                "timed out after {}s waiting for {}; last: {}".format(timeout, what, last)
            )
        time.sleep(interval)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` to a UNIX socket (the Host header says ``localhost``)."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        """Connect to the socket file instead of a TCP address."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def http_get(url, headers=None, timeout=10):
    """
    GET ``url`` (``http://host:port/path`` or ``unix:/socket/path:/http/path``) and
    return ``(status, headers as a dict with lower-case names, body bytes)``.
    """
    if url.startswith("unix:"):
        sock_path, _, path = url[len("unix:"):].partition(":")
        conn = _UnixHTTPConnection(sock_path, timeout)
    else:
        assert url.startswith("http://"), url
        hostport, slash, rest = url[len("http://"):].partition("/")
        host, _, port = hostport.partition(":")
        conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
        path = slash + rest
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def alive(pid):
    """Is process ``pid`` still there (and not a zombie of ours)?"""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid):
    """The pids of every process below ``pid`` right now (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/{}/stat".format(entry)) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_pid(pid, timeout=10.0):
    """
    Stop process ``pid`` (one of ours that is not our child, e.g. a leftover worker of
    the daemon): SIGTERM, wait up to ``timeout`` s, then SIGKILL and wait again.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


def stop_popen(proc, timeout=10.0):
    """Stop a ``subprocess.Popen`` we started, by its pid; return its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def tail(path, lines=40):
    """Return the last ``lines`` lines of a log file (or a note that it is missing)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "<{}: {}>".format(path, os.strerror(e.errno or errno.ENOENT))
