"""Tests for slurm_sd.web.auth and slurm_sd.secretfiles: HTTP auth and secret files."""
import base64
import io
import json
import os

import attr
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from slurm_sd.config.model import HttpAuth
from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.tap import Options, build_service
from slurm_sd.web import auth as auth
from slurm_sd.web.auth import protect
from slurm_sd.web.site import make_root

BASE = ("slurmrestd: {url: 'http://127.0.0.1:6820'}\ninterval: 60\n"
        "jobs:\n  - node: {port: 9100}\n")


class Settings:
    """Stands in for the poller: ``config`` is the configuration in effect."""

    def __init__(self, config):
        self.config = config


class FakeMetrics(Resource):
    """Stands in for /metrics."""

    isLeaf = True

    def render_GET(self, request):
        """Some metrics text."""
        return b"slurm_sd_up 1\n"


def basic(user, password):
    """An ``Authorization: Basic`` value."""
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class AuthTestCase(SynchronousTestCase):
    """A protected root over a filled cache, with secret files in a temp dir."""

    def setUp(self):
        """A cache with targets, and a directory for secret files."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.cache = TargetCache(Clock())
        self.cache.replace(render({"node": [{"targets": ["n1:9100"], "labels": {}}]},
                                  node_count=1))
        self.events = self.enterContext(capturedLogs())

    def secret(self, name, content, mode=0o600):
        """Write a secret file; return its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, mode)
        return path

    def config(self, **http_auth):
        """The base config with ``http_auth`` set (or none)."""
        config = parse(BASE)
        return attr.evolve(config, http_auth=HttpAuth(**http_auth) if http_auth else None)

    def serve(self, config):
        """A StubTreq client for the protected root; the settings it reads."""
        settings = Settings(config)
        root = make_root(self.cache, settings, extra={b"metrics": FakeMetrics()})
        self.wrapper = protect(root, settings)
        self.http = StubTreq(self.wrapper)
        return settings

    def reload(self, settings, config):
        """What a reload does: ``config`` in effect, and the wrapper told at once."""
        settings.config = config
        self.wrapper.config_loaded(config)

    def get(self, path, authorization=None, headers=None):
        """``(code, headers, body)`` of a GET."""
        headers = dict(headers or {})
        if authorization is not None:
            headers[b"authorization"] = [authorization]
        response = self.successResultOf(self.http.get("http://sd" + path, headers=headers))
        return response.code, response.headers, self.successResultOf(response.content())


class BasicAuthTests(AuthTestCase):
    """``http_auth: {username, password_file}``."""

    def setUp(self):
        """Basic auth for prometheus / s3cret."""
        AuthTestCase.setUp(self)
        self.serve(self.config(username="prometheus",
                               password_file=self.secret("pw", "s3cret\n")))

    def test_no_credentials(self):
        """Without credentials, /targets is 401 with a Basic challenge and no secret."""
        code, headers, body = self.get("/targets?prom_job=node")
        self.assertEqual(code, 401)
        self.assertEqual(headers.getRawHeaders("www-authenticate"),
                         ['Basic realm="slurm-sd", charset="UTF-8"'])
        self.assertEqual(json.loads(body), {"error": "authentication required"})
        self.assertNotIn(b"s3cret", body)

    def test_right_credentials(self):
        """The right user and password (file content, newline stripped) get the targets."""
        code, _, body = self.get("/targets?prom_job=node", basic("prometheus", "s3cret"))
        self.assertEqual((code, json.loads(body)[0]["targets"]), (200, ["n1:9100"]))

    def test_scheme_case_insensitive(self):
        """The scheme name may be written in any case."""
        value = b"bAsIc " + basic("prometheus", "s3cret").split(b" ", 1)[1]
        self.assertEqual(self.get("/targets", value)[0], 200)

    def test_wrong_credentials(self):
        """A wrong password, a wrong user, junk or another scheme are all 401."""
        for value in (basic("prometheus", "s3cre"), basic("prometheus", "s3cret "),
                      basic("root", "s3cret"), basic("", ""), b"Basic !!!notbase64",
                      b"Basic " + base64.b64encode(b"prometheus"), b"Bearer s3cret",
                      b"Basic", b"", b"s3cret"):
            self.assertEqual(self.get("/targets?prom_job=node", value)[0], 401, value)

    def test_two_authorization_headers(self):
        """Two Authorization headers are refused even if one is right."""
        headers = {b"authorization": [basic("x", "y"), basic("prometheus", "s3cret")]}
        self.assertEqual(self.get("/targets", headers=headers)[0], 401)

    def test_metrics_protected(self):
        """/metrics needs the credentials too."""
        self.assertEqual(self.get("/metrics")[0], 401)
        self.assertEqual(self.get("/metrics", basic("prometheus", "s3cret"))[0], 200)

    def test_health_open(self):
        """/-/healthy and /-/ready answer without credentials."""
        self.assertEqual(self.get("/-/healthy")[0], 200)
        self.assertEqual(self.get("/-/ready")[0], 200)

    def test_other_paths_ask_first(self):
        """Other paths ask for credentials before saying 404, so they reveal nothing."""
        self.assertEqual(self.get("/")[0], 401)
        self.assertEqual(self.get("/nope")[0], 401)
        self.assertEqual(self.get("/nope", basic("prometheus", "s3cret"))[0], 404)

    def test_user_and_password_both_compared(self):
        """User name and password are both compared, in constant time, even when the user is wrong."""
        compared = []
        original = auth.hmac.compare_digest

        def spy(a, b):
            compared.append((a, b))
            return original(a, b)
        self.patch(auth.hmac, "compare_digest", spy)
        self.get("/targets", basic("root", "wrong"))
        self.assertEqual(len(compared), 2)
        self.assertEqual({len(a) for a, _ in compared} | {len(b) for _, b in compared}, {32})


class BearerAuthTests(AuthTestCase):
    """``http_auth: {bearer_token_file}``."""

    def setUp(self):
        """Bearer auth with token t0k3n."""
        AuthTestCase.setUp(self)
        self.serve(self.config(bearer_token_file=self.secret("token", "  t0k3n \n")))

    def test_right_token(self):
        """The right bearer token gets the targets."""
        self.assertEqual(self.get("/targets?prom_job=node", b"Bearer t0k3n")[0], 200)

    def test_wrong_tokens(self):
        """Wrong tokens, no token and basic credentials are 401 with a Bearer challenge."""
        for value in (b"Bearer t0k3", b"Bearer t0k3nn", b"Bearer", basic("x", "t0k3n"),
                      b"t0k3n", None):
            code, headers, _ = self.get("/targets", value)
            self.assertEqual(code, 401, value)
            self.assertEqual(headers.getRawHeaders("www-authenticate"),
                             ['Bearer realm="slurm-sd"'])

    def test_head_and_post(self):
        """Other methods are refused the same way before anything else."""
        response = self.successResultOf(self.http.request("POST", "http://sd/targets"))
        self.assertEqual(response.code, 401)


class NoAuthTests(AuthTestCase):
    """Without ``http_auth`` nothing changes."""

    def test_open(self):
        """Every path answers as before without credentials."""
        self.serve(self.config())
        self.assertEqual(self.get("/targets?prom_job=node")[0], 200)
        self.assertEqual(self.get("/metrics")[0], 200)
        self.assertEqual(self.get("/nope")[0], 404)


class StartTests(AuthTestCase):
    """At start, a secret file that cannot be used ends start-up in one line."""

    def build(self, http_auth):
        """build_service for a config file with ``http_auth``; the SystemExit line."""
        text = BASE + "http_auth: " + json.dumps(http_auth) + "\n"
        options = Options(opener=lambda path, encoding=None: io.StringIO(text))
        options.parseOptions(["--config", self.dir + "/c.yaml"])
        with self.assertRaises(SystemExit) as caught:
            build_service(MemoryReactorClock(), options.config, environ={})
        return caught.exception.code

    def test_missing(self):
        """A missing password file names the key and the file."""
        line = self.build({"username": "u", "password_file": "nofile"})
        self.assertEqual(line, f"slurm-sd: {self.dir}/c.yaml: http_auth.password_file: "
                               f"cannot read {self.dir}/nofile: No such file or directory")

    def test_empty(self):
        """An empty bearer token file is refused (it would accept an empty token)."""
        self.secret("empty", " \n")
        line = self.build({"bearer_token_file": "empty"})
        self.assertIn(f"http_auth.bearer_token_file: {self.dir}/empty is empty", line)

    def test_good(self):
        """A readable file starts the daemon, protected."""
        self.secret("pw", "x")
        text = BASE + "http_auth: {username: u, password_file: pw}\n"
        options = Options(opener=lambda path, encoding=None: io.StringIO(text))
        options.parseOptions(["--config", self.dir + "/c.yaml"])
        service = build_service(MemoryReactorClock(), options.config, environ={})
        [site] = [s.factory for s in service if hasattr(s, "factory")]
        self.assertIsInstance(site.resource, auth.AuthWrapper)
