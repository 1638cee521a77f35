"""
``slurmrestd.token_command``: run it (argv, no shell, off the reactor) and take
the token from its stdout, ``SLURM_JWT=...`` or the bare token.
"""
import os

from slurm_sd.sources.runprocess import ProcessFailed, child_environment, run_process
from slurm_sd.sources.tokens import JWT_VARIABLE, strip_variable

#: More stdout than this is not a token (Slurm's are a few hundred bytes).
MAX_OUTPUT_BYTES = 64 * 1024

#: How messages name the command.
WHAT = "slurmrestd.token_command"


def token_from_output(stdout):
    """
    The token in a token command's stdout: the value of a ``SLURM_JWT=`` line,
    else the only line there is.

    :raises ProcessFailed: when there is no such token (the output is never quoted:
        it may be a secret).
    """
    text = stdout.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(JWT_VARIABLE + "="):
            token = strip_variable(line)
            if token:
                return token
    bare = len(lines) == 1 and not lines[0].startswith(JWT_VARIABLE + "=")
    if bare and not any(c.isspace() for c in lines[0]):
        return lines[0]
    raise ProcessFailed(f"{WHAT} printed no token ({len(lines)} lines on stdout, none "
                        f"SLURM_JWT=... nor a single bare token)")


class TokenCommand:
    """
    Runs the token command once per call.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param argv: the command (``slurmrestd.token_command``).
    :param timeout: seconds before it is killed (``slurmrestd.timeout``).
    :param environ: the daemon's environment; the command gets it without
        ``SLURM_JWT`` (with it, ``scontrol token`` would not use munge).
    """

    def __init__(self, reactor, argv, timeout, environ=None):
        self._reactor = reactor
        self._argv = tuple(argv)
        self._timeout = timeout
        self._environ = os.environ if environ is None else environ

    def __call__(self):
        """A Deferred of a new token; fails with a one-line ProcessFailed."""
        env = child_environment(self._environ, drop=(JWT_VARIABLE,))
        d = run_process(self._reactor, self._argv, self._timeout, MAX_OUTPUT_BYTES, env,
                        what=f"{WHAT} ({self._argv[0]})")
        d.addCallback(token_from_output)
        return d
