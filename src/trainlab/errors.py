"""One exception root for everything trainlab rejects; the CLI prints any of them as one line (exit 2)."""
from __future__ import annotations


class TrainlabError(Exception):
    """Root of all errors trainlab raises on purpose; ``str(err)`` is one line meant for a person."""


class ConfigError(TrainlabError, ValueError):
    """A config value, key, override or argument is invalid."""


class DataError(TrainlabError):
    """Data is missing, corrupt, or does not fit the task (labels out of range, wrong columns...)."""


class CheckpointError(TrainlabError):
    """A run directory or checkpoint is missing, corrupt, or from an incompatible run."""


class TrainingError(TrainlabError):
    """Training had to stop abnormally (NaN/Inf loss or gradients; OutOfMemory below); ``run_dir`` is the run it
    stopped and ``facts`` what the loop saw before it (what broke, when, the loss and gradient-norm levels), as data."""

    def __init__(self, message: str, run_dir: object = None, facts: dict | None = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.facts = facts


class OutOfMemory(TrainingError):
    """Training ran out of its device's memory (a GPU's, or the machine's); ``facts``: where, on which sizes, and
    the setting that needs less (train.loop.out_of_memory)."""


def problem(field: str, constraint: str, got: object, fix: str) -> str:
    """Format the house error line: ``<field> must be <constraint>. Got <value>. <fix>.``"""
    fix = fix.rstrip(".")
    return f"{field} must be {constraint}. Got {shown(got)}. {fix}."


SHOWN_CHARS = 120  # a value's repr in an error line, at most


class Verbatim(str):
    """Text an error line shows as it is, not quoted as a string value is (``amsgrad=True``, a class's name)."""

    def __repr__(self) -> str:
        return str(self)


def shown(value: object) -> str:
    """A value as an error line shows it: its repr on one line, an array or tensor as its kind and shape (a
    tensor's repr spans many lines of numbers), a tuple or list of them item by item, anything longer cut short."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype") and not isinstance(value, (int, float, complex)):
        if getattr(value, "size", None) is not None and _elements(value) <= 4:  # a scalar tensor: its value
            return " ".join(repr(value).split())
        kind = {"torch": "tensor", "numpy": "NumPy array"}.get(type(value).__module__.split(".")[0], type(value).__name__)
        return f"a {kind} of shape {tuple(shape)}"
    if isinstance(value, (tuple, list)) and any(hasattr(v, "shape") and hasattr(v, "dtype") for v in value):
        inner = ", ".join(shown(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = " ".join(repr(value).split()) if "\n" in repr(value) else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def _elements(value: object) -> int:
    size = getattr(value, "size")
    n = size() if callable(size) else size  # torch: .size() is a shape; numpy: .size a count
    if isinstance(n, int):
        return n
    count = 1
    for d in n:
        count *= int(d)
    return count


class FixError(TrainlabError):
    """``trainlab fix`` cannot try a remedy: the top finding's remedy is not a config change, or the run
    cannot be rebuilt (its own ``nn.Module`` or in-memory data not passed again)."""


class DistributedError(TrainlabError):
    """A process of a distributed run stopped (killed, crashed, its machine gone): the others cannot go on.
    The run's last checkpoint is kept; ``trainlab train --resume`` continues it with any number of processes."""


class OutputClosed(KeyboardInterrupt):
    """The reader of trainlab's output went away (``trainlab train | head -3``): a run stops as Ctrl-C stops it
    (its last checkpoint and summary kept, resumable) instead of dying on a broken pipe with a traceback."""

    run_dir = None  # the stopped run's directory, once training has set it


class Terminated(KeyboardInterrupt):
    """``trainlab train`` was sent SIGTERM: a scheduler preempting the job, a ``kill``, or torchrun stopping the
    other processes of a distributed run when one of them failed. The run stops as Ctrl-C stops it (its last
    checkpoint and summary kept, resumable) and says so in one line, instead of vanishing without a word."""

    run_dir = None  # set by training, as OutputClosed's
    epoch: int | None = None  # the epoch it was in
    kept = 0  # the last finished epoch whose checkpoint is on disk (0: none)


def drop_stdout() -> None:
    """Point stdout at the null device once its reader has gone: every later print, and the flush at exit,
    would fail on the broken pipe again."""
    import os
    import sys

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (a notebook's, a test's capture)
        pass
