"""A stand-in ``scontrol show nodes --json`` for benchmarks: prints one node-list body.

    python benchmarks/stand_in_command.py --body FILE --events FIFO --counter FILE

The daemon runs it on every poll (``slurmrestd.url: command:...``).  It prints the body
file to stdout with ``os.sendfile`` (the kernel copies it, as ``cat`` would), with the
body's 5-character ``meta.slurm.cluster`` replaced by run n's tag (``c%04d``, n counted
in ``--counter``), so the benchmark can tell when run n's data is served, as it does
with the stand-in slurmrestd.  The same JSON event lines as that stand-in's go to the
``--events`` FIFO (each under PIPE_BUF, so lines from runs never mix):

    {"event": "request", "n": 1, "t": ..., "path": "command"}
    {"event": "sent", "n": 1, "t": ..., "bytes": 261886159}
"""
import argparse
import fcntl
import json
import os
import sys
import time

from stand_in_slurmrestd import TAG_LEN, find_tag, tag


def next_number(path):
    """Add one to the counter in ``path`` (under a lock); return the new value."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        n = int(os.pread(fd, 32, 0) or b"0") + 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d" % n, 0)
        return n
    finally:
        os.close(fd)


def emit(path, event):
    """Write one JSON event line to the FIFO ``path``."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, (json.dumps(event) + "\n").encode())
    finally:
        os.close(fd)


def _sendfile(out, fd, offset, count):
    """Copy ``count`` bytes of ``fd`` from ``offset`` to ``out`` (a pipe)."""
    while count > 0:
        sent = os.sendfile(out, fd, offset, count)
        if sent == 0:
            raise OSError("stdout closed")
        offset += sent
        count -= sent


def main(argv=None):
    """Print the body once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--counter", required=True)
    args = parser.parse_args(argv)
    n = next_number(args.counter)
    emit(args.events, {"event": "request", "n": n, "t": time.monotonic(), "path": "command"})
    size = os.path.getsize(args.body)
    at = find_tag(args.body)
    out = sys.stdout.fileno()
    with open(args.body, "rb") as body:
        _sendfile(out, body.fileno(), 0, at)
        os.write(out, tag(n).encode())
        _sendfile(out, body.fileno(), at + TAG_LEN, size - at - TAG_LEN)
    emit(args.events, {"event": "sent", "n": n, "t": time.monotonic(), "bytes": size})
    return 0


if __name__ == "__main__":
    sys.exit(main())
