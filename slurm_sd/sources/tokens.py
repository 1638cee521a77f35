"""
Where the JWT sent to slurmrestd comes from: ``--token``, the token file (re-read
every poll), or ``SLURM_JWT``.
"""
from slurm_sd.errors import FetchError

#: The environment variable Slurm's own tools take a token from.
JWT_VARIABLE = "SLURM_JWT"


def read_token(config, environ, opener=open):
    """
    The JWT to send: ``--token``, else the token file (re-read every poll so
    rotation works), else ``SLURM_JWT``; None when there is none.

    :raises FetchError: when the token file cannot be read.
    """
    if config.token:
        return config.token.strip()
    if config.token_file:
        try:
            with opener(config.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as e:
            raise FetchError(f"cannot read slurmrestd.token_file {config.token_file}: "
                             f"{e.strerror}")
        if token.startswith(JWT_VARIABLE + "="):
            # `scontrol token` prints SLURM_JWT=...; accept its output as it is.
            token = token[len(JWT_VARIABLE) + 1:]
        return token or None
    token = environ.get(JWT_VARIABLE, "").strip()
    return token or None
