"""Tests for slurm_sd.slurm: facts about Slurm's own formats."""
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.slurm import gres_names


class GresNamesTests(SynchronousTestCase):
    """gres_names: the name before the first ``:`` of each comma-separated entry."""

    def test_hand_made_strings(self):
        """Names, types, counts and socket or index suffixes in the forms Slurm prints."""
        for gres, names in (
                ("gpu:a100:4(S:0-1)", {"gpu"}),
                ("gpu:a100:4(S:0,1),nic:2", {"gpu", "nic"}),
                ("gpu:2", {"gpu"}),
                ("gpu", {"gpu"}),
                ("gpu:h100:8(IDX:0-7),mps:400,shard:a:16", {"gpu", "mps", "shard"}),
                ("gpu:tesla:1(S:0),gpu:a100:1(S:1)", {"gpu"})):
            self.assertEqual(gres_names(gres), frozenset(names), gres)

    def test_none(self):
        """Empty, missing and Slurm's ``(null)`` mean no GRES."""
        for gres in ("", None, "(null)"):
            self.assertEqual(gres_names(gres), frozenset(), gres)
