"""
``parse(text, source) -> Config``: pure (no file I/O); every problem is one line
naming the file, the key path (``jobs[1].dcgm.port``) and what is wrong.
"""
import re

from slurm_sd.config import sources as source_keys
from slurm_sd.config.model import (
    GROUP_BY,
    JOB_KEYS,
    ClusterConfig,
    Config,
    HttpAuth,
    JobConfig,
    LoggingConfig,
    SlurmrestdConfig,
)
from slurm_sd.config.reader import Reader, kind
from slurm_sd.config.tokenkeys import TOKEN_KEYS, parse_token_keys
from slurm_sd.slurm import (
    NEWEST_MINOR,
    OLDEST_MINOR,
    STATE_CLASSES,
    TARGET_ADDRESSES,
    VERSION_PATTERN,
    VERSION_RANGE,
)

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
JOB_NAME = re.compile(r"[A-Za-z0-9_.:-]+\Z")
#: A cluster's name: a label value, a URL query value and a log word as it is.
CLUSTER_NAME = JOB_NAME


def check_api_version(reader, value, path):
    """``auto`` or a supported version ``vX.Y.Z`` (v0.0.37 to the newest known)."""
    value = reader.string(value, path).strip()
    if value == "auto":
        return value
    match = VERSION_PATTERN.match(value)
    if not match:
        reader.fail(path, f"must be auto or a version such as v0.0.40, got {value!r}")
    version = tuple(int(part) for part in match.groups())
    if version < (0, 0, OLDEST_MINOR):
        reader.fail(path, f"{value} is not supported (its nodes have no partitions): "
                          f"use v0.0.{OLDEST_MINOR} or later")
    if version > (0, 0, NEWEST_MINOR):
        reader.fail(path, f"{value} is newer than slurm-sd knows (it reads {VERSION_RANGE}): "
                          f"use one of those, or auto")
    return value


def _parse_slurmrestd(reader, value):
    """The ``slurmrestd`` section."""
    path = "slurmrestd"
    value = reader.mapping(value, path, ("url", "api_version", "user", "token_file",
                                         "timeout", "max_response_bytes", *TOKEN_KEYS,
                                         "tls"),
                           required=("url",))
    kwargs = {"url": source_keys.check_url(reader, value["url"], "slurmrestd.url")}
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
    kwargs.update(parse_token_keys(reader, value))
    kwargs.update(source_keys.parse_tls_key(reader, value))
    return source_keys.check_source_keys(reader, SlurmrestdConfig(**kwargs))


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
    options = reader.mapping(options, path, JOB_KEYS, required=("port",))
    kwargs = {"name": name,
              "port": reader.number(options["port"], f"{path}.port", 1, integer=True,
                                    maximum=65535)}
    for key in ("partitions", "features", "gres"):
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
            reader.fail("logging.access_log", f"must be true or false, got {kind(value['access_log'])}")
        kwargs["access_log"] = value["access_log"]
    return LoggingConfig(**kwargs)


def _parse_clusters(reader, value):
    """The ``clusters`` list (SPEC 10): unique names, each with its own source."""
    if not isinstance(value, list) or not value:
        reader.fail("clusters", "must be a non-empty list of clusters (for example: "
                                "- {name: hpc1, slurmrestd: {url: 'scontrol:'}})")
    clusters = []
    for index, entry in enumerate(value):
        path = f"clusters[{index}]"
        entry = reader.mapping(entry, path, ("name", "slurmrestd", "interval"),
                               required=("name", "slurmrestd"))
        name = entry["name"]
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)
        name = reader.string(name, f"{path}.name")
        if not CLUSTER_NAME.match(name):
            reader.fail(f"{path}.name", f"cluster name {name!r} may hold only letters, "
                                        f"digits and _ . : -")
        if any(cluster.name == name for cluster in clusters):
            reader.fail(f"{path}.name", f"duplicate cluster name {name!r}")
        interval = None
        if entry.get("interval") is not None:
            interval = reader.number(entry["interval"], f"{path}.interval", 1)
        clusters.append(ClusterConfig(
            name=name, slurmrestd=_parse_slurmrestd(reader.within(path), entry["slurmrestd"]),
            interval=interval))
    return tuple(clusters)


_TOP_KEYS = ("slurmrestd", "clusters", "interval", "cluster_name", "listen",
             "target_address", "http_auth", "web_config_file", "logging", "jobs",
             "state_file", "max_node_drop")


def check_web_config_file(reader, config, listen_key="listen"):
    """``web_config_file`` replaces ``http_auth`` and an ``ssl:`` listen string (given
    as ``listen_key``, or ``--listen``): refuse a configuration with it and either."""
    web = config.web_config_file is not None
    if web and config.http_auth is not None:
        reader.fail("web_config_file", "cannot be used together with http_auth: put the "
                                       "users in its basic_auth_users, or use http_auth alone")
    if web and config.listen.split(":", 1)[0].strip().lower() == "ssl":
        reader.fail(listen_key, "an ssl: endpoint cannot be used together with "
                                "web_config_file: listen on tcp: and set tls_server_config "
                                "in the web configuration file")
    return config


def parse(text, source="<string>"):
    """
    Parse and check a YAML configuration.

    :param text: the YAML document.
    :param source: the file it came from, named in errors; relative paths in it
        are taken from that file's directory.
    :return: a :class:`Config`.
    :raises ConfigError: on any bad value or unknown key.
    """
    reader = Reader(source)
    document = reader.load_yaml(text)
    document = reader.mapping(document, "", _TOP_KEYS)
    has_clusters = document.get("clusters") is not None
    if has_clusters and document.get("slurmrestd") is not None:
        reader.fail("clusters", "and slurmrestd exclude each other: give each cluster its "
                                "slurmrestd section under clusters, or use slurmrestd alone")
    if not has_clusters and document.get("slurmrestd") is None:
        reader.fail("slurmrestd", "is required (or clusters, a list of clusters each with "
                                  "its own slurmrestd section)")
    if has_clusters and document.get("cluster_name") is not None:
        reader.fail("cluster_name", "does not apply with clusters: each cluster's name is "
                                    "its __meta_slurm_cluster")
    reader.mapping(document, "", _TOP_KEYS, required=("jobs",))
    jobs, warnings = _parse_jobs(reader, document["jobs"])
    kwargs = {"jobs": jobs, "source": source, "warnings": warnings}
    if has_clusters:
        kwargs["slurmrestd"] = None
        kwargs["clusters"] = _parse_clusters(reader, document["clusters"])
    else:
        kwargs["slurmrestd"] = _parse_slurmrestd(reader, document["slurmrestd"])
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
    if document.get("web_config_file") is not None:
        kwargs["web_config_file"] = reader.path(document["web_config_file"], "web_config_file")
    if document.get("logging") is not None:
        kwargs["logging"] = _parse_logging(reader, document["logging"])
    if document.get("state_file") is not None:
        kwargs["state_file"] = reader.path(document["state_file"], "state_file")
    if document.get("max_node_drop") is not None:
        kwargs["max_node_drop"] = reader.number(document["max_node_drop"], "max_node_drop",
                                                0, maximum=1)
    return check_web_config_file(reader, Config(**kwargs))


