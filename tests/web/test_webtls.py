"""web_config_file's TLS through the daemon's whole stack, in memory (no sockets)."""
import base64
import os

import bcrypt
from OpenSSL import SSL
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.tap import build_service
from tests.certs import Authority, make_set, write
from tests.fakes import SAMPLES
from tests.web.tlsclient import MemoryTransport, TLSClient, client_context

CONFIG = ("slurmrestd: {url: 'file:%s/slurm-22.05-v0.0.38-nodes.json'}\n"
          "listen: tcp:8443:interface=127.0.0.1\nweb_config_file: %%s\n"
          "jobs:\n  - node: {port: 9100}\n" % (SAMPLES,))
PLAIN_TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"


def basic(user, password):
    """An ``Authorization: Basic`` header line."""
    return b"Authorization: Basic " + base64.b64encode(user + b":" + password) + b"\r\n"


class WebTLSTestCase(SynchronousTestCase):
    """Certificates in a temporary directory and a daemon serving through them."""

    def setUp(self):
        """Make the certificates."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.paths = make_set(self.dir)

    def start(self, web_config):
        """Write the web configuration and start the daemon; its listening factory."""
        self.web = write(self.dir, "web.yml", web_config.encode())
        reactor = MemoryReactorClock()
        service = build_service(reactor, parse(CONFIG % (self.web,)), environ={})
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0)
        self.factory = reactor.tcpServers[0][1]
        return self.factory

    def client(self, **kwargs):
        """A client trusting the test CA; ``cert=client`` or ``stranger`` adds that cert."""
        who = kwargs.pop("cert", None)
        context = client_context(
            self.paths["ca"], self.paths[f"{who}_cert"] if who else None,
            self.paths[f"{who}_key"] if who else None, **kwargs)
        return TLSClient(self.factory, context)

    def get(self, who=None, path=b"/metrics", headers=b""):
        """The raw answer to one GET by a client presenting ``who``'s certificate."""
        client = self.client(cert=who)
        if not client.handshake():
            return b""
        return client.request(path=path, headers=headers)


class ServerCertificateTests(WebTLSTestCase):
    """TLS with the server's certificate only."""

    def test_serves_over_tls(self):
        """A client trusting the CA gets /targets over TLS, and the server's certificate."""
        self.start(PLAIN_TLS)
        client = self.client()
        self.assertTrue(client.handshake())
        self.assertEqual(client.peer_subject(), "slurm-sd")
        answer = client.request(path=b"/targets?prom_job=node")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:100])
        self.assertIn(b"127.0.0.1:9100", answer)

    def test_plain_http_refused(self):
        """Plain HTTP to the TLS port gets no HTTP answer."""
        factory = self.start(PLAIN_TLS)
        protocol = factory.buildProtocol(None)
        transport = MemoryTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertNotIn(b"HTTP/1.1", transport.value())
        self.assertFalse(transport.connected)

    def test_min_version(self):
        """min_version: TLS13 refuses a TLS 1.2 client."""
        self.start(PLAIN_TLS + "  min_version: TLS13\n")
        self.assertFalse(self.client(max_version=SSL.TLS1_2_VERSION).handshake())
        client = self.client()
        self.assertTrue(client.handshake())
        self.assertEqual(client.connection.get_protocol_version_name(), "TLSv1.3")

    def test_certificate_rotated_without_restart(self):
        """A new certificate written over the old files is used from the next handshake."""
        self.start(PLAIN_TLS)
        self.assertEqual(self.get()[:12], b"HTTP/1.1 200")
        other = Authority("another CA")
        certificate, key = other.issue("slurm-sd rotated", ("localhost",), "server")
        write(self.dir, "server.pem", certificate, 0o644)
        write(self.dir, "server-key.pem", key)
        ca = write(self.dir, "other-ca.pem", other.pem)
        with capturedLogs() as events:
            client = TLSClient(self.factory, client_context(ca))
            self.assertTrue(client.handshake())
        self.assertEqual(client.peer_subject(), "slurm-sd rotated")
        self.assertIn("re-read: TLS on (NoClientCert, TLS12+), 0 basic auth users",
                      " ".join(formatEvent(event) for event in events))

    def test_bad_change_keeps_last_good(self):
        """A key that no longer matches is logged once, and the old certificate stays."""
        self.start(PLAIN_TLS)
        _, stray_key = Authority().issue("x", ("localhost",), "server")
        write(self.dir, "server-key.pem", stray_key)
        with capturedLogs() as events:
            for _ in range(3):
                self.assertEqual(self.get()[:12], b"HTTP/1.1 200")
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(errors, [
            f"web_config_file: {self.web}: tls_server_config.key_file: cannot use "
            f"{self.dir}/server-key.pem: it is not the key of {self.dir}/server.pem; still "
            f"using the web configuration read before"])

    def test_turning_tls_off_needs_restart(self):
        """A file that drops tls_server_config is refused while running; TLS stays."""
        self.start(PLAIN_TLS)
        write(self.dir, "web.yml", b"basic_auth_users: {}\n")
        with capturedLogs() as events:
            self.assertEqual(self.get()[:12], b"HTTP/1.1 200")
        self.assertIn("turning TLS on or off needs a restart",
                      " ".join(formatEvent(event) for event in events))

    def test_loose_key_warned(self):
        """A TLS key readable by others is warned about like every secret file."""
        os.chmod(self.paths["server_key"], 0o644)
        with capturedLogs() as events:
            self.start(PLAIN_TLS)
        self.assertIn(f"web_config_file tls_server_config.key_file {self.paths['server_key']}"
                      f" is readable by others",
                      " ".join(formatEvent(event) for event in events))


class StartErrorTests(WebTLSTestCase):
    """Files that cannot be used at start end it with one line."""

    def line(self, web_config):
        """The SystemExit line of starting with ``web_config``."""
        with self.assertRaises(SystemExit) as caught:
            self.start(web_config)
        return caught.exception.code

    def test_missing_file(self):
        """A missing web configuration file is named."""
        with self.assertRaises(SystemExit) as caught:
            build_service(MemoryReactorClock(), parse(CONFIG % (self.dir + "/nope.yml",)),
                          environ={})
        self.assertEqual(caught.exception.code,
                         f"slurm-sd: <string>: web_config_file: {self.dir}/nope.yml: cannot "
                         f"read the web configuration file: No such file or directory")

    def test_missing_certificate(self):
        """A missing certificate names the key and the file."""
        self.assertEqual(
            self.line("tls_server_config:\n  cert_file: no.pem\n  key_file: server-key.pem\n"),
            f"slurm-sd: <string>: web_config_file: {self.dir}/web.yml: "
            f"tls_server_config.cert_file: cannot read {self.dir}/no.pem: No such file or "
            f"directory")

    def test_not_a_certificate(self):
        """A file that is no certificate, or a key that does not match, is one line."""
        line = self.line("tls_server_config:\n  cert_file: server-key.pem\n"
                         "  key_file: server-key.pem\n")
        self.assertIn("tls_server_config.cert_file: cannot use", line)
        self.assertNotIn("\n", line)
        line = self.line("tls_server_config:\n  cert_file: server.pem\n"
                         "  key_file: client-key.pem\n")
        self.assertIn(f"tls_server_config.key_file: cannot use {self.dir}/client-key.pem: "
                      f"it is not the key of {self.dir}/server.pem", line)

    def test_bad_client_ca(self):
        """A client CA file without certificates is named."""
        line = self.line(PLAIN_TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                                     "  client_ca_file: server-key.pem\n")
        self.assertIn(f"tls_server_config.client_ca_file: {self.dir}/server-key.pem holds "
                      f"no PEM certificate", line)


class ClientCertificateTests(WebTLSTestCase):
    """client_auth_type and client_ca_file."""

    def test_require_and_verify(self):
        """RequireAndVerifyClientCert: the CA's client gets in; none or a stranger does not."""
        self.start(PLAIN_TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                               "  client_ca_file: ca.pem\n")
        self.assertEqual(self.get("client")[:12], b"HTTP/1.1 200")
        self.assertEqual(self.get(None), b"")
        self.assertEqual(self.get("stranger"), b"")

    def test_verify_if_given(self):
        """VerifyClientCertIfGiven: no certificate is fine, a stranger's is not."""
        self.start(PLAIN_TLS + "  client_auth_type: VerifyClientCertIfGiven\n"
                               "  client_ca_file: ca.pem\n")
        self.assertEqual(self.get(None)[:12], b"HTTP/1.1 200")
        self.assertEqual(self.get("client")[:12], b"HTTP/1.1 200")
        self.assertEqual(self.get("stranger"), b"")

    def test_require_any(self):
        """RequireAnyClientCert: any certificate, checked or not; none is refused."""
        self.start(PLAIN_TLS + "  client_auth_type: RequireAnyClientCert\n")
        self.assertEqual(self.get("stranger")[:12], b"HTTP/1.1 200")
        self.assertEqual(self.get(None), b"")

    def test_request(self):
        """RequestClientCert: asked for, never required."""
        self.start(PLAIN_TLS + "  client_auth_type: RequestClientCert\n")
        self.assertEqual(self.get(None)[:12], b"HTTP/1.1 200")
        self.assertEqual(self.get("stranger")[:12], b"HTTP/1.1 200")

    def test_allowed_sans(self):
        """client_allowed_sans: only a verified client whose SAN is listed gets in."""
        self.start(PLAIN_TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                               "  client_ca_file: ca.pem\n  client_allowed_sans: [prometheus]\n")
        self.assertEqual(self.get("client")[:12], b"HTTP/1.1 200")
        write(self.dir, "web.yml", (PLAIN_TLS + "  client_auth_type: RequireAndVerifyClientCert"
                                    "\n  client_ca_file: ca.pem\n  client_allowed_sans: [x]\n"
                                    ).encode())
        with capturedLogs():
            self.assertEqual(self.get("client"), b"")

    def test_with_basic_auth(self):
        """Client certificate and bcrypt basic auth together, as Prometheus sends them."""
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        self.start(PLAIN_TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                               "  client_ca_file: ca.pem\n"
                               "basic_auth_users:\n  prometheus: '" + hashed + "'\n")
        self.assertEqual(self.get("client", headers=basic(b"prometheus", b"s3cret"))[:12],
                         b"HTTP/1.1 200")
        answer = self.get("client", headers=basic(b"prometheus", b"wrong"))
        self.assertEqual(answer[:12], b"HTTP/1.1 401")
        self.assertIn(b'WWW-Authenticate: Basic realm="slurm-sd"', answer)
        self.assertEqual(self.get("client", b"/-/healthy")[:12], b"HTTP/1.1 200")
