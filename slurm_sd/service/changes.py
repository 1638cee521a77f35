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


def settings(config):
    """``{dotted key: value}`` of everything but the jobs; the token as a flag."""
    out = {}
    for name in ("url", "api_version", "user", "token_file", "timeout",
                 "max_response_bytes"):
        out[f"slurmrestd.{name}"] = getattr(config.slurmrestd, name)
    out["slurmrestd.token"] = "(set)" if config.slurmrestd.token else None
    for name in ("interval", "cluster_name", "listen", "target_address"):
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
    for key, value in after.items():
        if before[key] != value:
            if key == "slurmrestd.token":
                changes.append("slurmrestd.token changed")
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
    kept = [job.name for job in old.jobs if job.name in new_jobs]
    if kept != [job.name for job in new.jobs if job.name in old_jobs]:
        changes.append("job order changed")
    return changes
