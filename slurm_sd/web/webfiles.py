"""
The ``web_config_file`` in effect, re-read when it changes, as exporter-toolkit does.

exporter-toolkit reads its file again on every request and TLS handshake;
:class:`WebConfigFiles` does the same cheaply: it compares the ``stat()`` of
the file (and of the certificate, key and CA files it names) with what it
last read, and reads them again only when one differs. A change that cannot
be used is logged in one line (once per change) and the last good
configuration stays in use; at start it ends start-up instead.
"""
import os

from twisted.logger import Logger

from slurm_sd.errors import ConfigError
from slurm_sd.secretfiles import ModeWarner
from slurm_sd.web.tls import make_context
from slurm_sd.web.webconfig import parse_web_config


def _stamp(path):
    """What changes when ``path`` is written, replaced or chmod-ed (None: missing)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def describe(config):
    """``TLS on (RequireAndVerifyClientCert, TLS12+), 2 basic auth users`` for a log line."""
    tls = config.tls
    text = (f"TLS on ({tls.client_auth_type}, {tls.min_version}+)" if tls is not None
            else "TLS off")
    return f"{text}, {len(config.users)} basic auth users"


class WebConfigFiles:
    """
    The web configuration and its TLS context, kept up to date with the files.

    :param path: the ``web_config_file``.
    :param warner: a :class:`~slurm_sd.secretfiles.ModeWarner` for the TLS key.
    :raises ConfigError: at construction, when the files cannot be used.
    """

    log = Logger()

    def __init__(self, path, warner=None):
        self.path = path
        self._warner = ModeWarner() if warner is None else warner
        self.config, self.context = self._load()
        self._stamps = self._stamp_files(self.config)
        self._refused = None

    def _load(self):
        """Read and check the files: ``(WebConfig, SSL.Context or None)``."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(1024 * 1024)
        except OSError as error:
            raise ConfigError(self.path, "", f"cannot read the web configuration file: "
                                             f"{error.strerror}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(self.path, "", "is not UTF-8 text")
        config = parse_web_config(text, self.path)
        if config.tls is None:
            return config, None
        self._warner.check(config.tls.key_file, "web_config_file tls_server_config.key_file")
        return config, make_context(config.tls, self.path)

    def _stamp_files(self, config):
        """The stamps of the web configuration file and the files it names."""
        paths = (self.path,) + (config.tls.files() if config.tls is not None else ())
        return tuple((path, _stamp(path)) for path in paths)

    def current(self):
        """The :class:`~slurm_sd.web.webconfig.WebConfig` in effect, re-read if changed."""
        stamps = self._stamp_files(self.config)
        if stamps == self._stamps or stamps == self._refused:
            return self.config
        try:
            config, context = self._load()
            if (config.tls is None) != (self.config.tls is None):
                raise ConfigError(self.path, "tls_server_config",
                                  "turning TLS on or off needs a restart of slurm-sd")
        except ConfigError as error:
            self._refused = stamps
            self.log.error("web_config_file: {error}; still using the web configuration "
                           "read before", error=str(error))
            return self.config
        except Exception:
            self._refused = stamps
            self.log.failure("web_config_file {path}: re-reading it failed unexpectedly; "
                             "still using the web configuration read before", path=self.path)
            return self.config
        self.config, self.context = config, context
        # Stamps from before the read: a write during it is seen at the next check.
        # The new file may name other certificate files: watch those from now on.
        fresh = self._stamp_files(config)
        same_files = [path for path, _ in fresh] == [path for path, _ in stamps]
        self._stamps = stamps if same_files else fresh
        self._refused = None
        self.log.info("web_config_file {path} re-read: {summary}", path=self.path,
                      summary=describe(config))
        return config

    def current_context(self):
        """The TLS context in effect (for a new connection), re-read if changed."""
        self.current()
        return self.context
