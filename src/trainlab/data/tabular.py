"""Tabular data from a CSV file (stdlib ``csv`` + numpy, no pandas): numeric features, one target column.

Features are returned raw; ``load_data`` standardises them with training statistics only. Every
problem with the file is a one-line :class:`DataError` naming the column (and line) and the fix.

``data.test_path`` names a second CSV with the same columns as the official test split (instead of
carving ``data.test_fraction`` off ``data.path``). Only its existence and its header (the same columns as
``data.path``) are checked when the data are loaded; its rows are read when the final evaluation opens the
sealed test split, and its labels are mapped onto the training file's classes.

``data.features`` (TF Playground's x1², sin x1, ...; data/features.py) needs exactly 2 feature columns: the
first (in file order) is x1, the second x2. This is checked here, at load time, as only the file knows its
columns; config validation already refused data.features for datasets that are not 2-D at all.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab import files
from trainlab.data.base import DatasetSource, RawData, Split
from trainlab.data.features import apply_features, feature_stats
from trainlab.errors import ConfigError, DataError, problem
from trainlab.registry import DATASETS

__all__ = ["read_csv", "read_test_csv", "infer_task"]

# Spellings of "no value" that spreadsheets and pandas write; compared lower-cased and stripped.
_MISSING = ["", "na", "n/a", "nan", "null", "?"]
# An integer-valued target with more distinct values than this is a quantity, not a class id.
_MAX_INT_CLASSES = 20


def _path(cfg: Any) -> Path:
    if cfg.path is None:
        raise ConfigError(problem("data.path", "the path of a CSV file for data.name=csv", None,
                                  "Set it, e.g. --set data.path=houses.csv"))
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(problem("data.path", "an existing CSV file", str(cfg.path), "Check the path and file name"))
    return path


def _test_path(cfg: Any) -> Path | None:
    """``data.test_path`` when set; checked to exist (a stat, not a read: the file stays sealed)."""
    if getattr(cfg, "test_path", None) is None:
        return None
    path = Path(cfg.test_path).expanduser()
    if not path.is_file():
        raise DataError(problem("data.test_path", "an existing CSV file", str(cfg.test_path),
                                "Check the path and file name, or leave it unset to carve data.test_fraction "
                                "off data.path"))
    return path


def _read_rows(path: Path, field: str = "data.path") -> tuple[list[str], np.ndarray, list[int]]:
    """Header, the cells as a (N, D) string array, and each row's line number in the file."""
    try:
        return _read_rows_utf8(path)
    except UnicodeDecodeError as exc:
        raise DataError(files.not_utf8(field, path, exc)) from None


SNIFF_BYTES = 64 * 1024  # the start of a file the delimiter is guessed from


def _dialect(sample: str) -> Any:
    """The CSV dialect of a file's first ``SNIFF_BYTES``: its delimiter among , ; tab |."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel  # one column, or too regular for the sniffer: plain commas


def _read_rows_utf8(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        sample = f.read(SNIFF_BYTES)
        f.seek(0)
        reader = csv.reader(f, _dialect(sample))
        header = next(reader, None)
        rows, lines = [], []
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue  # blank lines (e.g. a trailing newline) are not examples
            if len(row) != len(header or []):
                raise DataError(problem(f"line {reader.line_num} of {path.name}",
                                        f"{len(header or [])} comma-separated values like the header",
                                        len(row), "Fix the row or quote values that contain commas"))
            rows.append(row)
            lines.append(reader.line_num)
    if not header:
        raise DataError(problem("data.path", "a CSV file with a header row", str(path), "Add column names"))
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(problem("CSV header", "unique column names", dupes, "Rename the repeated columns"))
    if not rows:
        raise DataError(problem("data.path", "a CSV file with at least one data row", str(path), "Add data rows"))
    return header, np.array(rows, dtype=str), lines


def _to_numbers(cells: np.ndarray) -> np.ndarray | None:
    """Cells as float64, or None when any cell is not a number."""
    try:
        return np.char.strip(cells).astype(np.float64)
    except ValueError:
        return None


def _first_non_number(cells: np.ndarray) -> int:
    # Only reached on the error path, so a Python scan is fine here.
    for i, c in enumerate(cells):
        try:
            float(c)
        except ValueError:
            return i
    return 0


def infer_task(values: np.ndarray) -> str:
    """'classification' for non-numeric targets or ≤ 20 distinct whole numbers, else 'regression'."""
    numbers = _to_numbers(values)
    if numbers is None:
        return "classification"
    whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
    return "classification" if whole and len(np.unique(numbers)) <= _MAX_INT_CLASSES else "regression"


def _class_ids(values: np.ndarray) -> tuple[torch.Tensor, list[str]]:
    """Class ids in sorted label order: numerically for numbers (2 before 10), else as strings."""
    values = np.char.strip(values)
    numbers = _to_numbers(values)
    if numbers is None:
        names, ids = np.unique(values, return_inverse=True)
        return torch.from_numpy(ids.astype(np.int64)), [str(n) for n in names]
    uniq, ids = np.unique(numbers, return_inverse=True)
    names = [str(int(u)) if u == round(u) else repr(float(u)) for u in uniq]
    return torch.from_numpy(ids.astype(np.int64)), names


def _columns(path: Path, header: list[str], cells: np.ndarray, lines: list[int],
             target: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Feature names, features (N, D) float64 and the target's cells (N,); DataError on what is unusable."""
    if target is None:
        raise DataError(problem("data.target", "the name of the column to predict", None,
                                f"Set it to one of: {', '.join(header)}"))
    if target not in header:
        close = difflib.get_close_matches(target, header, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise DataError(problem("data.target", f"a column of {path.name}", target,
                                f"{hint}Columns: {', '.join(header)}"))

    lowered = np.char.lower(np.char.strip(cells))
    missing = np.isin(lowered, _MISSING)
    if missing.any():
        r, c = np.argwhere(missing)[0]
        raise DataError(problem(f"column {header[c]!r}", "filled in every row", str(cells[r, c]),
                                f"Row {r + 1} (line {lines[r]}) has no value; fill or drop rows with missing "
                                "values before training"))

    t = header.index(target)
    feature_names = [h for h in header if h != target]
    if not feature_names:
        raise DataError(problem("data.path", "a CSV with at least one feature column besides the target",
                                header, "Add input columns"))
    feats = np.delete(cells, t, axis=1)
    x = _to_numbers(feats)
    if x is None:
        for j, name in enumerate(feature_names):
            if _to_numbers(feats[:, j]) is None:
                i = _first_non_number(feats[:, j])
                raise DataError(problem(f"feature column {name!r}", "numeric", str(feats[i, j]),
                                        f"Found at line {lines[i]}; drop the column or encode it as numbers "
                                        "(e.g. one-hot) first"))
    assert x is not None
    if not np.all(np.isfinite(x)):
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise DataError(problem(f"feature column {feature_names[j]!r}", "finite", str(feats[i, j]),
                                f"Found at line {lines[i]}; replace infinite values"))
    return feature_names, x, cells[:, t]


def _regression_targets(y_cells: np.ndarray, lines: list[int], target: str) -> torch.Tensor:
    numbers = _to_numbers(y_cells)
    if numbers is None or not np.all(np.isfinite(numbers)):
        i = _first_non_number(y_cells) if numbers is None else int(np.argwhere(~np.isfinite(numbers))[0, 0])
        raise DataError(problem(f"target column {target!r}", "finite numbers for data.task=regression",
                                str(y_cells[i]), f"Found at line {lines[i]}; use data.task=classification or auto"))
    return torch.from_numpy(numbers.astype(np.float32)[:, None])  # (N, 1)


def _label_names(values: np.ndarray) -> list[str]:
    """Each cell's class name as :func:`_class_ids` names the classes (numbers: ``2``, ``0.5``)."""
    values = np.char.strip(values)
    numbers = _to_numbers(values)
    if numbers is None:
        return [str(v) for v in values]
    return [str(int(u)) if u == round(u) else repr(float(u)) for u in numbers]


def read_csv(path: str | Path, target: str | None,
             task: str = "auto") -> tuple[RawData, str]:
    """Read ``path`` into RawData (x (N, D) float32; y class ids (N,) or (N, 1) float32) and the task."""
    path = Path(path)
    header, cells, lines = _read_rows(path)
    feature_names, x, y_cells = _columns(path, header, cells, lines, target)
    assert target is not None
    task = infer_task(y_cells) if task == "auto" else task
    common = dict(input_shape=(x.shape[1],), feature_names=feature_names, meta={"path": str(path)})
    x_t = torch.from_numpy(x.astype(np.float32))
    if task == "classification":
        y, class_names = _class_ids(y_cells)
        if len(class_names) < 2:
            raise DataError(problem(f"target column {target!r}", "at least 2 different classes", class_names,
                                    "Use a column whose values vary, or data.task=regression"))
        raw = RawData(train=Split(x_t, y), test=None, task="classification", n_classes=len(class_names),
                      class_names=class_names, **common)
        return raw, task
    y = _regression_targets(y_cells, lines, target)
    return RawData(train=Split(x_t, y), test=None, task="regression", n_classes=None,
                   target_names=[target], **common), task


def read_test_csv(path: str | Path, target: str, like: RawData) -> Split:
    """Read the test CSV ``path`` as a Split shaped like ``like`` (the training file's RawData).

    Its columns must be the training file's (in any order); its labels must be training classes.
    """
    path = Path(path)
    header, cells, lines = _read_rows(path, "data.test_path")
    _check_test_header(path, header, like, target)
    names, x, y_cells = _columns(path, header, cells, lines, target)
    x = x[:, [names.index(f) for f in like.feature_names or []]]  # the training file's column order
    x_t = torch.from_numpy(x.astype(np.float32))
    if like.task == "regression":
        return Split(x_t, _regression_targets(y_cells, lines, target))
    index = {name: i for i, name in enumerate(like.class_names or [])}
    labels = _label_names(y_cells)
    unknown = next((i for i, name in enumerate(labels) if name not in index), None)
    if unknown is not None:
        raise DataError(problem(f"target column {target!r} of data.test_path",
                                f"one of the classes of data.path ({', '.join(index)})", str(y_cells[unknown]).strip(),
                                f"Found at line {lines[unknown]}; drop those rows or add that class to data.path"))
    return Split(x_t, torch.tensor([index[name] for name in labels], dtype=torch.int64))


def _check_test_header(path: Path, header: list[str], like: RawData, target: str) -> None:
    expected = [*(like.feature_names or []), target]
    if sorted(header) != sorted(expected):
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        got = "; ".join(([f"no {', '.join(missing)}"] if missing else []) + ([f"extra {', '.join(extra)}"] if extra else []))
        raise DataError(problem("data.test_path", f"a CSV with the columns of data.path ({', '.join(expected)})",
                                f"{path.name}: {got}", "Give both files the same header"))


def _read_header(path: Path) -> list[str]:
    """The column names of a CSV file, from its first lines only (its rows stay unread)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            sample = f.read(SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise DataError(files.not_utf8("data.test_path", path, exc)) from None
    header = next(csv.reader(sample.splitlines(), _dialect(sample)), None)
    if not header:
        raise DataError(problem("data.test_path", "a CSV file with a header row", str(path), "Add column names"))
    return [h.strip() for h in header]


def _with_features(raw: RawData, features: list[str], path: Path) -> RawData:
    """``raw`` with its 2 feature columns (x1, x2 in file order) replaced by ``data.features`` of them."""
    columns = list(raw.feature_names or [])
    if len(columns) != 2:
        raise DataError(problem("data.features", "used with a CSV of exactly 2 feature columns (x1, x2) besides "
                                "data.target", f"{len(columns)} in {path.name}: {', '.join(columns)}",
                                "Remove data.features, or keep two input columns"))
    names = list(features)
    meta = {**raw.meta, "stats": feature_stats(columns, names)}  # what predict reads
    return dataclasses.replace(raw, train=Split(apply_features(raw.train.x, names), raw.train.y),
                               input_shape=(len(names),), feature_names=names, meta=meta)


def _load(cfg: Any, seed: int) -> RawData:
    path = _path(cfg)
    like, _ = read_csv(path, cfg.target, cfg.task)
    features = getattr(cfg, "features", None)
    raw = _with_features(like, features, path) if features else like
    test_path = _test_path(cfg)
    if test_path is not None:
        # its header now: a file with other columns would otherwise be found only after training, when the
        # sealed split opens; its rows (values and labels) stay unread until then
        _check_test_header(test_path, _read_header(test_path), like, cfg.target)

        def read_test() -> Split:  # read when the sealed split is opened; columns as data.path's
            split = read_test_csv(test_path, cfg.target, like)
            return Split(apply_features(split.x, features), split.y) if features else split

        raw.test = read_test
        raw.meta["test_path"] = str(test_path)
    return raw


def _describe(cfg: Any) -> dict[str, Any]:
    if cfg.path is None:
        return {"available": False, "location": None, "sizes": {},
                "hint": "your own file: --set data.path=<file.csv> --set data.target=<column>"}
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        return {"available": False, "location": str(path), "sizes": {}}
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return {"available": True, "location": str(path), "sizes": {"rows": max(0, lines - 1)}}


DATASETS.add("csv", DatasetSource(
    name="csv", kind="tabular", description="your own CSV file: data.path, data.target (numeric features), optional data.test_path",
    load=_load, describe=_describe), "your own CSV file: data.path, data.target (numeric features), optional data.test_path")
