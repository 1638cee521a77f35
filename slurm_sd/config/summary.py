"""
What ``slurm-sd check`` prints about a good configuration: the source, where the
token comes from (never the token), the listener, the jobs, and warnings.
"""
import os
import shlex
import shutil

from slurm_sd.config.sources import is_command_url
from slurm_sd.sources.command import command_argv
from slurm_sd.sources.tokens import JWT_VARIABLE


def _readable(path):
    """True when this process can read ``path``."""
    return os.access(path, os.R_OK)


def summary(config, environ):
    """
    The lines ``check`` prints for a good configuration, and its warnings.

    :return: ``(lines, warnings)``; the token's value never appears.
    """
    if config.clusters:
        return _clusters_summary(config, environ)
    slurm = config.slurmrestd
    lines = [f"{config.source}: OK"]
    warnings = list(config.warnings)
    if slurm.url.startswith("file:"):
        path = slurm.url[len("file:"):]
        lines.append(f"source: saved node list {path} (read on every poll)")
        if not _readable(path):
            warnings.append(f"slurmrestd.url: {path} is not readable by this user")
    elif is_command_url(slurm.url):
        lines.append(f"source: the output of `{shlex.join(command_argv(slurm.url))}`, run on "
                     f"every poll without SLURM_JWT, timeout {slurm.timeout:g} s, "
                     f"max_response_bytes {slurm.max_response_bytes}")
        program = command_argv(slurm.url)[0]
        if shutil.which(program, path=environ.get("PATH", os.defpath)) is None:
            warnings.append(f"slurmrestd.url: {program} is not an executable on this "
                            f"PATH; the daemon looks it up in its own PATH")
    else:
        lines.append(f"source: slurmrestd at {slurm.url}, api_version {slurm.api_version}, "
                     f"timeout {slurm.timeout:g} s, max_response_bytes "
                     f"{slurm.max_response_bytes}")
        if slurm.token:
            auth = "token from the command line"
        elif slurm.token_file:
            auth = f"token from {slurm.token_file} (re-read on every poll)"
            if not _readable(slurm.token_file):
                warnings.append(f"slurmrestd.token_file: {slurm.token_file} is not readable "
                                f"by this user; the daemon's user must be able to read it")
        elif slurm.token_command:
            auth = (f"token from running {' '.join(slurm.token_command)} (renewed "
                    f"{slurm.token_renew_before:g} s before it expires)")
        elif slurm.jwt_key_file:
            auth = (f"tokens minted with {slurm.jwt_key_file}, {slurm.token_lifespan:g} s "
                    f"each (renewed {slurm.token_renew_before:g} s before they expire)")
            if not _readable(slurm.jwt_key_file):
                warnings.append(f"slurmrestd.jwt_key_file: {slurm.jwt_key_file} is not "
                                f"readable by this user")
        elif environ.get(JWT_VARIABLE, "").strip():
            auth = "token from the SLURM_JWT environment variable"
        else:
            auth = ("no token: no X-SLURM-* headers are sent (rest_auth/local: run as "
                    "slurmrestd's user or root)")
        if slurm.user and (slurm.token or slurm.token_file or slurm.token_command
                           or slurm.jwt_key_file or environ.get(JWT_VARIABLE)):
            auth += f", user {slurm.user}"
        lines.append(f"auth: {auth}")
        if slurm.tls is not None:
            tls = slurm.tls
            lines.append(f"tls: CA {tls.ca_file or 'the system trust store'}, client "
                         f"certificate {tls.cert_file or 'none'}, server name "
                         f"{tls.server_name or 'from the URL'}")
    cluster = config.cluster_name or "(from slurmrestd's answer)"
    lines.append(f"polls every {config.interval:g} s; listens on {config.listen}; target "
                 f"host from {config.target_address}; cluster_name {cluster}")
    auth = config.http_auth
    if config.web_config_file is not None:
        lines.append(f"web_config_file: {config.web_config_file} (TLS and basic auth; "
                     f"re-read when it changes)")
    elif auth is None:
        lines.append("http_auth: none (anyone who can connect may read /targets and /metrics)")
    else:
        if auth.bearer_token_file:
            lines.append(f"http_auth: bearer token from {auth.bearer_token_file}")
        else:
            lines.append(f"http_auth: basic, user {auth.username}, password from "
                         f"{auth.password_file}")
        for key in ("password_file", "bearer_token_file"):
            path = getattr(auth, key)
            if path and not _readable(path):
                warnings.append(f"http_auth.{key}: {path} is not readable by this user")
    lines.append(f"logging: {config.logging.format}, access log "
                 f"{'on' if config.logging.access_log else 'off'}")
    lines.append(f"state_file: {config.state_file or 'none'}; max_node_drop "
                 f"{config.max_node_drop:g}" + (" (shrink guard off)"
                                                if config.max_node_drop >= 1 else ""))
    lines.append(f"jobs: {len(config.jobs)}")
    width = max(len(job.name) for job in config.jobs)
    for job in config.jobs:
        lines.append(f"  {job.name:<{width}}  " + ", ".join(_job_details(job)))
    return lines, warnings


#: The lines of a single-cluster summary that are about its cluster.
_CLUSTER_LINES = ("source: ", "auth: ", "tls: ", "polls every ")


def _clusters_summary(config, environ):
    """:func:`summary` for the ``clusters`` form: each cluster's lines, then the rest."""
    views = config.cluster_configs()
    lines = [f"{config.source}: OK", f"clusters: {len(views)}"]
    warnings = []
    rest = []
    for name, view in views:
        view_lines, view_warnings = summary(view, environ)
        lines += [f"  {name}: {line}" for line in view_lines[1:]
                  if line.startswith(_CLUSTER_LINES)]
        warnings += [warning if warning in config.warnings else f"cluster {name}: {warning}"
                     for warning in view_warnings if warning not in warnings]
        rest = [line for line in view_lines[1:] if not line.startswith(_CLUSTER_LINES)]
    return lines + rest, warnings


def _job_details(job):
    """``port 9400``, ``partitions gpu``, ... for one job's summary line."""
    details = [f"port {job.port}", f"group_by {job.group_by}"]
    if job.partitions is not None:
        details.append("partitions " + " ".join(job.partitions))
    if job.features is not None:
        details.append("features " + " ".join(job.features))
    if job.gres is not None:
        details.append("gres " + " ".join(job.gres))
    if job.exclude_states:
        details.append("exclude_states " + " ".join(sorted(job.exclude_states)))
    if job.scheme:
        details.append(f"scheme {job.scheme}")
    if job.metrics_path:
        details.append(f"metrics_path {job.metrics_path}")
    if job.params:
        details.append("params " + " ".join(f"{k}={v}" for k, v in job.params))
    if job.labels:
        details.append("labels " + " ".join(f"{k}={v}" for k, v in job.labels))
    return details
