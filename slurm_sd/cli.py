"""
The console script ``slurm-sd``, for operators and cron, next to the daemon:

``slurm-sd check --config PATH``
    Validate the file and summarise it (jobs, source, auth); a bad file is one
    line on stderr and exit status 1.
``slurm-sd dump --config PATH [--job NAME] [--input NODES.json] [--output FILE]``
    Poll slurmrestd once (or read a saved node list) and print the SD JSON, or
    write it atomically to FILE, for Prometheus ``file_sd_configs`` without
    the daemon. Quiet on success (cron mails any output); on failure one line
    on stderr, exit status 1, and FILE is left as it was.
"""
import argparse
import os
import sys
import tempfile

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import react

from slurm_sd.client import FetchError, FileSource, make_source
from slurm_sd.config import ConfigError, load
from slurm_sd.errors import SlurmSDError
from slurm_sd.pipeline import process

DEFAULT_CONFIG = "/etc/slurm-sd/config.yaml"


def _parser():
    """The ``slurm-sd`` command line."""
    parser = argparse.ArgumentParser(
        prog="slurm-sd", description="Prometheus HTTP service discovery for Slurm: check a "
        "configuration, or dump the service discovery JSON once. The daemon itself runs "
        "as `twistd -n --pidfile= slurm-sd --config PATH`.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="validate a configuration file and "
                                "summarise it", description="Validate a configuration file "
                                "and summarise it; exit status 1 on a bad file.")
    check.add_argument("--config", "-c", default=DEFAULT_CONFIG, metavar="PATH",
                       help=f"the YAML configuration (default: {DEFAULT_CONFIG})")
    dump = commands.add_parser("dump", help="poll once (or read a saved node list) and "
                               "print the SD JSON", description="Poll slurmrestd once, or "
                               "read a saved node list, and print the SD JSON.")
    dump.add_argument("--config", "-c", default=DEFAULT_CONFIG, metavar="PATH",
                      help=f"the YAML configuration (default: {DEFAULT_CONFIG})")
    dump.add_argument("--job", metavar="NAME",
                      help="only this job's groups (default: every job's, in config order)")
    dump.add_argument("--input", metavar="NODES.json",
                      help="read this saved node list (slurmrestd's /nodes/ answer or "
                      "`scontrol show nodes --json`; - for stdin) instead of polling")
    dump.add_argument("--output", metavar="FILE",
                      help="write FILE atomically (a temporary file in the same directory, "
                      "then rename) instead of stdout, e.g. for file_sd_configs")
    return parser


def _readable(path):
    """True when this process can read ``path``."""
    return os.access(path, os.R_OK)


def summary(config, environ):
    """
    The lines ``check`` prints for a good configuration, and its warnings.

    :return: ``(lines, warnings)``; the token's value never appears.
    """
    slurm = config.slurmrestd
    lines = [f"{config.source}: OK"]
    warnings = list(config.warnings)
    if slurm.url.startswith("file:"):
        path = slurm.url[len("file:"):]
        lines.append(f"source: saved node list {path} (read on every poll)")
        if not _readable(path):
            warnings.append(f"slurmrestd.url: {path} is not readable by this user")
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
        elif environ.get("SLURM_JWT", "").strip():
            auth = "token from the SLURM_JWT environment variable"
        else:
            auth = ("no token: no X-SLURM-* headers are sent (rest_auth/local: run as "
                    "slurmrestd's user or root)")
        if slurm.user and (slurm.token or slurm.token_file or environ.get("SLURM_JWT")):
            auth += f", user {slurm.user}"
        lines.append(f"auth: {auth}")
    cluster = config.cluster_name or "(from slurmrestd's answer)"
    lines.append(f"polls every {config.interval:g} s; listens on {config.listen}; target "
                 f"host from {config.target_address}; cluster_name {cluster}")
    auth = config.http_auth
    if auth is None:
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
    lines.append(f"jobs: {len(config.jobs)}")
    width = max(len(job.name) for job in config.jobs)
    for job in config.jobs:
        lines.append(f"  {job.name:<{width}}  " + ", ".join(_job_details(job)))
    return lines, warnings


def _job_details(job):
    """``port 9400``, ``partitions gpu``, ... for one job's summary line."""
    details = [f"port {job.port}", f"group_by {job.group_by}"]
    if job.partitions is not None:
        details.append("partitions " + " ".join(job.partitions))
    if job.features is not None:
        details.append("features " + " ".join(job.features))
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


def check(path, out, err, environ):
    """
    ``slurm-sd check``: validate and summarise the file at ``path``.

    :param out: a binary stream for the summary; ``err`` a text stream.
    :return: the exit status.
    """
    try:
        config = load(path)
    except ConfigError as error:
        err.write(f"slurm-sd: {error}\n")
        return 1
    try:
        serverFromString(None, config.listen)
    except Exception as error:
        err.write(f"slurm-sd: {config.source}: listen: bad endpoint {config.listen!r}: "
                  f"{error}\n")
        return 1
    lines, warnings = summary(config, environ)
    lines += [f"warning: {warning}" for warning in warnings]
    out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return 0


def write_atomically(path, data):
    """
    Replace ``path`` by a file holding ``data``, so that a reader (Prometheus'
    file SD) sees the old file or the new one, never half of one.

    The temporary file is in the same directory (``os.replace`` is atomic only
    within a file system) and ends in ``.tmp``, so ``*.json`` globs skip it.
    An existing file's permissions are kept; a new file gets 0666 less umask.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


class _StdinSource:
    """A fetch step reading a node list from a binary stream once (``--input -``)."""

    where = "stdin"

    def __init__(self, stdin, max_bytes):
        self._stdin = stdin
        self._max_bytes = max_bytes

    def fetch_nodes(self):
        """The stream's bytes, as a Deferred; refused past ``max_bytes``."""
        body = self._stdin.read(self._max_bytes + 1)
        if len(body) > self._max_bytes:
            return defer.fail(FetchError(
                f"the node list on stdin is larger than slurmrestd.max_response_bytes "
                f"({self._max_bytes} bytes): raise max_response_bytes"))
        return defer.succeed(body)


def dump(reactor, args, out, err, environ, stdin=None, make_source=make_source):
    """
    ``slurm-sd dump``: one poll (or one read of ``--input``), written out.

    :param args: the parsed command line (``config``, ``job``, ``input``, ``output``).
    :param out: a binary stream (stdout); ``err`` a text stream.
    :param make_source: ``make_source(reactor, config, environ)``, the daemon's
        fetch step (a real slurmrestd client).
    :return: a Deferred firing with the exit status; it never fails.
    """
    try:
        config = load(args.config)
    except ConfigError as error:
        err.write(f"slurm-sd: {error}\n")
        return defer.succeed(1)
    for warning in config.warnings:
        err.write(f"slurm-sd: warning: {warning}\n")
    if args.job is not None and config.job(args.job) is None:
        known = ", ".join(job.name for job in config.jobs)
        err.write(f"slurm-sd: dump: no job {args.job!r} in {config.source} (jobs: {known})\n")
        return defer.succeed(1)
    limit = config.slurmrestd.max_response_bytes
    if args.input == "-":
        source = _StdinSource(stdin, limit)
    elif args.input is not None:
        source = FileSource(args.input, limit)
    else:
        source = make_source(reactor, config, environ)

    def write(snapshot):
        """Print or atomically write the body asked for; exit status 0."""
        body = snapshot.bodies[args.job] + b"\n"
        if args.output:
            write_atomically(args.output, body)
        else:
            out.write(body)
            out.flush()
        if snapshot.nodes == 0:
            err.write(f"slurm-sd: warning: {source.where} listed no nodes; wrote []\n")
        return 0

    def failed(failure):
        """One line on stderr (a traceback for a bug); exit status 1."""
        if failure.check(SlurmSDError):
            err.write(f"slurm-sd: dump: {failure.value}\n")
        elif failure.check(OSError) and args.output:
            err.write(f"slurm-sd: dump: cannot write {args.output}: "
                      f"{failure.value.strerror or failure.value}\n")
        else:
            err.write(f"slurm-sd: dump failed unexpectedly:\n{failure.getTraceback()}")
        return 1

    d = defer.maybeDeferred(source.fetch_nodes)
    d.addCallback(process, config)   # closes a spooled body
    d.addCallback(write)
    d.addErrback(failed)
    return d


def main(argv=None, stdout=None, stderr=None, stdin=None, environ=None, _reactor=None):
    """
    The ``slurm-sd`` console script.

    :return: the exit status (``dump`` exits through ``react`` instead).
    """
    args = _parser().parse_args(argv)
    stdout = sys.stdout.buffer if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    environ = os.environ if environ is None else environ
    if args.command == "check":
        return check(args.config, stdout, stderr, environ)

    def run(reactor):
        """The dump under ``react``, failing with SystemExit on a non-zero status."""
        stdin_ = sys.stdin.buffer if stdin is None else stdin
        d = dump(reactor, args, stdout, stderr, environ, stdin=stdin_)

        def exit_status(status):
            """Turn a non-zero status into the SystemExit that ``react`` exits with."""
            if status:
                raise SystemExit(status)
        return d.addCallback(exit_status)

    react(run, _reactor=_reactor)


if __name__ == "__main__":
    sys.exit(main())
