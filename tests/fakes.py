"""Test doubles: the one capture loader, and an in-memory slurmrestd for ``treq.testing.StubTreq``."""
import json
import os

from twisted.web.resource import Resource

SAMPLES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    """The bytes of ``tests/fixtures/NAME``."""
    with open(os.path.join(SAMPLES, name), "rb") as handle:
        return handle.read()


def fixture_body(name):
    """The body of ``tests/fixtures/NAME``; for a raw ``.http`` capture, what follows the headers."""
    data = fixture(name)
    if name.endswith(".http"):
        data = data.split(b"\r\n\r\n", 1)[1]
    return data


def openapi_listing(*versions, slash=True):
    """A minimal ``/openapi/v3`` body listing the nodes path of ``versions``."""
    end = "/" if slash else ""
    return json.dumps({"openapi": "3.0.2", "paths": {
        f"/slurm/{v}/nodes{end}": {"get": {}} for v in versions}}).encode()


class FakeSlurmrestd(Resource):
    """
    Answers like slurmrestd: ``/openapi/v3`` and ``/slurm/{v}/nodes/``.

    :param versions: the node API versions it serves.
    :param body: the ``/nodes/`` body (bytes).
    ``answers`` may hold ``(code, body)`` pairs to give, in order, before the
    normal answer; ``requests`` records ``(path, headers)`` of every request.
    """

    isLeaf = True

    def __init__(self, versions=("v0.0.38",), body=b'{"nodes": [], "errors": []}'):
        Resource.__init__(self)
        self.versions = list(versions)
        self.body = body
        self.answers = []
        self.requests = []

    def render_GET(self, request):
        """Record the request, then answer it."""
        path = request.path.decode()
        self.requests.append((path, {k.decode().lower(): v[0].decode()
                                     for k, v in request.requestHeaders.getAllRawHeaders()}))
        if path == "/openapi/v3":
            request.setHeader(b"content-type", b"application/json")
            return openapi_listing(*self.versions)
        if self.answers:
            code, body = self.answers.pop(0)
            request.setResponseCode(code)
            return body
        for version in self.versions:
            if path in (f"/slurm/{version}/nodes/", f"/slurm/{version}/nodes"):
                request.setHeader(b"content-type", b"application/json")
                return self.body
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"Unable find requested URL. Please view /openapi/v3 for API reference."

    def paths(self):
        """The paths asked for, in order."""
        return [path for path, _ in self.requests]
