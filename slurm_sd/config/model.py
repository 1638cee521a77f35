"""
The configuration model: frozen attrs classes, checked when built.

:mod:`slurm_sd.config.parse` builds them from YAML; everything else reads them.
"""
import attr

from slurm_sd.slurm import TARGET_ADDRESSES

#: How a job groups its targets.
GROUP_BY = ("partition", "node")


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
class TlsConfig:
    """How to check slurmrestd's certificate and which one to show it (``slurmrestd.tls``)."""

    # None: the system trust store.
    ca_file = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    cert_file = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    key_file = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    # None: the URL's host.
    server_name = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))


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
    # 180 s: 1.5x the slowest answer measured at 100,000 nodes (122 s, issue 15).
    timeout = attr.ib(default=180.0, converter=float, validator=_positive)
    max_response_bytes = attr.ib(default=1024 ** 3, validator=_positive)
    # Self-renewing tokens (slurm_sd.config.tokenkeys): a command's argv, or
    # Slurm's HS256 key to mint with; renewed this long before they expire.
    token_command = attr.ib(default=None, converter=attr.converters.optional(tuple))
    jwt_key_file = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(str)))
    token_renew_before = attr.ib(default=600.0, converter=float)
    token_lifespan = attr.ib(default=1800.0, converter=float, validator=_positive)
    tls = attr.ib(default=None, validator=attr.validators.optional(
        attr.validators.instance_of(TlsConfig)))


@attr.s(frozen=True, slots=True)
class JobConfig:
    """One Prometheus job: which nodes, which port, which extra labels."""

    name = attr.ib(validator=attr.validators.instance_of(str))
    port = attr.ib(validator=attr.validators.instance_of(int))
    partitions = attr.ib(default=None)
    features = attr.ib(default=None)
    gres = attr.ib(default=None)
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


#: The name of the cluster of the single-cluster form when ``cluster_name`` is unset,
#: in ``&cluster=``, metrics and logs.
DEFAULT_CLUSTER = "default"


@attr.s(frozen=True, slots=True)
class ClusterConfig:
    """One entry of ``clusters``: a name, its source, and its own interval if any."""

    name = attr.ib(validator=attr.validators.instance_of(str))
    slurmrestd = attr.ib(validator=attr.validators.instance_of(SlurmrestdConfig))
    interval = attr.ib(default=None)


@attr.s(frozen=True, slots=True)
class Config:
    """The whole, checked configuration of one slurm-sd daemon."""

    #: The source of the single-cluster form; None with ``clusters``.
    slurmrestd = attr.ib(validator=attr.validators.optional(
        attr.validators.instance_of(SlurmrestdConfig)))
    jobs = attr.ib(converter=tuple)
    interval = attr.ib(default=300.0, converter=float)
    cluster_name = attr.ib(default=None)
    listen = attr.ib(default="tcp:8080")
    target_address = attr.ib(default="address",
                             validator=attr.validators.in_(TARGET_ADDRESSES))
    http_auth = attr.ib(default=None)
    #: The exporter-toolkit web configuration (TLS, bcrypt basic auth), or None.
    web_config_file = attr.ib(default=None)
    logging = attr.ib(default=attr.Factory(LoggingConfig))
    #: Where the last good node lists are kept across restarts; None: nowhere.
    state_file = attr.ib(default=None)
    #: The shrink guard: the fraction of the served nodes a poll may drop (1: off).
    max_node_drop = attr.ib(default=0.5, converter=float)
    source = attr.ib(default="<string>")
    #: Non-fatal remarks found while parsing (e.g. two jobs on one port).
    warnings = attr.ib(default=(), converter=tuple, eq=False)
    #: The ``clusters`` form's clusters, in config order; () in the single-cluster form.
    clusters = attr.ib(default=(), converter=tuple)

    def cluster_configs(self):
        """
        Per cluster, in config order, ``(name, config)``: the single-cluster
        configuration its own pipeline runs with (its source and interval, its name
        as ``cluster_name``, every job).
        """
        if not self.clusters:
            return ((self.cluster_name or DEFAULT_CLUSTER, self),)
        return tuple(
            (cluster.name, attr.evolve(
                self, slurmrestd=cluster.slurmrestd, cluster_name=cluster.name,
                interval=self.interval if cluster.interval is None else cluster.interval,
                clusters=()))
            for cluster in self.clusters)

    def job(self, name):
        """The job called ``name``, or None."""
        for job in self.jobs:
            if job.name == name:
                return job
        return None


#: A job's options, in the order they are read and reported (every JobConfig field
#: but its name).
JOB_KEYS = tuple(field.name for field in attr.fields(JobConfig) if field.name != "name")
