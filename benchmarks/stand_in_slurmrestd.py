"""A stand-in slurmrestd for benchmarks: serves one node-list body over a UNIX socket.

    python benchmarks/stand_in_slurmrestd.py --socket PATH --body FILE [--version v0.0.41]

``GET /slurm/VERSION/nodes/`` answers the body file with ``os.sendfile`` (the kernel copies
it; this process is never the bottleneck).  ``GET /openapi/v3`` lists that path.  Anything
else is a 404.

Each nodes request gets a number n (1, 2, ...), and the body's ``meta.slurm.cluster`` value
(which must be 5 characters long, as the generator's ``bench`` is) is replaced on the fly
by ``c%04d`` % n, so a client of the daemon can tell when the data of request n is being
served.  One JSON line per event goes to stdout, with ``time.monotonic()`` timestamps
(one clock for every process on the machine):

    {"event": "listening", "t": ...}
    {"event": "request", "n": 1, "t": ..., "path": "/slurm/v0.0.41/nodes/"}
    {"event": "sent", "n": 1, "t": ..., "bytes": 261886159}
"""
import argparse
import json
import os
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

TAG_KEY = b'"cluster": "'
TAG_LEN = 5


def tag(n):
    """Return the cluster name served for nodes request ``n``."""
    return "c%04d" % (n % 10000)


def find_tag(path):
    """Return the offset of the 5-character ``meta.slurm.cluster`` value in the body file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - 8192))
        tail = f.read()
    at = tail.rfind(TAG_KEY)
    if at < 0 or tail[at + len(TAG_KEY) + TAG_LEN : at + len(TAG_KEY) + TAG_LEN + 1] != b'"':
        raise SystemExit("%s: no 5-character meta.slurm.cluster near the end" % path)
    return max(0, size - 8192) + at + len(TAG_KEY)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Threaded HTTP server on a UNIX socket."""

    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    """Serve the nodes body, the OpenAPI listing and 404s."""

    protocol_version = "HTTP/1.1"
    server_version = "slurmrestd-stand-in"

    def address_string(self):
        """UNIX-socket peers have no address."""
        return "unix"

    def log_message(self, format, *args):
        """Quiet: events go to stdout as JSON lines instead."""

    def _json(self, code, obj):
        """Send a small JSON answer."""
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        """Answer one GET."""
        srv = self.server
        path = self.path.split("?", 1)[0]
        if path in (srv.nodes_path, srv.nodes_path.rstrip("/")):
            self._nodes(path)
        elif path == "/openapi/v3":
            self._json(200, {"openapi": "3.0.3", "paths": {srv.nodes_path: {"get": {}}}})
        else:
            self._json(404, {"errors": [{"description": "Unable to find requested path",
                                         "error_number": 9002, "error": "Not found",
                                         "source": path}]})

    def _nodes(self, path):
        """Send the body file, with this request's cluster tag patched in."""
        srv = self.server
        with srv.lock:
            srv.count += 1
            n = srv.count
        emit({"event": "request", "n": n, "t": time.monotonic(), "path": path})
        size = srv.body_size
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        out = self.connection.fileno()
        with open(srv.body, "rb") as f:
            fd = f.fileno()
            _sendfile(out, fd, 0, srv.tag_offset)
            self.connection.sendall(tag(n).encode())
            _sendfile(out, fd, srv.tag_offset + TAG_LEN, size - srv.tag_offset - TAG_LEN)
        emit({"event": "sent", "n": n, "t": time.monotonic(), "bytes": size})


def _sendfile(out, fd, offset, count):
    """Send ``count`` bytes of ``fd`` from ``offset`` to socket ``out`` (blocking)."""
    while count > 0:
        sent = os.sendfile(out, fd, offset, count)
        if sent == 0:
            raise ConnectionError("peer closed")
        offset += sent
        count -= sent


_emit_lock = threading.Lock()


def emit(event):
    """Write one JSON event line to stdout."""
    with _emit_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main(argv=None):
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--version", default="v0.0.41")
    args = parser.parse_args(argv)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    server = _Server(args.socket, _Handler)
    server.nodes_path = "/slurm/%s/nodes/" % args.version
    server.body = args.body
    server.body_size = os.path.getsize(args.body)
    server.tag_offset = find_tag(args.body)
    server.count = 0
    server.lock = threading.Lock()
    emit({"event": "listening", "t": time.monotonic(), "socket": args.socket})
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if os.path.exists(args.socket):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    import signal

    def _stop(signum, frame):
        """SIGTERM ends serve_forever like Ctrl-C does."""
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main())
