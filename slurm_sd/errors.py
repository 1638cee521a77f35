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


class FetchError(SlurmSDError):
    """A poll that got no usable answer; ``str()`` is the one-line log message."""


class ResponseTooLarge(FetchError):
    """The answer is bigger than ``slurmrestd.max_response_bytes``."""


class SourceTimeout(FetchError):
    """The source did not answer within ``slurmrestd.timeout``."""


class WorkerError(SlurmSDError):
    """The worker process failed (a bug, a kill, a time-out); ``str()`` is one line."""


class SecretFileError(SlurmSDError):
    """A secret file that cannot be used; ``str()`` names the key and the file."""


class ConfigError(SlurmSDError):
    """A bad configuration value: one line naming the file, key path and problem."""

    def __init__(self, source, path, message):
        super().__init__(source, path, message)
        self.source = source
        self.path = path
        self.message = message

    def __str__(self):
        """``FILE: KEY.PATH: problem``."""
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"
