"""Contract: every registered model × optimizer × init trains through the real loop on small data.

One shared check: a few updates run, the loss stays finite, the weights move, and the epoch's
metrics have the documented keys. Image models get (1, 8, 8) images, flat models 2-D points.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from trainlab.config import resolve_config
from trainlab.data.base import DataBundle, SealedTest, Split
from trainlab.registry import INITS, MODELS, OPTIMIZERS, load_plugins
from trainlab.train.loop import LoopData, train_epoch
from trainlab.train.losses import resolve_loss
from trainlab.train.run import _build_state, prepare

load_plugins()
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01, "adamw": 0.01}


def _bundle(image: bool) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    n = 64
    x = torch.randn(n, 1, 8, 8, generator=g) if image else torch.randn(n, 2, generator=g)
    y = (x.flatten(1).sum(1) > 0).long()
    split = Split(x, y)
    return DataBundle(train=split, val=split, test=SealedTest(lambda: split), task="classification",
                      n_classes=2, input_shape=tuple(x.shape[1:]))


BUNDLES = {"flat": _bundle(False), "image": _bundle(True)}
CASES = [(m, o, i, shape) for m, o, i in itertools.product(MODELS.names(), OPTIMIZERS.names(), INITS.names())
         for shape in (("image",) if m == "cnn" else ("flat",) if m in ("perceptron", "conv1d") else ("flat", "image"))]


@pytest.mark.parametrize("model, optimizer, init, shape", CASES)
def test_every_model_optimizer_init_trains(model, optimizer, init, shape, tmp_path):
    bundle = BUNDLES[shape]
    cfg = resolve_config(overrides={
        "model.name": model, "optimizer.name": optimizer, "optimizer.lr": LR[optimizer], "model.init": init,
        "model.hidden": [8], "model.channels": [4], "loss.name": "hinge" if model == "perceptron" else "auto",
        "batch_size": 16, "epochs": 1, "out_dir": str(tmp_path), "threads": 1})
    p = prepare(cfg, bundle)
    state = _build_state(p)
    before = [t.detach().clone() for t in p.model.parameters()]
    data = LoopData(bundle.train, bundle.val, resolve_loss(cfg.loss.name, "classification", 2), True,
                    torch.Generator().manual_seed(0))
    state.epoch = 1
    metrics = train_epoch(state, data, [])
    assert set(metrics) == {"train_loss", "train_acc", "grad_norm"}
    assert torch.isfinite(torch.tensor(metrics["train_loss"])) and 0 <= metrics["train_acc"] <= 1
    moved = any(not torch.equal(a, b) for a, b in zip(before, p.model.parameters()))
    assert moved, "no parameter changed after 4 updates"
