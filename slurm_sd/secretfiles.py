"""
Files that hold secrets: reading them, and warning when others can read them
(docs/security.rst states the rule).

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


def own_groups():
    """The daemon's groups: its effective group and its supplementary groups."""
    return {os.getegid(), *os.getgroups()}


class ModeWarner:
    """
    Warns, once per change of a file's mode or group, when a secret file is
    readable by others, or by a group the daemon is not in.

    A group the daemon is in may read (the common ``0640 root:slurm-sd``):
    its members can already read whatever the daemon reads. A file that is
    fixed and later loosened again is warned about again.

    :param groups: no arguments, the set of gids the daemon is in.
    """

    log = Logger()

    def __init__(self, groups=own_groups):
        self._groups = groups
        self._seen = {}

    def check(self, path, key):
        """
        Look at ``path``'s permissions; log one warning line if they are loose
        and were not already warned about.

        :return: True when the file is readable by others or a foreign group.
        """
        try:
            info = os.stat(path)
        except OSError:
            return False   # reading it will fail and say why
        mode = stat.S_IMODE(info.st_mode)
        group = bool(mode & 0o040) and info.st_gid not in self._groups()
        others = bool(mode & 0o004)
        if self._seen.get(path) == (mode, info.st_gid):
            return group or others
        self._seen[path] = (mode, info.st_gid)
        if group or others:
            who = {(True, True): "its group and others", (False, True): "others"}.get(
                (group, others), "its group")
            if group:
                who += f" (gid {info.st_gid}, not one of slurm-sd's groups)"
                fix = f"chmod 600 {path}, or chgrp it to slurm-sd's group and chmod 640"
            else:
                fix = f"chmod o-rwx {path}"
            self.log.warn("{key} {path} is readable by {who} (mode {mode:04o}): run {fix}",
                          key=key, path=path, who=who, mode=mode, fix=fix)
        return group or others
