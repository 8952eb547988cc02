"""A run's logged epochs as the report and the verdict read them: ``metrics.jsonl``, its best epoch, ``layers.jsonl``.

Light on purpose (no matplotlib, no torch): the HTML report and the live curves read them in the training process,
the pictures in ``trainlab.report.plots`` in the picture workers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from trainlab import files
from trainlab.errors import CheckpointError
from trainlab.monitor import better


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``, one per finished epoch. CheckpointError when the file is missing."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise CheckpointError(f"run must contain metrics.jsonl. Got {str(run_dir)!r} without it. "
                              "Pass a directory written by 'trainlab train'.")
    return files.read_jsonl(path)


def read_layers(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``layers.jsonl`` (empty list when the run has none)."""
    return files.read_jsonl(Path(run_dir) / "layers.jsonl")


def best_epoch(history: Sequence[dict[str, Any]], monitor: str) -> int | None:
    """The epoch whose ``monitor`` value is best (the first of equals, as the checkpointer keeps it)."""
    best, epoch = None, None
    for row in history:
        if better(monitor, row.get(monitor), best):
            best, epoch = row[monitor], row["epoch"]
    return epoch
