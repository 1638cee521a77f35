"""
Security tests on the real reactor: TLS listening with a self-signed
certificate made here, HTTP auth over it, and a search for the secrets in
everything the daemon says while it polls a stand-in slurmrestd through
success and every failure.
"""
import base64
import datetime
import ipaddress
import json
import os
import shutil
import tempfile
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.ssl import Certificate
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from slurm_sd.config.load import apply_overrides
from slurm_sd.config.parse import parse
from slurm_sd.service import poller as poller_module
from slurm_sd.tap import build_service
from tests.answers import ERROR_511, BreakOff, Flood, Reply, Silent, response
from tests.fakes import SAMPLES, captured, fixture
from tests.realtime import deadline, first_snapshot, poll_ended
from tests.standin import StandIn

NODES = fixture("slurm-22.05-v0.0.38-nodes.json")


def self_signed(directory):
    """A key and self-signed certificate for localhost and 127.0.0.1; their paths and PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path = os.path.join(directory, "key.pem")
    cert_path = os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_path, "wb") as handle:
        handle.write(cert_pem)
    return key_path, cert_path, cert_pem


def write_secret(directory, name, content):
    """A secret file, mode 0600."""
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(content + "\n")
    os.chmod(path, 0o600)
    return path


class DaemonTestCase(TestCase):
    """The whole daemon from build_service, on the real reactor."""

    timeout = 60

    def setUp(self):
        """A private temp dir (short, for UNIX socket paths)."""
        self.dir = tempfile.mkdtemp(prefix="sd-sec-")
        self.addCleanup(shutil.rmtree, self.dir)

    @defer.inlineCallbacks
    def start(self, text, environ=None, overrides=None):
        """Build and start the daemon for config ``text``; return its port number."""
        config = parse(text, os.path.join(self.dir, "config.yaml"))
        config = apply_overrides(config, overrides or {})
        service = build_service(reactor, config, environ=environ or {})
        service.startService()
        self.addCleanup(service.stopService)
        [listening] = [s for s in service if hasattr(s, "_waitingForPort")]
        listening_now = defer.Deferred()

        def listening_at(port):
            listening_now.callback(port)
            return port   # the service needs it again to stop listening
        listening._waitingForPort.addCallback(listening_at)
        port = yield deadline(listening_now)
        self.service = service
        return port.getHost().port

    def client(self, trust=None):
        """A treq client with a pool that keeps no connection open."""
        pool = HTTPConnectionPool(reactor, persistent=False)
        policy = BrowserLikePolicyForHTTPS(trustRoot=trust) if trust else \
            BrowserLikePolicyForHTTPS()
        return HTTPClient(Agent(reactor, contextFactory=policy, pool=pool))

    @defer.inlineCallbacks
    def fetch(self, http, method, url, headers=None):
        """``(code, raw headers, body)`` of one request, within the deadline."""
        response = yield deadline(http.request(method, url, headers=headers))
        body = yield deadline(response.content())
        return response.code, list(response.headers.getAllRawHeaders()), body


class TLSTests(DaemonTestCase):
    """``listen: ssl:...`` with a certificate and key, and http_auth over it."""

    @defer.inlineCallbacks
    def test_https_with_bearer_token(self):
        """Over TLS, /targets needs the bearer token; health checks do not."""
        key, cert, cert_pem = self_signed(self.dir)
        token = write_secret(self.dir, "token", "tls-test-token")
        port = yield self.start(
            f"slurmrestd: {{url: 'file:{SAMPLES}/slurm-22.05-v0.0.38-nodes.json'}}\n"
            f"listen: 'ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}'\n"
            f"http_auth: {{bearer_token_file: {token}}}\n"
            f"jobs: [{{node: {{port: 9100}}}}]\n")
        yield deadline(first_snapshot(self.service.cache))
        http = self.client(Certificate.loadPEM(cert_pem))
        base = f"https://127.0.0.1:{port}"
        code, _, body = yield self.fetch(http, "GET", base + "/targets?prom_job=node",
                                         {b"authorization": [b"Bearer tls-test-token"]})
        self.assertEqual(code, 200)
        self.assertIn("127.0.0.1:9100", json.loads(body)[0]["targets"])
        code, headers, _ = yield self.fetch(http, "GET", base + "/targets?prom_job=node")
        self.assertEqual(code, 401)
        self.assertIn((b"WWW-Authenticate", [b'Bearer realm="slurm-sd"']), headers)
        code, _, _ = yield self.fetch(http, "GET", base + "/-/healthy")
        self.assertEqual(code, 200)

    @defer.inlineCallbacks
    def test_certificate_is_the_one_configured(self):
        """A client that does not trust the certificate cannot talk to the daemon."""
        key, cert, _ = self_signed(self.dir)
        port = yield self.start(
            f"slurmrestd: {{url: 'file:{SAMPLES}/slurm-22.05-v0.0.38-nodes.json'}}\n"
            f"listen: 'ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}'\n"
            f"jobs: [{{node: {{port: 9100}}}}]\n")
        other = self_signed(tempfile.mkdtemp(prefix="sd-other-", dir=self.dir))[2]
        http = self.client(Certificate.loadPEM(other))
        d = http.get(f"https://127.0.0.1:{port}/-/healthy")
        yield self.assertFailure(deadline(d), Exception)


class SecretLeakTests(DaemonTestCase):
    """The token and the HTTP credentials never show in logs, HTTP bodies or metrics."""

    @defer.inlineCallbacks
    def run_through_everything(self, auth_yaml, good_auth, wrong_auth, secrets, slurm_extra,
                               overrides=None, environ=None, minted=False):
        """
        Poll a stand-in slurmrestd through success and every failure; after
        each poll ask every kind of HTTP question; search all of it for
        ``secrets`` (and, when ``minted``, for every token that was sent, the
        first of ``secrets`` then being one the daemon must not send).
        """
        self.patch(poller_module, "RETRY_BASE", 3600)   # the test drives the polls
        events = self.enterContext(capturedLogs())
        socket = os.path.join(self.dir, "slurmrestd.sock")
        standin = StandIn(reactor)
        self.addCleanup(standin.stop)
        yield standin.listen(UNIXServerEndpoint(reactor, socket))
        jwt = secrets[0]
        state_file = os.path.join(self.dir, "state")
        port = yield self.start(
            f"slurmrestd: {{url: 'unix:{socket}', api_version: v0.0.38, user: slurmrest, "
            f"timeout: 0.5, max_response_bytes: 65536{slurm_extra}}}\n"
            f"interval: 3600\nlisten: 'tcp:0:interface=127.0.0.1'\n{auth_yaml}\n"
            f"state_file: {state_file}\n"
            f"jobs: [{{node: {{port: 9100}}}}]\n", overrides=overrides, environ=environ)
        poller = self.service.poller
        seen = []
        http = self.client()
        base = f"http://127.0.0.1:{port}"

        @defer.inlineCallbacks
        def ask_everything():
            for method, path, headers in [
                    ("GET", "/targets?prom_job=node", good_auth),
                    ("GET", "/targets", good_auth),
                    ("GET", "/targets?prom_job=node", {}),
                    ("GET", "/targets?prom_job=node", wrong_auth),
                    ("GET", "/targets?prom_job=nope", good_auth),
                    ("GET", "/targets?prom_job=a&prom_job=b", good_auth),
                    ("POST", "/targets?prom_job=node", good_auth),
                    ("GET", "/nope", good_auth),
                    ("GET", "/metrics", good_auth),
                    ("GET", "/", good_auth),
                    ("GET", "/", {}),
                    ("GET", "/-/ready", {}),
                    ("GET", "/-/healthy", {})]:
                seen.append((yield self.fetch(http, method, base + path, headers)))

        # Before the first poll is done, and then after each answer below.
        yield ask_everything()
        def echo():
            """The token of the request being answered, in a sentence."""
            return f"token {standin.requests[-1][1].get('x-slurm-user-token')} is not valid"
        answers = [
            (None, Reply(response(200, NODES))),
            (None, Silent()),
            (None, Reply(captured("slurm-22.05-v0.0.38-nodes-no-auth-headers.http"))),
            (["v0.0.40"], Reply(captured("slurm-22.05-wrong-version-v0.0.39-nodes.http"))),
            (None, Reply(captured("slurm-22.05-v0.0.38-nodes-bad-token-signature.http"))),
            (None, Reply(captured("slurm-24.11-v0.0.40-nodes-slurmctld-down.http"))),
            (None, Reply(response(511, ERROR_511))),
            (None, Reply(response(502, b"<html><title>502 Bad Gateway</title></html>",
                                  b"text/html"))),
            (None, Reply(response(200, NODES[:100]))),
            (None, Reply(response(200, b"\xff\xfe"))),
            (None, Reply(response(200, b""))),
            (None, Flood()),
            (None, BreakOff(response(200, NODES), 300)),
            # Answers that echo the token sent back: it must still not be logged.
            (None, Echo(lambda: response(500, json.dumps(
                {"errors": [{"error": echo()}]}).encode()))),
            (None, Echo(lambda: response(200, json.dumps({"errors": [{"error": echo()}],
                                                          "nodes": []}).encode()))),
            (None, Echo(lambda: response(502, f"<title>{echo()}</title>".encode(),
                                         b"text/html"))),
            (None, Echo(lambda: response(400, echo().encode(), b"text/plain"))),
            (None, Reply(response(200, NODES))),
        ]
        yield deadline(poll_ended(poller))
        for versions, answer in answers:
            standin.versions = versions or ["v0.0.38"]
            standin.nodes = answer
            yield deadline(poller.poll())
            yield ask_everything()
        sent = {headers.get("x-slurm-user-token") for _, headers in standin.requests}
        if minted:
            self.assertNotIn(jwt, sent)
            self.assertNotIn(None, sent)
            secrets = [*secrets, *sent]
        else:
            # The token really was sent, so the search below means something.
            self.assertIn(jwt, sent)
        self.assertGreaterEqual(sum(1 for code, _, _ in seen if code == 401), len(answers))
        self.assertTrue(any(code == 200 for code, _, _ in seen))

        logged = []
        for event in events:
            logged.append(formatEvent(event))
            logged.append(repr(event))
            if "log_failure" in event:
                logged.append(event["log_failure"].getTraceback())
        self.assertGreater(len([e for e in events if "poll failed" in formatEvent(e)]),
                           len(answers) - 3)
        answered = [repr(headers) + body.decode("latin-1") for _, headers, body in seen]
        # Every token here has a readable exp: /metrics says when it expires.
        [last_metrics] = [text for text in answered if "slurm_sd_polls_total" in text][-1:]
        self.assertIn("slurm_sd_token_expiry_timestamp_seconds", last_metrics)
        # The state file was written (in a thread) and holds node lists only: once
        # the writes queued behind its lock are done.
        yield deadline(poller._keeper._state._lock.run(lambda: None))
        with open(state_file, "rb") as handle:
            stored = handle.read()
        self.assertIn(b"cpu01", stored)
        answered.append(stored.decode("latin-1"))
        for secret in secrets:
            for text in logged:
                self.assertNotIn(secret, text)
            for text in answered:
                self.assertNotIn(secret, text)

    def test_bearer_and_token_file(self):
        """With a bearer token for HTTP and a JWT in token_file, neither leaks anywhere."""
        jwt = make_jwt(int(time.time()) + 86400 * 30, "LEAKCHECK-" + uuid.uuid4().hex)
        bearer = "LEAKCHECK-bearer-" + uuid.uuid4().hex
        token_file = write_secret(self.dir, "jwt", jwt)
        bearer_file = write_secret(self.dir, "bearer", bearer)
        return self.run_through_everything(
            f"http_auth: {{bearer_token_file: {bearer_file}}}",
            {b"authorization": [b"Bearer " + bearer.encode()]},
            {b"authorization": [b"Bearer " + bearer[:-1].encode()]},
            [jwt, bearer], f", token_file: {token_file}")

    def test_basic_and_token_option(self):
        """With basic auth and a --token, neither the password nor the JWT leaks anywhere."""
        jwt = make_jwt(int(time.time()) + 3600, "LEAKCHECK-" + uuid.uuid4().hex)
        password = "LEAKCHECK-password-" + uuid.uuid4().hex
        password_file = write_secret(self.dir, "password", password)
        credentials = base64.b64encode(f"prometheus:{password}".encode())
        wrong = base64.b64encode(f"prometheus:{password[:-1]}".encode())
        return self.run_through_everything(
            f"http_auth: {{username: prometheus, password_file: {password_file}}}",
            {b"authorization": [b"Basic " + credentials]},
            {b"authorization": [b"Basic " + wrong]},
            [jwt, password, credentials.decode()], "", overrides={"token": jwt})

    def bearer(self):
        """http_auth YAML with a bearer token file, and the good and wrong headers."""
        bearer = "LEAKCHECK-bearer-" + uuid.uuid4().hex
        bearer_file = write_secret(self.dir, "bearer", bearer)
        return (f"http_auth: {{bearer_token_file: {bearer_file}}}",
                {b"authorization": [b"Bearer " + bearer.encode()]},
                {b"authorization": [b"Bearer " + bearer[:-1].encode()]})

    def test_token_command(self):
        """A token_command's token leaks nowhere, and the command's environment holds
        neither it nor the SLURM_JWT of the daemon's environment."""
        exp = int(time.time()) + 7 * 86400
        jwt = make_jwt(exp, "LEAKCHECK-command-" + uuid.uuid4().hex)
        environ_jwt = make_jwt(exp, "LEAKCHECK-environ-" + uuid.uuid4().hex)
        token_path = write_secret(self.dir, "jwt", "SLURM_JWT=" + jwt)
        env_dump = os.path.join(self.dir, "env")
        script = os.path.join(self.dir, "mint")
        with open(script, "w") as handle:
            handle.write(f"#!/bin/sh\nenv > {env_dump}\ncat {token_path}\n")
        os.chmod(script, 0o700)
        d = self.run_through_everything(
            *self.bearer(), [jwt, environ_jwt], f", token_command: [{script}]",
            environ={"SLURM_JWT": environ_jwt, "PATH": os.defpath})

        def child_env(_):
            with open(env_dump) as handle:
                text = handle.read()
            self.assertNotIn("SLURM_JWT", text)
            self.assertNotIn(jwt, text)
            self.assertIn("PATH=", text)
        return d.addCallback(child_env)

    def test_jwt_key_file(self):
        """Neither the HS256 key nor a token minted with it leaks anywhere."""
        key = "LEAKCHECK-key-" + uuid.uuid4().hex
        key_file = write_secret(self.dir, "jwt_hs256.key", key)
        environ_jwt = make_jwt(int(time.time()) + 86400, "LEAKCHECK-environ-" + uuid.uuid4().hex)
        return self.run_through_everything(
            *self.bearer(), [environ_jwt, key], f", jwt_key_file: {key_file}",
            environ={"SLURM_JWT": environ_jwt}, minted=True)


class Echo(Reply):
    """A Reply whose response is made when the request comes (to echo its token)."""

    def __init__(self, make):
        Reply.__init__(self, None)
        self._make = make

    def __call__(self, conn):
        """Make the response, then answer like Reply."""
        self.raw = self._make()
        Reply.__call__(self, conn)


def make_jwt(exp, tail):
    """A JWT-shaped token with a readable ``exp`` whose signature part is ``tail``."""
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'exp': exp})}.{tail}"
