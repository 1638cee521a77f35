"""Tests for slurm_sd.web.status: the HTML status page at ``/``."""
import attr
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd import __version__
from slurm_sd.config.model import HttpAuth, JobConfig
from slurm_sd.config.parse import parse
from slurm_sd.pipeline.render import render
from slurm_sd.service.cache import TargetCache
from slurm_sd.service.clusters import Cluster, ClusterSet
from slurm_sd.tap import build_service
from slurm_sd.web.site import make_root
from slurm_sd.web.status import StatusPage, public_url
from tests.fakes import SAMPLES
from tests.htmltree import parse_html

CONFIG = parse("slurmrestd: {url: 'https://slurm.example:6820'}\ninterval: 60\n"
               "cluster_name: hpc1\n"
               "jobs:\n  - node: {port: 9100}\n  - dcgm: {port: 9400}\n")

NODE_GROUPS = [
    {"targets": ["c1:9100", "c2:9100"], "labels": {"__meta_slurm_partition": "batch"}},
    {"targets": ["c3:9100"], "labels": {"__meta_slurm_partition": "batch"}},
    {"targets": ["g1:9100"], "labels": {"__meta_slurm_partition": "gpu"}},
]
DCGM_GROUPS = [{"targets": ["g1:9400"], "labels": {"__meta_slurm_partition": "gpu"}}]
STATES = {"active": 3, "drain": 1, "down": 0, "powered_down": 0, "unknown": 0}


class Settings:
    """Stands in for the poller: the config in effect and the last error line."""

    def __init__(self, config=CONFIG):
        self.config = config
        self.last_error = None


class StatusTestCase(SynchronousTestCase):
    """A status page over a cache on a Clock, and the root that serves it."""

    def setUp(self):
        """An empty cache at t=1000, a page, and a client for the real root."""
        self.clock = Clock()
        self.clock.advance(1000)
        self.cache = TargetCache(self.clock)
        self.settings = Settings()
        self.clusters = ClusterSet.of_one(self.cache, self.settings)
        self.page = StatusPage(self.clock, self.clusters)
        self.record = self.page.watch(self.settings)
        self.http = StubTreq(make_root(self.clusters, self.clusters, status=self.page))

    def reconfigure(self, config):
        """A new configuration in effect, as a reload leaves it."""
        self.settings.config = self.clusters.config = config

    def good_poll(self, groups=None, seconds=0.5, **kwargs):
        """A poll that fills the cache, as the poller reports it."""
        snapshot = render(groups or {"node": NODE_GROUPS, "dcgm": DCGM_GROUPS},
                          node_count=4, states=STATES, **kwargs)
        self.cache.replace(snapshot)
        self.cache.next_attempt_at = self.clock.seconds() + 60
        self.record.poll_succeeded(snapshot, seconds)

    def failed_poll(self, line, kind="FetchError"):
        """A failed poll, with the error line the poller keeps."""
        self.settings.last_error = line
        self.record.poll_failed(kind, 2.0)

    def tree(self):
        """The page, parsed (which also checks that its tags nest)."""
        return parse_html(self.page.render().decode("utf-8"))

    def jobs(self, tree):
        """``{job: (total, {partition: targets})}`` read from the job table."""
        result = {}
        for body in tree.find("table", class_="jobs").find_all("tbody", class_="job"):
            counts = {}
            for row in body.find_all("tr"):
                cells = row.find_all("td")
                counts[cells[-2].attrs["data-partition"]] = cells[-1].text()
            result[body.attrs["data-job"]] = (body.attrs["data-targets"], counts)
        return result


class PageContentTests(StatusTestCase):
    """What the page shows."""

    def test_jobs_by_partition(self):
        """Each job, in config order, lists its targets per partition and in total."""
        self.good_poll()
        tree = self.tree()
        self.assertEqual(self.jobs(tree), {
            "node": ("4", {"batch": "3", "gpu": "1"}),
            "dcgm": ("1", {"gpu": "1"})})
        names = [body.attrs["data-job"] for body in tree.find_all("tbody", class_="job")]
        self.assertEqual(names, ["node", "dcgm"])

    def test_job_links(self):
        """Each job links to its /targets; the page links to the other endpoints."""
        self.good_poll()
        tree = self.tree()
        jobs = tree.find("table", class_="jobs")
        self.assertEqual([a.attrs["href"] for a in jobs.find_all("a")],
                         ["targets?prom_job=node", "targets?prom_job=dcgm"])
        nav = {a.attrs["href"] for a in tree.find("footer").find_all("a")}
        self.assertEqual(nav, {"targets", "metrics", "-/healthy", "-/ready"})

    def test_nodes_by_state(self):
        """The node table counts nodes per coarse state class, and in total."""
        self.good_poll()
        rows = self.tree().find("table", class_="nodes").find_all("tr")
        counts = {row.attrs["data-state"]: row.find("td", class_="n").text()
                  for row in rows if "data-state" in row.attrs}
        self.assertEqual(counts, {"active": "3", "drain": "1", "down": "0",
                                  "powered_down": "0", "unknown": "0", "total": "4"})

    def test_one_section_per_cluster(self):
        """The single cluster has one section, headed by its name."""
        self.good_poll()
        sections = self.tree().find_all("section", class_="cluster")
        self.assertEqual(len(sections), 1)
        self.assertEqual(sections[0].find("h2").text(), "Cluster hpc1")

    def test_cluster_name_from_data(self):
        """Without cluster_name in the config, the name slurmrestd gave is shown."""
        self.reconfigure(attr.evolve(CONFIG, cluster_name=None))
        self.good_poll(cluster_name="fromslurm")
        self.assertEqual(self.tree().find("h2").text(), "Cluster fromslurm")

    def test_poll_facts(self):
        """Version, source, last poll time, result, duration, data age and next poll."""
        self.good_poll(seconds=1.25)
        self.clock.advance(15)
        tree = self.tree()
        self.assertEqual(tree.find(id="version").text(), __version__)
        self.assertEqual(tree.find(id="uptime").text(), "15 s")
        self.assertEqual(tree.find(class_="source").text(), "https://slurm.example:6820")
        self.assertEqual(tree.find(class_="result").text(), "success")
        self.assertEqual(tree.find(class_="duration").text(), "1.25 s")
        rows = {row.find("th").text(): row.find("td").text()
                for row in tree.find("table", class_="poll").find_all("tr")}
        self.assertEqual(rows["Last poll"], "1970-01-01 00:16:40 UTC (15 s ago)")
        self.assertEqual(rows["Data age"], "15 s (data from 1970-01-01 00:16:40 UTC)")
        self.assertEqual(rows["Next poll"], "in 45 s (1970-01-01 00:17:40 UTC)")
        self.assertNotIn("Last error", rows)

    def test_before_first_poll(self):
        """Before any poll the page says so, and still lists the configured jobs."""
        tree = self.tree()
        rows = {row.find("th").text(): row.find("td").text()
                for row in tree.find("table", class_="poll").find_all("tr")}
        self.assertEqual(rows["Last poll"], "none yet")
        self.assertEqual(rows["Data age"], "no node list yet")
        self.assertIsNone(tree.find("table", class_="nodes"))
        self.assertEqual(self.jobs(tree), {"node": ("", {"": ""}), "dcgm": ("", {"": ""})})
        self.assertIn("not polled yet", tree.find("table", class_="jobs").text())

    def test_failed_poll_shows_error(self):
        """A failed poll shows its result and error line; the old data's age goes on."""
        self.good_poll()
        self.clock.advance(200)
        self.failed_poll("slurmrestd answered 502: slurmctld down")
        tree = self.tree()
        self.assertEqual(tree.find(class_="result").text(), "fetch_error")
        self.assertEqual(tree.find(class_="last-error").text(),
                         "slurmrestd answered 502: slurmctld down")
        rows = {row.find("th").text(): row.find("td") for row in
                tree.find("table", class_="poll").find_all("tr")}
        self.assertIn("stale", rows["Data age"].text())
        self.assertEqual(self.jobs(tree)["dcgm"], ("1", {"gpu": "1"}))

    def test_error_kept_after_recovery(self):
        """The last error line stays on the page after the next good poll."""
        self.failed_poll("cannot connect")
        self.good_poll()
        tree = self.tree()
        self.assertEqual(tree.find(class_="result").text(), "success")
        self.assertEqual(tree.find(class_="last-error").text(), "cannot connect")

    def test_held_and_state_loaded(self):
        """A held poll shows as ``held``; data read back from a state file shows at once."""
        snapshot = render({"node": NODE_GROUPS, "dcgm": []}, node_count=4, states=STATES)
        self.cache.replace(snapshot)
        self.record.state_loaded(snapshot, 900.0)
        self.assertEqual(self.jobs(self.tree())["node"][0], "4")
        self.record.poll_held()
        self.assertEqual(self.tree().find(class_="result").text(), "held")

    def test_node_mode_partitions(self):
        """``group_by: node`` groups count under each of the node's partitions."""
        groups = [{"targets": ["a:9100"], "labels": {"__meta_slurm_partitions": ",x,y,"}},
                  {"targets": ["b:9100"], "labels": {"__meta_slurm_partitions": ",x,"}},
                  {"targets": ["c:9100"], "labels": {}}]
        self.good_poll({"node": groups, "dcgm": []})
        self.assertEqual(self.jobs(self.tree()),
                         {"node": ("3", {"": "1", "x": "2", "y": "1"}),
                          "dcgm": ("0", {"": "0"})})


class BuiltPerPollTests(StatusTestCase):
    """The data part is built once per poll; only clock values change per request."""

    def test_not_rebuilt_per_request(self):
        """A snapshot swapped in without a poll report does not show until the next poll."""
        self.good_poll()
        self.cache.replace(render({"node": [], "dcgm": []}, node_count=0))
        self.assertEqual(self.jobs(self.tree())["node"][0], "4")
        self.record.poll_succeeded(self.cache.snapshot, 0.1)
        self.assertEqual(self.jobs(self.tree())["node"][0], "0")

    def test_clock_values_per_request(self):
        """Uptime and data age follow the clock between polls."""
        self.good_poll()
        first = self.tree().find(id="uptime").text()
        self.clock.advance(3600 + 125)
        self.assertEqual((first, self.tree().find(id="uptime").text()), ("0 s", "1 h 02 min"))

    def test_reload_rebuilds(self):
        """A new configuration in effect (a reload) shows its jobs at once."""
        self.good_poll()
        self.reconfigure(attr.evolve(CONFIG, jobs=CONFIG.jobs[:1]))
        self.assertEqual(list(self.jobs(self.tree())), ["node"])


class EscapingTests(StatusTestCase):
    """Every value is HTML-escaped; no secret is shown."""

    EVIL = '<script>alert("x")</script>&"\''

    def assertNoScript(self, tree):
        """No script element, no event handler attribute anywhere."""
        self.assertEqual(list(tree.iter("script")), [])
        for element in tree.iter():
            self.assertFalse([k for k in element.attrs if k.startswith("on")], element.tag)

    def test_job_cluster_partition_error(self):
        """A job name, cluster name, partition and error line holding markup stay text."""
        config = attr.evolve(CONFIG, cluster_name=self.EVIL,
                             jobs=[JobConfig(name=self.EVIL, port=9100)])
        self.reconfigure(config)
        self.good_poll({self.EVIL: [{"targets": ["a:1"], "labels": {
            "__meta_slurm_partition": self.EVIL}}]})
        self.failed_poll("bad answer: " + self.EVIL)
        tree = self.tree()
        self.assertNoScript(tree)
        self.assertEqual(tree.find("h2").text(), "Cluster " + self.EVIL)
        self.assertEqual(tree.find(class_="last-error").text(), "bad answer: " + self.EVIL)
        self.assertEqual(self.jobs(tree), {self.EVIL: ("1", {self.EVIL: "1"})})
        link = tree.find("table", class_="jobs").find("a")
        self.assertEqual(link.attrs["href"], "targets?prom_job=%3Cscript%3Ealert%28%22x%22"
                                             "%29%3C%2Fscript%3E%26%22%27")
        self.assertEqual(link.text(), self.EVIL)

    def test_public_url(self):
        """User info, query and fragment are dropped; the token is replaced anyway."""
        self.assertEqual(public_url("https://u:pw@h.example:6820/x?token=abc#f"),
                         "https://h.example:6820/x")
        self.assertEqual(public_url("http://[::1]:6820"), "http://[::1]:6820")
        self.assertEqual(public_url("unix:/run/s.sock"), "unix:/run/s.sock")
        self.assertEqual(public_url("http://h/jwt-XYZ", secret="jwt-XYZ"), "http://h/<token>")

    def test_token_not_on_page(self):
        """The --token value never shows, even in a source URL holding it."""
        self.reconfigure(attr.evolve(CONFIG, slurmrestd=attr.evolve(
            CONFIG.slurmrestd, url="http://user:pw@h:1/tok-SECRET?auth=q1", token="tok-SECRET")))
        self.good_poll()
        page = self.page.render()
        for secret in (b"tok-SECRET", b"pw", b"q1", b"user"):
            self.assertNotIn(secret, page)
        self.assertEqual(self.tree().find(class_="source").text(), "http://h:1/<token>")


class StatusResourceTests(StatusTestCase):
    """``/`` through the real root."""

    def get(self, path, method="GET"):
        """``(code, headers, body)``."""
        response = self.successResultOf(self.http.request(method, "http://sd" + path))
        return response.code, response.headers, self.successResultOf(response.content())

    def test_html_with_safety_headers(self):
        """``/`` is HTML, says no script may run, and is not cached."""
        self.good_poll()
        code, headers, body = self.get("/")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        self.assertIn("default-src 'none'", headers.getRawHeaders("content-security-policy")[0])
        self.assertEqual(headers.getRawHeaders("cache-control"), ["no-store"])
        self.assertEqual(parse_html(body.decode()).find("title").text(), "slurm-sd")

    def test_methods_and_paths(self):
        """HEAD has no body, POST is 405, ``//x`` is 404, and /targets is unchanged."""
        self.good_poll()
        self.assertEqual(self.get("/", "HEAD")[::2], (200, b""))
        self.assertEqual(self.get("/", "POST")[0], 405)
        self.assertEqual(self.get("//x")[0], 404)
        self.assertEqual(self.get("/targets?prom_job=node")[0], 200)

    def test_no_status_page_without_one(self):
        """A root made without a page answers 404 at ``/`` (as before)."""
        http = StubTreq(make_root(self.cache, self.settings))
        response = self.successResultOf(http.get("http://sd/"))
        self.assertEqual(response.code, 404)


TWO = parse("clusters:\n"
            "  - name: hpc1\n    slurmrestd: {url: 'http://127.0.0.1:6820'}\n"
            "  - name: gpu\n    slurmrestd: {url: 'https://gpu.example:6820'}\n"
            "    interval: 60\n"
            "interval: 120\njobs:\n  - node: {port: 9100}\n")


class SeveralClustersTests(SynchronousTestCase):
    """With ``clusters:``, one section per cluster, each with its own poll."""

    def setUp(self):
        """Two clusters, each with a stand-in poller and its own cache."""
        self.clock = Clock()
        self.clusters = ClusterSet(TWO)
        self.page = StatusPage(self.clock, self.clusters)
        self.records = {}
        for name, config in TWO.cluster_configs():
            poller = Settings(config)
            self.records[name] = self.page.watch(poller)
            self.clusters.add(Cluster(name, TargetCache(self.clock), poller))

    def sections(self):
        """``{cluster: section element}`` in page order."""
        tree = parse_html(self.page.render().decode())
        return {section.attrs["data-cluster"]: section
                for section in tree.find_all("section", class_="cluster")}

    def test_section_per_cluster(self):
        """Each cluster has its section, in config order, with its own source and poll."""
        hpc1 = self.clusters.get("hpc1")
        snapshot = render({"node": NODE_GROUPS}, node_count=4, states=STATES)
        hpc1.cache.replace(snapshot)
        self.records["hpc1"].poll_succeeded(snapshot, 0.5)
        self.clusters.get("gpu").poller.last_error = "cannot connect to gpu.example"
        self.records["gpu"].poll_failed("FetchError", 3.0)
        sections = self.sections()
        self.assertEqual(list(sections), ["hpc1", "gpu"])
        self.assertEqual(sections["gpu"].find("h2").text(), "Cluster gpu")
        self.assertEqual(sections["gpu"].find(class_="source").text(),
                         "https://gpu.example:6820")
        self.assertEqual(sections["hpc1"].find(class_="result").text(), "success")
        self.assertIsNone(sections["hpc1"].find(class_="last-error"))
        self.assertEqual(sections["gpu"].find(class_="last-error").text(),
                         "cannot connect to gpu.example")
        self.assertEqual(sections["hpc1"].find("tbody", class_="job").attrs["data-targets"],
                         "4")
        self.assertIsNone(sections["gpu"].find("table", class_="nodes"))

    def test_links_name_the_cluster(self):
        """A job's link asks for that cluster's targets alone."""
        links = {name: section.find("table", class_="jobs").find("a").attrs["href"]
                 for name, section in self.sections().items()}
        self.assertEqual(links, {"hpc1": "targets?prom_job=node&cluster=hpc1",
                                 "gpu": "targets?prom_job=node&cluster=gpu"})

    def test_removed_cluster_gone(self):
        """A cluster a reload removes leaves the page."""
        self.clusters.remove("gpu")
        self.clusters.config = attr.evolve(TWO, clusters=TWO.clusters[:1])
        self.assertEqual(list(self.sections()), ["hpc1"])


class WiringTests(SynchronousTestCase):
    """The daemon as ``build_service`` wires it: the page sees the poller's reports."""

    def serve(self, config):
        """The daemon on a MemoryReactorClock after its first poll; a client for its site."""
        reactor = MemoryReactorClock()
        service = build_service(reactor, config, environ={})
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0)
        return StubTreq(service.site.resource)

    def file_config(self, name="slurm-22.05-v0.0.38-nodes.json"):
        """CONFIG reading a saved node list."""
        return attr.evolve(CONFIG, slurmrestd=attr.evolve(
            CONFIG.slurmrestd, url="file:" + SAMPLES + "/" + name))

    def test_first_poll_on_page(self):
        """After the first poll, ``/`` shows its result and the jobs' targets."""
        http = self.serve(self.file_config())
        response = self.successResultOf(http.get("http://sd/"))
        tree = parse_html(self.successResultOf(response.content()).decode())
        self.assertEqual(tree.find(class_="result").text(), "success")
        total = tree.find("tbody", class_="job").attrs["data-targets"]
        self.assertGreater(int(total), 0)

    def test_failed_poll_line_on_page(self):
        """A poll that fails puts the poller's one-line reason on the page."""
        http = self.serve(self.file_config("no-such-file.json"))
        response = self.successResultOf(http.get("http://sd/"))
        tree = parse_html(self.successResultOf(response.content()).decode())
        self.assertEqual(tree.find(class_="result").text(), "fetch_error")
        self.assertIn("no-such-file.json", tree.find(class_="last-error").text())

    def test_two_clusters_links_answer(self):
        """With two clusters, both have a section and every link on the page answers 200."""
        first, second = (SAMPLES + "/" + name for name in (
            "slurm-22.05-v0.0.38-nodes.json", "slurm-22.05-v0.0.37-nodes.json"))
        http = self.serve(parse(f"clusters:\n  - name: a\n    slurmrestd: {{url: 'file:{first}'}}\n"
                                f"  - name: b\n    slurmrestd: {{url: 'file:{second}'}}\n"
                                f"jobs: [{{node: {{port: 9100}}}}]\n"))
        response = self.successResultOf(http.get("http://sd/"))
        tree = parse_html(self.successResultOf(response.content()).decode())
        self.assertEqual([s.attrs["data-cluster"] for s in tree.find_all("section")], ["a", "b"])
        links = {a.attrs["href"] for a in tree.iter("a")}
        self.assertIn("targets?prom_job=node&cluster=b", links)
        for link in links:
            response = self.successResultOf(http.get("http://sd/" + link))
            self.assertEqual(response.code, 200, link)

    def test_behind_http_auth(self):
        """With http_auth, ``/`` asks for credentials like /targets."""
        password = self.mktemp()
        with open(password, "w") as handle:
            handle.write("s3cret\n")
        config = attr.evolve(self.file_config(), http_auth=HttpAuth(
            username="prometheus", password_file=password))
        http = self.serve(config)
        response = self.successResultOf(http.get("http://sd/"))
        self.assertEqual(response.code, 401)
        response = self.successResultOf(http.get(
            "http://sd/", headers={b"authorization": [b"Basic cHJvbWV0aGV1czpzM2NyZXQ="]}))
        self.assertEqual(response.code, 200)
