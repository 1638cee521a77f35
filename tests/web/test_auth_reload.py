"""slurm_sd.web.auth at a reload: the http_auth files are read again at the reload itself."""
import io
import os
import signal

import attr
from treq.testing import StubTreq
from twisted.logger import LogLevel

from slurm_sd.tap import Options, build_service
from tests.logged import log_lines
from tests.service.test_reload import FakeSignals, ThreadCallReactor
from tests.web.test_auth import BASE, AuthTestCase, basic


class ReloadTests(AuthTestCase):
    """The secret files are read again at each reload."""

    def test_rotated_on_reload(self):
        """A new password in the same file is used once the configuration is reloaded."""
        path = self.secret("pw", "one")
        settings = self.serve(self.config(username="u", password_file=path))
        self.secret("pw", "two")
        self.assertEqual(self.get("/targets", basic("u", "one"))[0], 200)
        self.reload(settings, attr.evolve(settings.config))
        self.assertEqual(self.get("/targets", basic("u", "one"))[0], 401)
        self.assertEqual(self.get("/targets", basic("u", "two"))[0], 200)

    def test_unreadable_on_reload_keeps_old(self):
        """A reload whose file cannot be read keeps the old credentials and logs one line."""
        settings = self.serve(self.config(username="u", password_file=self.secret("pw", "one")))
        self.reload(settings, self.config(username="u", password_file=self.dir + "/missing"))
        self.assertEqual(self.get("/targets", basic("u", "one"))[0], 200)
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn("http_auth.password_file: cannot read " + self.dir + "/missing", line)
        self.assertIn("still accepting the previous credentials", line)

    def test_enabled_on_reload_unreadable_refuses(self):
        """Auth switched on by a reload with an unreadable file refuses everyone."""
        settings = self.serve(self.config())
        self.reload(settings, self.config(bearer_token_file=self.dir + "/missing"))
        self.assertEqual(self.get("/targets")[0], 401)
        self.assertEqual(self.get("/targets", b"Bearer ")[0], 401)
        self.assertEqual(self.get("/-/healthy")[0], 200)
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn("refusing every request", line)

    def test_switched_off_on_reload(self):
        """A reload without http_auth opens /targets again."""
        settings = self.serve(self.config(bearer_token_file=self.secret("t", "x")))
        self.reload(settings, self.config())
        self.assertEqual(self.get("/targets")[0], 200)


class DaemonReloadTests(AuthTestCase):
    """SIGHUP through the daemon as makeService builds it: the files are read at the reload."""

    def setUp(self):
        """The daemon with basic auth from a password file, and a fake SIGHUP."""
        AuthTestCase.setUp(self)
        self.path = self.secret("pw", "one")
        text = BASE + "http_auth: {username: u, password_file: %s}\n" % (self.path,)
        options = Options(opener=lambda path, encoding=None: io.StringIO(text))
        options.parseOptions(["--config", self.dir + "/c.yaml", "--listen", "tcp:9911"])
        self.reactor = ThreadCallReactor()
        self.signals = FakeSignals()
        service = build_service(self.reactor, options.config, environ={},
                                load_config=options.load_config, signals=self.signals)
        service.startService()
        self.addCleanup(service.stopService)
        self.http = StubTreq(service.site.resource)

    def sighup(self):
        """Send SIGHUP and let the reactor run the reload."""
        self.signals.send(signal.SIGHUP)
        self.reactor.run_thread_calls()

    def test_read_at_the_reload(self):
        """The file's content at the SIGHUP counts, not what it holds at a later request."""
        self.secret("pw", "two")
        self.sighup()
        self.secret("pw", "three")   # changed again, without a reload
        self.assertEqual(self.get("/metrics", basic("u", "two"))[0], 200)
        self.assertEqual(self.get("/metrics", basic("u", "three"))[0], 401)
        self.assertEqual(self.get("/metrics", basic("u", "one"))[0], 401)

    def test_unreadable_logged_at_the_reload(self):
        """A file unreadable at the SIGHUP is logged then, before any request comes."""
        os.remove(self.path)
        self.sighup()
        [line] = log_lines(self.events, LogLevel.error)
        self.assertIn(f"http_auth.password_file: cannot read {self.path}", line)
        self.assertIn("still accepting the previous credentials", line)
        self.secret("pw", "two")
        self.assertEqual(self.get("/metrics", basic("u", "one"))[0], 200)
