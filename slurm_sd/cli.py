"""
The console script ``slurm-sd``, for operators and cron:

``slurm-sd serve --config PATH [options]``
    Run the daemon in the foreground with no pid file (``twistd -n --pidfile=
    slurm-sd ...``); the options are the daemon's (``slurm-sd serve --help``).

``slurm-sd check --config PATH``
    Validate the file and summarise it (jobs, source, auth); a bad file is one
    line on stderr and exit status 1.
``slurm-sd dump --config PATH [--job NAME] [--input NODES.json] [--output FILE]
[--summary | --pretty]``
    Poll slurmrestd once (or read a saved node list) and print the SD JSON, or
    write it atomically to FILE, for Prometheus ``file_sd_configs`` without
    the daemon. Quiet on success (cron mails any output); on failure one line
    on stderr, exit status 1, and FILE is left as it was. ``--summary`` prints
    a table of target counts instead, ``--pretty`` indented JSON.
"""
import argparse
import json
import os
import sys

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import react

from slurm_sd._version import __version__
from slurm_sd.atomicfile import write_atomically
from slurm_sd.config.load import DEFAULT_CONFIG_PATH, load
from slurm_sd.config.summary import summary
from slurm_sd.errors import ConfigError, SlurmSDError
from slurm_sd.pipeline.render import merge_snapshots
from slurm_sd.pipeline.runner import process
from slurm_sd.pipeline.tally import table, tally
from slurm_sd.sources.choose import make_source
from slurm_sd.sources.file import FileSource, StdinSource
from slurm_sd.web.webfiles import WebConfigFiles


def _parser():
    """The ``slurm-sd`` command line."""
    parser = argparse.ArgumentParser(
        prog="slurm-sd", description="Prometheus HTTP service discovery for Slurm: run the "
        "daemon, check a configuration, or dump the service discovery JSON once.")
    parser.add_argument("--version", action="version", version=f"slurm-sd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only for --help: main() hands `serve ...` to twistd's option parser as it is.
    commands.add_parser("serve", help="run the daemon in the foreground (no pid file); "
                        "`slurm-sd serve --help` lists its options")
    check = commands.add_parser("check", help="validate a configuration file and "
                                "summarise it", description="Validate a configuration file "
                                "and summarise it; exit status 1 on a bad file.")
    check.add_argument("--config", "-c", default=DEFAULT_CONFIG_PATH, metavar="PATH",
                       help=f"the YAML configuration (default: {DEFAULT_CONFIG_PATH})")
    dump = commands.add_parser("dump", help="poll once (or read a saved node list) and "
                               "print the SD JSON", description="Poll slurmrestd once, or "
                               "read a saved node list, and print the SD JSON.")
    dump.add_argument("--config", "-c", default=DEFAULT_CONFIG_PATH, metavar="PATH",
                      help=f"the YAML configuration (default: {DEFAULT_CONFIG_PATH})")
    dump.add_argument("--job", metavar="NAME",
                      help="only this job's groups (default: every job's, in config order)")
    dump.add_argument("--cluster", metavar="NAME",
                      help="with clusters: poll only this cluster (default: every cluster, "
                      "in config order)")
    dump.add_argument("--input", metavar="NODES.json",
                      help="read this saved node list (slurmrestd's /nodes/ answer or "
                      "`scontrol show nodes --json`; - for stdin) instead of polling")
    dump.add_argument("--output", metavar="FILE",
                      help="write FILE atomically (a temporary file in the same directory, "
                      "then rename) instead of stdout, e.g. for file_sd_configs")
    shape = dump.add_mutually_exclusive_group()
    shape.add_argument("--summary", action="store_true",
                       help="print a table of targets by job, cluster, partition and "
                       "coarse state instead of the JSON")
    shape.add_argument("--pretty", action="store_true", help="indent the JSON")
    return parser


def _dump_body(snapshot, args, config):
    """What ``dump`` writes for ``args``: the SD JSON as served, indented, or a table."""
    if not (args.summary or args.pretty):
        return snapshot.bodies[args.job] + b"\n"
    if args.pretty:
        return json.dumps(json.loads(snapshot.bodies[args.job]), indent=2,
                          ensure_ascii=False).encode("utf-8") + b"\n"
    names = [args.job] if args.job is not None else [job.name for job in config.jobs]
    return table(tally({name: json.loads(snapshot.bodies[name]) for name in names})
                 ).encode("utf-8")


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
    if config.web_config_file is not None:
        try:
            WebConfigFiles(config.web_config_file)   # what the daemon reads at start
        except ConfigError as error:
            err.write(f"slurm-sd: {config.source}: web_config_file: {error}\n")
            return 1
    lines, warnings = summary(config, environ)
    lines += [f"warning: {warning}" for warning in warnings]
    out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return 0


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
    clusters = config.cluster_configs()
    if args.cluster is not None:
        clusters = [(name, view) for name, view in clusters if name == args.cluster]
        if not clusters:
            known = ", ".join(name for name, _ in config.cluster_configs())
            err.write(f"slurm-sd: dump: no cluster {args.cluster!r} in {config.source} "
                      f"(clusters: {known})\n")
            return defer.succeed(1)
    if args.input is not None and len(clusters) > 1:
        err.write("slurm-sd: dump: --input is one cluster's node list: name the cluster "
                  "with --cluster\n")
        return defer.succeed(1)
    sources = []
    for name, view in clusters:
        limit = view.slurmrestd.max_response_bytes
        if args.input == "-":
            source = StdinSource(stdin, limit)
        elif args.input is not None:
            source = FileSource(args.input, limit)
        else:
            source = make_source(reactor, view, environ)
        sources.append((name if config.clusters else None, source, view))

    def write(snapshot):
        """Print or atomically write the body asked for; exit status 0."""
        body = _dump_body(snapshot, args, config)
        if args.output:
            write_atomically(args.output, body)
        else:
            out.write(body)
            out.flush()
        for _, source, _ in sources:
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

    def one(name, source, view):
        """One cluster's snapshot; a failure names the cluster when there are several."""
        d = defer.maybeDeferred(source.fetch_nodes)
        d.addCallback(process, view)   # closes a spooled body
        if name is not None:
            d.addErrback(_in_cluster, name)
        return d

    d = defer.gatherResults([one(*entry) for entry in sources], consumeErrors=True)
    d.addErrback(lambda failure: failure.value.subFailure)
    d.addCallback(lambda snapshots: snapshots[0] if len(snapshots) == 1
                  else merge_snapshots(snapshots))
    d.addCallback(write)
    d.addErrback(failed)
    return d


def _in_cluster(failure, name):
    """A SlurmSDError's message with ``cluster NAME: `` in front."""
    failure.trap(SlurmSDError)
    raise SlurmSDError(f"cluster {name}: {failure.value}")


def main(argv=None, stdout=None, stderr=None, stdin=None, environ=None, _reactor=None):
    """
    The ``slurm-sd`` console script.

    :return: the exit status (``dump`` exits through ``react`` instead).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        from slurm_sd.tap import run_foreground  # twistd's machinery, only when serving
        run_foreground(argv[1:])
        return 0
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
