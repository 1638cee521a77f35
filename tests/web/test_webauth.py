"""Tests for slurm_sd.web.webauth: web_config_file's bcrypt basic_auth_users."""
import base64
import os

import bcrypt
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.tap import build_service
from slurm_sd.web import webauth
from slurm_sd.web.site import QuietSite, make_root
from slurm_sd.web.webauth import CACHE_SIZE, FAKE_HASH, UsersAuth
from slurm_sd.web.webfiles import WebConfigFiles
from tests.certs import write
from tests.fakes import SAMPLES

CONFIG = parse("slurmrestd: {url: 'http://127.0.0.1:6820'}\njobs:\n  - node: {port: 9100}\n")
#: Cost 4, the least bcrypt allows: the tests check logic, not strength.
HASHES = {password: bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()
          for password in (b"s3cret", b"other")}


def basic(user, password):
    """An ``Authorization`` header value for basic auth."""
    return b"Basic " + base64.b64encode(user + b":" + password)


def users_file(users):
    """A web configuration with ``basic_auth_users`` (name -> password)."""
    return ("basic_auth_users:\n" + "".join(
        f"  {name}: '{HASHES[password]}'\n" for name, password in users.items())
        if users else "basic_auth_users: {}\n").encode()


class Settings:
    """Stands in for the poller: the config in effect."""

    config = CONFIG


class UsersAuthTests(SynchronousTestCase):
    """A root behind UsersAuth, with bcrypt checks counted."""

    def setUp(self):
        """A web configuration with user prometheus / s3cret, and a cache with targets."""
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = write(self.dir, "web.yml", users_file({"prometheus": b"s3cret"}))
        cache = TargetCache(Clock())
        cache.replace(render({"node": [{"targets": ["n1:9100"], "labels": {}}]}, node_count=1))
        self.checks = []
        real = webauth.check_password

        def counted(password, hashed):
            self.checks.append(hashed)
            return real(password, hashed)
        self.patch(webauth, "check_password", counted)
        self.runner = defer.maybeDeferred
        self.files = WebConfigFiles(self.path)
        self.auth = UsersAuth(make_root(cache, Settings()), self.files,
                              lambda f, *args: self.runner(f, *args))
        self.http = StubTreq(self.auth)

    def get(self, path="/targets", authorization=None, headers=None):
        """``(code, headers)`` of a GET."""
        headers = dict(headers or {})
        if authorization is not None:
            headers[b"authorization"] = [authorization]
        response = self.successResultOf(self.http.get("http://sd" + path, headers=headers))
        self.successResultOf(response.content())
        return response.code, response.headers

    def test_right_password(self):
        """The user's password against its bcrypt hash gets the targets."""
        self.assertEqual(self.get(authorization=basic(b"prometheus", b"s3cret"))[0], 200)

    def test_refused(self):
        """No, wrong, or odd credentials are 401 with a Basic challenge."""
        for value in (None, basic(b"prometheus", b"wrong"), basic(b"root", b"s3cret"),
                      b"Bearer s3cret", b"Basic !!!", b"Basic " + base64.b64encode(b"x")):
            code, headers = self.get(authorization=value)
            self.assertEqual(code, 401, value)
            self.assertEqual(headers.getRawHeaders("www-authenticate"),
                             ['Basic realm="slurm-sd", charset="UTF-8"'])
        two = {b"authorization": [basic(b"prometheus", b"s3cret")] * 2}
        self.assertEqual(self.get(headers=two)[0], 401)

    def test_unknown_user_costs_the_same(self):
        """An unknown user is checked against the stand-in hash (no timing tells)."""
        self.get(authorization=basic(b"root", b"s3cret"))
        self.assertEqual(self.checks, [FAKE_HASH])

    def test_results_cached(self):
        """The same credentials are checked by bcrypt once, right or wrong."""
        for _ in range(3):
            self.get(authorization=basic(b"prometheus", b"s3cret"))
            self.get(authorization=basic(b"prometheus", b"wrong"))
        self.assertEqual(len(self.checks), 2)

    def test_cache_bounded(self):
        """The cache keeps at most CACHE_SIZE results."""
        for i in range(CACHE_SIZE + 5):
            self.get(authorization=basic(b"prometheus", b"guess%d" % (i,)))
        self.assertEqual(len(self.auth._cache), CACHE_SIZE)

    def test_health_open(self):
        """/-/healthy and /-/ready answer without credentials."""
        self.assertEqual(self.get("/-/healthy")[0], 200)
        self.assertEqual(self.get("/-/ready")[0], 200)
        self.assertEqual(self.get("/metrics")[0], 401)
        self.assertEqual(self.get("/")[0], 401)

    def test_no_users_no_auth(self):
        """A file without users asks for no credentials (as exporter-toolkit)."""
        write(self.dir, "web.yml", users_file({}))
        with capturedLogs():
            self.assertEqual(self.get()[0], 200)

    def test_file_change_applies(self):
        """A new hash in the file counts from the next request on, without a reload."""
        self.assertEqual(self.get(authorization=basic(b"prometheus", b"s3cret"))[0], 200)
        write(self.dir, "web.yml", users_file({"prometheus": b"other"}))
        with capturedLogs() as events:
            self.assertEqual(self.get(authorization=basic(b"prometheus", b"s3cret"))[0], 401)
            self.assertEqual(self.get(authorization=basic(b"prometheus", b"other"))[0], 200)
        [line] = [formatEvent(e) for e in events]
        self.assertEqual(line, f"web_config_file {self.path} re-read: TLS off, 1 basic auth "
                               f"users")

    def test_bad_change_keeps_users(self):
        """A broken file is logged once, and the users read before still count."""
        write(self.dir, "web.yml", users_file({"prometheus": b"s3cret"}) + b"  bob: plaintext\n")
        with capturedLogs() as events:
            for _ in range(3):
                self.assertEqual(self.get(authorization=basic(b"prometheus", b"s3cret"))[0],
                                 200)
        lines = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(lines), 1)
        self.assertIn(f"{self.path}: basic_auth_users.bob: must be a bcrypt hash", lines[0])
        self.assertNotIn("plaintext", lines[0])

    def test_reload_looks_at_once(self):
        """A SIGHUP reload (config_loaded) re-reads a changed file then, not at a request."""
        write(self.dir, "web.yml", users_file({"nagios": b"other"}))
        with capturedLogs() as events:
            self.auth.config_loaded(CONFIG)
        self.assertEqual(len(events), 1)
        self.assertEqual(self.files.config.users[0][0], b"nagios")

    def test_checked_in_thread_one_at_a_time(self):
        """While bcrypt runs (in a thread) the request waits; a second check waits its turn."""
        pending = []

        def later(f, *args):
            d = defer.Deferred()
            pending.append((d, f, args))
            return d
        self.runner = later
        first = self.http.get("http://sd/targets",
                              headers={b"authorization": [basic(b"prometheus", b"s3cret")]})
        second = self.http.get("http://sd/targets",
                               headers={b"authorization": [basic(b"prometheus", b"wrong")]})
        self.assertNoResult(first)
        self.assertEqual(len(pending), 1)
        d, f, args = pending.pop()
        d.callback(f(*args))
        self.http.flush()
        self.assertEqual(self.successResultOf(first).code, 200)
        self.assertEqual(len(pending), 1)
        d, f, args = pending.pop()
        d.callback(f(*args))
        self.http.flush()
        self.assertEqual(self.successResultOf(second).code, 401)


class WiringTests(SynchronousTestCase):
    """build_service with a web configuration that has no TLS."""

    def test_plain_http_with_users(self):
        """Without tls_server_config the site listens as it is, behind UsersAuth."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = write(directory, "web.yml", users_file({"prometheus": b"s3cret"}))
        reactor = MemoryReactorClock()
        config = parse("slurmrestd: {url: 'file:%s/slurm-22.05-v0.0.38-nodes.json'}\n"
                       "web_config_file: %s\njobs:\n  - node: {port: 9100}\n" % (SAMPLES, path))
        service = build_service(reactor, config, environ={})
        service.startService()
        self.addCleanup(service.stopService)
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory, QuietSite)
        self.assertIsInstance(factory.resource, UsersAuth)
        self.assertIs(service.site, factory)
