"""
Writing a file so that a reader sees the old one or the new one, never half of one.
"""
import os
import tempfile


def write_atomically(path, data):
    """
    Replace ``path`` by a file holding ``data``, so that a reader (Prometheus'
    file SD) sees the old file or the new one, never half of one.

    ``data`` is bytes, or a list of bytes written one after the other (no joined
    copy of a big file in memory).

    The temporary file is in the same directory (``os.replace`` is atomic only
    within a file system) and ends in ``.tmp``, so ``*.json`` globs skip it.
    An existing file's permissions are kept; a new file gets 0666 less umask.
    The data and then the directory are fsynced, so that after a crash or a
    power cut the name holds the old file or the new one, whole.
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
            for piece in data if isinstance(data, list) else [data]:
                handle.write(piece)
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
    _sync_directory(directory)


def _sync_directory(directory):
    """fsync ``directory``, so that a rename in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
