"""
``GET /``: the HTML status page, for people (SPEC 12), one section per cluster.

:class:`StatusPage` hears every cluster's poller and rebuilds the page when a poll
ends, and when a reload changes the configuration; what moves with the clock (uptime,
ages, next poll) is left as small functions called per request.  No JavaScript, no
external asset, every value HTML-escaped; behind ``http_auth`` like ``/targets``.
"""
import time
import weakref
from html import escape
from itertools import groupby
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from slurm_sd._version import __version__
from slurm_sd.slurm import STATE_CLASSES
from slurm_sd.web.metrics import result_label
from slurm_sd.web.resources import GetResource, NotFound

HTML = b"text/html; charset=utf-8"

#: No script may run and nothing may load, should a value ever slip through.
CSP = b"default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'"

_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em;margin:0 0 .2em}h2{margin-top:1.2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0 1em}th,td{padding:.2em .8em;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}td.n{text-align:right}
.bad{color:#b00}.ok{color:#070}.muted{color:#777}nav a{margin-right:1em}
code{font:13px monospace}"""

#: Links to the other endpoints (relative: the page may sit under a proxy's prefix).
_NAV = ('<nav><a href="targets">/targets</a><a href="metrics">/metrics</a>'
        '<a href="-/healthy">/-/healthy</a><a href="-/ready">/-/ready</a></nav>')


def public_url(url, secret=None):
    """
    ``url`` fit to show: no user info, query or fragment (where a token may
    hide), and ``secret`` (the token) replaced should it appear anyway.
    """
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        try:
            port = parts.port
        except ValueError:
            port = None
        netloc = host if port is None else f"{host}:{port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if secret:
        url = url.replace(secret, "<token>")
    return url


def _when(seconds):
    """A Unix time as ``2026-12-03 06:25:18 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _span(seconds):
    """A duration as ``45 s``, ``3 min 05 s``, ``2 h 07 min`` or ``3 d 04 h``."""
    seconds = int(max(0, seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    if days:
        return f"{days} d {h:02d} h"
    if hours:
        return f"{hours} h {m:02d} min"
    if minutes:
        return f"{minutes} min {s:02d} s"
    return f"{s} s"


def _row(head, *cell):
    """One ``<tr>`` of a two-column table; ``cell``: HTML strings, and functions of
    the time giving HTML (filled per request)."""
    return [f"<tr><th>{escape(head)}</th><td>", *cell, "</td></tr>"]


class _Record:
    """
    What one cluster's poller last reported; its observer (with the metrics,
    through :class:`~slurm_sd.service.poller.Observers`).
    """

    def __init__(self, page, poller):
        self._page = page
        self._poller = weakref.ref(poller)   # the page's map of records is weak on it
        self.last_poll = None     # (ended at, result, seconds or None)
        self.last_error = None    # (at, line)

    def _polled(self, result, seconds, error=None):
        """Note a poll's end (and error line), and rebuild the page."""
        now = self._page.clock.seconds()
        self.last_poll = (now, result, seconds)
        if error is not None:
            self.last_error = (now, error)
        self._page.rebuild()

    def poll_succeeded(self, snapshot, seconds):
        """A good poll."""
        self._polled("success", seconds)

    def poll_failed(self, kind, seconds):
        """A failed poll, with the poller's error line."""
        self._polled(result_label(kind), seconds,
                     getattr(self._poller(), "last_error", None) or kind)

    def poll_held(self):
        """A poll held back by the shrink guard (``max_node_drop``): result ``held``."""
        self._polled("held", None)

    def state_loaded(self, snapshot, fetched_at):
        """A node list read back from the state file is served: show it."""
        self._page.rebuild()


class StatusPage:
    """
    The status page, rebuilt whenever a cluster's poll ends.

    :param clock: an ``IReactorTime``.
    :param clusters: the :class:`~slurm_sd.service.clusters.ClusterSet`: ``config``
        (the whole configuration in effect) and ``clusters()``, each with ``name``,
        ``cache`` and ``poller`` (its ``config`` and ``last_error``).
    """

    def __init__(self, clock, clusters):
        self.clock = clock
        self._clusters = clusters
        self._started = clock.seconds()
        # poller -> _Record; a cluster a reload removes takes its record along.
        self._records = weakref.WeakKeyDictionary()
        self._built_for = None
        self._parts = None

    def watch(self, poller):
        """The observer to give ``poller``: its reports go on the page."""
        record = self._records[poller] = _Record(self, poller)
        return record

    def rebuild(self):
        """Build the page from the last polls and the configuration in effect."""
        self._built_for = self._clusters.config
        clusters = self._clusters.clusters()
        parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>slurm-sd</title><style>", _STYLE, "</style></head><body>",
                 "<header><h1>slurm-sd</h1><p class=\"about\">version <span id=\"version\">",
                 escape(__version__), "</span> &middot; up <span id=\"uptime\">",
                 lambda now: _span(now - self._started), "</span></p>", _NAV, "</header>"]
        for cluster in clusters:
            parts += self._cluster(cluster, several=len(clusters) > 1)
        parts += ["<footer>", _NAV, "</footer></body></html>\n"]
        # Neighbouring fixed strings joined now, so a request joins only a few.
        self._parts = []
        for per_request, group in groupby(parts, callable):
            self._parts += list(group) if per_request else ["".join(group).encode("utf-8")]

    def _cluster(self, cluster, several):
        """One cluster's section: its poll, its nodes, its jobs."""
        config, cache = cluster.poller.config, cluster.cache
        record = self._records.get(cluster.poller) or _Record(self, cluster.poller)
        snapshot = cache.snapshot
        # Single-cluster form: the name __meta_slurm_cluster has (config, else Slurm's).
        slurm_name = snapshot.cluster_name if snapshot is not None else ""
        name = config.cluster_name or slurm_name or cluster.name
        heading = escape(name)
        if slurm_name not in ("", name):
            heading += f' <span class="muted">(Slurm: {escape(slurm_name)})</span>'
        rows = _row("Source", '<code class="source">', escape(public_url(
            config.slurmrestd.url, config.slurmrestd.token)), "</code>")
        if record.last_poll is None:
            rows += _row("Last poll", '<span class="muted">none yet</span>')
        else:
            ended, result, seconds = record.last_poll
            css = "ok" if result == "success" else "bad"
            rows += (_row("Last poll", escape(_when(ended)), " (",
                          lambda now: _span(now - ended), " ago)")
                     + _row("Result", f'<span class="result {css}">{escape(result)}</span>')
                     + _row("Duration", '<span class="muted">-</span>' if seconds is None
                            else f'<span class="duration">{seconds:.2f} s</span>'))
        rows += (_row("Data age", lambda now: _age(cache, config.interval, now))
                 + _row("Next poll", lambda now: _next(cache, now)))
        if record.last_error is not None:
            at, line = record.last_error
            rows += _row("Last error", f'<span class="last-error bad">{escape(line)}</span> '
                                       f'<span class="muted">({escape(_when(at))})</span>')
        return ([f'<section class="cluster" data-cluster="{escape(cluster.name)}">'
                 f'<h2>Cluster {heading}</h2><table class="poll">'] + rows + ["</table>"]
                + _nodes(snapshot)
                + _jobs(config, snapshot, cluster.name if several else None)
                + ["</section>"])

    def render(self):
        """The page as of now (bytes)."""
        if self._parts is None or self._clusters.config is not self._built_for:
            self.rebuild()
        now = self.clock.seconds()
        return b"".join(part if isinstance(part, bytes) else part(now).encode("utf-8")
                        for part in self._parts)


def _age(cache, interval, now):
    """The data age of ``cache``, marked stale past three intervals (``/-/ready``)."""
    if cache.updated_at is None:
        return '<span class="bad">no node list yet</span>'
    age = now - cache.updated_at
    stale = age > 3 * interval
    return (f'<span class="{"bad" if stale else "ok"}">{_span(age)}</span> '
            f'(data from {_when(cache.updated_at)}'
            f'{"; stale: older than 3 intervals" if stale else ""})')


def _next(cache, now):
    """When ``cache``'s poller polls next."""
    next_at = cache.next_attempt_at
    if next_at is None:
        return '<span class="muted">not scheduled</span>'
    if next_at <= now:
        return "under way"
    return f"in {_span(next_at - now + 0.999)} ({_when(next_at)})"


def _nodes(snapshot):
    """The node table: nodes per coarse state class."""
    out = ["<h3>Nodes</h3>"]
    if snapshot is None:
        return out + ['<p class="muted">no node list yet</p>']
    out.append('<table class="nodes"><tr><th>State</th><th>Nodes</th></tr>')
    for name in STATE_CLASSES:
        count = snapshot.states.get(name)
        out.append(f'<tr data-state="{name}"><td>{name}</td><td class="n">'
                   f'{"?" if count is None else count}</td></tr>')
    out.append(f'<tr data-state="total"><th>total</th><td class="n">{snapshot.nodes}'
               f'</td></tr></table>')
    if snapshot.skipped:
        out.append(f'<p class="bad">{snapshot.skipped} node entries skipped (no name, '
                   f'or a duplicate name)</p>')
    return out


def _jobs(config, snapshot, cluster=None):
    """
    The job table: per job its targets by partition, and a link to them (to this
    cluster's alone, when ``cluster`` names it).
    """
    out = ['<h3>Jobs</h3><table class="jobs"><thead><tr><th>Job</th><th>Partition</th>'
           '<th>Targets</th></tr></thead>']
    for job in config.jobs:
        name = escape(job.name)
        link = "targets?" + urlencode([("prom_job", job.name)] + (
            [] if cluster is None else [("cluster", cluster)]), quote_via=quote)
        total = None if snapshot is None else snapshot.targets.get(job.name)
        partitions = {} if snapshot is None else snapshot.partitions.get(job.name, {})
        rows = list(partitions.items()) or [(None, total)]
        out.append(f'<tbody class="job" data-job="{name}" data-targets='
                   f'"{"" if total is None else total}">')
        for index, (partition, count) in enumerate(rows):
            out.append("<tr>")
            if index == 0:
                out.append(f'<td rowspan="{len(rows)}"><a href="{escape(link)}">{name}</a><br>'
                           f'<span class="muted">'
                           f'{"not polled yet" if total is None else f"{total} targets"}'
                           f'</span></td>')
            label = ('<span class="muted">&mdash;</span>' if partition is None
                     else escape(partition) or '<span class="muted">(none)</span>')
            out.append(f'<td data-partition="{escape(partition or "")}">{label}</td>'
                       f'<td class="n">{"" if count is None else count}</td></tr>')
        out.append("</tbody>")
    return out + ["</table>"]


class StatusResource(GetResource):
    """
    ``GET /``: the :class:`StatusPage`, as HTML.

    :param page: the :class:`StatusPage`.
    """

    isLeaf = True

    def __init__(self, page):
        GetResource.__init__(self)
        self._page = page

    def render_GET(self, request):
        """The page; 404 for anything below ``/`` that reached us."""
        if request.postpath not in ([], [b""]):
            return NotFound().render(request)
        request.setResponseCode(200)
        request.setHeader(b"content-type", HTML)
        request.setHeader(b"content-security-policy", CSP)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-store")
        return self._page.render()
