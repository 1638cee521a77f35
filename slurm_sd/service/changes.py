"""
What differs between two configurations, in short phrases for a reload's log line.
"""
from slurm_sd.config.model import JOB_KEYS


def show(value):
    """A setting's value as written in a log line."""
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        value = sorted(value)
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _source_settings(slurm, prefix):
    """``{dotted key: value}`` of a ``slurmrestd`` section; the token as a flag."""
    out = {}
    for name in ("url", "api_version", "user", "token_file", "timeout",
                 "max_response_bytes"):
        out[f"{prefix}slurmrestd.{name}"] = getattr(slurm, name)
    out[f"{prefix}slurmrestd.token"] = "(set)" if slurm.token else None
    tls = slurm.tls
    for name in ("ca_file", "cert_file", "key_file", "server_name"):
        out[f"{prefix}slurmrestd.tls.{name}"] = getattr(tls, name) if tls is not None else None
    return out


def settings(config):
    """``{dotted key: value}`` of everything but the jobs; the token as a flag;
    ``clusters.NAME.slurmrestd.url`` and so on with ``clusters``."""
    out = {}
    if not config.clusters:
        out.update(_source_settings(config.slurmrestd, ""))
    for cluster in config.clusters:
        prefix = f"clusters.{cluster.name}."
        out.update(_source_settings(cluster.slurmrestd, prefix))
        out[prefix + "interval"] = cluster.interval
    for name in ("interval", "cluster_name", "listen", "target_address", "web_config_file",
                 "state_file", "max_node_drop"):
        out[name] = getattr(config, name)
    auth = config.http_auth
    for name in ("username", "password_file", "bearer_token_file"):
        out[f"http_auth.{name}"] = getattr(auth, name) if auth is not None else None
    out["logging.format"] = config.logging.format
    out["logging.access_log"] = config.logging.access_log
    return out


def describe_changes(old, new):
    """
    What differs between two configurations, as short phrases for one log line
    (``interval 300 -> 60``, ``job ipmi added``, ``job dcgm: port 9400 -> 9401``).
    The token's value is never shown.
    """
    changes = []
    before, after = settings(old), settings(new)
    old_clusters = [name for name, _ in old.cluster_configs()]
    new_clusters = [name for name, _ in new.cluster_configs()]
    if old.clusters or new.clusters:
        changes += [f"cluster {name} added" for name in new_clusters
                    if name not in old_clusters]
        changes += [f"cluster {name} removed" for name in old_clusters
                    if name not in new_clusters]
    for key, value in after.items():
        if key not in before:
            continue  # a cluster added, or the other form: said above
        if before[key] != value:
            if key.endswith("slurmrestd.token"):
                changes.append(f"{key} changed")
            else:
                changes.append(f"{key} {show(before[key])} -> {show(value)}")
    old_jobs = {job.name: job for job in old.jobs}
    new_jobs = {job.name: job for job in new.jobs}
    for name in new_jobs:
        if name not in old_jobs:
            changes.append(f"job {name} added (port {new_jobs[name].port})")
    for name in old_jobs:
        if name not in new_jobs:
            changes.append(f"job {name} removed")
    for name, job in new_jobs.items():
        was = old_jobs.get(name)
        if was is None or was == job:
            continue
        fields = [f"{field} {show(getattr(was, field))} -> {show(getattr(job, field))}"
                  for field in JOB_KEYS if getattr(was, field) != getattr(job, field)]
        changes.append(f"job {name}: " + ", ".join(fields))
    if [name for name in old_clusters if name in new_clusters] != [
            name for name in new_clusters if name in old_clusters]:
        changes.append("cluster order changed")
    kept = [job.name for job in old.jobs if job.name in new_jobs]
    if kept != [job.name for job in new.jobs if job.name in old_jobs]:
        changes.append("job order changed")
    return changes
