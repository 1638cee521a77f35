"""
A stand-in for ``scontrol show nodes --json`` / ``sinfo --json``: prints a body and exits.

    python tests/standin_command.py [--body FILE] [--stderr LINE] [--exit N]
                                    [--pid-file PATH] [--hang]

``--body`` is a file printed to stdout in 64 KiB pieces (a tests/fixtures name, or any
path: the benchmark gives it a generated 100,000-node body); ``--stderr`` is written to
stderr; ``--exit`` is the exit status.  ``--hang`` ignores SIGTERM and sleeps (to be
killed with SIGKILL); ``--pid-file`` gets this process's id first, so a test can check
it is gone.
"""
import argparse
import os
import signal
import sys
import time

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def main(argv=None):
    """Do what the arguments say."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--body")
    parser.add_argument("--stderr")
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--pid-file")
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args(argv)
    if args.pid_file:
        with open(args.pid_file + ".new", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(args.pid_file + ".new", args.pid_file)
    if args.body:
        path = args.body if os.sep in args.body else os.path.join(FIXTURES, args.body)
        with open(path, "rb") as handle:
            for piece in iter(lambda: handle.read(65536), b""):
                sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
    if args.stderr:
        sys.stderr.write(args.stderr + "\n")
        sys.stderr.flush()
    if args.hang:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)   # bounded, should the test not kill it
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
