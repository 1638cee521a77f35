"""
A real supervisord (pip ``supervisor``) running the program section from
``etc/supervisord/slurm-sd.conf``, with only its paths changed for the test.
"""
import os
import pwd
import re
import subprocess

from tests.integration import daemon, support

PROGRAMS = ("supervisord", "supervisorctl", "slurm-sd")
EXAMPLE = os.path.join(str(support.REPO_ROOT), "etc", "supervisord", "slurm-sd.conf")

_MAIN = """\
[unix_http_server]
file={work}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
childlogdir={work}
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{work}/supervisor.sock

"""


def program_section(script, config_path, log_path):
    """
    The ``[program:slurm-sd]`` section of etc/supervisord/slurm-sd.conf with the test's
    paths: our ``slurm-sd`` console script, our config file, our log file, our user, and
    PYTHONPATH set to the repository (the package is not necessarily installed). Raises
    AssertionError if the example no longer has the lines this substitutes.
    """
    with open(EXAMPLE) as f:
        text = f.read()
    user = pwd.getpwuid(os.geteuid()).pw_name
    replacements = [
        (r"(?m)^command=/opt/slurm-sd/bin/slurm-sd serve ", "command={} serve ".format(script)),
        (r"/etc/slurm-sd/config\.yaml", config_path),
        (r"(?m)^user=.*$", "user=" + user),
        (r"(?m)^stdout_logfile=.*$", "stdout_logfile=" + log_path),
    ]
    for pattern, replacement in replacements:
        text, n = re.subn(pattern, lambda _m: replacement, text)
        if n != 1:
            raise AssertionError("{}: expected one match for {!r}, found {}".format(
                EXAMPLE, pattern, n))
    env = daemon.daemon_env()
    return text + '\nenvironment=PYTHONPATH="{}"\n'.format(env["PYTHONPATH"])


class Supervisord:
    """A supervisord in the foreground with its own socket, log and pid file."""

    def __init__(self, programs, work):
        """:param programs: name -> path, from :func:`support.require`."""
        self.programs = programs
        self.work = work
        self.conf = os.path.join(work, "supervisord.conf")
        self.log_path = os.path.join(work, "supervisord.log")
        self.proc = None

    def start(self, program_text):
        """Write the config (ours plus ``program_text``), start supervisord, wait for its
        control socket to answer."""
        with open(self.conf, "w") as f:
            f.write(_MAIN.format(work=self.work) + program_text)
        self._out = open(os.path.join(self.work, "supervisord.out"), "ab")
        self.proc = subprocess.Popen(
            [self.programs["supervisord"], "-n", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            cwd=self.work)

        def answering():
            if self.proc.poll() is not None:
                raise AssertionError("supervisord exited with status {}:\n{}".format(
                    self.proc.returncode, support.tail(self.log_path)))
            status, out = self.ctl("pid")
            if not out.strip().isdigit():
                raise support.NotReady(out)
        support.wait_for(answering, 30, "supervisord's control socket")

    def ctl(self, *args):
        """Run ``supervisorctl -c CONF ARGS``; return (exit status, output)."""
        proc = subprocess.run([self.programs["supervisorctl"], "-c", self.conf, *args],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr

    def state(self, name):
        """The program's state word from ``supervisorctl status NAME`` (RUNNING, ...)."""
        _, out = self.ctl("status", name)
        fields = out.split()
        return fields[1] if len(fields) > 1 and fields[0] == name else out.strip()

    def pid(self, name):
        """The program's pid (0 when it is not running)."""
        _, out = self.ctl("pid", name)
        return int(out.strip()) if out.strip().isdigit() else 0

    def stop(self):
        """Stop supervisord by its pid (it stops its programs first); wait for it."""
        if self.proc is not None:
            support.stop_popen(self.proc, timeout=60)
            self._out.close()
            self.proc = None
