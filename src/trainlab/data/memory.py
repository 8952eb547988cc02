"""Data the Python API is handed in memory: (X, y) tensors, arrays or lists, a DataFrame, a torch Dataset.

``bundle_from_data`` turns what a notebook already holds into the :class:`DataBundle` that ``load_data``
builds for a registered dataset: float32 inputs, class ids 0..K-1 (or float targets), a validation split
carved stratified (or given), a test split sealed and not even converted until it is opened, and
optional standardisation with training statistics. pandas is never imported here: a DataFrame can only
exist if the caller imported pandas, so it is recognised through ``sys.modules``.
"""
from __future__ import annotations

import difflib
import math
import numbers
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from trainlab.data.base import DataBundle, SealedTest, Split, Task
from trainlab.data.splits import split_indices
from trainlab.data.streaming import DatasetSplit, IterableSplit, read_targets, read_with_workers, worth_workers
from trainlab.data.tabular import _MAX_INT_CLASSES
from trainlab.data.transforms import Standardizer
from trainlab.errors import ConfigError, DataError, problem

__all__ = ["bundle_from_data"]

Kind = Literal["tensors", "numpy", "lists", "dataframe", "dataset", "iterable"]

_ACCEPTED = ("(X, y) as torch tensors, NumPy arrays or nested lists, a pandas DataFrame with target=<column>, "
             "or a torch Dataset / IterableDataset of (x, y) pairs")
_TASKS = ("auto", "classification", "regression")
_PROGRESS_STEP = 256  # advance the bar in steps: a per-sample update costs more than reading a sample


def _fail(field: str, constraint: str, got: str, fix: str) -> DataError:
    """The house error line with ``got`` written as is (a description, not a value to repr)."""
    return DataError(f"{field} must be {constraint}. Got {got}. {fix.rstrip('.')}.")


def _pandas() -> Any:
    return sys.modules.get("pandas")


def _is_frame(obj: Any) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(obj, pd.DataFrame)


def _shape_of(obj: Any) -> str:
    shape = getattr(obj, "shape", None)
    return f"{type(obj).__name__} shaped {tuple(shape)}" if shape is not None else type(obj).__name__


def _kind(obj: Any, field: str, accepted: str = _ACCEPTED) -> Kind:
    """Which form ``obj`` is in, from its type alone: nothing is read or converted here."""
    if _is_frame(obj):
        return "dataframe"
    if isinstance(obj, IterableDataset):  # checked first: an IterableDataset is also a Dataset
        return "iterable"
    if isinstance(obj, Dataset):
        return "dataset"
    if isinstance(obj, (tuple, list)):
        if len(obj) != 2:
            raise _fail(field, "(X, y): the inputs and the targets", f"a {type(obj).__name__} of {len(obj)} items",
                        f"Pass {field}=(X, y); for a list of (x, y) pairs pass X and y as two arrays")
        x = obj[0]
        if isinstance(x, torch.Tensor):
            return "tensors"
        if isinstance(x, np.ndarray) or _is_sparse(x):
            return "numpy"
        if _is_frame(x):
            return "dataframe"
        if isinstance(x, (list, tuple)):
            return "lists"
        raise _fail(f"{field} X", "a tensor, NumPy array, nested list or DataFrame", type(x).__name__,
                    "Convert the inputs to one of those")
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        raise _fail(field, "(X, y) with the targets", f"X alone ({_shape_of(obj)})",
                    f"Pass {field}=(X, y), or a DataFrame with target='<column>'")
    if isinstance(obj, str):
        raise _fail(field, accepted, f"the string {obj!r}",
                    "Dataset names are loaded by the caller (fit / load_data), not by bundle_from_data")
    raise _fail(field, accepted, type(obj).__name__, "Convert it to one of those")


@dataclass
class _Arrays:
    """One set of examples read from any form, before the task is applied."""

    x: torch.Tensor  # (N, ...) float32, finite
    y: np.ndarray  # (N,) or (N, T): numbers, bools or strings; finite where numeric
    columns: list[Any] | None = None  # the DataFrame's feature column labels, as given
    target_names: list[str] | None = None


def _as_array(v: Any, field: str) -> torch.Tensor | np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    if hasattr(v, "to_numpy"):  # pandas Series / DataFrame as y
        return v.to_numpy()
    try:
        return np.asarray(v)
    except ValueError:  # NumPy refuses ragged nested lists
        raise _fail(field, "rows of equal length", "ragged nested lists", "Pad or trim every row to one length")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NAType", "NaTType")


def _numbers_only(a: np.ndarray, field: str) -> np.ndarray:
    """An object array of numbers as a numeric array; DataError naming the first value that is not one."""
    flat = a.reshape(-1)
    ok = np.fromiter((isinstance(v, numbers.Number) for v in flat), bool, len(flat))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise DataError(problem(field, "numeric", flat[i], f"Found at row {i // max(1, flat.size // len(a))}; "
                                "encode it as numbers (e.g. one-hot) first"))
    return np.array(flat.tolist(), dtype=np.float64).reshape(a.shape)


def _check_finite(a: torch.Tensor | np.ndarray, field: str) -> None:
    """DataError counting the rows of ``a`` that hold NaN or Inf and naming the first."""
    total = a.sum()  # NaN or Inf anywhere makes the sum NaN or ±Inf: one pass, ~40x cheaper than isfinite on rows
    if bool(torch.isfinite(total) if isinstance(a, torch.Tensor) else np.isfinite(total)):
        return  # (a non-finite sum of finite values, an overflow, falls through to the row check below)
    finite = torch.isfinite(a) if isinstance(a, torch.Tensor) else torch.from_numpy(np.isfinite(a))
    if finite.numel() == 0:
        return  # nothing to check (empty targets are refused by the length check against X)
    bad = ~finite.reshape(len(a), -1).all(dim=1)
    if bool(bad.any()):
        n, first = int(bad.sum()), int(bad.nonzero()[0, 0])
        raise _fail(field, "finite", f"NaN or Inf in {n} row{'s' * (n > 1)}, the first at row index {first}",
                    "Fill or drop those rows first")


def _is_sparse(v: Any) -> bool:
    """A SciPy sparse matrix (sklearn's TfidfVectorizer, OneHotEncoder): recognised without importing SciPy."""
    return type(v).__module__.startswith("scipy.sparse") and hasattr(v, "toarray")


def _dense(v: Any, field: str, max_bytes: int) -> np.ndarray:
    """A sparse matrix as the dense float32 array training holds (batches are index slices of it), if it fits."""
    rows, cols = v.shape
    need = 4 * rows * cols
    if need > max_bytes:
        raise _fail(field, f"at most max_bytes={max_bytes:,} bytes as a dense float32 array",
                    f"a {type(v).__name__} of shape {tuple(v.shape)} ({need:,} bytes dense)",
                    "Reduce its columns first (e.g. sklearn's TruncatedSVD or a smaller vocabulary), pass fewer rows, "
                    "or raise max_bytes if the memory is there")
    return v.astype(np.float32).toarray()


def _float32(a: np.ndarray) -> torch.Tensor:
    """``a`` as a float32 tensor, sharing its memory where it can; a read-only array (a pandas column under
    copy-on-write, a memory map) is copied, instead of torch's warning that writing to it is undefined."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _inputs(v: Any, field: str, max_bytes: int = 4 << 30) -> torch.Tensor:
    """Inputs as float32 (N, ...): image shapes kept as given, (N,) made (N, 1); a sparse matrix made dense."""
    if _is_sparse(v):
        v = _dense(v, field, max_bytes)
    a = _as_array(v, field)
    if a.ndim == 0 and getattr(a.dtype, "kind", "") == "O":  # None, a dict, an object: not one number either
        raise _fail(field, "an array with one row per example", "None" if v is None else f"a {type(v).__name__}",
                    "Pass an array shaped (N, ...)")
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise _fail(field, "real numbers", f"a {a.dtype} tensor", "Pass real and imaginary parts as features")
        x = a.to(torch.float32)
    else:
        if a.dtype.kind == "O":
            a = _numbers_only(a, field)
        if a.dtype.kind not in "biuf":
            raise DataError(problem(field, "numeric", a.reshape(-1)[0].item() if a.size else a.dtype.str,
                                    "Encode text and categories as numbers (e.g. one-hot) first"))
        x = _float32(a)
    if x.ndim == 0:
        raise _fail(field, "one row per example", "a single number", "Pass an array shaped (N, ...)")
    x = x[:, None] if x.ndim == 1 else x
    _check_not_empty(tuple(x.shape), field)
    _check_finite(x, field)
    return x


def _check_not_empty(shape: tuple[int, ...], field: str) -> None:
    """DataError for inputs with no example, or examples with no value (a reshape would fail on them later)."""
    if shape[0] == 0:
        raise _fail(field, "at least one example", f"0 rows (shape {shape})", "Pass a non-empty X and y")
    if 0 in shape[1:]:
        raise _fail(field, "at least one value per example", f"shape {shape}", "Pass examples with features in them")


def _targets(v: Any, field: str) -> np.ndarray:
    """Targets as an (N,) or (N, T) array of numbers, bools or strings, with no missing values."""
    a = _as_array(v, field)
    if isinstance(a, torch.Tensor):
        a = (a.float() if a.dtype == torch.bfloat16 else a).numpy()
    if a.ndim not in (1, 2):
        raise _fail(field, "shaped (N,) or (N, T)", f"shape {a.shape}", "Pass one label or target row per example")
    if a.dtype.kind == "O":
        flat = a.reshape(-1)
        missing = np.fromiter((_is_missing(v) for v in flat), bool, len(flat))
        if missing.any():
            row = _first(missing.reshape(a.shape))
            raise _fail(field, "filled in every row", f"a missing value at row index {row}",
                        "Fill or drop rows without a target first")
        if all(isinstance(v, numbers.Number) for v in flat):
            a = np.array(flat.tolist()).reshape(a.shape)
        else:  # text labels, or a mix that only makes sense as text
            a = np.array([str(v) for v in flat]).reshape(a.shape)
    if a.dtype.kind not in "biufUS":
        raise _fail(field, "numbers or text labels", f"dtype {a.dtype}", "Convert the targets first")
    if a.dtype.kind == "f":
        _check_finite(a, field)
    return a


def _frame_features(frame: Any, field: str) -> np.ndarray:
    pd = _pandas()
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col.dtype):
            continue
        vals = col.to_numpy()
        if vals.dtype.kind in "biuf":
            continue  # e.g. a categorical of numbers
        ok = np.fromiter((isinstance(v, numbers.Number) or _is_missing(v) for v in vals), bool, len(vals))
        if ok.all():
            continue  # an object column holding only numbers (and gaps)
        i = int(np.flatnonzero(~ok)[0])
        raise DataError(problem(f"{field}feature column {c!r}", "numeric", vals[i], f"Found at row index {i}; drop "
                                "the column or encode it as numbers (e.g. one-hot) first"))
    # Missing cells become NaN here and are reported by the finite check with their row.
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def _columns(df: Any, prefix: str, columns: list[Any] | None) -> list[Any]:
    """The feature columns to read: all of ``df``'s, or the training ones (in training order) for val/test."""
    if columns is None:
        if len(df.columns) == 0:
            raise DataError(problem(f"{prefix}DataFrame", "at least one feature column besides the target", [],
                                    "Add input columns"))
        return list(df.columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _fail(f"{prefix}DataFrame columns", "a superset of the training feature columns",
                    f"no column {missing[0]!r}", "Pass the same columns as the training data")
    # Selecting by the training columns also fixes a val/test frame whose columns come in another order.
    return list(columns)


def _from_frame(df: Any, target: str | None, prefix: str, columns: list[Any] | None) -> _Arrays:
    names = [str(c) for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(problem(f"{prefix}DataFrame columns", "unique", dupes, "Rename the repeated columns"))
    if target is None:
        raise DataError(problem("target", "the name of the DataFrame column to predict", None,
                                f"Pass target= one of: {', '.join(names)}"))
    if target not in df.columns:
        close = difflib.get_close_matches(str(target), names, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise DataError(problem("target", f"a column of the {prefix}DataFrame", target,
                                f"{hint}Columns: {', '.join(names)}"))
    columns = _columns(df.drop(columns=[target]), prefix, columns)
    x = _inputs(_frame_features(df[columns], prefix), f"{prefix}X")
    return _Arrays(x, _targets(df[target], f"{prefix}y"), columns, [str(target)])


@contextmanager
def _progress(description: str, total: int | None, show: bool) -> Iterator[Callable[[int], None]]:
    """A transient rich bar on stderr; yields ``advance(n)`` (a no-op when not shown)."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(description, total=total)
    with bar:
        yield lambda n: bar.advance(task, n)


def _sample(item: Any, field: str, i: int) -> tuple[torch.Tensor, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise _fail(f"{field}[{i}]", "an (x, y) pair", type(item).__name__,
                    "Return (input, target) from __getitem__ / __iter__")
    x, y = item
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)  # a PIL image's is read-only: copied, so torch does not warn about writes to it
        x = torch.as_tensor(_numeric(x if x.flags.writeable else x.copy(), f"{field}[{i}] x"))
    x = x.detach().cpu()
    if x.is_complex():
        raise _fail(f"{field}[{i}] x", "real numbers", f"a {x.dtype} tensor", "Return real-valued inputs")
    if isinstance(y, (torch.Tensor, np.ndarray, np.generic)):
        y = y.item() if y.ndim == 0 else np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    return x, y


def _numeric(a: np.ndarray, field: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise DataError(problem(field, "numeric", a.reshape(-1)[0].item() if a.size else a.dtype.str,
                                "Return inputs as tensors or numeric arrays"))
    return a


def _too_big(field: str, n: str, per: int, max_bytes: int) -> DataError:
    return _fail(field, f"at most max_bytes={max_bytes:,} bytes in memory", f"{n} samples x {per:,} bytes",
                 "Pass a smaller subset (e.g. torch.utils.data.Subset), or raise max_bytes if the memory is there")


def _materialise(ds: Any, iterable: bool, field: str, show: bool, max_bytes: int,
                 workers: int = 0) -> tuple[torch.Tensor, list]:
    """Read every (x, y) of a Dataset once: inputs stacked (N, ...) float32, targets as a list. A map-style one is
    read here, and where ``workers`` is set and the rest would take this process long, by that many processes."""
    total = None
    if not iterable:
        try:
            total = len(ds)
        except TypeError:
            raise _fail(field, "a map-style Dataset with __len__", type(ds).__name__,
                        "Define __len__, or make it a torch.utils.data.IterableDataset")
    items = iter(ds) if iterable else (ds[i] for i in range(total))
    chunks: list[torch.Tensor] = []
    ys: list[Any] = []
    buf, shape, per = None, None, 0
    start = time.perf_counter()
    with _progress(f"reading {type(ds).__name__}", total, show) as advance:
        for i, item in enumerate(items):
            x, y = _sample(item, field, i)
            if i == 0:
                shape = x.shape
                # Estimated from the first sample: the float32 copy of x plus its target.
                per = 4 * max(1, x.numel()) + max(8, np.asarray(y).nbytes)
                if total is not None and total * per > max_bytes:
                    raise _too_big(field, f"{total:,}", per, max_bytes)
                buf = torch.empty((total, *shape), dtype=torch.float32) if total is not None else None
            elif x.shape != shape:
                raise _other_shape(field, i, shape, x.shape)
            if buf is not None:
                buf[i] = x
            elif (i + 1) * per > max_bytes:  # an iterable has no length: stop as soon as it overflows
                raise _too_big(field, f"more than {i:,}", per, max_bytes)
            else:
                chunks.append(x.to(torch.float32))
            ys.append(y)
            if (i + 1) % _PROGRESS_STEP == 0:
                advance(_PROGRESS_STEP)
            if total is not None and worth_workers(i + 1, total, time.perf_counter() - start, workers):
                assert buf is not None and shape is not None
                done = i + 1
                advance(done % _PROGRESS_STEP)
                for first, x_rows, more in read_with_workers(ds, range(done, total), workers, _Rows(field, shape)):
                    buf[first:first + len(more)] = x_rows
                    ys.extend(more)
                    advance(len(more))
                break
        else:
            advance(len(ys) % _PROGRESS_STEP)
    if not ys:
        raise _fail(field, "a dataset with at least one example", "an empty one", "Pass a dataset with data in it")
    return (buf if buf is not None else torch.stack(chunks)), ys


def _other_shape(field: str, i: int, shape: torch.Size, got: torch.Size) -> DataError:
    return _fail(f"{field}[{i}] x", f"shaped {tuple(shape)} like {field}[0]", f"shape {tuple(got)}",
                 "Resize or pad every example to one shape")


@dataclass(frozen=True)
class _Rows:
    """A worker's batch of examples, checked as ``_materialise`` checks each: (first index, inputs stacked float32,
    targets). A class, not a closure: workers started by spawn or forkserver receive it pickled."""

    field: str
    shape: torch.Size

    def __call__(self, index: list[int], items: list[Any]) -> tuple[int, torch.Tensor, list[Any]]:
        xs, ys = [], []
        for i, item in zip(index, items):
            x, y = _sample(item, self.field, i)
            if x.shape != self.shape:
                raise _other_shape(self.field, i, self.shape, x.shape)
            xs.append(x.to(torch.float32))
            ys.append(y)
        return index[0], torch.stack(xs), ys


def _read(obj: Any, kind: Kind, prefix: str, *, target: str | None, columns: list[Any] | None,
          progress: bool | None, max_bytes: int, workers: int = 0) -> _Arrays:
    """Inputs and raw targets from any accepted form; ``prefix`` ('', 'val ', 'test ') names fields."""
    field = prefix.strip() or "data"
    if kind == "dataframe" and _is_frame(obj):
        arrays = _from_frame(obj, target, prefix, columns)
    elif kind in ("dataset", "iterable"):
        show = getattr(sys.stderr, "isatty", lambda: False)() if progress is None else bool(progress)
        x, ys = _materialise(obj, kind == "iterable", field, show, max_bytes, workers)
        x = x[:, None] if x.ndim == 1 else x  # scalar inputs, as for X shaped (N,)
        _check_finite(x, f"{prefix}X")
        arrays = _Arrays(x, _targets(ys, f"{prefix}y"))
    else:
        X, y = obj
        names = None
        if _is_frame(X):
            names = _columns(X, prefix, columns)
            X = _frame_features(X[names], prefix)
        y_names = None
        if _is_frame(y):
            y_names = [str(c) for c in y.columns]
        elif hasattr(y, "to_numpy") and getattr(y, "name", None) is not None:  # a named pandas Series
            y_names = [str(y.name)]
        arrays = _Arrays(_inputs(X, f"{prefix}X", max_bytes), _targets(y, f"{prefix}y"), names, y_names)
    _check_lengths(len(arrays.x), len(arrays.y), prefix)
    return arrays


def _check_lengths(rows: int, targets: int, prefix: str = "") -> None:
    """DataError unless there is one target per row of X (``prefix``: 'val ', 'test ' name the set)."""
    if rows != targets:
        raise _fail(f"{prefix}y", f"one target per row of {prefix}X", f"{targets} targets for {rows} rows",
                    "Pass X and y of the same length")


def targets_beside(y: Any, rows: int) -> np.ndarray:
    """Targets passed beside ``rows`` inputs (Run.evaluate on a run whose data has no reader): read and checked
    as training targets are, one per row."""
    a = _targets(y, "y")
    _check_lengths(rows, len(a))
    return a


@dataclass(frozen=True)
class _Spec:
    """What the training data fixed, applied unchanged to the val and test sets."""

    task: Task
    input_shape: tuple[int, ...]
    classes: np.ndarray | None  # sorted original labels; class id = position
    class_names: list[str] | None
    y_tail: tuple[int, ...]  # regression target shape per example: () or (T,)


def _resolve_task(y: np.ndarray, task: str) -> Task:
    kind, multi = y.dtype.kind, y.ndim == 2 and y.shape[1] > 1
    whole = kind != "f" or bool(np.all(y == np.round(y)))
    if task == "auto":
        if multi or (kind == "f" and not (whole and len(np.unique(y)) <= _MAX_INT_CLASSES)):
            return "regression"
        return "classification"
    if task == "classification":
        if multi:
            raise _fail("y", "one label per example for task='classification'", f"shape {y.shape}",
                        "Pass y shaped (N,), or use task='regression' for several targets")
        if not whole:
            flat = y.reshape(-1)
            raise DataError(problem("y", "whole-number class labels for task='classification'",
                                    float(flat[flat != np.round(flat)][0]), "Use task='regression' or 'auto'"))
    return task  # type: ignore[return-value]


def _one_hot_ids(y: np.ndarray) -> np.ndarray | None:
    """The class ids of one-hot label rows (Keras' ``to_categorical``, ``pd.get_dummies``): (N, K) of 0s and 1s with
    one 1 a row, K >= 2; None for anything else (several targets, multi-hot rows, probabilities)."""
    if y.ndim != 2 or y.shape[1] < 2 or y.dtype.kind not in "biuf":
        return None
    ones = y == 1
    if not ((y == 0) | ones).all() or not (ones.sum(1) == 1).all():
        return None
    return ones.argmax(1)


def _labels_from_one_hot(arrays: _Arrays, task: str) -> tuple[_Arrays, bool]:
    """``arrays`` with one-hot label rows as class ids (task auto or classification), and whether they were."""
    ids = _one_hot_ids(arrays.y) if task != "regression" else None
    return (arrays, False) if ids is None else (replace(arrays, y=ids), True)


def _one_hot_names(spec: _Spec, arrays: _Arrays) -> _Spec:
    """One-hot columns with names (a DataFrame's, from pd.get_dummies) name the classes they stand for."""
    names = arrays.target_names
    if spec.classes is None or not names:
        return spec
    return replace(spec, class_names=[str(names[int(c)]) for c in spec.classes])


def _class_names(classes: np.ndarray) -> list[str]:
    if classes.dtype.kind == "f":  # whole numbers, checked by _resolve_task: 3.0 is class "3"
        return [str(int(c)) for c in classes]
    return [str(c.item() if hasattr(c, "item") else c) for c in classes]


def _spec(arrays: _Arrays, task: Task) -> _Spec:
    shape = tuple(arrays.x.shape[1:])
    if task == "regression":
        return _Spec(task, shape, None, None, tuple(arrays.y.shape[1:]))
    classes = np.unique(arrays.y)
    if len(classes) < 2:
        raise DataError(problem("y", "at least 2 different classes", _class_names(classes),
                                "Pass labels that vary, or task='regression'"))
    return _Spec(task, shape, classes, _class_names(classes), ())


def _encode(y: np.ndarray, spec: _Spec, field: str) -> torch.Tensor:
    """Class ids (N,) int64 by the training classes; DataError naming the first label training lacks."""
    classes = spec.classes
    assert classes is not None and spec.class_names is not None
    ids = _one_hot_ids(y)  # one-hot rows, as the training labels may have been: their class ids
    y = ids if ids is not None else y
    if y.ndim == 2 and y.shape[1] != 1:
        raise _fail(field, "one label per example", f"shape {y.shape}", "Pass labels shaped (N,)")
    y = y.reshape(len(y))
    if (y.dtype.kind in "US") != (classes.dtype.kind in "US"):  # text vs number labels never match
        ids, seen = np.zeros(len(y), dtype=np.int64), np.zeros(len(y), dtype=bool)
    else:
        ids = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        seen = classes[ids] == y
    if not seen.all():
        i = int(np.flatnonzero(~seen)[0])
        shown = spec.class_names[:10] + (["..."] if len(classes) > 10 else [])
        raise DataError(problem(field, f"one of the training classes {shown}", y[i].item(),
                                f"Found at row index {i}; add examples of that class to the training data, "
                                "or drop those rows"))
    return torch.from_numpy(ids.astype(np.int64))


def _to_split(arrays: _Arrays, spec: _Spec, prefix: str) -> Split:
    if tuple(arrays.x.shape[1:]) != spec.input_shape:
        raise _fail(f"{prefix}X", f"shaped (N, {', '.join(map(str, spec.input_shape))}) like the training inputs",
                    f"shape {tuple(arrays.x.shape)}", "Pass the same features or channels as the training data")
    if spec.task == "classification":
        return Split(arrays.x, _encode(arrays.y, spec, f"{prefix}y"))
    if arrays.y.dtype.kind not in "biuf":
        raise DataError(problem(f"{prefix}y", "numbers for task='regression'", arrays.y.reshape(-1)[0].item(),
                                "Use task='classification' or 'auto' for text labels"))
    y = _float32(arrays.y)
    _check_finite(y, f"{prefix}y")  # float64 targets beyond float32's range become Inf here
    if tuple(y.shape[1:]) != spec.y_tail:
        raise _fail(f"{prefix}y", f"shaped (N, {', '.join(map(str, spec.y_tail))}) like the training targets"
                    if spec.y_tail else "shaped (N,) like the training targets", f"shape {tuple(y.shape)}",
                    "Pass the same targets as the training data")
    return Split(arrays.x, y)


def _no_test() -> Split:
    raise _fail("test", "given to evaluate on held-out data", "None: no test set was given",
                "Pass test=(X_test, y_test) to fit")


def _carve_val(full: Split, val: float, spec: _Spec, seed: int,
               stratify: bool) -> tuple[Split, Split, torch.Tensor]:
    """(train, val, the positions train keeps)."""
    if not 0 < val < 1:
        raise ConfigError(problem("val", "a fraction between 0 and 1 (exclusive), or a validation set (X_val, y_val)",
                                  val, "Use e.g. val=0.1"))
    labels = full.y if spec.task == "classification" and stratify else None
    keep, held = split_indices(len(full), float(val), seed=seed, labels=labels)
    if len(keep) == 0 or len(held) == 0:
        raise DataError(problem("val", f"a fraction that leaves examples on both sides of {len(full)}", val,
                                "Use more data, a different fraction, or pass val=(X_val, y_val)"))
    return full.subset(keep), full.subset(held), keep


def bundle_from_data(data: Any, *, target: str | None = None, val: float | tuple | Any = 0.1, test: Any = None,
                     task: str = "auto", seed: int = 0, stratify: bool = True, normalize: bool = False,
                     progress: bool | None = None, max_bytes: int = 4 << 30, workers: int = 0) -> DataBundle:
    """A :class:`DataBundle` from in-memory data: ``data`` is (X, y), a DataFrame with ``target=``, or a torch
    (Iterable)Dataset of (x, y); ``val`` a fraction to carve or a set; ``test`` a set, sealed and read lazily.
    ``workers`` (speed.workers): processes that read a slow map-style Dataset's examples once, beside this one."""
    if task not in _TASKS:
        raise ConfigError(problem("task", f"one of {', '.join(_TASKS)}", task, "Use task='auto' to infer it"))
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes <= 0:
        raise ConfigError(problem("max_bytes", "a positive whole number of bytes", max_bytes, "Use e.g. 4 << 30"))
    kind = _kind(data, "data")
    if target is not None and not _is_frame(data):
        raise DataError(problem("target", "used only with a pandas DataFrame", target,
                                "Drop target=, or pass the table as a DataFrame"))
    opts = dict(target=target, progress=progress, max_bytes=max_bytes, workers=workers)
    if kind == "dataset":
        streamed_because = (STREAMED_TOO_BIG if not _fits(data, max_bytes) else
                            STREAMED_RANDOM if _changes_between_reads(data) else None)
        if streamed_because is not None:
            if normalize:
                raise ConfigError(problem("normalize", f"False for a dataset read batch by batch, as this one is: "
                                                       f"{streamed_because}", True,
                                          "Normalise inside the Dataset's __getitem__ instead"))
            return _streaming_bundle(data, val, test, task, seed, stratify, opts, streamed_because)
    redrawn = kind == "iterable" and _iterable_changes_between_passes(data)
    arrays = _read(data, kind, "", columns=None, **opts)
    if len(arrays.x) == 0:
        raise _fail("data", "at least one example", "0 rows", "Pass a non-empty X and y")
    raw_y = arrays.y
    arrays, one_hot = _labels_from_one_hot(arrays, task)
    spec = _spec(arrays, _resolve_task(arrays.y, task))
    spec = _one_hot_names(spec, arrays) if one_hot else spec
    full = _to_split(arrays, spec, "")
    # An IterableDataset that changes between passes: its first pass, read above, gives the labels and a carved
    # validation set; training reads it afresh every epoch at the other positions, which needs a steady order.
    carve = isinstance(val, numbers.Real) and not isinstance(val, bool)
    redrawn = redrawn and (not carve or _same_order(data, raw_y))
    if redrawn and normalize:
        raise ConfigError(problem("normalize", f"False for a dataset read afresh every epoch, as this one is: "
                                               f"{STREAMED_RANDOM}", True, "Normalise inside the Dataset instead"))

    def fresh(positions: torch.Tensor) -> IterableSplit:
        return IterableSplit(data, positions, _Encoder(spec), spec.input_shape, spec.y_tail)

    if carve:
        train, val_split, keep = _carve_val(full, val, spec, seed, stratify)
        train = fresh(keep) if redrawn else train
    else:
        val_kind = _kind(val, "val", f"a fraction in (0, 1) or {_ACCEPTED}")
        val_split = _to_split(_read(val, val_kind, "val ", columns=arrays.columns, **opts), spec, "val ")
        train = fresh(torch.arange(len(full))) if redrawn else full

    if test is None:
        test_load: Callable[[], Split] = _no_test
    else:
        test_kind = _kind(test, "test")  # the type is checked now; the data is read only when opened
        _check_test(test, test_kind, spec, arrays.columns, target)  # and what can be checked without reading it

        def test_load() -> Split:
            return _to_split(_read(test, test_kind, "test ", columns=arrays.columns, **opts), spec, "test ")

    stats: dict[str, Any] = {}
    transform = None
    if normalize:
        std = Standardizer.fit(train.x)  # training statistics only: val and test never inform them
        train, val_split = Split(std(train.x), train.y), Split(std(val_split.x), val_split.y)
        transform, stats["normalize"] = std, std.state_dict()

    def read(obj: Any) -> Split:
        """Examples passed later (Run.evaluate) as the test set is read: same classes, columns, normalisation."""
        split = _to_split(_read(obj, _kind(obj, "data"), "", columns=arrays.columns, **opts), spec, "")
        return Split(transform(split.x), split.y) if transform is not None else split

    return DataBundle(
        train=train, val=val_split, test=SealedTest(test_load, transform, available=test is not None),
        task=spec.task, n_classes=len(spec.classes) if spec.classes is not None else None, input_shape=spec.input_shape,
        class_names=spec.class_names, target_names=arrays.target_names if spec.task == "regression" else None,
        feature_names=[str(c) for c in arrays.columns] if arrays.columns is not None else None,
        stats=stats, meta={"source": "memory", "kind": kind, **({"streamed": STREAMED_RANDOM} if redrawn else {}),
                           **({"labels": ONE_HOT} if one_hot else {})},
        read=read,
    )


def _check_test(test: Any, kind: Kind, spec: _Spec, columns: list[Any] | None, target: str | None) -> None:
    """DataError now, before training, when the test set cannot be scored like the training data: no rows,
    other columns or image shape, targets not one per row, NaN or Inf in float inputs, a label training lacks.
    Read from the inputs' ``shape``, column labels and (for float arrays and tensors) their sum, and from the
    targets: no input value is converted or kept, and a Dataset is not touched (it stays sealed)."""
    if kind == "dataframe" and _is_frame(test):
        _columns(test, "test ", columns)
        y: Any = test[target] if target is not None and target in test.columns else None
        shape: tuple[int, ...] | None = None
    elif kind in ("tensors", "numpy", "lists", "dataframe"):
        x, y = test
        if _is_frame(x):
            _columns(x, "test ", columns)
            shape = None
        else:
            shape = tuple(x.shape) if hasattr(x, "shape") else _list_shape(x)
    else:
        return
    if shape:  # None/(): ragged lists or a single number, named by the full read at open
        shape = (*shape, 1) if len(shape) == 1 else shape
        _check_not_empty(shape, "test X")
        if tuple(shape[1:]) != spec.input_shape:
            raise _fail("test X", f"shaped (N, {', '.join(map(str, spec.input_shape))}) like the training inputs",
                        f"shape {shape}", "Pass the same features or channels as the training data")
        if _is_float_array(x):  # a NaN found only when the test set opens would end a finished run without a test
            _check_finite(x, "test X")
    if y is None:
        return
    targets = _targets(y, "test y")
    if shape:
        _check_lengths(shape[0], len(targets), "test ")
    if spec.task == "classification":
        _encode(targets, spec, "test y")


def _is_float_array(x: Any) -> bool:
    """A numpy array or torch tensor of floats: its NaN/Inf check is a sum over it, nothing converted."""
    if isinstance(x, torch.Tensor):
        return x.is_floating_point()
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _list_shape(x: Any) -> tuple[int, ...] | None:
    """The shape of nested lists from their first elements (None when that is not a clean rectangle)."""
    shape = []
    while isinstance(x, (list, tuple)):
        shape.append(len(x))
        if not x:
            break
        x = x[0]
    return tuple(shape) or None


# Why a Dataset is read batch by batch every epoch instead of once into tensors (DataBundle.meta["streamed"]).
STREAMED_TOO_BIG = "its float32 copy would not fit in max_bytes"
STREAMED_RANDOM = ("its examples change between reads (a random transform): each epoch reads them afresh, "
                   "as a DataLoader loop does")
# How the labels were read (DataBundle.meta["labels"]), where not as given.
ONE_HOT = ("one-hot rows (as Keras' to_categorical makes), read as the class of their 1; task='regression' keeps "
           "them as targets")
_PROBES = 32  # examples read twice: a transform drawn for 1 read in 10 (RandomErasing(p=0.1)) goes unnoticed with
#              probability (1 - 2·0.1·0.9)³² ≈ 0.002; a fair coin's (a flip), 2⁻³²


def _changes_between_reads(ds: Any) -> bool:
    """Whether a map-style dataset hands out another example on a second read: a random transform in its
    ``__getitem__`` (crops, flips, noise) whose draws must be new every epoch. Its first ``_PROBES`` examples are
    read twice each, until one differs; a dataset without ``__len__`` (read once, in order) is not asked."""
    try:
        n = len(ds)
    except TypeError:
        return False
    return any(not _same_example(*_sample(ds[i], "data", i), *_sample(ds[i], "data", i))
               for i in range(min(n, _PROBES)))


def _iterable_changes_between_passes(ds: Any) -> bool:
    """Whether two passes over an IterableDataset differ in their first ``_PROBES`` examples. One whose
    ``__iter__`` hands back the same iterator every time can be read once only: it is not asked (nothing is lost)."""
    a, b = iter(ds), iter(ds)
    if a is b:
        return False
    for i, (one, two) in enumerate(zip(a, b)):
        if not _same_example(*_sample(one, "data", i), *_sample(two, "data", i)):
            return True
        if i + 1 == _PROBES:
            break
    return False


_ORDER_PROBE = 64  # labels compared between two passes: a dataset that shuffles itself shows it here


def _same_order(ds: Any, labels: np.ndarray) -> bool:
    """Whether a fresh pass over an IterableDataset hands out the labels of its first pass in the same order.

    One that shuffles itself cannot be split by position (a carved validation example would come back as another
    one, and training would see it): given a fraction to carve, it stays read once into tensors, as before."""
    n = min(len(labels), _ORDER_PROBE)
    again = [_sample(item, "data", i)[1] for i, item in zip(range(n), ds)]
    return len(again) == n and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again, labels[:n]))


def _same_example(x0: torch.Tensor, y0: Any, x: torch.Tensor, y: Any) -> bool:
    same_x = x.shape == x0.shape and x.dtype == x0.dtype and bool(
        ((x == x0) | (x != x) & (x0 != x0)).all())  # NaN where NaN was: the same (the NaN check comes later)
    return same_x and np.array_equal(np.asarray(y), np.asarray(y0))


def _fits(ds: Any, max_bytes: int) -> bool:
    """Whether a map-style dataset's float32 copy fits in ``max_bytes`` (estimated from its first example)."""
    try:
        n = len(ds)
    except TypeError:
        return True  # _materialise reports the missing __len__
    if n == 0:
        return True
    x, y = _sample(ds[0], "data", 0)
    return n * (4 * max(1, x.numel()) + max(8, np.asarray(y).nbytes)) <= max_bytes


@dataclass(frozen=True)
class _Encoder:
    """A streamed batch's raw targets → class ids (by the training classes) or float32 targets. A class, not a
    closure: DataLoader workers started by spawn or forkserver receive it pickled."""

    spec: _Spec

    def __call__(self, ys: list[Any]) -> torch.Tensor:
        y = np.asarray(ys)
        if self.spec.task == "classification":
            return _encode(y, self.spec, "y")
        return _float32(y)


def _streaming_bundle(ds: Any, val: Any, test: Any, task: str, seed: int, stratify: bool,
                      opts: dict[str, Any], because: str) -> DataBundle:
    """A bundle whose splits are (dataset, indices) read through a DataLoader: for data too big for memory, or
    whose examples change between reads (``because`` says which). The validation split carved from the latter is
    read once into tensors: every epoch is scored on the same examples."""
    n = len(ds)
    x0, _ = _sample(ds[0], "data", 0)
    raw_y = read_targets(ds, n, opts["workers"])  # labels only: the inputs stay in the dataset
    labels, one_hot = _labels_from_one_hot(_Arrays(x0[None].float(), raw_y), task)
    raw_y = labels.y
    spec = _spec(labels, _resolve_task(raw_y, task))
    encode = _Encoder(spec)

    def split(indices: torch.Tensor) -> DatasetSplit:
        return DatasetSplit(ds, indices, encode, spec.input_shape, spec.y_tail)

    if isinstance(val, numbers.Real) and not isinstance(val, bool):
        labels = torch.from_numpy(_encode(raw_y, spec, "y").numpy()) if spec.task == "classification" and stratify else None
        keep, held = split_indices(n, float(val), seed=seed, labels=labels)
        train, val_split = split(keep.sort().values), split(held.sort().values)
        if because == STREAMED_RANDOM:
            val_split = val_split.read_once()
    else:
        arrays = _read(val, _kind(val, "val", f"a fraction in (0, 1) or {_ACCEPTED}"), "val ", columns=None, **opts)
        train, val_split = split(torch.arange(n)), _to_split(arrays, spec, "val ")

    def read(obj: Any, field: str = "data") -> Split | DatasetSplit:
        """Examples as the test set is read (Run.evaluate on data passed later): a Dataset too big for memory
        streamed batch by batch, anything else read once, with the training classes."""
        kind = _kind(obj, field)
        if kind == "dataset" and not _fits(obj, opts["max_bytes"]):
            return DatasetSplit(obj, torch.arange(len(obj)), encode, spec.input_shape, spec.y_tail)
        label = "" if field == "data" else f"{field} "
        return _to_split(_read(obj, kind, label, columns=None, **opts), spec, label)

    def test_load() -> Split | DatasetSplit:
        return read(test, "test")

    if test is not None:
        _kind(test, "test")
    return DataBundle(
        train=train, val=val_split, test=SealedTest(test_load if test is not None else _no_test, None,
                                                    available=test is not None),
        task=spec.task, n_classes=len(spec.classes) if spec.classes is not None else None,
        input_shape=spec.input_shape, class_names=spec.class_names,
        meta={"source": "memory", "kind": "stream", "streamed": because, **({"labels": ONE_HOT} if one_hot else {})},
        read=read,
    )


def unwrap_loader(obj: Any, field: str) -> tuple[Any, dict[str, Any]]:
    """A ``DataLoader`` → (its dataset, what it said about training: ``batch_size``, ``workers``, ``shuffle``,
    ``drop_last``); anything else comes back as it is, with no options. trainlab batches and shuffles the dataset
    itself, so a loader whose sampler, batch sampler or collate function it could not honour is one line naming it."""
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
    from torch.utils.data.dataloader import default_collate
    from torch.utils.data.sampler import BatchSampler

    if not isinstance(obj, DataLoader):
        return obj, {}
    fix = (f"Pass its dataset ({field}=loader.dataset) with the items your model takes; trainlab draws the batches, "
           "shuffled every epoch (shuffle=False: in order)")
    if obj.collate_fn is not default_collate:
        raise DataError(problem(field, "a DataLoader with the default collate_fn, or a Dataset",
                                f"collate_fn={getattr(obj.collate_fn, '__name__', type(obj.collate_fn).__name__)}",
                                fix))
    sampler = obj.sampler
    if type(obj.batch_sampler) is not BatchSampler or type(sampler) not in (RandomSampler, SequentialSampler):
        custom = obj.batch_sampler if type(obj.batch_sampler) is not BatchSampler else sampler
        weighted = "; for classes of unequal size, class_weights='balanced' weighs the loss instead of the draws"
        raise DataError(problem(field, "a DataLoader with shuffle=True or False (no sampler of its own), or a Dataset",
                                type(custom).__name__, fix + (weighted if "Weighted" in type(custom).__name__ else "")))
    if isinstance(obj.dataset, IterableDataset) or obj.batch_size is None:
        return obj.dataset, {}
    return obj.dataset, {"batch_size": obj.batch_size, "workers": obj.num_workers,
                         "shuffle": isinstance(sampler, RandomSampler), "drop_last": obj.drop_last}


def as_inputs(x: Any, field: str = "X") -> torch.Tensor:
    """New inputs (for prediction) converted as training inputs are: float32 (N, ...), checked finite."""
    if _is_frame(x):
        x = _frame_features(x, f"{field} ")
    return _inputs(x, field)
