"""
The sudden-shrink guard (``max_node_drop``, SPEC 11): a poll that returns far
fewer nodes than are served is held back once, and served when the next poll
agrees.

"Agree" means: the next successful poll is also below the threshold relative to
the data still being served (not relative to the held poll). A failed poll in
between changes nothing; a poll above the threshold ends the hold.
"""

#: The longest wait (seconds) before the poll that confirms or refutes a drop.
HOLD_RETRY = 60.0


class ShrinkGuard:
    """Remembers whether the last successful poll was held back."""

    def __init__(self):
        self.holding = False

    def allows(self, served, polled, max_node_drop):
        """
        Whether a poll that returned ``polled`` nodes may replace the ``served``
        ones (None before any data); updates :attr:`holding`.
        """
        if served is None or polled >= (1 - max_node_drop) * served or self.holding:
            self.holding = False
            return True
        self.holding = True
        return False

    def reset(self):
        """Forget a hold (new data came from elsewhere, or the config changed)."""
        self.holding = False
