"""
A real Prometheus scrapes slurm-sd's /metrics and discovers targets from its /targets
through TLS with a client certificate and bcrypt basic auth (``web_config_file``), and
the daemon, on a real socket, refuses clients without the certificate or the password.
"""
import base64
import json
import os
import shutil
import socket
import ssl
import tempfile
import urllib.parse

import bcrypt
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import make_set, write
from tests.fakes import SAMPLES
from tests.integration import daemon, prometheus, support

USER, PASSWORD = "prometheus", "correct horse battery staple"
NODES = os.path.join(SAMPLES, "slurm-22.05-v0.0.38-nodes.json")


def https_get(port, path, paths, cert=True, password=PASSWORD):
    """GET ``path`` over TLS on 127.0.0.1:``port``; ``(status, body)``."""
    context = ssl.create_default_context(cafile=paths["ca"])
    if cert:
        context.load_cert_chain(paths["client_cert"], paths["client_key"])
    authorization = base64.b64encode(f"{USER}:{password}".encode()).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic "
                         f"{authorization}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def prometheus_config(port, paths, password_file):
    """Prometheus scraping slurm-sd and using its http_sd, both through TLS and basic auth."""
    client = {"tls_config": {"ca_file": paths["ca"], "cert_file": paths["client_cert"],
                             "key_file": paths["client_key"], "server_name": "localhost"},
              "basic_auth": {"username": USER, "password_file": password_file}}
    base = f"https://127.0.0.1:{port}"
    return json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1m"},
        "scrape_configs": [
            dict({"job_name": "slurm-sd", "scheme": "https",
                  "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}, **client),
            {"job_name": "node", "scrape_interval": "1m", "http_sd_configs": [dict({
                "url": base + "/targets?" + urllib.parse.urlencode({"prom_job": "node"}),
                "refresh_interval": "1s"}, **client)]},
        ],
    }, indent=2)


class WebConfigPrometheusTests(SynchronousTestCase):
    """slurm-sd behind web_config_file, a real Prometheus in front of it."""

    def setUp(self):
        """Certificates, a web configuration, and the daemon on a free loopback port."""
        self.programs = support.require(prometheus.PROGRAMS + ("twistd",))
        self.tmp = tempfile.mkdtemp(prefix="slurm-sd-webconfig-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.paths = make_set(self.tmp)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        web = write(self.tmp, "web.yml", (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
            "  min_version: TLS12\n"
            f"basic_auth_users:\n  {USER}: '{hashed}'\n").encode())
        self.port = support.free_port()
        config = os.path.join(self.tmp, "config.yaml")
        with open(config, "w") as handle:
            json.dump({"slurmrestd": {"url": "file:" + NODES}, "interval": 60,
                       "listen": f"tcp:{self.port}:interface=127.0.0.1",
                       "web_config_file": web, "jobs": [{"node": {"port": 9100}}]}, handle)
        self.daemon = daemon.Daemon(config, self.port, os.path.join(self.tmp, "slurm-sd.log"),
                                    cwd=self.tmp)
        self.addCleanup(self.daemon.stop)
        self.daemon.start(wait=None)
        support.wait_for(self.serving, 30, "slurm-sd to serve /targets over TLS")

    def serving(self):
        """/targets answers 200 to the right client (else NotReady)."""
        if self.daemon.proc.poll() is not None:
            raise AssertionError("slurm-sd exited:\n" + self.daemon.log_tail())
        status, _ = https_get(self.port, "/targets?prom_job=node", self.paths)
        if status != 200:
            raise support.NotReady(f"/targets answered {status}")

    def test_refuses_without_certificate_or_password(self):
        """On the real socket: no client certificate, no TLS; a wrong password, 401."""
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            https_get(self.port, "/metrics", self.paths, cert=False)
        self.assertEqual(https_get(self.port, "/metrics", self.paths, password="nope")[0], 401)
        self.assertEqual(https_get(self.port, "/metrics", self.paths)[0], 200)

    def test_prometheus_scrapes_and_discovers(self):
        """Prometheus scrapes /metrics and discovers /targets through TLS and basic auth."""
        password_file = write(self.tmp, "password", PASSWORD.encode())
        prom = prometheus.Prometheus(self.programs)
        prom.start(prometheus_config(self.port, self.paths, password_file))
        self.addCleanup(prom.stop)

        def scraped():
            """The slurm-sd target is up and the node job has its targets."""
            targets = prom.active_targets()
            own = [t for t in targets if t["scrapePool"] == "slurm-sd"]
            if not own or own[0]["health"] != "up":
                raise support.NotReady(f"slurm-sd target: {own}")
            nodes = [t for t in targets if t["scrapePool"] == "node"]
            if not nodes:
                raise support.NotReady("no node targets discovered yet")
            return nodes

        try:
            nodes = support.wait_for(scraped, 60, "Prometheus to scrape and discover",
                                     interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- prometheus ---\n{prom.log_tail(20)}\n"
                                 f"--- slurm-sd ---\n{self.daemon.log_tail(20)}")
        self.assertTrue(all(t["discoveredLabels"]["__address__"].endswith(":9100")
                            for t in nodes))
        result = prom.api("query?query=" + urllib.parse.quote(
            'slurm_sd_http_requests_total{job="slurm-sd",path="/targets",code="200"}'))
        self.assertTrue(result["result"], result)
        self.assertNotIn(PASSWORD, self.daemon.log_text())
