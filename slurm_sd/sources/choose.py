"""
Which source ``slurmrestd.url`` names: :func:`make_source`.
"""
from slurm_sd.sources.file import FileSource
from slurm_sd.sources.http import make_http_client
from slurm_sd.sources.slurmrestd import SlurmrestdClient


def make_source(reactor, config, environ=None, token_watch=None):
    """
    The fetch step for ``config.slurmrestd``: a file or a slurmrestd client.

    :param token_watch: the daemon's TokenWatch (see SlurmrestdClient).
    """
    slurm = config.slurmrestd
    if slurm.url.startswith("file:"):
        return FileSource(slurm.url[len("file:"):], slurm.max_response_bytes)
    return SlurmrestdClient(reactor, make_http_client(reactor, slurm.url), slurm, environ,
                            token_watch=token_watch)
