"""Fashion-MNIST subsets as tensors, for the lessons that test the course's claims on real images.

The engine's own dataset source finds and reads the files (``data.dir``'s search order, no download);
pixels are in [0, 1]. ``fashion_mnist``: the first ``n`` examples of a permutation of each split drawn from
``seed``, flattened to (N, 784), so every run of a lesson with that seed trains and tests on the same images.
``fashion_subsets``: disjoint subsets of the *training* file only (train / validation for lessons that train on
a few hundred images), images (N, 1, 28, 28), the official test file left unopened. ``fit_logged`` trains
through ``trainlab.fit`` and keeps every update's loss.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

import trainlab
from trainlab.config import DataConfig
from trainlab.lessons.base import LessonContext
from trainlab.registry import DATASETS
from trainlab.train.callbacks import Callback, TrainState

Pair = tuple[torch.Tensor, torch.Tensor]


def _raw(seed: int = 0) -> Any:
    return DATASETS.get("fashion-mnist").load(DataConfig(name="fashion-mnist", download=False), seed)


def fashion_mnist(n_train: int | None, n_test: int | None, seed: int) -> tuple[Pair, Pair]:
    """(train, test) subsets: images (n, 784) in [0, 1] and labels (n,); None takes a whole split."""
    raw = _raw(seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for split, n in ((raw.train, n_train), (raw.test(), n_test)):
        part = split.subset(torch.randperm(len(split), generator=gen)[:n]).unit_pixels()
        out.append((part.x.reshape(len(part), -1), part.y))  # (n, 784), (n,)
    return out[0], out[1]


def fashion_subsets(sizes: dict[str, int], seed: int) -> dict[str, Pair]:
    """``{"train": 300, "val": 1000}`` → disjoint random subsets of the training images, x (n, 1, 28, 28) in
    [0, 1] and y (n,), drawn with a generator seeded with ``seed``."""
    raw = _raw(seed)
    order = torch.randperm(len(raw.train), generator=torch.Generator().manual_seed(seed))
    out, start = {}, 0
    for name, n in sizes.items():
        part = raw.train.subset(order[start:start + n]).unit_pixels()
        out[name] = (part.x, part.y)
        start += n
    return out


class StepLosses(Callback):
    """Every update's minibatch training loss."""

    name = "step_losses"

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        self.losses.append(float(loss.detach()))


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` values (fewer at the start): the curve without minibatch noise."""
    sums = np.cumsum([0.0, *values])
    return [(sums[i + 1] - sums[max(0, i + 1 - window)]) / min(i + 1, window) for i in range(len(values))]


def fit_logged(train: Pair, test: Pair, ctx: LessonContext, name: str, **options: Any) -> dict[str, Any]:
    """``trainlab.fit`` on ``train`` with ``test`` as its per-epoch held-out set; every update's loss and the metrics."""
    log = StepLosses()
    run = trainlab.fit(None, train, val=test, callbacks=[log], name=name, out_dir=ctx.runs_dir(), seed=ctx.seed,
                       verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device, **options)
    last = run.history[-1]
    return {"step_losses": log.losses, "test_acc": last["val_acc"], "test_loss": last["val_loss"],
            "train_acc": last["train_acc"], "test_acc_curve": [h["val_acc"] for h in run.history],
            "train_acc_curve": [h["train_acc"] for h in run.history], "verdict": run.diagnosis.verdict,
            "run_dir": str(run.run_dir)}
