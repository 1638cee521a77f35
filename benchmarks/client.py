"""A /targets client for benchmarks: keep-alive GETs in a tight loop, latency recorded.

    python benchmarks/client.py --port PORT --path '/targets?prom_job=node' --out FILE
                                [--gap-ms 0] [--duration 600]

One HTTP/1.1 connection (reopened only if the server closes it); each request's start time
(``time.monotonic()``, the clock every process on the machine shares), latency, status and
body length are recorded.  The body's ``__meta_slurm_cluster`` value is read on every 200:
each change is recorded as (request start, response end, new value), which tells when the
daemon started serving the data of a given slurmrestd request (see stand_in_slurmrestd.py).
Each change is also written to stdout at once, as a JSON line
``{"event": "change", "t": ..., "tag": ...}``.  Runs until SIGTERM/SIGINT or
``--duration``, then writes one JSON object to ``--out``.
"""
import argparse
import http.client
import json
import os
import signal
import sys
import time

LABEL = b'"__meta_slurm_cluster"'


def cluster_tag(body):
    """Return the first ``__meta_slurm_cluster`` value in ``body`` (a JSON text), or None."""
    at = body.find(LABEL)
    if at < 0:
        return None
    start = body.find(b'"', at + len(LABEL)) + 1
    end = body.find(b'"', start)
    if start <= 0 or end < 0:
        return None
    return body[start:end].decode("ascii", "replace")


class _Stop(Exception):
    """Raised by the signal handler to end the loop."""


def _stop(signum, frame):
    """SIGTERM/SIGINT handler."""
    raise _Stop()


def run(port, path, gap, deadline):
    """Poll until ``deadline`` or a signal; return the recorded samples."""
    starts, latencies, statuses, sizes, changes, errors = [], [], [], [], [], []
    conn = None
    last_tag = None
    try:
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.monotonic()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                if starts:  # only count errors once the server has answered
                    errors.append((t0, repr(e)))
                time.sleep(0.02)
                continue
            t1 = time.monotonic()
            starts.append(t0)
            latencies.append(t1 - t0)
            statuses.append(resp.status)
            sizes.append(len(body))
            if resp.status == 200:
                tag = cluster_tag(body)
                if tag != last_tag:
                    changes.append((t0, t1, tag))
                    last_tag = tag
                    sys.stdout.write(json.dumps({"event": "change", "t": t1, "tag": tag}) + "\n")
                    sys.stdout.flush()
            if resp.will_close:
                conn.close()
                conn = None
            if gap:
                time.sleep(gap)
    except _Stop:
        pass
    finally:
        if conn is not None:
            conn.close()
    return {"path": path, "start": starts, "latency": latencies, "status": statuses,
            "size": sizes, "changes": changes, "errors": errors[:100],
            "error_count": len(errors)}


def main(argv=None):
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/targets?prom_job=node")
    parser.add_argument("--out", required=True)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=600.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    result = run(args.port, args.path, args.gap_ms / 1000.0,
                 time.monotonic() + args.duration)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
