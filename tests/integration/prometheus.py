"""
A real Prometheus (Debian's ``prometheus`` package) for the integration tests, discovering
targets from slurm-sd through ``http_sd_configs``, plus ``promtool check config``.
"""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

from tests.integration import support

PROGRAMS = ("prometheus", "promtool")


def sd_config(jobs, sd_base_url, refresh_interval="1s"):
    """
    A Prometheus configuration (as text; JSON is valid YAML) with one scrape job per name
    in ``jobs``, each discovering its targets from ``SD_BASE_URL/targets?prom_job=NAME``;
    a list of base URLs (replicas, SPEC 13) gives each job one http_sd_config per URL.
    """
    base_urls = [sd_base_url] if isinstance(sd_base_url, str) else list(sd_base_url)
    config = {
        "global": {"scrape_interval": "1m", "scrape_timeout": "1s",
                   "evaluation_interval": "1m"},
        "scrape_configs": [
            {
                "job_name": job,
                "http_sd_configs": [{
                    "url": "{}/targets?{}".format(
                        base_url, urllib.parse.urlencode({"prom_job": job})),
                    "refresh_interval": refresh_interval,
                } for base_url in base_urls],
            }
            for job in jobs
        ],
    }
    return json.dumps(config, indent=2)


def check_config(promtool, path):
    """Run ``promtool check config PATH``; return (exit status, combined output)."""
    proc = subprocess.run([promtool, "check", "config", path], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


class Prometheus:
    """A Prometheus process on 127.0.0.1 with its own config, TSDB and log, stopped by pid."""

    def __init__(self, programs):
        """:param programs: name -> path, from :func:`support.require`."""
        self.programs = programs
        self.work = None
        self.proc = None

    def start(self, config_text):
        """Write the config, check it with promtool, start Prometheus, wait until ready."""
        self.work = tempfile.mkdtemp(prefix="slurm-sd-prom-", dir="/tmp")
        self.config = os.path.join(self.work, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(config_text)
        status, out = check_config(self.programs["promtool"], self.config)
        if status != 0:
            raise AssertionError("promtool check config failed:\n" + out)
        self.port = support.free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.log_path = os.path.join(self.work, "prometheus.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.programs["prometheus"], "--config.file=" + self.config,
             "--storage.tsdb.path=" + os.path.join(self.work, "data"),
             "--web.listen-address=127.0.0.1:{}".format(self.port),
             "--web.enable-lifecycle", "--log.level=debug"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.work,
        )
        try:
            support.wait_for(self._ready, 60, "Prometheus to be ready")
        except BaseException:
            log = self.log_tail()
            self.stop()
            raise AssertionError("Prometheus did not start:\n" + log)

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with status {}".format(self.proc.returncode))
        status, _, body = support.http_get(self.url + "/-/ready", timeout=5)
        if status != 200:
            raise support.NotReady("/-/ready: {} {!r}".format(status, body[:200]))

    def stop(self):
        """Stop Prometheus by its pid (SIGTERM, then SIGKILL) and remove its directory."""
        if self.proc is not None:
            support.stop_popen(self.proc, timeout=15)
            self._log.close()
            self.proc = None
        if self.work and not os.environ.get("SLURM_SD_IT_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)

    def api(self, path):
        """GET ``/api/v1/PATH``; return its ``data``."""
        status, _, body = support.http_get(self.url + "/api/v1/" + path)
        if status != 200:
            raise support.NotReady("{}: HTTP {} {!r}".format(path, status, body[:300]))
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise support.NotReady("{}: {!r}".format(path, answer))
        return answer["data"]

    def active_targets(self):
        """``activeTargets`` of ``/api/v1/targets?state=active``."""
        return self.api("targets?state=active")["activeTargets"]

    def discovered(self):
        """
        What service discovery gave, per scrape job: {job: {__address__: discoveredLabels}},
        from the active targets (no relabeling in our configs, so none is dropped).
        """
        out = {}
        for target in self.active_targets():
            labels = target["discoveredLabels"]
            out.setdefault(target["scrapePool"], {})[labels["__address__"]] = labels
        return out

    def metric(self, name, **labels):
        """
        Sum of the samples of metric ``name`` (matching ``labels``) on Prometheus' own
        ``/metrics`` page; 0.0 if there is none.
        """
        _, _, body = support.http_get(self.url + "/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, rest = series.partition("{")
            if metric != name:
                continue
            if all('{}="{}"'.format(k, v) in rest for k, v in labels.items()):
                total += float(value)
        return total

    def log_tail(self, lines=40):
        """The end of Prometheus' log."""
        return support.tail(self.log_path, lines)
