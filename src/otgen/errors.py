"""The one exception type for bad user input.

``OTGenError`` subclasses ``ValueError`` so library users can catch the usual type; the CLI
catches it and prints a single line (exit code 2) instead of a traceback.
"""


class OTGenError(ValueError):
    """Invalid input or configuration, with a message that names the problem."""


class DataNotFoundError(OTGenError, FileNotFoundError):
    """A dataset or weights file is missing; the message says what is expected and where."""


class CheckpointError(OTGenError):
    """A checkpoint is missing, truncated, corrupt or incompatible."""


class NonFiniteError(OTGenError, FloatingPointError):
    """A loss or solver state became NaN/Inf."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during work that leaves something to continue; the message says from where."""
