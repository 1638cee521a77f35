"""
The serve step's resources: ``/targets``, ``/-/healthy``, ``/-/ready`` and the
404/405 answers (``/metrics`` is :mod:`slurm_sd.web.metrics`).

Resources are small and synchronous: they copy prebuilt bytes out of the
cache and never start a fetch.
"""
import json

from twisted.web.resource import Resource

JSON = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"


def _reply(request, code, body, content_type=JSON):
    """Set the status and content type, and return ``body``."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", content_type)
    return body


def _json(document):
    """A small JSON document as bytes."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"


class GetResource(Resource):
    """
    A resource answering GET and HEAD only: every other method is 405 with
    ``Allow: GET, HEAD`` (twisted.web would answer 501 to PUT, DELETE, ...).
    """

    def render(self, request):
        """405 for methods other than GET and HEAD; else the usual dispatch."""
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _reply(request, 405, _json({
                "error": f"method {request.method.decode('latin-1')} not allowed; "
                         f"use GET or HEAD"}))
        return Resource.render(self, request)


class NotFound(Resource):
    """404 for every path we do not serve."""

    isLeaf = True

    def render(self, request):
        """A JSON 404, whatever the method."""
        return _reply(request, 404, _json({"error": "not found", "paths": [
            "/targets?prom_job=JOB", "/metrics", "/-/healthy", "/-/ready"]}))


class Directory(Resource):
    """A resource with children and a JSON 404 for everything else."""

    def getChild(self, path, request):
        """Unknown children are 404."""
        return NotFound()


class _CacheResource(GetResource):
    """
    A leaf that answers from the cache and the config in effect.

    :param cache: the :class:`~slurm_sd.service.cache.TargetCache`.
    :param settings: has ``config`` (the config in effect; reloads replace it).
    """

    isLeaf = True

    def __init__(self, cache, settings):
        Resource.__init__(self)
        self._cache = cache
        self._settings = settings


class TargetsResource(_CacheResource):
    """``GET /targets?prom_job=JOB``: the job's SD groups, from the cache."""

    def render_GET(self, request):
        """Serve the prebuilt body for the job asked for (HEAD too)."""
        values = request.args.get(b"prom_job")
        known = [job.name for job in self._settings.config.jobs]
        if values is not None and len(values) > 1:
            return _reply(request, 400, _json({
                "error": "prom_job given more than once; ask for one job, or none for all",
                "jobs": known}))
        job = None
        if values is not None:
            job = values[0].decode("utf-8", "replace")
            if job not in known:
                return _reply(request, 404, _json({
                    "error": f"unknown prom_job {job!r}" if job else "empty prom_job",
                    "jobs": known}))
        snapshot = self._cache.snapshot
        body = None if snapshot is None else snapshot.bodies.get(job)
        if body is None:
            # 503, not [], so that Prometheus keeps the targets it already has.
            retry_after = self._cache.retry_after()
            request.setHeader(b"retry-after", b"%d" % (retry_after,))
            return _reply(request, 503, _json({
                "error": "no node list from slurmrestd yet",
                "retry_after_seconds": retry_after}))
        return _reply(request, 200, body)


class HealthyResource(GetResource):
    """``/-/healthy``: 200 while the process is up."""

    isLeaf = True

    def render_GET(self, request):
        """Always healthy when it can answer."""
        return _reply(request, 200, b"slurm-sd is Healthy.\n", TEXT)


class ReadyResource(_CacheResource):
    """``/-/ready``: 200 when data is loaded and not older than three intervals."""

    def render_GET(self, request):
        """Ready, or 503 with the reason."""
        age = self._cache.age()
        limit = 3 * self._settings.config.interval
        if age is None:
            return _reply(request, 503, b"slurm-sd is not ready: no node list yet.\n", TEXT)
        if age > limit:
            return _reply(request, 503, b"slurm-sd is not ready: the node list is %d s "
                                        b"old (limit %d s).\n" % (age, limit), TEXT)
        return _reply(request, 200, b"slurm-sd is Ready.\n", TEXT)
