"""
Basic auth with the bcrypt hashes of ``web_config_file``'s ``basic_auth_users``.

As exporter-toolkit does: an unknown user is checked against a fixed hash (so
timing does not tell which users exist), results are cached by a digest of
user, hash and password (a bcrypt check costs tens of milliseconds, and
Prometheus sends the same credentials on every request), and one check runs
at a time. The check runs in a thread, so the reactor keeps serving meanwhile.
"""
import base64
import binascii
import hashlib

import bcrypt
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET

from slurm_sd.web.auth import OPEN_CHILDREN, REALM, Unauthorized

#: exporter-toolkit's stand-in hash for unknown users (bcrypt of "fakepassword").
FAKE_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
#: Results kept (exporter-toolkit keeps 100 too).
CACHE_SIZE = 100
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'.encode("ascii")


def thread_runner(reactor):
    """
    ``run(f, *args) -> Deferred``: in ``reactor``'s thread pool when it has one,
    else (``MemoryReactor`` in tests) at once.
    """
    if IReactorThreads.providedBy(reactor):
        return lambda f, *args: threads.deferToThreadPool(reactor, reactor.getThreadPool(),
                                                          f, *args)
    return defer.maybeDeferred


def check_password(password, hashed):
    """bcrypt's verdict on ``password`` against ``hashed`` (False for a broken hash)."""
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def basic_credentials(request):
    """``(user, password)`` bytes from the one ``Authorization: Basic`` header, or None."""
    values = request.requestHeaders.getRawHeaders(b"authorization") or []
    if len(values) != 1:
        return None
    scheme, _, value = values[0].strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class _Pending(Resource):
    """Renders the resource a Deferred gives, once it gives it (unless the client left)."""

    isLeaf = True

    def __init__(self, d):
        Resource.__init__(self)
        self._d = d

    def render(self, request):
        """Wait for the verdict, then render what it chose."""
        lost = []
        request.notifyFinish().addErrback(lambda _: lost.append(True))

        def chosen(child):
            if not lost:
                request.render(getChildForRequest(child, request))
        self._d.addCallback(chosen).addErrback(request.processingFailed)
        return NOT_DONE_YET


class UsersAuth(Resource):
    """
    Asks for the credentials of a ``basic_auth_users`` entry before handing a
    request to ``wrapped`` (``/-/healthy`` and ``/-/ready`` stay open). No users
    in the file: no authentication, as exporter-toolkit.

    :param wrapped: the root resource.
    :param files: a :class:`~slurm_sd.web.webfiles.WebConfigFiles`.
    :param run_in_thread: ``run_in_thread(f, *args) -> Deferred``.
    """

    log = Logger()

    def __init__(self, wrapped, files, run_in_thread):
        Resource.__init__(self)
        self._wrapped = wrapped
        self._files = files
        self._run_in_thread = run_in_thread
        self._one_at_a_time = defer.DeferredLock()
        self._cache = {}

    def config_loaded(self, config):
        """A SIGHUP reload: look at the web configuration file now."""
        self._files.current()

    def _verdict(self, request):
        """True, False, or a Deferred of either, for the request's credentials."""
        users = dict(self._files.current().users)
        if not users:
            return True
        credentials = basic_credentials(request)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        known = hashed is not None
        hashed = hashed if known else FAKE_HASH
        key = hashlib.sha256(b"\0".join(
            [hashlib.sha256(part).digest() for part in (user, hashed, password)])).digest()
        if key in self._cache:
            return self._cache[key]

        def remember(ok):
            ok = ok and known
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = ok
            return ok
        d = self._one_at_a_time.run(self._run_in_thread, check_password, password, hashed)
        return d.addCallback(remember)

    def _guarded(self, request, allowed):
        """``allowed()`` (a resource) once the credentials are good, else a 401."""
        verdict = self._verdict(request)
        if isinstance(verdict, defer.Deferred):
            return _Pending(verdict.addCallback(
                lambda ok: allowed() if ok else Unauthorized(CHALLENGE)))
        return allowed() if verdict else Unauthorized(CHALLENGE)

    def getChildWithDefault(self, path, request):
        """The wrapped tree's child, once the request has shown its credentials."""
        if path in OPEN_CHILDREN:
            return self._wrapped.getChildWithDefault(path, request)
        return self._guarded(request,
                             lambda: self._wrapped.getChildWithDefault(path, request))

    def render(self, request):
        """A request for the root itself."""
        return self._guarded(request, lambda: self._wrapped).render(request)
