"""
The ``slurmrestd`` keys of self-renewing tokens (SPEC 9): ``token_command``,
``jwt_key_file``, ``token_renew_before``, ``token_lifespan``; checked with the
same one-line errors as every other key.
"""

#: The keys :func:`parse_token_keys` reads from the ``slurmrestd`` section.
TOKEN_KEYS = ("token_command", "jwt_key_file", "token_renew_before", "token_lifespan")

#: Where a token can come from in the file; at most one of them is set.
_ORIGINS = ("token_file", "token_command", "jwt_key_file")


def parse_token_keys(reader, value):
    """
    The SlurmrestdConfig arguments of the token keys in the ``slurmrestd``
    mapping ``value``.

    :raises ConfigError: on a bad value, or keys that do not go together.
    """
    path = "slurmrestd"
    given = [key for key in _ORIGINS if value.get(key) is not None]
    if len(given) > 1:
        reader.fail(f"{path}.{given[1]}", f"{given[1]} and {given[0]} exclude each other "
                                          f"(both say where the token comes from): keep one")
    kwargs = {}
    command = value.get("token_command")
    if command is not None:
        if isinstance(command, str):
            reader.fail(f"{path}.token_command", "must be a list (the argv, run without a "
                                                 "shell), e.g. [scontrol, token, lifespan=3600]")
        kwargs["token_command"] = reader.string_list(command, f"{path}.token_command")
    if value.get("jwt_key_file") is not None:
        kwargs["jwt_key_file"] = reader.path(value["jwt_key_file"], f"{path}.jwt_key_file")
        if value.get("user") is None:
            reader.fail(f"{path}.jwt_key_file", "needs slurmrestd.user, the user the minted "
                                                "tokens are for (their sun claim)")
    renewing = command is not None or "jwt_key_file" in kwargs
    if value.get("token_renew_before") is not None:
        if not renewing:
            reader.fail(f"{path}.token_renew_before", "applies only with token_command or "
                                                      "jwt_key_file")
        kwargs["token_renew_before"] = reader.number(value["token_renew_before"],
                                                     f"{path}.token_renew_before", 0)
    if value.get("token_lifespan") is not None:
        if "jwt_key_file" not in kwargs:
            reader.fail(f"{path}.token_lifespan", "applies only with jwt_key_file (for "
                                                  "token_command, give the lifespan to the "
                                                  "command, e.g. lifespan=3600)")
        kwargs["token_lifespan"] = reader.number(value["token_lifespan"],
                                                 f"{path}.token_lifespan", 1)
        renew_before = kwargs.get("token_renew_before", 600)
        if kwargs["token_lifespan"] <= renew_before:
            reader.fail(f"{path}.token_lifespan", f"must be longer than token_renew_before "
                                                  f"({renew_before:g} s), or every poll "
                                                  f"would mint a new token")
    return kwargs
