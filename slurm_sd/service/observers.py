"""A poller observer that tells several (metrics, the status page)."""


class Observers:
    """
    A poller observer telling several observers (metrics, the status page), in order.

    Every report is passed on by name (``poll_succeeded``, ``poll_failed``, and any
    the poller adds), to each observer that has a method of that name.
    """

    def __init__(self, *observers):
        self._observers = list(observers)

    def add(self, observer):
        """Tell ``observer`` too, after the others."""
        self._observers.append(observer)

    def __getattr__(self, name):
        """``name(*args)`` called on each observer that has it."""
        if name.startswith("_"):
            raise AttributeError(name)

        def tell(*args, **kwargs):
            for observer in self._observers:
                method = getattr(observer, name, None)
                if method is not None:
                    method(*args, **kwargs)
        return tell
