"""
Tests for self-renewing tokens (SPEC 9): SlurmrestdClient with a token_command
(on a fake process reactor) or a jwt_key_file, against an in-memory slurmrestd.
"""
import os

import jwt
from twisted.internet.error import ProcessTerminated
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.model import SlurmrestdConfig
from slurm_sd.errors import FetchError
from slurm_sd.sources.slurmrestd import SlurmrestdClient
from slurm_sd.sources.tokens import RenewingTokens, token_expiry
from tests.answers import Reply, response
from tests.fakes import fixture
from tests.sources.test_runprocess import ENV, FakeProcessReactor
from tests.standin import StandIn

NODES = fixture("slurm-22.05-v0.0.38-nodes.json")
KEY = b"k" * 32
REFUSED = b'{"errors": [{"error": "Unspecified error", "errno": -1}]}'


def make_jwt(exp=None, **claims):
    """An HS256 JWT with ``exp`` (if given) and ``claims``."""
    if exp is not None:
        claims["exp"] = exp
    return jwt.encode(claims, KEY, algorithm="HS256")


class TokenExpiryTests(SynchronousTestCase):
    """token_expiry reads exp from the payload, never verifying it."""

    def test_readable(self):
        """A JWT with a numeric exp, whatever its signature, gives that exp."""
        self.assertEqual(token_expiry(make_jwt(1234)), 1234.0)
        forged = make_jwt(99)[:-4] + "AAAA"
        self.assertEqual(token_expiry(forged), 99.0)

    def test_unreadable(self):
        """Not a JWT, no exp, or a non-numeric exp: None."""
        for token in ("first-token", "a.b.c", make_jwt(sun="x"), make_jwt("soon"),
                      make_jwt(True), ""):
            self.assertIsNone(token_expiry(token), token)


class CommandTokenTests(SynchronousTestCase):
    """slurmrestd.token_command: when it runs, and what a poll does with its token."""

    def setUp(self):
        """A fake process reactor (at t=1000), an in-memory slurmrestd and a client."""
        self.reactor = FakeProcessReactor()
        self.reactor.advance(1000)
        self.fake = StandIn(body=NODES)
        self.events = self.enterContext(capturedLogs())
        self.client = self.make_client()

    def make_client(self, **config):
        """A client whose token_command is ``python3 mint``, renewed 600 s before exp."""
        config = SlurmrestdConfig(url="http://127.0.0.1:6820", api_version="v0.0.38",
                                  user="slurmrest", token_command=["python3", "mint"],
                                  **config)
        return SlurmrestdClient(self.reactor, self.fake.http_client(), config, environ=ENV)

    def runs(self):
        """How many times the command was started."""
        return len(self.reactor.spawned)

    def command_prints(self, token, index=-1):
        """The command started last prints ``SLURM_JWT=token`` and exits 0."""
        process = self.reactor.spawned[index][3]
        process.protocol.outReceived(f"SLURM_JWT={token}\n".encode())
        process.end()

    def sent(self):
        """The tokens the requests carried, in order."""
        return [headers.get("x-slurm-user-token") for _, headers in self.fake.requests]

    def poll(self, *tokens):
        """Start a poll, answer each command run with the next of ``tokens``; its result."""
        d = self.client.fetch_nodes()
        for token in tokens:
            self.command_prints(token)
        return d

    def test_first_poll_runs_command(self):
        """With no token yet, the command runs first; its token and the user are sent."""
        d = self.client.fetch_nodes()
        self.assertEqual(self.runs(), 1)
        self.assertEqual(self.fake.requests, [])
        token = make_jwt(1000 + 3600)
        self.command_prints(token)
        self.assertEqual(self.successResultOf(d), NODES)
        self.assertEqual(self.fake.requests[0][1]["x-slurm-user-name"], "slurmrest")
        self.assertEqual(self.sent(), [token])

    def test_reused_until_renew_before(self):
        """A token is reused while its exp is at least 600 s away, then renewed first."""
        first, second = make_jwt(1000 + 1800), make_jwt(1000 + 3600)
        self.successResultOf(self.poll(first))
        self.reactor.advance(1199)   # exp is 601 s away
        self.successResultOf(self.poll())
        self.assertEqual(self.runs(), 1)
        self.reactor.advance(2)      # 599 s away
        self.successResultOf(self.poll(second))
        self.assertEqual(self.runs(), 2)
        self.assertEqual(self.sent(), [first, first, second])

    def test_no_exp_renewed_every_poll(self):
        """A token with no readable exp is renewed before every poll."""
        for token in ("bare-1", "bare-2", "bare-3"):
            self.successResultOf(self.poll(token))
        self.assertEqual(self.runs(), 3)
        self.assertEqual(self.sent(), ["bare-1", "bare-2", "bare-3"])

    def test_refused_then_one_retry(self):
        """After a refusal (401, 511, or 500 with a token) the command runs at once and
        the request is retried once with its new token."""
        for code in (401, 511, 500):
            self.fake.requests.clear()
            old, new = make_jwt(10 ** 10, n=code), make_jwt(10 ** 10, n=-code)
            self.client = self.make_client()
            self.successResultOf(self.poll(old))
            before = self.runs()
            self.fake.answers = [Reply(response(code, REFUSED))]
            d = self.client.fetch_nodes()
            self.assertEqual(self.runs(), before + 1)
            self.command_prints(new)
            self.assertEqual(self.successResultOf(d), NODES)
            self.assertEqual(self.sent(), [old, old, new])
        retried = [e for e in self.events if "trying again" in formatEvent(e)]
        self.assertEqual(len(retried), 3)

    def test_refused_twice_fails_without_loop(self):
        """Refused again with the new token: the poll fails, the command ran once more."""
        self.successResultOf(self.poll(make_jwt(10 ** 10, n=1)))
        self.fake.answers = [Reply(response(500, REFUSED)), Reply(response(500, REFUSED)), Reply(response(500, REFUSED))]
        d = self.poll(make_jwt(10 ** 10, n=2))
        error = self.failureResultOf(d, FetchError).value
        self.assertEqual(type(error), FetchError)
        self.assertIn("answered 500", str(error))
        self.assertIn("also with a new token from slurmrestd.token_command", str(error))
        self.assertEqual(self.runs(), 2)
        self.assertEqual(len(self.fake.requests), 3)

    def test_refused_fresh_token_not_retried(self):
        """A token obtained in this very poll and refused is not renewed again in the same
        poll; the next poll starts with a new one."""
        self.fake.answers = [Reply(response(401, REFUSED))]
        self.failureResultOf(self.poll("bare-1"), FetchError)
        self.assertEqual(self.runs(), 1)
        token = make_jwt(10 ** 10)
        self.successResultOf(self.poll(token))
        self.assertEqual(self.runs(), 2)
        self.assertEqual(self.sent(), ["bare-1", token])

    def test_refused_token_with_exp_renewed_next_poll(self):
        """A refused token is not used again even though its exp is far away."""
        self.fake.answers = [Reply(response(401, REFUSED))]
        self.failureResultOf(self.poll(make_jwt(10 ** 10, n=1)), FetchError)
        self.successResultOf(self.poll(make_jwt(10 ** 10, n=2)))
        self.assertEqual(self.runs(), 2)

    def test_command_failure_is_failed_poll(self):
        """A failing command is a failed poll quoting its last stderr line; no request."""
        d = self.client.fetch_nodes()
        process = self.reactor.spawned[0][3]
        process.protocol.errReceived(b"scontrol: error: Invalid user for SlurmUser\n")
        process.end(ProcessTerminated(exitCode=1))
        error = self.failureResultOf(d, FetchError).value
        self.assertEqual(str(error), "slurmrestd.token_command (python3) exited with status "
                                     "1: scontrol: error: Invalid user for SlurmUser")
        self.assertEqual(self.fake.requests, [])

    def test_renewal_after_refusal_fails(self):
        """When the renewal after a refusal fails, the line says both."""
        self.successResultOf(self.poll(make_jwt(10 ** 10)))
        self.fake.answers = [Reply(response(511, REFUSED))]
        d = self.client.fetch_nodes()
        process = self.reactor.spawned[-1][3]
        process.protocol.errReceived(b"scontrol: error: slurmctld down\n")
        process.end(ProcessTerminated(exitCode=1))
        text = str(self.failureResultOf(d, FetchError).value)
        self.assertIn("answered 511", text)
        self.assertIn("renewing the token after that failed: slurmrestd.token_command "
                      "(python3) exited with status 1: scontrol: error: slurmctld down", text)

    def test_command_bounded_by_timeout(self):
        """A hung command is killed after slurmrestd.timeout and the poll fails."""
        self.client = self.make_client(timeout=5)
        d = self.client.fetch_nodes()
        self.reactor.advance(5)
        self.assertEqual(self.reactor.spawned[0][3].signals, ["KILL"])
        self.failureResultOf(d, FetchError)

    def test_poll_timeout_while_command_runs(self):
        """When the poll's own time-out ends a poll that waits for the command, the line
        names the command, not slurmrestd."""
        self.client = self.make_client(timeout=5)
        d = self.client.fetch_nodes()
        process = self.reactor.spawned[0][3]
        process.signalProcess = process.signals.append   # dies only later, as for real
        self.reactor.advance(5)
        self.assertEqual(str(self.failureResultOf(d, FetchError).value),
                         "slurmrestd.token_command did not finish within the poll's 5 s "
                         "(slurmrestd.timeout) and was killed")
        self.assertEqual(process.signals, ["KILL"])
        process.end()

    def test_refusal_with_read_token_not_retried(self):
        """A --token (nothing to renew) refused: one request, no retry."""
        config = SlurmrestdConfig(url="http://127.0.0.1:6820", api_version="v0.0.38",
                                  user="u", token="static")
        client = SlurmrestdClient(self.reactor, self.fake.http_client(), config, environ={})
        self.fake.answers = [Reply(response(401, REFUSED))]
        self.failureResultOf(client.fetch_nodes(), FetchError)
        self.assertEqual(len(self.fake.requests), 1)

    def test_auto_version_refusal_retried(self):
        """With api_version auto, a refusal of /openapi/v3 is retried with a new token."""
        fake = RefusingOpenapi(refusals=0)
        config = SlurmrestdConfig(url="http://127.0.0.1:6820", user="slurmrest",
                                  token_command=["python3", "mint"])
        self.client = SlurmrestdClient(self.reactor, fake.http_client(), config, environ=ENV)
        self.fake = fake
        self.successResultOf(self.poll(make_jwt(10 ** 10, n=1)))
        self.assertEqual(self.runs(), 1)
        self.client._version = None     # as after a 404: rediscover
        fake.refusals = 1
        self.successResultOf(self.poll(make_jwt(10 ** 10, n=2)))
        self.assertEqual(self.runs(), 2)
        self.assertEqual(fake.paths()[-2:], ["/openapi/v3", "/slurm/v0.0.38/nodes/"])


class RefusingOpenapi(StandIn):
    """Refuses ``/openapi/v3`` with a 401 ``refusals`` times, then answers normally."""

    def __init__(self, refusals):
        StandIn.__init__(self, body=NODES)
        self.refusals = refusals

    def answer_for(self, path):
        """Refuse, or answer like the stand-in."""
        if path == "/openapi/v3" and self.refusals:
            self.refusals -= 1
            return Reply(response(401, b"Authentication failure", content_type=b"text/plain"))
        return StandIn.answer_for(self, path)


class VerifyingSlurmrestd(StandIn):
    """Accepts only HS256 tokens signed with ``key``, unexpired by ``clock``, for ``user``."""

    def __init__(self, key, clock, user):
        StandIn.__init__(self, body=NODES)
        self.key, self.clock, self.user = key, clock, user
        self.claims = []

    def answer_for(self, path):
        """500 (as Slurm 22.05) for a bad token; else the normal answer."""
        token = self.requests[-1][1].get("x-slurm-user-token", "")
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError:
            claims = None
        if (claims is None or claims["exp"] <= self.clock.seconds()
                or claims["sun"] != self.user):
            return Reply(response(500, REFUSED))
        self.claims.append(claims)
        return StandIn.answer_for(self, path)


class MintedTokenTests(SynchronousTestCase):
    """slurmrestd.jwt_key_file: the daemon mints its own HS256 tokens."""

    def setUp(self):
        """A key file (0600), a clock at t=5000, and a slurmrestd that checks tokens."""
        self.key_file = self.mktemp()
        with open(self.key_file, "wb") as handle:
            handle.write(KEY + b"\n\x00")   # used whole, as Slurm does
        os.chmod(self.key_file, 0o600)
        self.reactor = FakeProcessReactor()
        self.reactor.advance(5000)
        self.fake = VerifyingSlurmrestd(KEY + b"\n\x00", self.reactor, "slurmrest")
        self.events = self.enterContext(capturedLogs())

    def make_client(self, **config):
        """A client minting with the key file for slurmrest."""
        config = SlurmrestdConfig(url="http://127.0.0.1:6820", api_version="v0.0.38",
                                  user="slurmrest", jwt_key_file=self.key_file, **config)
        return SlurmrestdClient(self.reactor, self.fake.http_client(), config, environ={})

    def test_minted_token_accepted(self):
        """The minted token carries iat, exp (iat + token_lifespan) and sun, HS256."""
        client = self.make_client()
        self.assertEqual(self.successResultOf(client.fetch_nodes()), NODES)
        self.assertEqual(self.fake.claims, [{"iat": 5000, "exp": 6800, "sun": "slurmrest"}])
        token = self.fake.requests[0][1]["x-slurm-user-token"]
        self.assertEqual(jwt.get_unverified_header(token)["alg"], "HS256")
        self.assertEqual(self.reactor.spawned, [])

    def test_renewed_before_expiry(self):
        """The token is kept until less than token_renew_before is left, then re-minted."""
        client = self.make_client(token_lifespan=100, token_renew_before=30)
        self.successResultOf(client.fetch_nodes())
        self.reactor.advance(60)
        self.successResultOf(client.fetch_nodes())
        self.reactor.advance(20)
        self.successResultOf(client.fetch_nodes())
        self.assertEqual([c["iat"] for c in self.fake.claims], [5000, 5000, 5080])

    def test_wrong_key_refused_once_retried_once(self):
        """A key slurmrestd does not know: refused, minted again once, poll fails."""
        self.fake.key = b"other" * 8
        client = self.make_client()
        self.failureResultOf(client.fetch_nodes(), FetchError)
        self.assertEqual(len(self.fake.requests), 1)   # fresh this poll: no retry
        self.failureResultOf(client.fetch_nodes(), FetchError)
        self.assertEqual(len(self.fake.requests), 2)

    def test_missing_key_is_failed_poll(self):
        """An unreadable key file is a failed poll naming the key and the file."""
        os.remove(self.key_file)
        error = self.failureResultOf(self.make_client().fetch_nodes(), FetchError).value
        self.assertEqual(str(error), f"slurmrestd.jwt_key_file: cannot read {self.key_file}: "
                                     f"No such file or directory")

    def test_loose_key_mode_warned(self):
        """A key file others can read is warned about (once), and still used."""
        os.chmod(self.key_file, 0o644)
        client = self.make_client(token_lifespan=700)
        self.successResultOf(client.fetch_nodes())
        self.reactor.advance(200)
        self.successResultOf(client.fetch_nodes())
        warned = [formatEvent(e) for e in self.events if "is readable by others" in formatEvent(e)]
        self.assertEqual(len(warned), 1)
        self.assertIn("slurmrestd.jwt_key_file", warned[0])


class RenewingTokensTests(SynchronousTestCase):
    """RenewingTokens on its own: at most one renewal per poll."""

    def test_one_renewal_per_poll(self):
        """refused() after a get() that renewed gives None; after one that did not, a new token."""
        from twisted.internet.task import Clock
        tokens = iter(["t1", "t2", "t3"])
        renewing = RenewingTokens(Clock(), lambda: next(tokens), 600)
        self.assertEqual(self.successResultOf(renewing.get()), "t1")
        self.assertIsNone(renewing.refused())
        self.assertEqual(self.successResultOf(renewing.get()), "t2")
        renewing._exp = 10 ** 10   # pretend t2 has a far exp
        self.assertEqual(self.successResultOf(renewing.get()), "t2")
        self.assertEqual(self.successResultOf(renewing.refused()), "t3")
