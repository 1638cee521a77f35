"""
The serve step's resources: ``/targets``, ``/-/healthy``, ``/-/ready`` and the
404/405 answers (``/metrics`` is :mod:`slurm_sd.web.metrics`, ``/`` is
:mod:`slurm_sd.web.status`).

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


def without_body_for_head(request, body):
    """
    ``body`` for GET; for HEAD, an empty body with GET's ``Content-Length``.

    twisted.web would drop a HEAD answer's body itself, but logs a warning
    ("... I think I'll eat it") for every such request.
    """
    if request.method == b"HEAD" and isinstance(body, bytes) and body:
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return b""
    return body


def _json(document):
    """A small JSON document as bytes."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"


class GetResource(Resource):
    """
    A resource answering GET and HEAD only: every other method is 405 with
    ``Allow: GET, HEAD`` (twisted.web would answer 501 to PUT, DELETE, ...).
    A leaf answers its own path only (and with a trailing slash): anything
    below it is 404.
    """

    def render(self, request):
        """405 for methods other than GET and HEAD; 404 below a leaf; else GET's answer."""
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _reply(request, 405, _json({
                "error": f"method {request.method.decode('latin-1')} not allowed; "
                         f"use GET or HEAD"}))
        if self.isLeaf and request.postpath not in ([], [b""]):
            return NotFound().render(request)
        return without_body_for_head(request, Resource.render(self, request))


class NotFound(Resource):
    """404 for every path we do not serve."""

    isLeaf = True

    def render(self, request):
        """A JSON 404, whatever the method."""
        return without_body_for_head(request, _reply(request, 404, _json({
            "error": "not found", "paths": [
                "/", "/targets?prom_job=JOB", "/metrics", "/-/healthy", "/-/ready"]})))


class Directory(Resource):
    """A resource with children and a JSON 404 for everything else."""

    def getChild(self, path, request):
        """Unknown children are 404."""
        return NotFound()


class _CacheResource(GetResource):
    """
    A leaf that answers from the clusters' caches and the config in effect.

    :param clusters: the :class:`~slurm_sd.service.clusters.ClusterSet`.
    :param settings: has ``config`` (the config in effect; reloads replace it).
    """

    isLeaf = True

    def __init__(self, clusters, settings):
        Resource.__init__(self)
        self._clusters = clusters
        self._settings = settings


def _one_value(request, name, known, what):
    """
    The one value of query parameter ``name`` (None when absent) and None, or None
    and the 400/404 answer naming the ``known`` values.
    """
    values = request.args.get(name.encode("ascii"))
    if values is None:
        return None, None
    if len(values) > 1:
        return None, _reply(request, 400, _json({
            "error": f"{name} given more than once; ask for one {what}, or none for all",
            f"{what}s": known}))
    value = values[0].decode("utf-8", "replace")
    if value not in known:
        return None, _reply(request, 404, _json({
            "error": f"unknown {name} {value!r}" if value else f"empty {name}",
            f"{what}s": known}))
    return value, None


class TargetsResource(_CacheResource):
    """``GET /targets?prom_job=JOB[&cluster=NAME]``: the job's SD groups, from the
    cache of every cluster or of the one named."""

    def render_GET(self, request):
        """Serve the prebuilt body for the job asked for (HEAD too)."""
        job, refused = _one_value(request, "prom_job", [
            job.name for job in self._settings.config.jobs], "job")
        if refused is not None:
            return refused
        name, refused = _one_value(request, "cluster", self._clusters.names(), "cluster")
        if refused is not None:
            return refused
        cache = self._clusters.merged if name is None else self._clusters.get(name).cache
        snapshot = cache.snapshot
        body = None if snapshot is None else snapshot.bodies.get(job)
        if body is None:
            # 503, not [], so that Prometheus keeps the targets it already has.
            retry_after = cache.retry_after()
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
    """``/-/ready``: 200 when every cluster's data is loaded and not older than three
    of its intervals."""

    def render_GET(self, request):
        """Ready, or 503 with the reason (naming the cluster when there are several)."""
        clusters = self._clusters.clusters()
        for cluster in clusters:
            of = f" of cluster {cluster.name}" if len(clusters) > 1 else ""
            age = cluster.cache.age()
            limit = 3 * cluster.poller.config.interval
            if age is None:
                return _reply(request, 503, f"slurm-sd is not ready: no node list{of} "
                                            f"yet.\n".encode("utf-8"), TEXT)
            if age > limit:
                return _reply(request, 503, f"slurm-sd is not ready: the node list{of} is "
                                            f"{int(age)} s old (limit {int(limit)} s).\n"
                                            .encode("utf-8"), TEXT)
        return _reply(request, 200, b"slurm-sd is Ready.\n", TEXT)
