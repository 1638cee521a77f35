"""
The web site: the resource tree, and a Site that logs requests only when asked to.
"""
from twisted.web import server

from slurm_sd.service.clusters import ClusterSet
from slurm_sd.web.resources import (
    Directory,
    HealthyResource,
    ReadyResource,
    TargetsResource,
)
from slurm_sd.web.status import StatusResource


def make_root(clusters, settings, extra=None, status=None):
    """
    The resource tree.

    :param clusters: the :class:`~slurm_sd.service.clusters.ClusterSet`, or the
        :class:`~slurm_sd.service.cache.TargetCache` of the one cluster that
        ``settings`` (then its poller) polls.
    :param settings: has ``config``, the configuration in effect.
    :param extra: optional mapping of more top-level children (``b"metrics"``).
    :param status: optional :class:`~slurm_sd.web.status.StatusPage`, served at ``/``.
    """
    if not isinstance(clusters, ClusterSet):
        clusters = ClusterSet.of_one(clusters, settings)
    root = Directory()
    if status is not None:
        root.putChild(b"", StatusResource(status))
    root.putChild(b"targets", TargetsResource(clusters, settings))
    dash = Directory()
    dash.putChild(b"healthy", HealthyResource())
    dash.putChild(b"ready", ReadyResource(clusters, settings))
    root.putChild(b"-", dash)
    for name, child in (extra or {}).items():
        root.putChild(name, child)
    return root


class QuietSite(server.Site):
    """
    A Site that writes no access-log line unless asked to (it costs throughput),
    and tells ``count_request`` about every answered request.

    :param access_log: write one access-log line per request; a reload may
        change :attr:`access_log`.
    :param count_request: optional ``count_request(path, code)``, called with
        the path (bytes, no query string) and status of each answered request.
    """

    noisy = False

    def __init__(self, resource, access_log=False, count_request=None, **kwargs):
        server.Site.__init__(self, resource, **kwargs)
        self.access_log = access_log
        self._count_request = count_request

    def log(self, request):
        """Count the request, and log it only when access logging is on."""
        if self._count_request is not None:
            self._count_request(request.path, request.code)
        if self.access_log:
            server.Site.log(self, request)
