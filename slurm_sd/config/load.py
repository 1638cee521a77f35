"""
Reading the configuration file, and the command-line options that override it.
"""
import os

import attr

from slurm_sd.config.parse import (
    check_api_version,
    check_web_config_file,
    parse,
)
from slurm_sd.config.reader import Reader
from slurm_sd.config.sources import check_source_keys, check_tls_files, check_url
from slurm_sd.errors import ConfigError

#: Where the daemon and the console script look without ``--config``.
DEFAULT_CONFIG_PATH = "/etc/slurm-sd/config.yaml"


#: Command-line options that override the file, and the setting each replaces.
OVERRIDES = {
    "slurmrestd": "slurmrestd.url",
    "api-version": "slurmrestd.api_version",
    "user": "slurmrestd.user",
    "token-file": "slurmrestd.token_file",
    "token": "slurmrestd.token",
    "listen": "listen",
    "interval": "interval",
}


def apply_overrides(config, options):
    """
    Return ``config`` with command-line values in place of the file's.

    :param options: a mapping of option name (``api-version``) to the string
        given, or None where the option was not given.
    :raises ConfigError: naming the option when a value is bad.
    """
    reader = Reader("<command line>")
    reader.base_dir = os.getcwd()
    slurm = {}
    top = {}
    for option, value in options.items():
        if value is None:
            continue
        where = f"--{option}"
        if option == "slurmrestd":
            slurm["url"] = check_url(reader, value, where)
        elif option == "api-version":
            slurm["api_version"] = check_api_version(reader, value, where)
        elif option == "user":
            slurm["user"] = reader.string(value, where).strip()
        elif option == "token-file":
            slurm["token_file"] = reader.path(value, where)
            # It replaces the file's token origin, whichever that is.
            slurm.update(token_command=None, jwt_key_file=None)
        elif option == "token":
            slurm["token"] = reader.string(value, where).strip()
        elif option == "listen":
            top["listen"] = reader.string(value, where)
        elif option == "interval":
            try:
                number = float(value)
            except ValueError:
                reader.fail(where, f"must be a number of seconds, got {value!r}")
            top["interval"] = reader.number(number, where, 1)
    if slurm and config.clusters:
        option = next(name for name, value in options.items()
                      if value is not None and name not in ("listen", "interval"))
        reader.fail(f"--{option}", "does not apply with clusters: set it in each "
                                   "cluster's slurmrestd section of the file")
    if slurm:
        top["slurmrestd"] = attr.evolve(config.slurmrestd, **slurm)
        check_source_keys(reader, top["slurmrestd"],
                          "--api-version" if "api_version" in slurm else None)
    return check_web_config_file(reader, attr.evolve(config, **top), "--listen")


def load(path, options=None, opener=open):
    """
    Read, parse and override the configuration file at ``path``; the
    ``slurmrestd.tls`` files are read once, to find a bad one now.

    :param opener: ``open`` or a replacement, for tests.
    :raises ConfigError: when the file cannot be read or is wrong.
    """
    try:
        with opener(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError(path, "", f"cannot read the configuration: {error.strerror}")
    except UnicodeDecodeError:
        raise ConfigError(path, "", "is not UTF-8 text")
    config = apply_overrides(parse(text, source=path), options or {})
    check_tls_files(config)
    return config
