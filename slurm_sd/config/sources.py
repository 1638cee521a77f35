"""
The config keys of the sources: every URL form (:func:`check_url`: slurmrestd,
``file:``, ``scontrol:`` and ``command:``), and ``slurmrestd.tls`` for ``https://``.  Pure, like
:mod:`slurm_sd.config.parse`: the TLS files are read by :func:`check_tls_files`
(called by :func:`slurm_sd.config.load.load`), not here.
"""
import re
import shlex
from urllib.parse import urlsplit

from slurm_sd.config.model import TlsConfig
from slurm_sd.sources.tls import client_tls_options

#: URL prefixes of the sources that run a program instead of asking slurmrestd.
COMMAND_PREFIXES = ("scontrol:", "command:")

TLS_KEYS = ("ca_file", "cert_file", "key_file", "server_name")

_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


def is_command_url(url):
    """True for ``scontrol:`` and ``command:`` sources."""
    return url.startswith(COMMAND_PREFIXES)


def check_command_url(reader, value, path):
    """``scontrol:``, ``scontrol:/path/to/scontrol`` or ``command:ARGV``, checked."""
    if value.startswith("scontrol:"):
        program = value[len("scontrol:"):].strip()
        return "scontrol:" + (reader.path(program, path) if program else "")
    words = command_words(reader, value, path)
    if not words:
        reader.fail(path, "command: needs a program to run, e.g. 'command:sinfo --json'")
    return value


def command_words(reader, value, path):
    """The argv of a ``command:`` URL, split like a shell would (no shell runs it)."""
    try:
        return shlex.split(value[len("command:"):])
    except ValueError as error:
        reader.fail(path, f"cannot be split into words like a shell would ({error}), "
                          f"got {value!r}")


def parse_tls_key(reader, section):
    """``{"tls": TlsConfig}`` when the slurmrestd ``section`` has ``tls``, else ``{}``."""
    if section.get("tls") is None:
        return {}
    return {"tls": parse_tls(reader, section["tls"])}


def parse_tls(reader, value, path="slurmrestd.tls"):
    """The ``slurmrestd.tls`` mapping."""
    value = reader.mapping(value, path, TLS_KEYS)
    kwargs = {}
    for key in ("ca_file", "cert_file", "key_file"):
        if value.get(key) is not None:
            kwargs[key] = reader.path(value[key], f"{path}.{key}")
    for key, other in (("cert_file", "key_file"), ("key_file", "cert_file")):
        if key in kwargs and other not in kwargs:
            reader.fail(f"{path}.{other}", f"is required with {key} (a client "
                                           f"certificate needs both)")
    if value.get("server_name") is not None:
        name = reader.string(value["server_name"], f"{path}.server_name").strip()
        if not _HOST_NAME.match(name):
            reader.fail(f"{path}.server_name", f"must be a host name, got {name!r}")
        kwargs["server_name"] = name
    return TlsConfig(**kwargs)


def check_source_keys(reader, slurm, where=None):
    """
    Keys that the source of ``slurm.url`` cannot use: ``api_version`` with a
    command source, ``tls`` without ``https://``.

    :param slurm: a :class:`~slurm_sd.config.model.SlurmrestdConfig`.
    :param where: the key path (or option) to name instead of the file's.
    :return: ``slurm``.
    """
    if is_command_url(slurm.url) and slurm.api_version != "auto":
        kind = slurm.url.split(":", 1)[0]
        reader.fail(where or "slurmrestd.api_version",
                    f"must be auto (or absent) with a {kind}: source, got "
                    f"{slurm.api_version!r}: the command's output says which version it is")
    if slurm.tls is not None and not slurm.url.startswith("https://"):
        reader.fail("slurmrestd.tls", f"applies only to https:// URLs, and "
                                      f"slurmrestd.url is {slurm.url!r}")
    return slurm


def check_tls_files(config):
    """
    Read the ``slurmrestd.tls`` files once, so that a missing, unreadable or bad
    one stops start-up (or a reload) with one line naming the key.

    :raises ConfigError: naming the key.
    """
    if config.clusters:
        sections = [(f"clusters[{index}].", cluster.slurmrestd)
                    for index, cluster in enumerate(config.clusters)]
    else:
        sections = [("", config.slurmrestd)]
    for prefix, slurm in sections:
        if slurm.tls is not None and slurm.url.startswith("https://"):
            client_tls_options(slurm, config.source, prefix)


def check_url(reader, value, path):
    """A source URL: http(s)://, unix:/socket, file:/nodes.json, scontrol: or command:."""
    value = reader.string(value, path).strip()
    if is_command_url(value):
        return check_command_url(reader, value, path)
    if value.startswith("unix:"):
        return "unix:" + reader.path(value[len("unix:"):], path)
    if value.startswith("file:"):
        return "file:" + reader.path(value[len("file:"):], path)
    if re.match(r"https?://[^/\s]+", value):
        return _check_http_url(reader, value, path).rstrip("/")
    reader.fail(path, f"must be http://HOST:PORT, https://HOST:PORT, unix:/PATH, "
                      f"file:/PATH, scontrol: or command:ARGV, got {value!r}")


def _check_http_url(reader, value, path):
    """An http(s) URL the client can use as it is: host, port, no query or secrets."""
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        reader.fail(path, f"must not contain spaces or control characters, got {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        reader.fail(path, f"is not a valid URL ({error}), got {value!r}")
    if parts.username is not None or parts.password is not None:
        # It would show in every log line that names slurmrestd.
        reader.fail(path, "must not hold credentials; use slurmrestd.user and token_file")
    if not parts.hostname:
        reader.fail(path, f"has no host name, got {value!r}")
    if port == 0:
        reader.fail(path, f"port must be from 1 to 65535, got {value!r}")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        reader.fail(path, f"must not have a query or fragment (slurm-sd adds "
                          f"/slurm/VERSION/nodes/), got {value!r}")
    return value
