"""The playground's points: trainlab's TF Playground generators, TF's split and input features, and CSV upload.

Points come from :func:`trainlab.data.toy.make_toy` (TF's formulas, rows shuffled once) at TF's sizes —
500 classification points, 1200 regression — and are split as TF does: the first ⌊N·ratio⌋ train, the
rest test. Binary labels are TF's ±1 (class 0 → −1); multi-class labels are class ids 0..K−1. The network's
inputs are the engine's features of the points (trainlab.data.features), the same ``data.features`` computes.
"""
from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data.features import apply_features
from trainlab.data.splits import split_indices
from trainlab.data.toy import TOY_SETS, make_toy
from trainlab.errors import DataError, problem
from trainlab.playground.state import FEATURES

__all__ = ["Points", "make_points", "split_points", "split_validation", "features", "thumbnail_points", "parse_csv", "grid",
           "N_POINTS", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_ROWS", "FIELD"]

N_POINTS = {"classification": 500, "regression": 1200}
FIELD = 6.0  # the plotted square is [−FIELD, FIELD]²
MAX_UPLOAD_BYTES = 1_000_000
MAX_UPLOAD_ROWS = 5000
MAX_UPLOAD_CLASSES = 8


@dataclass(frozen=True)
class Points:
    """All points of one dataset before the split. ``label``: ±1 (2 classes), class id (more), or value."""

    xy: torch.Tensor  # (N, 2) float32
    label: torch.Tensor  # (N,) float32 for ±1 and regression; int64 class ids for 3+ classes
    task: str  # classification | regression
    n_classes: int | None  # None for regression

    def __len__(self) -> int:
        return len(self.xy)


def make_points(dataset: str, noise_pct: int, seed: int, classes: int = 2) -> Points:
    """The points of a registered toy set, at TF Playground's size for its task; ``noise_pct`` is TF's 0-50."""
    spec = TOY_SETS[dataset]
    n = N_POINTS[spec.task]
    xy, y = make_toy(dataset, n, noise_pct / 100, seed, classes if spec.multiclass else 2)
    if spec.task == "regression":
        return Points(xy, y[:, 0], "regression", None)
    return _classes(xy, y, classes if spec.multiclass else 2)


def _classes(xy: torch.Tensor, ids: torch.Tensor, k: int) -> Points:
    label = ids.float().mul(2).sub(1) if k == 2 else ids  # TF's −1 / +1 for two classes
    return Points(xy, label, "classification", k)


def split_points(points: Points, perc_train: int) -> tuple[Points, Points]:
    """TF's split of the (already shuffled) points: the first ⌊N·perc/100⌋ train, the rest test."""
    n_train = math.floor(len(points) * perc_train / 100)
    cut = lambda s: Points(points.xy[s], points.label[s], points.task, points.n_classes)  # noqa: E731
    return cut(slice(0, n_train)), cut(slice(n_train, None))


def split_validation(train: Points, perc_val: int, seed: int) -> tuple[Points, Points]:
    """``perc_val`` % of the training points held out for validation (the engine's stratified ``split_indices``,
    seeded): (points trained on, validation points). The test points are never touched."""
    labels = train.label if train.task == "classification" else None
    keep, held = split_indices(len(train), perc_val / 100, seed, labels=labels)
    keep, held = keep.sort().values, held.sort().values  # TF's fixed walking order, minus the held-out points
    cut = lambda i: Points(train.xy[i], train.label[i], train.task, train.n_classes)  # noqa: E731
    return cut(keep), cut(held)


def features(xy: torch.Tensor, keys: list[str]) -> torch.Tensor:
    """The network inputs (N, F) for the inputs' URL ``keys`` in order, computed by the engine's FEATURES registry
    (what ``data.features`` names); raw values, no normalisation (as TF)."""
    return apply_features(xy, [FEATURES[k] for k in keys])


@functools.lru_cache(maxsize=None)
def thumbnail_points(dataset: str) -> list[list[float]]:
    """Rows ``[x1, x2, label]`` the page draws as the dataset's button picture: as TF does, 200 points without
    noise; labels ±1 for classes, values for regression; 1 decimal (under a pixel there). Fixed (seed 0): cached."""
    pts = make_points(dataset, 0, seed=0)
    keep = torch.arange(0, len(pts), max(1, len(pts) // 200))[:200]  # the rows come shuffled: any 200 are fair
    rows = torch.cat([pts.xy[keep], pts.label[keep].float().view(-1, 1)], 1).tolist()
    return [[round(v, 1) for v in row] for row in rows]


def grid(n: int) -> torch.Tensor:
    """(n·n, 2) cell centres over [−6, 6]², row by row from the top (y = +6) so row 0 is drawn first."""
    c = (torch.arange(n, dtype=torch.float32) + 0.5) * (2 * FIELD / n) - FIELD
    ys, xs = torch.meshgrid(c.flip(0), c, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)


def parse_csv(text: str, seed: int) -> Points:
    """An uploaded CSV of rows ``x1,x2,label`` (header optional) → shuffled Points; DataError on anything bad.

    Labels: all −1/+1, or whole numbers with at most 8 values → classes; anything else → regression.
    Capped at 1 MB and 5000 rows; points must lie in the plotted square [−6, 6]².
    """
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_UPLOAD_BYTES:
        raise DataError(problem("CSV file", f"at most {MAX_UPLOAD_BYTES // 1000} kB", f"{size // 1000} kB",
                                "Upload fewer rows"))
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header line
    if not rows:
        raise DataError(problem("CSV file", "rows of x1,x2,label", "no data rows", "Add rows such as 1.5,-2,1"))
    if len(rows) > MAX_UPLOAD_ROWS:
        raise DataError(problem("CSV file", f"at most {MAX_UPLOAD_ROWS} rows", len(rows), "Upload fewer rows"))
    values = np.empty((len(rows), 3))
    for i, row in enumerate(rows, start=1):
        if len(row) != 3:
            raise DataError(problem(f"CSV row {i}", "3 columns (x1, x2, label)", len(row),
                                    "Keep exactly two coordinates and a label per row"))
        for j, cell in enumerate(row):
            try:
                v = float(cell)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise DataError(problem(f"CSV row {i} column {j + 1}", "a finite number", cell.strip(),
                                        "Fix or drop that row"))
            if j < 2 and abs(v) > FIELD:
                raise DataError(problem(f"CSV row {i} x{j + 1}", f"within [-{FIELD:g}, {FIELD:g}] (the plotted square)",
                                        v, "Scale your points into that range"))
            values[i - 1, j] = v
    if len(values) < 4:
        raise DataError(problem("CSV file", "at least 4 rows", len(values), "Add rows"))
    order = np.random.default_rng(seed).permutation(len(values))
    values = values[order]
    xy = torch.from_numpy(values[:, :2].astype(np.float32))
    label = values[:, 2]
    distinct = np.unique(label)
    if set(distinct.tolist()) <= {-1.0, 1.0} and len(distinct) == 2:
        return Points(xy, torch.from_numpy(label.astype(np.float32)), "classification", 2)
    whole = np.all(label == np.round(label)) and label.min() >= 0
    if whole and 2 <= len(distinct) <= MAX_UPLOAD_CLASSES:
        ids = np.searchsorted(distinct, label)  # labels 3, 5, 9 → classes 0, 1, 2
        return _classes(xy, torch.from_numpy(ids.astype(np.int64)), len(distinct))
    return Points(xy, torch.from_numpy(label.astype(np.float32)), "regression", None)


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
        return True
    except ValueError:
        return False
