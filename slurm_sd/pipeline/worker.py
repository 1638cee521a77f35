"""
The decode, convert and render steps in a child process (:func:`main`).

The daemon starts one per poll (:class:`slurm_sd.pipeline.runner.WorkerPipeline`), so that a
big node list is decoded on another CPU and with its own memory, which goes back to the
system when the worker exits; the reactor stays free to serve ``/targets``.

The protocol, all between parent and child:

- file descriptor 3: the body (an unnamed temporary file; read with ``os.pread``);
- stdin: the :class:`~slurm_sd.config.model.Config`, pickled;
- file descriptor 4 (another unnamed temporary file): ``("ok", Snapshot)`` or
  ``("bad", one-line BadResponse message)``, pickled; the exit status is 0 either way.
  (A file, not stdout: the daemon reads it with one call instead of thousands of
  8 KB pipe reads.)
- stdout and stderr: remarks for the daemon's log, one per line; on a bug, a traceback
  and exit status 1.

Garbage collection is off: the worker builds hundreds of thousands of objects with no
cycles among them, and exits when done. The worker runs niced: when workers (several
clusters polled at once) want more CPUs than there are, the daemon serving ``/targets``
comes first.
"""
import gc
import os
import pickle
import sys

from slurm_sd.errors import BadResponse
from slurm_sd.pipeline.build import build_snapshot

#: The file descriptor the body arrives on.
BODY_FD = 3
#: The file descriptor the result goes to.
RESULT_FD = 4
#: How much lower the worker's CPU priority is than the daemon's (``nice``).
WORKER_NICENESS = 10


def run(body_fd, stdin, out, stderr):
    """
    Serve one request: config from ``stdin``, body from ``body_fd``, result to ``out``.

    :param stdin: a binary stream holding the pickled config.
    :param out: a binary stream for the pickled result.
    :param stderr: a text stream for remarks.
    """
    request = pickle.load(stdin)
    # (config, True): the body is a stored node list (the state file's), not JSON.
    config, stored = request if isinstance(request, tuple) else (request, False)

    def note(line):
        """One remark for the daemon's log."""
        stderr.write(line + "\n")
        stderr.flush()

    try:
        answer = ("ok", build_snapshot(body_fd, config, note, stored=stored))
    except BadResponse as error:
        answer = ("bad", str(error))
    pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def lower_priority():
    """Make this process ``WORKER_NICENESS`` nicer than it is, where the system lets it
    (a sandbox that forbids ``setpriority`` costs the priority, not the poll)."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass


def main():
    """Entry point of the worker process (also ``python -m slurm_sd.pipeline.worker``)."""
    gc.disable()
    lower_priority()
    with open(RESULT_FD, "wb") as out:
        run(BODY_FD, sys.stdin.buffer, out, sys.stderr)
    sys.stderr.flush()
    # Done: skip freeing every node one by one, the system takes the memory back whole.
    os._exit(0)


if __name__ == "__main__":
    main()
