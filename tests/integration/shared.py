"""
Module-wide fixtures for trial, which has no setUpClass: a :class:`Shared` resource is
started by the first test that asks for it (so a missing package skips or fails that test
like any other) and stopped when the module's suite has run (see :func:`module_suite`), or
at interpreter exit when a single test was run by name.
"""
import atexit
import sys
from unittest import SkipTest

from twisted.trial import runner


class Shared:
    """One expensive resource (a Slurm cluster, say) shared by the tests of a module."""

    def __init__(self, start, stop):
        """
        :param start: called with no arguments, returns the resource or raises (SkipTest,
            AssertionError, ...); it must clean up after itself when it raises.
        :param stop: called with the resource to stop it.
        """
        self._start = start
        self._stop = stop
        self._value = None
        self._error = None
        self._registered = False

    def get(self):
        """The resource, started now if this is the first call; a failed start is not
        retried: every later call raises the same error."""
        if self._error is not None:
            raise self._error
        if self._value is None:
            if not self._registered:
                atexit.register(self.close)
                self._registered = True
            try:
                self._value = self._start()
            except SkipTest as e:
                self._error = e
                raise
            except BaseException as e:
                self._error = AssertionError("shared fixture failed to start: {}".format(e))
                raise
        return self._value

    def close(self):
        """Stop the resource if it was started (idempotent)."""
        value, self._value = self._value, None
        if value is not None:
            self._stop(value)


class _SharedSuite(runner.TestSuite):
    """A suite that closes its :class:`Shared` resources after its tests have run."""

    def __init__(self, tests, shared):
        super().__init__(tests)
        self._shared = shared

    def run(self, result, debug=False):
        """Run the tests, then stop the shared resources whatever happened."""
        try:
            return super().run(result)
        finally:
            for resource in self._shared:
                resource.close()


def module_suite(module_name, *shared):
    """
    For a module's ``testSuite()``: its TestCase classes (as trial would load them) in a
    suite that closes ``shared`` when done.
    """
    loader = runner.TestLoader()
    module = sys.modules[module_name]
    tests = [loader.loadClass(cls) for cls in loader.findTestClasses(module)
             if cls.__module__ == module_name]
    return _SharedSuite(tests, shared)
