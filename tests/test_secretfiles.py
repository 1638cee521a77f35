"""Tests for slurm_sd.secretfiles: reading secret files, and the warning about their mode."""
import os
import stat

from twisted.logger import LogLevel

from slurm_sd.errors import SecretFileError
from slurm_sd.secretfiles import ModeWarner, own_groups, read_secret
from slurm_sd.web.auth import Credentials
from tests.logged import log_lines
from tests.web.test_auth import AuthTestCase


def _stat_with_gid(real_stat, path, gid):
    """``os.stat`` that reports ``gid`` as the group of ``path``."""
    def fake(name, *args, **kwargs):
        result = real_stat(name, *args, **kwargs)
        if name != path:
            return result
        fields = list(result)
        fields[stat.ST_GID] = gid
        return os.stat_result(fields)
    return fake


class SecretFileTests(AuthTestCase):
    """Reading secret files, and the warning about loose permissions."""

    def test_read_strips(self):
        """Surrounding whitespace is stripped, as Prometheus does."""
        self.assertEqual(read_secret(self.secret("s", "\n abc \r\n"), "k"), "abc")

    def test_not_utf8(self):
        """A binary file is refused by name."""
        path = os.path.join(self.dir, "bin")
        with open(path, "wb") as handle:
            handle.write(b"\xff\xfe")
        self.assertIn("is not UTF-8", str(self.assertRaises(SecretFileError, read_secret,
                                                             path, "k")))

    def test_credentials_repr_hides_secret(self):
        """The credentials' repr shows the scheme only."""
        self.assertEqual(repr(Credentials("Basic", b"u", b"pw")), "<Credentials Basic>")

    def test_mode_warning_once_per_change(self):
        """A file readable by others is warned about once, again after each mode change."""
        warner = ModeWarner(groups=set)   # the file's group is not one of ours
        path = self.secret("t", "x", mode=0o644)
        gid = os.stat(path).st_gid
        for _ in range(3):
            warner.check(path, "http_auth.bearer_token_file")
        lines = log_lines(self.events, LogLevel.warn)
        self.assertEqual(lines, [f"http_auth.bearer_token_file {path} is readable by its "
                                 f"group and others (gid {gid}, not one of slurm-sd's "
                                 f"groups) (mode 0644): run chmod 600 {path}, or chgrp it "
                                 f"to slurm-sd's group and chmod 640"])
        os.chmod(path, 0o640)
        warner.check(path, "k")
        os.chmod(path, 0o600)
        warner.check(path, "k")
        warner.check(path, "k")
        os.chmod(path, 0o604)
        warner.check(path, "k")
        lines = log_lines(self.events, LogLevel.warn)
        self.assertEqual(len(lines), 3)
        self.assertIn("readable by its group (gid", lines[1])
        self.assertIn("(mode 0640)", lines[1])
        self.assertIn(f"readable by others (mode 0604): run chmod o-rwx {path}", lines[2])

    def test_private_file_no_warning(self):
        """A file only its owner can read is not warned about."""
        warner = ModeWarner()
        self.assertFalse(warner.check(self.secret("t", "x", mode=0o600), "k"))
        self.assertFalse(warner.check(self.secret("u", "x", mode=0o400), "k"))
        self.assertEqual(log_lines(self.events, LogLevel.warn), [])

    def test_own_group_may_read(self):
        """0640 with the daemon's own (effective) group is not warned about; 0644 still is."""
        path = self.secret("t", "x", mode=0o640)
        self.assertIn(os.stat(path).st_gid, own_groups())   # the test's own file
        warner = ModeWarner()
        self.assertFalse(warner.check(path, "k"))
        self.assertEqual(log_lines(self.events, LogLevel.warn), [])
        os.chmod(path, 0o644)
        self.assertTrue(warner.check(path, "k"))
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertEqual(line, f"k {path} is readable by others (mode 0644): "
                               f"run chmod o-rwx {path}")

    def test_supplementary_group_may_read(self):
        """A group the daemon is in only as a supplementary group may read too."""
        path = self.secret("t", "x", mode=0o440)
        gid = os.stat(path).st_gid
        self.assertFalse(ModeWarner(groups=lambda: {gid + 1, gid}).check(path, "k"))
        self.assertTrue(ModeWarner(groups=lambda: {gid + 1}).check(path, "k"))
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertIn(f"is readable by its group (gid {gid}, not one of slurm-sd's groups)",
                      line)

    def test_own_groups(self):
        """own_groups is the effective group and the supplementary groups."""
        self.patch(os, "getegid", lambda: 7)
        self.patch(os, "getgroups", lambda: [8, 9])
        self.assertEqual(own_groups(), {7, 8, 9})

    def test_group_change_warned_again(self):
        """The same mode with a different group is looked at again."""
        path = self.secret("t", "x", mode=0o640)
        gid = os.stat(path).st_gid
        warner = ModeWarner(groups=lambda: {gid})
        self.assertFalse(warner.check(path, "k"))
        self.patch(os, "stat", _stat_with_gid(os.stat, path, gid + 1))
        self.assertTrue(warner.check(path, "k"))
        self.assertEqual(len(log_lines(self.events, LogLevel.warn)), 1)

    def test_auth_file_warned_at_start(self):
        """A loose http_auth file is warned about when it is read."""
        path = self.secret("pw", "x", mode=0o644)
        self.serve(self.config(username="u", password_file=path))
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertIn(f"http_auth.password_file {path} is readable", line)
        self.assertIn(f"chmod o-rwx {path}", line)

    def test_slurmrestd_token_file_warned_once(self):
        """A loose slurmrestd token file is warned about once, not on every poll."""
        from tests.sources.test_slurmrestd import make_client
        from tests.standin import StandIn
        path = self.secret("jwt", "eyJ-distinct-jwt", mode=0o644)
        client = make_client(StandIn(), user="slurm", token_file=path)
        for _ in range(3):
            self.successResultOf(client.fetch_nodes())
        [line] = log_lines(self.events, LogLevel.warn)
        self.assertEqual(line, f"slurmrestd.token_file {path} is readable by others "
                               f"(mode 0644): run chmod o-rwx {path}")
