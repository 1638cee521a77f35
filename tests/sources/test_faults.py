"""
Fault tests: a slurmrestd that is slow, silent, hangs up, answers an error status or an
unusable body; the last good data stays served and one line says why
(tests/sources/faultcase.py, on the in-memory wire).
"""
import json

from tests.answers import ERROR_511, BreakOff, Drip, Flood, Reply, Silent, response
from tests.fakes import captured
from tests.sources.faultcase import NEWER, TIMEOUT, FaultTestCase
from tests.standin import nodes_body


class TimingFaultTests(FaultTestCase):
    """A slurmrestd that is slow, silent or hangs up."""

    def test_never_answers(self):
        """A server that accepts and never answers: the timeout fires, the client hangs up."""
        self.assert_fault(Silent(), f"did not answer within {TIMEOUT:g} s",
                          "raise slurmrestd.timeout")

    def test_slow_drip_past_timeout(self):
        """An answer dripping in slower than the timeout is abandoned at the timeout."""
        raw = response(200, NEWER)
        self.assert_fault(Drip(raw, 100, 0.05), "did not finish answering within",
                          "slurmrestd.timeout")

    def test_slow_drip_within_timeout(self):
        """A slow answer that completes within the timeout is used."""
        self.make_poller()
        raw = response(200, NEWER)
        self.standin.nodes = Drip(raw, len(raw) // 8 + 1, 0.02)
        self.poll()
        self.assertIn("mixed+drain", {g["labels"]["__meta_slurm_node_state"]
                                      for g in self.served()})

    def test_closed_without_answer(self):
        """A connection closed before any answer is one line saying so."""
        self.assert_fault(BreakOff(b"", 0), "connection to slurmrestd at unix:",
                          "closed")

    def test_broken_off_mid_body(self):
        """A connection dropped mid-body (shorter than its Content-Length) is refused."""
        raw = response(200, NEWER)
        self.assert_fault(BreakOff(raw, len(raw) // 2), "broke off its answer",
                          "/slurm/v0.0.38/nodes/")

    def test_broken_off_mid_headers(self):
        """A connection dropped in the middle of the status line and headers is refused."""
        self.assert_fault(BreakOff(response(200, NEWER), 30),
                          "connection to slurmrestd at unix:")


class StatusFaultTests(FaultTestCase):
    """Error statuses with the bodies real Slurm sends."""

    def test_401(self):
        """401 text/plain (no or refused auth headers) says how to send them."""
        self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-no-auth-headers.http")),
            "refused authentication", "401 Authentication failure",
            "slurmrestd.user and a token")

    def test_404(self):
        """404 (API version not served) lists the versions the server offers."""
        self.assert_fault(
            None, "does not serve /slurm/v0.0.38/nodes/ (404)", "it offers v0.0.40, v0.0.41",
            "slurmrestd.api_version", versions=["v0.0.40", "v0.0.41"])

    def test_500_slurmctld_down(self):
        """22.05's 500 when slurmctld is down names Slurm's error and slurmctld."""
        self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-slurmctld-down.http")),
            "500", "Unspecified error (errno -1)", "slurmctld")

    def test_500_bad_token(self):
        """22.05's 500 for a bad token, while a token is sent, points at the token."""
        self.assert_fault(
            Reply(captured("slurm-22.05-v0.0.38-nodes-bad-token-signature.http")),
            "500", "scontrol token", user="slurmrest", token="t0k3n")

    def test_502(self):
        """24.11's 502 says slurmrestd cannot reach slurmctld, in Slurm's words."""
        self.assert_fault(
            Reply(captured("slurm-24.11-v0.0.40-nodes-slurmctld-down.http")),
            "cannot reach slurmctld", "Unable to contact slurm controller")

    def test_511(self):
        """24.11's 511 (error 1007) says the token was refused."""
        self.assert_fault(
            Reply(response(511, ERROR_511, reason=b"NETWORK AUTHENTICATION REQUIRED")),
            "511", "Protocol authentication error", "scontrol token",
            user="slurmrest", token="t0k3n")

    def test_html_error_page(self):
        """An HTML 502 from a proxy in front of slurmrestd shows the page's title."""
        page = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                b"</body>\r\n</html>\r\n")
        self.assert_fault(
            Reply(response(502, page, b"text/html", b"Bad Gateway")), "502 Bad Gateway")

    def test_html_page_with_200(self):
        """An HTML page served with 200 (a login portal, a web server) is not taken as data."""
        page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body></body></html>"
        self.assert_fault(Reply(response(200, page, b"text/html")), "not JSON",
                          "an HTML or XML page", "slurmrestd.url")


class BodyFaultTests(FaultTestCase):
    """200 answers whose body is unusable."""

    def test_truncated_json(self):
        """A 200 whose JSON stops half-way is refused."""
        self.assert_fault(Reply(response(200, NEWER[:len(NEWER) // 2])), "not JSON")

    def test_truncated_json_no_length(self):
        """A body with no Content-Length ended early by the server is refused."""
        self.assert_fault(Reply(response(200, NEWER[:-40], length=False)),
                          "not JSON")

    def test_invalid_utf8(self):
        """A body that is not UTF-8 is refused, naming the byte."""
        body = NEWER.replace(b'"gpu01"', b'"gpu\xff\xfe1"', 1)
        self.assert_fault(Reply(response(200, body)), "not UTF-8")

    def test_empty_body(self):
        """An empty 200 body is refused as empty."""
        self.assert_fault(Reply(response(200, b"")), "empty body")

    def test_errors_array(self):
        """A 200 with a non-empty errors array is refused, with Slurm's words."""
        body = json.dumps({"errors": [{"error": "Invalid node name specified",
                                       "errno": 2018}], "nodes": []}).encode()
        self.assert_fault(Reply(response(200, body)), "Invalid node name specified")

    def test_no_nodes_key(self):
        """A 200 JSON object without a nodes list is refused."""
        self.assert_fault(Reply(response(200, b'{"meta": {}, "errors": []}')),
                          'no "nodes" list')

    def test_not_an_object(self):
        """A 200 whose JSON is a list is refused."""
        self.assert_fault(Reply(response(200, b"[1, 2, 3]")), "not an object")

    def test_too_large_by_content_length(self):
        """A Content-Length over max_response_bytes is refused without reading the body."""
        self.assert_fault(Flood(length=10 ** 9), "max_response_bytes (65536 bytes",
                         "it sent 1000000000 or more")
        flood = self.standin.connections[-2]
        self.assertLess(flood.sent, 8 * 1024 * 1024)

    def test_too_large_without_length(self):
        """An endless body without a length is cut off just past max_response_bytes."""
        self.assert_fault(Flood(), "max_response_bytes (65536 bytes")
        flood = self.standin.connections[-2]
        self.assertLess(flood.sent, 8 * 1024 * 1024)

    def test_all_nodes_unusable(self):
        """A node list where no entry has a usable name is refused, not served as []."""
        body = nodes_body([{"name": None}, {"hostname": "x"}, 7, "cpu01", {"name": "  "}])
        self.assert_fault(Reply(response(200, body)), "none has a usable name")
