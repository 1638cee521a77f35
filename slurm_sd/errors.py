"""
Errors slurm-sd raises on purpose.

Every class derives from :class:`SlurmSDError`, so a caller that only wants to
log "this poll failed" catches one class.  ``str()`` of each is one line an
operator can act on: no traceback, no newlines, never a token.
"""


class SlurmSDError(Exception):
    """Base class of every error slurm-sd raises on purpose; str() is one line."""

    def __str__(self):
        """The message with every run of whitespace, newlines included, as one space."""
        # Bodies from slurmrestd may carry newlines; a log line must not.
        return " ".join(super().__str__().split())


class BadResponse(SlurmSDError):
    """slurmrestd (or a saved node list) gave a body we cannot use."""
