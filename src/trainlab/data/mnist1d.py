"""MNIST-1D (Greydanus 2020): ten 1-D digit templates, padded, shifted, sheared, scaled and noised into
sequences of ``data.mnist1d.length`` values; generated offline by the ``mnist1d`` package.

With the defaults (4000 train / 1000 test, length 40, the package's seed 42) this is the published
dataset, on which the paper reports test accuracy of about 32 % for logistic regression, 68 % for an MLP
and 94 % for a small 1-D CNN. Examples are (1, length) float32 (one channel), centred with std 1.
"""
from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
import torch

from trainlab.data.base import DatasetSource, RawData, Split
from trainlab.errors import DataError
from trainlab.registry import DATASETS

__all__ = ["PACKAGE_SEED", "generate_mnist1d", "load_mnist1d"]

PACKAGE_SEED = 42  # the seed the published MNIST-1D was generated with; the dataset is fixed, like a file
_MISSING = ("data.name 'mnist1d' needs the mnist1d package. Got no module named 'mnist1d'. "
            "Run 'pip install mnist1d'.")


def _package() -> Any:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError(_MISSING) from None
    return get_dataset_args, make_dataset


@functools.lru_cache(maxsize=4)  # generating 5000 sequences takes about 2 s; lessons load it several times
def generate_mnist1d(n_train: int = 4000, n_test: int = 1000, length: int = 40) -> tuple[Split, Split]:
    """(train, test) splits: x (N, 1, length) float32, y (N,) int64 in 0..9. Same arguments → same data."""
    get_dataset_args, make_dataset = _package()
    args = get_dataset_args()
    total = n_train + n_test
    args.num_samples = -(-total // 10) * 10  # the package makes num_samples // 10 per class
    args.train_split = 1.0  # split here instead, so n_train need not be a fraction of a multiple of 10
    args.final_seq_length = length
    args.seed = PACKAGE_SEED
    # make_dataset reseeds Python's and NumPy's global generators: keep the caller's streams as they were
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x = torch.from_numpy(np.ascontiguousarray(data["x"], dtype=np.float32)).unsqueeze(1)  # (N, 1, length)
    y = torch.from_numpy(np.ascontiguousarray(data["y"], dtype=np.int64))
    return Split(x[:n_train], y[:n_train]), Split(x[n_train:total], y[n_train:total])


def load_mnist1d(cfg: Any, seed: int = 0) -> RawData:
    """``cfg``: a DataConfig; its ``mnist1d`` section sets the sizes. The seed has nothing to choose (fixed data)."""
    c = cfg.mnist1d
    train, test = generate_mnist1d(c.n_train, c.n_test, c.length)
    return RawData(train=train, test=lambda: test, task="classification", n_classes=10, input_shape=(1, c.length),
                   class_names=[str(d) for d in range(10)],
                   meta={"dataset": "mnist1d", "generator": "mnist1d package", "package_seed": PACKAGE_SEED})


def _describe(cfg: Any) -> dict[str, Any]:
    try:
        _package()
    except DataError:
        return {"available": False, "location": None, "sizes": {}, "hint": "pip install mnist1d"}
    c = cfg.mnist1d
    return {"available": True, "location": "generated", "sizes": {"train": c.n_train, "test": c.n_test}}


DATASETS.add("mnist1d", DatasetSource(
    "mnist1d", "sequence", "MNIST-1D: 1-D digit sequences (length 40), 10 classes, 4000 train / 1000 test, "
    "generated offline", load_mnist1d, _describe), "MNIST-1D digit sequences, generated offline")
