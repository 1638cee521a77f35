"""
:func:`make_tokens`: the token origin ``slurmrestd`` names (see
:mod:`slurm_sd.sources.tokens` for the interface).
"""
from slurm_sd.sources.jwtmint import TokenMinter
from slurm_sd.sources.tokencommand import TokenCommand
from slurm_sd.sources.tokens import ReadTokens, RenewingTokens


def make_tokens(reactor, config, environ):
    """
    ``--token`` first (the command line overrides the file), then
    ``token_command``, ``jwt_key_file``, ``token_file``, ``SLURM_JWT``.

    :param config: the :class:`~slurm_sd.config.model.SlurmrestdConfig`.
    """
    if config.token_command and not config.token:
        command = TokenCommand(reactor, config.token_command, config.timeout, environ)
        return RenewingTokens(reactor, command, config.token_renew_before)
    if config.jwt_key_file and not config.token:
        minter = TokenMinter(reactor, config.jwt_key_file, config.user, config.token_lifespan)
        return RenewingTokens(reactor, minter, config.token_renew_before)
    return ReadTokens(config, environ)
