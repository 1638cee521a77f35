"""
Which source ``slurmrestd.url`` names: :func:`make_source`.
"""
from slurm_sd.config.sources import is_command_url
from slurm_sd.sources.command import CommandSource
from slurm_sd.sources.file import FileSource
from slurm_sd.sources.http import make_http_client
from slurm_sd.sources.slurmrestd import SlurmrestdClient
from slurm_sd.sources.tls import client_tls_options


def make_source(reactor, config, environ=None, token_watch=None):
    """
    The fetch step for ``config.slurmrestd``: a file, a program (``scontrol:``,
    ``command:``) or a slurmrestd client.

    :param token_watch: the daemon's TokenWatch (see SlurmrestdClient).
    :raises ConfigError: a ``slurmrestd.tls`` file cannot be used.
    """
    slurm = config.slurmrestd
    if slurm.url.startswith("file:"):
        return FileSource(slurm.url[len("file:"):], slurm.max_response_bytes)
    if is_command_url(slurm.url):
        return CommandSource(reactor, slurm, environ)
    tls = client_tls_options(slurm, config.source) if slurm.url.startswith("https://") else None
    return SlurmrestdClient(reactor, make_http_client(reactor, slurm.url, tls), slurm, environ,
                            token_watch=token_watch)
