"""MNIST-1D as a registered dataset: sizes and shapes, fixed data, the caller's RNG left alone, one line when missing."""
from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

from trainlab.config import resolve_config
from trainlab.data import load_data
from trainlab.data.mnist1d import generate_mnist1d
from trainlab.errors import DataError

SMALL = {"data.name": "mnist1d", "data.mnist1d.n_train": 200, "data.mnist1d.n_test": 50}


def test_defaults_are_the_published_sizes():
    cfg = resolve_config(overrides={"data.name": "mnist1d"})
    assert (cfg.data.mnist1d.n_train, cfg.data.mnist1d.n_test, cfg.data.mnist1d.length) == (4000, 1000, 40)


def test_load_data_gives_one_channel_sequences_and_a_sealed_test_split():
    cfg = resolve_config(overrides={**SMALL, "data.mnist1d.length": 30})
    bundle = load_data(cfg.data, cfg.seed)
    assert bundle.input_shape == (1, 30) and bundle.n_classes == 10
    assert len(bundle.train) + len(bundle.val) == 200 and bundle.test.opened == 0
    assert bundle.train.x.shape[1:] == (1, 30) and bundle.train.x.dtype == torch.float32
    test = bundle.test.open()
    assert test.x.shape == (50, 1, 30) and set(test.y.tolist()) <= set(range(10))


def test_same_sizes_give_the_same_data_and_leave_the_global_generators_alone():
    random.seed(3)
    np.random.seed(3)
    before = (random.random(), np.random.rand())
    random.seed(3)
    np.random.seed(3)
    generate_mnist1d.cache_clear()
    train, test = generate_mnist1d(100, 20, 40)
    assert (random.random(), np.random.rand()) == before  # the package reseeds globally; we restore
    generate_mnist1d.cache_clear()
    again, _ = generate_mnist1d(100, 20, 40)
    assert torch.equal(train.x, again.x) and torch.equal(train.y, again.y)
    assert train.x.shape == (100, 1, 40) and test.x.shape == (20, 1, 40)
    assert abs(float(torch.cat([train.x, test.x]).std()) - 1) < 0.05  # centred, std 1 as the package makes it


def test_missing_package_is_one_clear_line(monkeypatch):
    generate_mnist1d.cache_clear()
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    cfg = resolve_config(overrides=SMALL)
    with pytest.raises(DataError, match=r"needs the mnist1d package\. .*pip install mnist1d") as err:
        load_data(cfg.data, cfg.seed)
    assert len(str(err.value).splitlines()) == 1
    generate_mnist1d.cache_clear()


def test_sizes_are_validated_at_the_edge():
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="n_train"):
        resolve_config(overrides={"data.name": "mnist1d", "data.mnist1d.n_train": 0})
