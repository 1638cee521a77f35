"""
Files that hold secrets: reading them, and warning when others can read them.

Used for ``slurmrestd.token_file`` (read on every poll) and the ``http_auth``
password and bearer-token files (read at start and on every reload).  No
function here ever puts a secret's value into a message.
"""
import os
import stat

from twisted.logger import Logger

from slurm_sd.errors import SecretFileError


def read_secret(path, key):
    """
    The contents of the secret file ``path``, surrounding whitespace stripped
    (as Prometheus does with its ``password_file`` and ``credentials_file``).

    :param key: the configuration key that names the file, for messages.
    :raises SecretFileError: the file cannot be read, is not UTF-8, or is empty.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(64 * 1024 + 1)
    except OSError as error:
        raise SecretFileError(f"{key}: cannot read {path}: {error.strerror}")
    if len(data) > 64 * 1024:
        raise SecretFileError(f"{key}: {path} is larger than 64 KiB; is it the right file?")
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretFileError(f"{key}: {path} is not UTF-8 text")
    if not secret:
        raise SecretFileError(f"{key}: {path} is empty")
    return secret


class ModeWarner:
    """
    Warns, once per change of a file's mode, when a secret file is readable by
    its group or by others (``mode & 0o044``).

    A file that is fixed and later loosened again is warned about again.
    """

    log = Logger()

    def __init__(self):
        self._modes = {}

    def check(self, path, key):
        """
        Look at ``path``'s permissions; log one warning line if they are loose
        and were not already warned about.

        :return: True when the file is readable by group or others.
        """
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            return False   # reading it will fail and say why
        loose = bool(mode & 0o044)
        if self._modes.get(path) == mode:
            return loose
        self._modes[path] = mode
        if loose:
            who = {0o040: "its group", 0o004: "others"}.get(mode & 0o044,
                                                            "its group and others")
            self.log.warn("{key} {path} is readable by {who} (mode {mode:04o}): "
                          "run chmod 600 {path}", key=key, path=path, who=who, mode=mode)
        return loose
