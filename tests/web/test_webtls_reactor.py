"""web_config_file's TLS with client certificates and bcrypt users, on the real reactor."""
import base64
import json

import bcrypt
from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.logger import capturedLogs, formatEvent
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from tests.certs import make_set, write
from tests.fakes import SAMPLES
from tests.realtime import deadline, first_snapshot
from tests.test_security import DaemonTestCase


@implementer(IPolicyForHTTPS)
class _ClientCertificatePolicy:
    """Agent TLS options: trust ``ca``, present ``client`` (a PrivateCertificate or None)."""

    def __init__(self, ca, client):
        self._ca = ca
        self._client = client

    def creatorForNetloc(self, hostname, port):
        """The same options whatever the address (the certificate names localhost)."""
        return optionsForClientTLS("localhost", trustRoot=self._ca,
                                   clientCertificate=self._client)


class WebConfigTLSTests(DaemonTestCase):
    """web_config_file's TLS with client certificates, on the real reactor."""

    @defer.inlineCallbacks
    def test_client_certificate_and_bcrypt(self):
        """Only a client with the CA's certificate and the right password gets /targets;
        neither the password nor its hash shows in a log line or an answer."""
        events = self.enterContext(capturedLogs())
        paths = make_set(self.dir)
        hashed = bcrypt.hashpw(b"tls-webpw", bcrypt.gensalt(4)).decode()
        web = write(self.dir, "web.yml", (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
            f"basic_auth_users:\n  prometheus: '{hashed}'\n").encode())
        port = yield self.start(
            f"slurmrestd: {{url: 'file:{SAMPLES}/slurm-22.05-v0.0.38-nodes.json'}}\n"
            f"listen: 'tcp:0:interface=127.0.0.1'\nweb_config_file: {web}\n"
            f"jobs: [{{node: {{port: 9100}}}}]\n")
        yield deadline(first_snapshot(self.service.cache))

        def read(name):
            with open(paths[name], "rb") as handle:
                return handle.read()
        ca = Certificate.loadPEM(read("ca"))
        client = PrivateCertificate.loadPEM(read("client_cert") + read("client_key"))
        pool = HTTPConnectionPool(reactor, persistent=False)
        http = HTTPClient(Agent(reactor, contextFactory=_ClientCertificatePolicy(ca, client),
                                pool=pool))
        url = f"https://127.0.0.1:{port}/targets?prom_job=node"
        good = {b"authorization": [b"Basic " + base64.b64encode(b"prometheus:tls-webpw")]}
        code, _, body = yield self.fetch(http, "GET", url, good)
        self.assertEqual(code, 200)
        self.assertIn("127.0.0.1:9100", json.loads(body)[0]["targets"])
        code, _, refused = yield self.fetch(http, "GET", url, {b"authorization": [
            b"Basic " + base64.b64encode(b"prometheus:wrong")]})
        self.assertEqual(code, 401)
        _, _, metrics = yield self.fetch(http, "GET", url.replace("/targets", "/metrics"), good)
        write(self.dir, "web.yml", b"basic_auth_users:\n  prometheus: tls-webpw\n")
        code, _, _ = yield self.fetch(http, "GET", url, good)   # a bad change: kept
        self.assertEqual(code, 200)
        said = [formatEvent(event) + repr(event) for event in events]
        self.assertTrue(any("basic_auth_users.prometheus: must be a bcrypt hash" in line
                            for line in said))
        for text in said + [body.decode(), refused.decode(), metrics.decode()]:
            self.assertNotIn("tls-webpw", text)
            self.assertNotIn(hashed, text)
        anonymous = HTTPClient(Agent(reactor, contextFactory=_ClientCertificatePolicy(
            ca, None), pool=HTTPConnectionPool(reactor, persistent=False)))
        yield self.assertFailure(deadline(anonymous.get(url, headers=good)), Exception)
