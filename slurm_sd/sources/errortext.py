"""
One-line texts from slurmrestd's error answers and from connection failures.
"""
import json
import re

from slurm_sd.pipeline.decode import describe_errors


def slurm_errors(body):
    """The ``errors`` of a Slurm JSON error body in one line, or ``""``."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    return describe_errors(document.get("errors")) if isinstance(document, dict) else ""


_TITLE = re.compile(rb"<title[^>]*>([^<]{1,200})</title>", re.IGNORECASE)


def error_text(body):
    """
    The errors of a Slurm JSON error body, else an HTML page's title (a proxy's
    error page), else the body's first line of text.
    """
    described = slurm_errors(body)
    if described:
        return described
    title = _TITLE.search(body[:4096])
    if title:
        return "an HTML page: " + title.group(1).decode("utf-8", "replace").strip()
    lines = body[:200].decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "empty body"


def failure_text(failure):
    """
    One line for a failure; the lists of failures inside ResponseFailed and
    ResponseNeverReceived become their messages, not their reprs.
    """
    reasons = getattr(failure.value, "reasons", None) or [failure]
    texts = dict.fromkeys(reason.getErrorMessage().strip().rstrip(".") for reason in reasons)
    return "; ".join(text for text in texts if text) or failure.type.__name__
