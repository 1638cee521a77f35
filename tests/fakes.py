"""
The one capture loader: the files of tests/fixtures (see its README.rst), as bytes, as a
body, or as a whole raw response ready to replay.
"""
import os
import re

SAMPLES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    """The bytes of ``tests/fixtures/NAME``."""
    with open(os.path.join(SAMPLES, name), "rb") as handle:
        return handle.read()


def fixture_body(name):
    """The body of ``tests/fixtures/NAME``; for a raw ``.http`` capture, what follows the headers."""
    data = fixture(name)
    if name.endswith(".http"):
        data = data.split(b"\r\n\r\n", 1)[1]
    return data


def captured(name):
    """
    A captured ``.http`` response, as Slurm sent it, ready to replay.

    The Content-Length is set to the body's real length: the 24.11 502 capture
    says 761 for its 754-byte body (the body was edited after capture), which a
    real slurmrestd would not send and which the client rightly reads as a
    broken-off answer.
    """
    head, _, body = fixture(name).partition(b"\r\n\r\n")
    head = re.sub(rb"(?i)content-length: *\d+", b"Content-Length: %d" % (len(body),), head)
    return head + b"\r\n\r\n" + body
