"""A run's logged epochs as the report and the verdict read them: ``metrics.jsonl``, its best epoch, ``layers.jsonl``.

Light on purpose (no matplotlib, no torch): the HTML report and the live curves read them in the training process,
the pictures in ``trainlab.report.plots`` in the picture workers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

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


def most_confident_wrong(y_true: Any, y_pred: Any, confidence: Any, n: int) -> np.ndarray:
    """Indices of the (at most) ``n`` examples predicted wrong with the highest confidence, most confident first
    (ties in example order): the ones ``plots.plot_wrong_examples`` shows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confidence = np.asarray(confidence, dtype=np.float64)
    wrong = np.flatnonzero(y_true != y_pred)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:n]


def confusion_data(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Counts[true, predicted], the row-normalised matrix (each true class's examples sum to 1), each class's
    accuracy (NaN for a class without examples) and the overall accuracy: the report's confusion matrix."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = len(class_names)
    counts = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    per_class = np.where(rows[:, 0] > 0, np.diag(matrix), np.nan)
    return {"matrix": matrix, "counts": counts, "per_class_acc": per_class,
            "accuracy": float(np.trace(counts) / max(counts.sum(), 1)), "class_names": list(class_names)}
