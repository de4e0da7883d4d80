"""Errors caused by the user's input rather than by a bug in this project.

The root scripts (``train.py``, ``val.py``, ...) catch :class:`SegError` and
print its message as one sentence with a non-zero exit and no traceback (the
traceback is shown with ``--debug``). Every message should name the file or key,
the actual value, and what to do next.
"""


class SegError(Exception):
    """Base class of user-facing errors."""


class ConfigError(SegError, ValueError):
    """A config file, key or value is wrong."""


class DataError(SegError, ValueError):
    """A dataset file is missing, unreadable or inconsistent."""


class CheckpointError(SegError, ValueError):
    """A checkpoint or pretrained-weights file cannot be used."""
