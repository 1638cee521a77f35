"""
Tests for ``slurmrestd.tls``: the real client against the stand-in slurmrestd
(tests/standin.py) over ``SSL4ServerEndpoint`` on 127.0.0.1, with certificates made
for each test (tests/certs.py).
"""
import os

from twisted.internet import defer, reactor, ssl
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.trial.unittest import TestCase

from slurm_sd.config.load import load
from slurm_sd.errors import FetchError
from slurm_sd.sources.choose import make_source
from slurm_sd.sources.spool import take_bytes
from tests import certs
from tests.fakes import fixture
from tests.standin import StandIn

BODY = fixture("slurm-22.05-v0.0.38-nodes.json")


class TlsTests(TestCase):
    """The slurmrestd client over TLS to a loopback server."""

    timeout = 20

    def setUp(self):
        """A CA, a server certificate for localhost and 127.0.0.1, a client certificate."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.ca = certs.Authority()
        self.ca_file = certs.write(self.dir, "ca.pem", self.ca.pem, 0o644)
        self.server_pem = b"".join(self.ca.issue("slurmrestd", certs.SERVER_NAMES, "server"))
        cert, key = self.ca.issue("slurm-sd", ("slurm-sd",), "client")
        self.cert_file = certs.write(self.dir, "client.pem", cert, 0o644)
        self.key_file = certs.write(self.dir, "client.key", key)
        self.standin = StandIn(reactor=reactor, body=BODY)

    @defer.inlineCallbacks
    def serve(self, require_client=False):
        """Listen with TLS on 127.0.0.1; return the port number."""
        server = ssl.PrivateCertificate.loadPEM(self.server_pem)
        if require_client:
            options = server.options(ssl.Certificate.loadPEM(self.ca.pem))
        else:
            options = server.options()
        endpoint = SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1")
        port = yield self.standin.listen(endpoint)
        self.addCleanup(self.standin.stop)
        return port.getHost().port

    def source(self, port, tls=None):
        """The daemon's source for https://127.0.0.1:PORT with ``tls`` (flow mapping)."""
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as handle:
            handle.write(f"slurmrestd: {{url: 'https://127.0.0.1:{port}', api_version: "
                         f"v0.0.38, timeout: 5" + (f", tls: {{{tls}}}" if tls else "") +
                         "}\njobs: [{node: {port: 9100}}]\n")
        return make_source(reactor, load(path), {})

    @defer.inlineCallbacks
    def fetch_error(self, source):
        """The one-line message of a poll that must fail."""
        error = yield self.assertFailure(source.fetch_nodes(), FetchError)
        self.assertNotIn("\n", str(error))
        return str(error)

    @defer.inlineCallbacks
    def test_ca_file(self):
        """With ca_file the CA that signed slurmrestd's certificate, the poll succeeds."""
        port = yield self.serve()
        body = yield self.source(port, f"ca_file: {self.ca_file}").fetch_nodes()
        self.assertEqual(BODY, take_bytes(body))

    @defer.inlineCallbacks
    def test_server_name(self):
        """server_name is the name checked (and sent); the URL's host is only where to
        connect."""
        port = yield self.serve()
        body = yield self.source(port, f"ca_file: {self.ca_file}, server_name: localhost"
                                 ).fetch_nodes()
        self.assertEqual(BODY, take_bytes(body))
        message = yield self.fetch_error(self.source(
            port, f"ca_file: {self.ca_file}, server_name: slurm01.example"))
        self.assertIn("its TLS certificate is not for slurm01.example (set "
                      "slurmrestd.tls.server_name to a name it is for)", message)

    @defer.inlineCallbacks
    def test_other_ca(self):
        """A certificate the configured CA did not sign fails the poll, saying so."""
        port = yield self.serve()
        other = certs.write(self.dir, "other-ca.pem", certs.Authority("other").pem)
        message = yield self.fetch_error(self.source(port, f"ca_file: {other}"))
        self.assertIn(f"slurmrestd at https://127.0.0.1:{port}: its TLS certificate is not "
                      f"signed by slurmrestd.tls.ca_file {other} (certificate verify failed)",
                      message)

    @defer.inlineCallbacks
    def test_system_trust_store(self):
        """Without ca_file the system trust store is used: a private CA is refused."""
        port = yield self.serve()
        message = yield self.fetch_error(self.source(port))
        self.assertIn("its TLS certificate is not signed by a CA of the system trust store "
                      "(set slurmrestd.tls.ca_file to slurmrestd's CA)", message)
        self.assertEqual([], self.standin.requests)

    @defer.inlineCallbacks
    def test_client_certificate(self):
        """A slurmrestd that demands a client certificate gets cert_file + key_file;
        without them the handshake fails in one line."""
        port = yield self.serve(require_client=True)
        body = yield self.source(port, f"ca_file: {self.ca_file}, cert_file: "
                                       f"{self.cert_file}, key_file: {self.key_file}"
                                 ).fetch_nodes()
        self.assertEqual(BODY, take_bytes(body))
        message = yield self.fetch_error(self.source(port, f"ca_file: {self.ca_file}"))
        self.assertIn(f"slurmrestd at https://127.0.0.1:{port}", message)
        self.assertIn("TLS handshake with slurmrestd at", message)
        self.assertIn("certificate required (slurmrestd wants a client certificate: set "
                      "slurmrestd.tls.cert_file and key_file)", message)
