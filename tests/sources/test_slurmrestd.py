"""Tests for slurm_sd.sources: the fetch step."""
import errno
import os

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import URI

from slurm_sd.config.model import SlurmrestdConfig
from slurm_sd.errors import FetchError, ResponseTooLarge
from slurm_sd.sources.file import FileSource
from slurm_sd.sources.http import SlurmrestdEndpointFactory, make_http_client
from slurm_sd.sources.slurmrestd import SlurmrestdClient, offered_versions
from slurm_sd.sources.tokens import read_token
from tests.answers import Reply, Silent, response
from tests.fakes import captured, fixture
from tests.standin import NODES, StandIn


def make_client(standin, environ=None, **config):
    """A SlurmrestdClient talking to ``standin`` in memory, on its clock."""
    config.setdefault("url", "http://127.0.0.1:6820")
    config.setdefault("api_version", "v0.0.38")
    return SlurmrestdClient(standin.reactor, standin.http_client(), SlurmrestdConfig(**config),
                            environ={} if environ is None else environ)


class FetchTests(SynchronousTestCase):
    """Fetching the node list from a slurmrestd."""

    def test_fetch_returns_body(self):
        """A 200 answer's body is handed on unchanged."""
        fake = StandIn(body=NODES)
        body = self.successResultOf(make_client(fake).fetch_nodes())
        self.assertEqual(body, NODES)
        self.assertEqual(fake.paths(), ["/slurm/v0.0.38/nodes/"])

    def test_no_token_no_headers(self):
        """With no token, no X-SLURM-* header is sent (rest_auth/local)."""
        fake = StandIn(body=NODES)
        self.successResultOf(make_client(fake, user="slurm").fetch_nodes())
        headers = fake.requests[0][1]
        self.assertNotIn("x-slurm-user-name", headers)
        self.assertNotIn("x-slurm-user-token", headers)

    def test_token_file_headers_reread(self):
        """The token file is read on every poll, so a rotated token is used."""
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write("  first-token\n")
        fake = StandIn(body=NODES)
        client = make_client(fake, user="slurmrest", token_file=path)
        self.successResultOf(client.fetch_nodes())
        with open(path, "w") as handle:
            handle.write("SLURM_JWT=second-token\n")
        self.successResultOf(client.fetch_nodes())
        self.assertEqual([(h["x-slurm-user-name"], h["x-slurm-user-token"])
                          for _, h in fake.requests],
                         [("slurmrest", "first-token"), ("slurmrest", "second-token")])

    def test_token_precedence(self):
        """--token beats the token file, which beats SLURM_JWT."""
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write("from-file")
        env = {"SLURM_JWT": "from-env"}
        self.assertEqual(read_token(SlurmrestdConfig(url="x", token="cli", token_file=path),
                                    env), "cli")
        self.assertEqual(read_token(SlurmrestdConfig(url="x", token_file=path), env),
                         "from-file")
        self.assertEqual(read_token(SlurmrestdConfig(url="x"), env), "from-env")
        self.assertIsNone(read_token(SlurmrestdConfig(url="x"), {}))

    def test_missing_token_file(self):
        """An unreadable token file fails the poll with a line naming the key."""
        fake = StandIn(body=NODES)
        client = make_client(fake, token_file="/nonexistent/jwt")
        failure = self.failureResultOf(client.fetch_nodes(), FetchError)
        self.assertIn("slurmrestd.token_file /nonexistent/jwt", str(failure.value))
        self.assertEqual(fake.requests, [])

    def test_auto_discovers_newest_supported(self):
        """api_version auto picks the newest supported version /openapi/v3 lists."""
        fake = StandIn(versions=["v0.0.36", "v0.0.38", "v0.0.37"], body=NODES)
        client = make_client(fake, api_version="auto")
        self.successResultOf(client.fetch_nodes())
        self.successResultOf(client.fetch_nodes())
        self.assertEqual(fake.paths(), ["/openapi/v3", "/slurm/v0.0.38/nodes/",
                                        "/slurm/v0.0.38/nodes/"])

    def test_auto_rediscovers_after_404(self):
        """After a 404 under auto, the next poll asks /openapi/v3 again."""
        fake = StandIn(versions=["v0.0.40"], body=NODES)
        client = make_client(fake, api_version="auto")
        self.successResultOf(client.fetch_nodes())
        fake.versions = ["v0.0.41"]
        self.failureResultOf(client.fetch_nodes(), FetchError)
        self.successResultOf(client.fetch_nodes())
        self.assertEqual(fake.paths()[-2:], ["/openapi/v3", "/slurm/v0.0.41/nodes/"])

    def test_auto_nothing_supported(self):
        """A slurmrestd that only offers v0.0.36 is refused with a clear line."""
        fake = StandIn(versions=["v0.0.36"], body=NODES)
        failure = self.failureResultOf(make_client(fake, api_version="auto").fetch_nodes(),
                                       FetchError)
        self.assertIn("it offers v0.0.36", str(failure.value))
        self.assertIn("v0.0.37 or newer", str(failure.value))

    def test_auto_newest_known_and_past_it(self):
        """auto takes v0.0.46 (Slurm 26.11's) over older ones, and never a newer unknown one."""
        body = fixture("v0.0.46-nodes.json")
        fake = StandIn(versions=["v0.0.44", "v0.0.46", "v0.0.47"], body=body)
        self.assertEqual(self.successResultOf(make_client(fake, api_version="auto")
                                              .fetch_nodes()), body)
        self.assertEqual(fake.paths(), ["/openapi/v3", "/slurm/v0.0.46/nodes/"])
        fake.versions = ["v0.0.47"]
        failure = self.failureResultOf(make_client(fake, api_version="auto").fetch_nodes(),
                                       FetchError)
        self.assertIn("it offers v0.0.47; we support v0.0.37 to v0.0.46", str(failure.value))

    def test_offered_versions_with_and_without_slash(self):
        """Nodes paths are found with and without a trailing slash, sorted."""
        document = {"paths": {"/slurm/v0.0.41/nodes": {}, "/slurm/v0.0.40/nodes/": {},
                              "/slurm/v0.0.41/node/{node_name}": {}, "/openapi/v3": {}}}
        self.assertEqual(offered_versions(document), ["v0.0.40", "v0.0.41"])

    def test_real_openapi_listing(self):
        """The real 22.05 /openapi/v3 lists v0.0.36 to v0.0.38."""
        import json
        document = json.loads(fixture("slurm-22.05-openapi-v3.json"))
        self.assertEqual(offered_versions(document), ["v0.0.36", "v0.0.37", "v0.0.38"])


class FetchErrorTests(SynchronousTestCase):
    """Each failed answer becomes one line that says what to do."""

    def fail_with(self, answer, **config):
        """The FetchError message for ``answer`` (a captured name, or ``(code, body)``)."""
        fake = StandIn(body=NODES)
        raw = captured(answer) if isinstance(answer, str) else response(*answer)
        fake.answers.append(Reply(raw))
        failure = self.failureResultOf(make_client(fake, **config).fetch_nodes(), FetchError)
        message = str(failure.value)
        self.assertNotIn("\n", message)
        return message

    def test_401(self):
        """401 says the auth headers are missing or refused."""
        message = self.fail_with("slurm-22.05-v0.0.38-nodes-no-auth-headers.http")
        self.assertIn("401", message)
        self.assertIn("slurmrestd.user and a token", message)

    def test_500_with_token(self):
        """A 500 while a token is sent points at the token, without showing it."""
        message = self.fail_with("slurm-22.05-v0.0.38-nodes-bad-token-signature.http",
                                 user="slurmrest", token="secret-jwt")
        self.assertIn("Unspecified error", message)
        self.assertIn("scontrol token", message)
        self.assertNotIn("secret-jwt", message)

    def test_511(self):
        """511 (Slurm 24.x+) is read as a rejected token."""
        message = self.fail_with((511, b'{"errors": [{"error": "Authentication failure", '
                                       b'"error_number": 1007}]}'), user="u", token="t")
        self.assertIn("511", message)
        self.assertIn("expired", message)

    def test_502(self):
        """502 says slurmrestd cannot reach slurmctld, with Slurm's own words."""
        message = self.fail_with("slurm-24.11-v0.0.40-nodes-slurmctld-down.http")
        self.assertIn("cannot reach slurmctld", message)
        self.assertIn("Unable to contact slurm controller", message)

    def test_proxy_html_502(self):
        """A 502 HTML page from a proxy names the page, not slurmctld."""
        message = self.fail_with((502, b"<html><head><title>502 Bad Gateway</title></head>"
                                       b"<body>nginx</body></html>", b"text/html"))
        self.assertIn("(a proxy?) answered 502", message)
        self.assertIn("an HTML page: 502 Bad Gateway", message)
        self.assertNotIn("slurmctld", message)

    def test_500_without_token(self):
        """A 500 with no token suggests slurmctld; 22.05 sends it when slurmctld is down."""
        message = self.fail_with("slurm-22.05-v0.0.38-nodes-slurmctld-down.http")
        self.assertIn("500", message)
        self.assertIn("slurmctld", message)

    def test_404_lists_offered_versions(self):
        """A 404 names the versions the server offers."""
        fake = StandIn(versions=["v0.0.36", "v0.0.37", "v0.0.38"], body=NODES)
        client = make_client(fake, api_version="v0.0.40")
        failure = self.failureResultOf(client.fetch_nodes(), FetchError)
        self.assertIn("does not serve /slurm/v0.0.40/nodes/ (404)", str(failure.value))
        self.assertIn("v0.0.36, v0.0.37, v0.0.38", str(failure.value))

    def test_too_large_by_content_length(self):
        """A Content-Length over max_response_bytes is refused."""
        fake = StandIn(body=NODES)
        client = make_client(fake, max_response_bytes=1024)
        failure = self.failureResultOf(client.fetch_nodes(), ResponseTooLarge)
        self.assertIn("max_response_bytes (1024 bytes", str(failure.value))

    def test_timeout(self):
        """No answer within slurmrestd.timeout fails the poll with a line naming the key."""
        standin = StandIn()
        standin.nodes = Silent()
        client = make_client(standin, timeout=10)
        d = client.fetch_nodes()
        self.assertNoResult(d)
        standin.reactor.advance(10)
        failure = self.failureResultOf(d, FetchError)
        self.assertIn("within 10 s", str(failure.value))
        self.assertIn("slurmrestd.timeout", str(failure.value))


class ConnectionFailureTests(SynchronousTestCase):
    """Connection-level failures, with the real Agent on a MemoryReactor."""

    def test_unix_socket_refused(self):
        """A refused UNIX socket connection is one line naming the socket."""
        reactor = MemoryReactorClock()
        config = SlurmrestdConfig(url="unix:/run/slurmrestd.sock", api_version="v0.0.38")
        client = SlurmrestdClient(reactor, make_http_client(reactor, config.url), config, {})
        d = client.fetch_nodes()
        [(path, factory, timeout, _)] = reactor.unixClients
        self.assertEqual(path, "/run/slurmrestd.sock")
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError("refused")))
        failure = self.failureResultOf(d, FetchError)
        self.assertIn("cannot connect to slurmrestd at unix:/run/slurmrestd.sock", str(failure.value))

    def test_refused_errno_named(self):
        """The reactor's errno-only connect errors are spelled out, not shown as a number."""
        reactor = MemoryReactorClock()
        config = SlurmrestdConfig(url="unix:/run/slurmrestd.sock", api_version="v0.0.38")
        client = SlurmrestdClient(reactor, make_http_client(reactor, config.url), config, {})
        d = client.fetch_nodes()
        [(_, factory, _, _)] = reactor.unixClients
        factory.clientConnectionFailed(
            None, Failure(ConnectError(errno.ENOENT, "No such file or directory")))
        failure = self.failureResultOf(d, FetchError)
        self.assertIn("cannot connect to slurmrestd at unix:/run/slurmrestd.sock: No such "
                      "file or directory (is slurmrestd running", str(failure.value))

    def test_endpoint_factory(self):
        """Sockets get a UNIX endpoint; http and https URLs a TCP (TLS) one."""
        reactor = MemoryReactorClock()
        unix = SlurmrestdEndpointFactory(reactor, "/s.sock").endpointForURI(
            URI.fromBytes(b"http://localhost/x"))
        self.assertIsInstance(unix, UNIXClientEndpoint)
        tcp = SlurmrestdEndpointFactory(reactor).endpointForURI(
            URI.fromBytes(b"http://127.0.0.1:6820/x"))
        self.assertIsInstance(tcp, HostnameEndpoint)
        tls = SlurmrestdEndpointFactory(reactor).endpointForURI(
            URI.fromBytes(b"https://127.0.0.1:6820/x"))
        self.assertNotIsInstance(tls, HostnameEndpoint)

    def test_tcp_connects_to_url_host(self):
        """An http:// URL connects to its host and port."""
        reactor = MemoryReactorClock()
        config = SlurmrestdConfig(url="http://127.0.0.1:6820", api_version="v0.0.38")
        client = SlurmrestdClient(reactor, make_http_client(reactor, config.url), config, {})
        client.fetch_nodes()
        reactor.advance(0)
        self.assertEqual([(host, port) for host, port, *_ in reactor.tcpClients],
                         [("127.0.0.1", 6820)])


class FileSourceTests(SynchronousTestCase):
    """``url: file:PATH`` reads a saved node list."""

    def test_reads_file(self):
        """The file's bytes are the body."""
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(NODES)
        self.assertEqual(self.successResultOf(FileSource(path, 10 ** 9).fetch_nodes()), NODES)

    def test_missing_file(self):
        """A missing file is a one-line FetchError naming it."""
        failure = self.failureResultOf(FileSource("/nonexistent.json", 10).fetch_nodes(),
                                       FetchError)
        self.assertIn("/nonexistent.json", str(failure.value))

    def test_too_large(self):
        """A file over max_response_bytes is refused."""
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(b"x" * 100)
        self.failureResultOf(FileSource(path, 99).fetch_nodes(), ResponseTooLarge)
        self.assertTrue(os.path.exists(path))
