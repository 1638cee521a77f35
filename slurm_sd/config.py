"""
The configuration model: a YAML file parsed into frozen attrs classes.

``parse(text, source)`` is pure (no file I/O) and explains every problem as one
line naming the file, the key path (``jobs[1].dcgm.port``) and what is wrong.
"""
import math
import os
import re
from urllib.parse import urlsplit

import attr
import yaml


class ConfigError(Exception):
    """A bad configuration value: one line naming the file, key path and problem."""

    def __init__(self, source, path, message):
        super().__init__(source, path, message)
        self.source = source
        self.path = path
        self.message = message

    def __str__(self):
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"

#: API versions we can convert; v0.0.36 has no node ``partitions``.
OLDEST_VERSION = (0, 0, 37)
STATE_CLASSES = ("active", "drain", "down", "powered_down", "unknown")
TARGET_ADDRESSES = ("address", "hostname", "name")
GROUP_BY = ("partition", "node")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
JOB_NAME = re.compile(r"[A-Za-z0-9_.:-]+\Z")
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)\Z")


def _positive(instance, attribute, value):
    """attrs validator: a number greater than zero."""
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0")


@attr.s(frozen=True, slots=True)
class HttpAuth:
    """Credentials Prometheus must send to ``/targets`` and ``/metrics``."""

    username = attr.ib(validator=attr.validators.optional(
        attr.validators.instance_of(str)), default=None)
    password_file = attr.ib(validator=attr.validators.optional(
        attr.validators.instance_of(str)), default=None)
    bearer_token_file = attr.ib(validator=attr.validators.optional(
        attr.validators.instance_of(str)), default=None)


@attr.s(frozen=True, slots=True)
class SlurmrestdConfig:
    """Where and how to ask slurmrestd for the node list."""

    url = attr.ib(validator=attr.validators.instance_of(str))
    api_version = attr.ib(default="auto", validator=attr.validators.instance_of(str))
    user = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    token_file = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    # From --token only; repr=False keeps it out of every log line.
    token = attr.ib(default=None, repr=False, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    timeout = attr.ib(default=60.0, converter=float, validator=_positive)
    max_response_bytes = attr.ib(default=1024 ** 3, validator=_positive)


@attr.s(frozen=True, slots=True)
class JobConfig:
    """One Prometheus job: which nodes, which port, which extra labels."""

    name = attr.ib(validator=attr.validators.instance_of(str))
    port = attr.ib(validator=attr.validators.instance_of(int))
    partitions = attr.ib(default=None)
    features = attr.ib(default=None)
    exclude_states = attr.ib(default=frozenset(), converter=frozenset)
    scheme = attr.ib(default=None)
    metrics_path = attr.ib(default=None)
    params = attr.ib(default=(), converter=tuple)
    labels = attr.ib(default=(), converter=tuple)
    group_by = attr.ib(default="partition", validator=attr.validators.in_(GROUP_BY))


@attr.s(frozen=True, slots=True)
class LoggingConfig:
    """How the daemon writes its log."""

    format = attr.ib(default="text", validator=attr.validators.in_(("text", "json")))
    access_log = attr.ib(default=False, validator=attr.validators.instance_of(bool))


@attr.s(frozen=True, slots=True)
class Config:
    """The whole, checked configuration of one slurm-sd daemon."""

    slurmrestd = attr.ib(validator=attr.validators.instance_of(SlurmrestdConfig))
    jobs = attr.ib(converter=tuple)
    interval = attr.ib(default=300.0, converter=float)
    cluster_name = attr.ib(default=None)
    listen = attr.ib(default="tcp:8080")
    target_address = attr.ib(default="address",
                             validator=attr.validators.in_(TARGET_ADDRESSES))
    http_auth = attr.ib(default=None)
    logging = attr.ib(default=attr.Factory(LoggingConfig))
    source = attr.ib(default="<string>")
    #: Non-fatal remarks found while parsing (e.g. two jobs on one port).
    warnings = attr.ib(default=(), converter=tuple, eq=False)

    def job(self, name):
        """The job called ``name``, or None."""
        for job in self.jobs:
            if job.name == name:
                return job
        return None


class _Reader:
    """Walks a YAML document, naming the key path in every error."""

    def __init__(self, source):
        self.source = source
        self.base_dir = os.path.dirname(os.path.abspath(source)) if not source.startswith("<") else os.getcwd()

    def fail(self, path, message):
        """Raise the one-line error for ``path``."""
        raise ConfigError(self.source, path, message)

    def mapping(self, value, path, allowed, required=()):
        """Check that ``value`` is a mapping with only ``allowed`` keys."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                where = _join(path, str(key))
                self.fail(where, "unknown key (allowed: " + ", ".join(allowed) + ")")
        for key in required:
            if value.get(key) is None:
                self.fail(_join(path, key), "is required")
        return value

    def string(self, value, path, allow_empty=False):
        """A string (YAML scalars such as 10 are not silently turned into one)."""
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {_kind(value)}")
        if not allow_empty and not value.strip():
            self.fail(path, "must not be empty")
        return value

    def number(self, value, path, minimum, integer=False, maximum=None):
        """A number at least ``minimum`` (and at most ``maximum``)."""
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "an integer" if integer else "a number"
            self.fail(path, f"must be {what}, got {_kind(value)}")
        if not math.isfinite(value):
            self.fail(path, f"must be a finite number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(path, f"must be {bound}, got {value!r}")
        return value

    def string_list(self, value, path):
        """A non-empty list of non-empty strings, as a tuple."""
        if isinstance(value, str) or not isinstance(value, list) or not value:
            self.fail(path, f"must be a non-empty list of strings, got {_kind(value)}")
        return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(value))

    def choice(self, value, path, choices):
        """One of ``choices``."""
        if value not in choices:
            self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def path(self, value, path):
        """A file path; a relative one is taken from the config file's directory."""
        value = self.string(value, path)
        if "\0" in value:
            self.fail(path, "must not contain a NUL character")
        return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))

    def string_map(self, value, path, key_pattern=None, key_rule=""):
        """A mapping of string keys to scalar values, as sorted (key, str) pairs."""
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {_kind(value)}")
        pairs = []
        for key, item in value.items():
            where = _join(path, str(key))
            if not isinstance(key, str) or (key_pattern and not key_pattern.match(key)):
                self.fail(where, f"is not a valid name{key_rule}")
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                self.fail(where, f"must be a string, got {_kind(item)}")
            pairs.append((key, str(item)))
        return tuple(sorted(pairs))


def _kind(value):
    """A short description of a YAML value for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _join(path, key):
    """``a.b`` key paths, with no leading dot at the top."""
    return f"{path}.{key}" if path else key


def check_url(reader, value, path):
    """A slurmrestd URL: http(s)://, unix:/socket or file:/saved/nodes.json."""
    value = reader.string(value, path).strip()
    if value.startswith("unix:"):
        return "unix:" + reader.path(value[len("unix:"):], path)
    if value.startswith("file:"):
        return "file:" + reader.path(value[len("file:"):], path)
    if re.match(r"https?://[^/\s]+", value):
        return _check_http_url(reader, value, path).rstrip("/")
    reader.fail(path, f"must be http://HOST:PORT, https://HOST:PORT, unix:/PATH "
                      f"or file:/PATH, got {value!r}")


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


def check_api_version(reader, value, path):
    """``auto`` or a version ``vX.Y.Z`` not older than v0.0.37."""
    value = reader.string(value, path).strip()
    if value == "auto":
        return value
    match = _VERSION.match(value)
    if not match:
        reader.fail(path, f"must be auto or a version such as v0.0.40, got {value!r}")
    if tuple(int(part) for part in match.groups()) < OLDEST_VERSION:
        reader.fail(path, f"{value} is not supported (its nodes have no partitions): "
                          f"use v0.0.37 or later")
    return value


def _parse_slurmrestd(reader, value):
    """The ``slurmrestd`` section."""
    path = "slurmrestd"
    value = reader.mapping(value, path, ("url", "api_version", "user", "token_file",
                                         "timeout", "max_response_bytes"),
                           required=("url",))
    kwargs = {"url": check_url(reader, value["url"], "slurmrestd.url")}
    if value.get("api_version") is not None:
        kwargs["api_version"] = check_api_version(reader, value["api_version"],
                                                  "slurmrestd.api_version")
    if value.get("user") is not None:
        kwargs["user"] = reader.string(value["user"], "slurmrestd.user").strip()
    if value.get("token_file") is not None:
        kwargs["token_file"] = reader.path(value["token_file"], "slurmrestd.token_file")
    if value.get("timeout") is not None:
        kwargs["timeout"] = reader.number(value["timeout"], "slurmrestd.timeout", 0.001)
    if value.get("max_response_bytes") is not None:
        kwargs["max_response_bytes"] = reader.number(
            value["max_response_bytes"], "slurmrestd.max_response_bytes", 1024, integer=True)
    return SlurmrestdConfig(**kwargs)


_JOB_KEYS = ("port", "partitions", "features", "exclude_states", "scheme",
             "metrics_path", "params", "labels", "group_by")


def _parse_job(reader, entry, index):
    """One ``jobs`` entry: a one-key mapping ``{name: {port: ...}}``."""
    path = f"jobs[{index}]"
    if not isinstance(entry, dict) or len(entry) != 1:
        reader.fail(path, "must be a mapping with exactly one key, the job name "
                          "(for example: - node: {port: 9100})")
    (name, options), = entry.items()
    if not isinstance(name, str) or not JOB_NAME.match(name):
        reader.fail(path, f"job name {name!r} may hold only letters, digits and _ . : -")
    path = f"{path}.{name}"
    options = reader.mapping(options, path, _JOB_KEYS, required=("port",))
    kwargs = {"name": name,
              "port": reader.number(options["port"], f"{path}.port", 1, integer=True,
                                    maximum=65535)}
    for key in ("partitions", "features"):
        if options.get(key) is not None:
            kwargs[key] = reader.string_list(options[key], f"{path}.{key}")
    if options.get("exclude_states") is not None:
        states = reader.string_list(options["exclude_states"], f"{path}.exclude_states")
        for i, state in enumerate(states):
            reader.choice(state, f"{path}.exclude_states[{i}]", STATE_CLASSES)
        kwargs["exclude_states"] = frozenset(states)
    if options.get("scheme") is not None:
        kwargs["scheme"] = reader.choice(options["scheme"], f"{path}.scheme", ("http", "https"))
    if options.get("metrics_path") is not None:
        metrics_path = reader.string(options["metrics_path"], f"{path}.metrics_path")
        if not metrics_path.startswith("/"):
            reader.fail(f"{path}.metrics_path", f"must start with /, got {metrics_path!r}")
        kwargs["metrics_path"] = metrics_path
    if options.get("params") is not None:
        kwargs["params"] = reader.string_map(options["params"], f"{path}.params",
                                             LABEL_NAME, " (letters, digits and _)")
    if options.get("labels") is not None:
        labels = reader.string_map(options["labels"], f"{path}.labels", LABEL_NAME,
                                   " (a Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*)")
        for key, _ in labels:
            if key.startswith("__"):
                reader.fail(f"{path}.labels.{key}", "names starting with __ are reserved "
                                                    "(use scheme, metrics_path or params)")
        kwargs["labels"] = labels
    if options.get("group_by") is not None:
        kwargs["group_by"] = reader.choice(options["group_by"], f"{path}.group_by", GROUP_BY)
    return JobConfig(**kwargs)


def _parse_jobs(reader, value):
    """The ``jobs`` list; names are unique, shared ports are warned about."""
    if not isinstance(value, list) or not value:
        reader.fail("jobs", "must be a non-empty list of jobs (for example: - node: {port: 9100})")
    jobs = []
    warnings = []
    for index, entry in enumerate(value):
        job = _parse_job(reader, entry, index)
        for other in jobs:
            if other.name == job.name:
                reader.fail(f"jobs[{index}].{job.name}", "duplicate job name")
            if other.port == job.port:
                warnings.append(f"{reader.source}: jobs[{index}].{job.name}.port: "
                                f"{job.port} is also the port of job {other.name!r}")
        jobs.append(job)
    return tuple(jobs), warnings


def _parse_http_auth(reader, value):
    """The optional ``http_auth`` section: basic auth or a bearer token."""
    path = "http_auth"
    value = reader.mapping(value, path, ("username", "password_file", "bearer_token_file"))
    basic = value.get("username") is not None or value.get("password_file") is not None
    bearer = value.get("bearer_token_file") is not None
    if basic == bearer:
        reader.fail(path, "set either username and password_file, or bearer_token_file")
    if bearer:
        return HttpAuth(bearer_token_file=reader.path(value["bearer_token_file"],
                                                      f"{path}.bearer_token_file"))
    for key in ("username", "password_file"):
        if value.get(key) is None:
            reader.fail(f"{path}.{key}", "is required with basic auth")
    return HttpAuth(username=reader.string(value["username"], f"{path}.username"),
                    password_file=reader.path(value["password_file"], f"{path}.password_file"))


def _parse_logging(reader, value):
    """The optional ``logging`` section."""
    value = reader.mapping(value, "logging", ("format", "access_log"))
    kwargs = {}
    if value.get("format") is not None:
        kwargs["format"] = reader.choice(value["format"], "logging.format", ("text", "json"))
    if value.get("access_log") is not None:
        if not isinstance(value["access_log"], bool):
            reader.fail("logging.access_log", f"must be true or false, got {_kind(value['access_log'])}")
        kwargs["access_log"] = value["access_log"]
    return LoggingConfig(**kwargs)


_TOP_KEYS = ("slurmrestd", "interval", "cluster_name", "listen", "target_address",
             "http_auth", "logging", "jobs")


def parse(text, source="<string>"):
    """
    Parse and check a YAML configuration.

    :param text: the YAML document.
    :param source: the file it came from, named in errors; relative paths in it
        are taken from that file's directory.
    :return: a :class:`Config`.
    :raises ConfigError: on any bad value or unknown key.
    """
    reader = _Reader(source)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(source, "", f"not valid YAML at {where}: {problem}")
    document = reader.mapping(document, "", _TOP_KEYS, required=("slurmrestd", "jobs"))
    jobs, warnings = _parse_jobs(reader, document["jobs"])
    kwargs = {"slurmrestd": _parse_slurmrestd(reader, document["slurmrestd"]),
              "jobs": jobs, "source": source, "warnings": warnings}
    if document.get("interval") is not None:
        kwargs["interval"] = reader.number(document["interval"], "interval", 1)
    if document.get("cluster_name") is not None:
        cluster_name = document["cluster_name"]
        if isinstance(cluster_name, int) and not isinstance(cluster_name, bool):
            cluster_name = str(cluster_name)
        kwargs["cluster_name"] = reader.string(cluster_name, "cluster_name")
    if document.get("listen") is not None:
        kwargs["listen"] = reader.string(document["listen"], "listen")
    if document.get("target_address") is not None:
        kwargs["target_address"] = reader.choice(document["target_address"], "target_address",
                                                 TARGET_ADDRESSES)
    if document.get("http_auth") is not None:
        kwargs["http_auth"] = _parse_http_auth(reader, document["http_auth"])
    if document.get("logging") is not None:
        kwargs["logging"] = _parse_logging(reader, document["logging"])
    return Config(**kwargs)


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
    reader = _Reader("<command line>")
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
    if slurm:
        top["slurmrestd"] = attr.evolve(config.slurmrestd, **slurm)
    return attr.evolve(config, **top)


def load(path, options=None, opener=open):
    """
    Read, parse and override the configuration file at ``path``.

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
    config = parse(text, source=path)
    return apply_overrides(config, options or {})
