"""Read and write CIFAR-10 "python version" batches (``cifar-10-batches-py/data_batch_1`` ... ``test_batch``).

The batches are pickles. A pickle can call any importable function while it loads, so they are read
with :class:`RestrictedUnpickler`, which resolves only the handful of names a numpy array needs; a file
that asks for anything else (``os.system``...) is rejected before any of it runs.
"""
from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from trainlab.errors import DataError

__all__ = ["RestrictedUnpickler", "read_cifar_batch", "read_cifar_meta", "write_cifar_batch",
           "write_cifar_meta", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_FIX = "Delete it and let trainlab download it again, or replace it with the original file"


def _numpy_internal(name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; batches pickled under either name must load without
    # touching the deprecated alias (which warns on import).
    try:
        from numpy._core import multiarray, numeric  # type: ignore[attr-defined]
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    return {"_reconstruct": multiarray._reconstruct, "_frombuffer": numeric._frombuffer}[name]


# (module, name) → a resolver. Everything a pickled dict of numpy arrays, lists, strings and bytes needs:
# _reconstruct/ndarray/dtype (protocols 0-4), _frombuffer (protocol 5), and codecs.encode, which is how
# Python 3 writes bytes at protocol <= 2.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_internal("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_internal("_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_internal("_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_internal("_frombuffer"),
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: codecs.encode,
    ("codecs", "encode"): lambda: codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy-array internals and raises DataError for any other global."""

    def __init__(self, file: Any, path: Path) -> None:
        # encoding="bytes": the official batches were pickled by Python 2, whose str keys become bytes.
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise DataError(f"{self._path} must be a CIFAR batch that holds only numpy arrays and lists. "
                            f"Got a pickle that asks for {module}.{name}, which could run code. "
                            "Do not load it; download the batches again from the official site.")
        return resolve()


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} must be an existing CIFAR batch file. Got no such file. Check the path.") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError) as exc:
        # A truncated or damaged pickle fails in one of these ways, depending on where it was cut.
        raise DataError(f"{path} must be a complete CIFAR batch pickle. Got a damaged file "
                        f"({type(exc).__name__}: {str(exc)[:80]}). {_FIX}.") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} must hold a dict. Got {type(obj).__name__}. {_FIX}.")
    # Normalise keys: Python 2 batches give b"data", batches written by Python 3 tools may give "data".
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batch(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file → images uint8 (N, 3, 32, 32) and labels int64 (N,)."""
    path = Path(path)
    batch = _load_pickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{type(data).__name__} {getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}".strip()
        raise DataError(f"{path} 'data' must be a uint8 array of shape (N, 3072). Got {got}. {_FIX}.")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        y = np.empty(0)
    if y.shape != (len(data),):
        raise DataError(f"{path} 'labels' must be {len(data)} integers, one per image. "
                        f"Got {type(labels).__name__} of shape {y.shape}. {_FIX}.")
    # Rows are 1024 red, then 1024 green, then 1024 blue values, each row-major 32 x 32: i.e. (N, 3, 32, 32).
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(y)


def read_cifar_meta(path: str | Path) -> list[str]:
    """Class names from ``batches.meta`` (its ``label_names``)."""
    path = Path(path)
    names = _load_pickle(path).get("label_names")
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{path} 'label_names' must be a list of strings. Got {type(names).__name__}. {_FIX}.")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def write_cifar_batch(path: str | Path, images: np.ndarray | torch.Tensor, labels: Sequence[int],
                      batch_label: str = "training batch 1 of 5", filenames: Sequence[str] | None = None,
                      protocol: int = 2) -> Path:
    """Write images uint8 (N, 3, 32, 32) and labels in the official batch format; returns the path."""
    arr = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.dtype != np.uint8 or arr.shape[1:] != (3, 32, 32):
        raise DataError(f"images must be uint8 of shape (N, 3, 32, 32). Got {arr.dtype} {arr.shape}. "
                        "Convert them first.")
    names = list(filenames) if filenames is not None else [f"image_{i:05d}.png" for i in range(len(arr))]
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(arr).reshape(len(arr), 3072),
        b"filenames": [n.encode() for n in names],
    }
    path = Path(path)
    with open(path, "wb") as fh:
        pickle.dump(batch, fh, protocol=protocol)
    return path


def write_cifar_meta(path: str | Path, label_names: Sequence[str] = CIFAR10_CLASSES) -> Path:
    """Write a ``batches.meta`` file with the given class names; returns the path."""
    meta = {b"label_names": [n.encode() for n in label_names], b"num_cases_per_batch": 10000, b"num_vis": 3072}
    path = Path(path)
    with open(path, "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return path
