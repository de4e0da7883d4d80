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


class TrainingError(SegError):
    """Training cannot go on (the loss, a gradient or the weights stopped
    being finite; a rank of a distributed run died)."""


class StoppedBySignal(SegError):
    """Training stopped between two steps because SIGINT or SIGTERM
    arrived; the root scripts exit with ``exit_code`` (128 + its number)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)
