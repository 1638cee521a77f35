"""
The exporter-toolkit web configuration (``web_config_file``): the
``web-config.yml`` that node_exporter and Prometheus read with
``--web.config.file``, for TLS (with client certificates) and bcrypt basic auth.

:func:`parse_web_config` is pure (no file I/O): every problem is one line
naming the file and the key. docs/web-config.rst describes the format.
"""
import re

import attr

from slurm_sd.config.reader import Reader

#: ``client_auth_type`` values, as exporter-toolkit (Go's crypto/tls) names them.
CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
#: The ones that check a client certificate against ``client_ca_file``.
VERIFYING = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
#: The ones that refuse a connection without a client certificate.
REQUIRING = ("RequireAnyClientCert", "RequireAndVerifyClientCert")
#: ``min_version`` / ``max_version`` values, oldest first.
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")

_TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file",
             "client_allowed_sans", "min_version", "max_version")
#: exporter-toolkit keys slurm-sd does not implement: refused by name, not ignored.
_UNSUPPORTED_TLS = ("cert", "key", "client_ca", "cipher_suites", "curve_preferences",
                    "prefer_server_cipher_suites")
_TOP_KEYS = ("tls_server_config", "basic_auth_users")
_UNSUPPORTED_TOP = ("http_server_config", "rate_limit")

#: A bcrypt hash: ``$2a$``, ``$2b$`` or ``$2y$``, a two-digit cost, 53 characters.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}\Z")


@attr.s(frozen=True, slots=True)
class TLSServerConfig:
    """``tls_server_config``: the server's certificate and the client check."""

    cert_file = attr.ib()
    key_file = attr.ib()
    client_auth_type = attr.ib(default="NoClientCert",
                               validator=attr.validators.in_(CLIENT_AUTH_TYPES))
    client_ca_file = attr.ib(default=None)
    client_allowed_sans = attr.ib(default=(), converter=tuple)
    min_version = attr.ib(default="TLS12", validator=attr.validators.in_(TLS_VERSIONS))
    max_version = attr.ib(default="TLS13", validator=attr.validators.in_(TLS_VERSIONS))

    def files(self):
        """The files this setting reads (a change to any of them re-reads them all)."""
        return tuple(path for path in (self.cert_file, self.key_file, self.client_ca_file)
                     if path)


@attr.s(frozen=True, slots=True, repr=False)
class WebConfig:
    """A whole web configuration file; repr shows no user name or hash."""

    tls = attr.ib(default=None)
    #: ``((user name bytes, bcrypt hash bytes), ...)``; empty: no basic auth.
    users = attr.ib(default=(), converter=tuple)
    source = attr.ib(default="<string>")

    def __repr__(self):
        return (f"<WebConfig {self.source}: TLS {'on' if self.tls else 'off'}, "
                f"{len(self.users)} basic auth users>")


def _parse_tls(reader, value):
    """``tls_server_config``, or None when it sets nothing (TLS off, as exporter-toolkit)."""
    path = "tls_server_config"
    if isinstance(value, dict):
        for key in _UNSUPPORTED_TLS:
            if key in value:
                reader.fail(f"{path}.{key}", "is not supported by slurm-sd (use cert_file, "
                                             "key_file and client_ca_file)")
    value = reader.mapping(value, path, _TLS_KEYS)
    if not any(value.get(key) for key in _TLS_KEYS):
        return None
    kwargs = {}
    for key in ("cert_file", "key_file"):
        if not value.get(key):
            reader.fail(f"{path}.{key}", "is required when TLS is configured")
        kwargs[key] = reader.path(value[key], f"{path}.{key}")
    auth = value.get("client_auth_type") or "NoClientCert"
    kwargs["client_auth_type"] = reader.choice(auth, f"{path}.client_auth_type",
                                               CLIENT_AUTH_TYPES)
    if value.get("client_ca_file"):
        if auth == "NoClientCert":
            reader.fail(f"{path}.client_ca_file", "is set but client_auth_type is "
                                                  "NoClientCert; set client_auth_type too")
        kwargs["client_ca_file"] = reader.path(value["client_ca_file"],
                                               f"{path}.client_ca_file")
    elif auth in VERIFYING:
        reader.fail(f"{path}.client_ca_file", f"is required with client_auth_type {auth}")
    if value.get("client_allowed_sans"):
        if auth not in VERIFYING:
            reader.fail(f"{path}.client_allowed_sans", "needs a client_auth_type that "
                                                       "verifies: " + ", ".join(VERIFYING))
        kwargs["client_allowed_sans"] = reader.string_list(value["client_allowed_sans"],
                                                           f"{path}.client_allowed_sans")
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        kwargs[key] = reader.choice(value.get(key) or default, f"{path}.{key}", TLS_VERSIONS)
    if TLS_VERSIONS.index(kwargs["min_version"]) > TLS_VERSIONS.index(kwargs["max_version"]):
        reader.fail(f"{path}.min_version", f"{kwargs['min_version']} is newer than "
                                           f"max_version {kwargs['max_version']}")
    return TLSServerConfig(**kwargs)


def _parse_users(reader, value):
    """``basic_auth_users``: user name -> bcrypt hash."""
    path = "basic_auth_users"
    if not isinstance(value, dict):
        reader.fail(path, "must be a mapping of user name to bcrypt hash")
    users = []
    for name, hashed in value.items():
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)
        name = reader.string(name, path + " (a user name)")
        where = f"{path}.{name}"
        if ":" in name:
            reader.fail(where, "a user name must not contain ':' (basic auth splits there)")
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed.strip()):
            # Never show the value: it may be a password put here by mistake.
            reader.fail(where, "must be a bcrypt hash ($2y$10$... as htpasswd -nBC 10 or "
                               "python -c 'import bcrypt; ...' prints), not a password")
        users.append((name.encode("utf-8"), hashed.strip().encode("ascii")))
    return tuple(users)


def parse_web_config(text, source="<string>"):
    """
    Parse and check a web configuration file.

    :param source: the file it came from, named in errors; relative paths in it
        are taken from that file's directory (as exporter-toolkit does).
    :return: a :class:`WebConfig`.
    :raises ConfigError: on any bad value or unknown key.
    """
    reader = Reader(source)
    document = reader.load_yaml(text)
    if isinstance(document, dict):
        for key in _UNSUPPORTED_TOP:
            if key in document:
                reader.fail(key, "is not supported by slurm-sd")
    document = reader.mapping(document, "", _TOP_KEYS)
    tls = None
    if document.get("tls_server_config") is not None:
        tls = _parse_tls(reader, document["tls_server_config"])
    users = ()
    if document.get("basic_auth_users") is not None:
        users = _parse_users(reader, document["basic_auth_users"])
    return WebConfig(tls=tls, users=users, source=source)
