"""
The YAML walker of :mod:`slurm_sd.config.parse`: every check names the key path
(``jobs[1].dcgm.port``) in its one-line :class:`~slurm_sd.errors.ConfigError`.
"""
import copy
import math
import os

import yaml

from slurm_sd.errors import ConfigError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        """Check for repeated keys first: PyYAML would silently keep the last value."""
        seen = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue   # merge keys (<<) may override on purpose
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} given twice in one mapping (first on line "
                    f"{seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class Reader:
    """Walks a YAML document, naming the key path in every error."""

    def __init__(self, source):
        self.source = source
        self.base_dir = os.path.dirname(os.path.abspath(source)) if not source.startswith("<") else os.getcwd()
        #: Put before every key path named (``clusters[0]``): see :meth:`within`.
        self.prefix = ""

    def within(self, prefix):
        """This reader for a part of the document at ``prefix`` (``clusters[1]``): the
        key paths it names start there."""
        scoped = copy.copy(self)
        scoped.prefix = join(self.prefix, prefix)
        return scoped

    def load_yaml(self, text):
        """``yaml.safe_load(text)``, refusing repeated keys; a syntax error is one line
        naming the place."""
        try:
            return yaml.load(text, Loader=UniqueKeyLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            self.fail("", f"not valid YAML at {where}: {problem}")

    def fail(self, path, message):
        """Raise the one-line error for ``path``."""
        raise ConfigError(self.source, join(self.prefix, path) if path else self.prefix,
                          message)

    def mapping(self, value, path, allowed, required=()):
        """Check that ``value`` is a mapping with only ``allowed`` keys."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {kind(value)}")
        for key in value:
            if key not in allowed:
                where = join(path, str(key))
                self.fail(where, "unknown key (allowed: " + ", ".join(allowed) + ")")
        for key in required:
            if value.get(key) is None:
                self.fail(join(path, key), "is required")
        return value

    def string(self, value, path, allow_empty=False):
        """A string (YAML scalars such as 10 are not silently turned into one)."""
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {kind(value)}")
        if not allow_empty and not value.strip():
            self.fail(path, "must not be empty")
        return value

    def number(self, value, path, minimum, integer=False, maximum=None):
        """A number at least ``minimum`` (and at most ``maximum``)."""
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "an integer" if integer else "a number"
            self.fail(path, f"must be {what}, got {kind(value)}")
        if not math.isfinite(value):
            self.fail(path, f"must be a finite number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(path, f"must be {bound}, got {value!r}")
        return value

    def string_list(self, value, path):
        """A non-empty list of non-empty strings, as a tuple."""
        if isinstance(value, str) or not isinstance(value, list) or not value:
            self.fail(path, f"must be a non-empty list of strings, got {kind(value)}")
        return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(value))

    def choice(self, value, path, choices):
        """One of ``choices``."""
        if value not in choices:
            self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def path(self, value, path):
        """A file path; a relative one is taken from the config file's directory."""
        value = self.string(value, path)
        if "\0" in value:
            self.fail(path, "must not contain a NUL character")
        return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))

    def string_map(self, value, path, key_pattern=None, key_rule=""):
        """A mapping of string keys to scalar values, as sorted (key, str) pairs."""
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {kind(value)}")
        pairs = []
        for key, item in value.items():
            where = join(path, str(key))
            if not isinstance(key, str) or (key_pattern and not key_pattern.match(key)):
                self.fail(where, f"is not a valid name{key_rule}")
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                self.fail(where, f"must be a string, got {kind(item)}")
            pairs.append((key, str(item)))
        return tuple(sorted(pairs))


def kind(value):
    """A short description of a YAML value for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def join(path, key):
    """``a.b`` key paths, with no leading dot at the top."""
    return f"{path}.{key}" if path else key
