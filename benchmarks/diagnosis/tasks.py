"""The base tasks of the diagnosis benchmark: data (generated from a seed, split by the script itself) and the
options of a healthy run through ``tl.fit``.

Every task is small enough for ~1 s of training on one CPU thread. The script measures each run itself on the
validation split it made (``Run.predict``), so a label never depends on what trainlab reports.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from trainlab.data.toy import make_toy

FASHION = Path("/usr/share/datasets/fashion-mnist")
VAL_FRACTION = 0.25


@dataclass(frozen=True)
class UserSpec:
    """A user's own ``nn.Module`` (an MLP written by hand), described as data so fault operators can change it."""

    width: int = 64
    depth: int = 2
    activation: str = "relu"
    dropout: float = 0.0
    final: str | None = None  # "softmax": the module ends in nn.Softmax (the fault "softmax before CE")
    zero_init: bool = False


class UserNet(nn.Module):
    """What a user writes: Linear → act (→ dropout) blocks and a linear head, optionally ending in a softmax."""

    def __init__(self, n_in: int, n_out: int, spec: UserSpec, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)  # a user's script seeds the global RNG; the benchmark runs one model per process
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[spec.activation]
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_in
        for _ in range(spec.depth):
            layers += [nn.Linear(width, spec.width), act()]
            if spec.dropout:
                layers.append(nn.Dropout(spec.dropout))
            width = spec.width
        layers.append(nn.Linear(width, n_out))
        if spec.final == "softmax":
            layers.append(nn.Softmax(dim=1))
        self.net = nn.Sequential(*layers)
        if spec.zero_init:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class Task:
    """A base task: ``make(seed) -> (x, y)``, the healthy run's ``tl.fit`` options, and a user module if any."""

    name: str
    kind: str  # "classification" | "regression"
    n_classes: int | None
    make: Callable[[int], tuple[torch.Tensor, torch.Tensor]]
    options: dict[str, Any]
    user: UserSpec | None = None  # set: the run trains UserNet(spec) instead of a built-in model
    model_name: str = "mlp"
    faults: bool = True  # False: a task used for healthy runs only ("other tasks")


def split(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """(train, val) by a seeded permutation, VAL_FRACTION to validation."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(x) * VAL_FRACTION)
    va, tr = order[:n_val], order[n_val:]
    return (x[tr], y[tr]), (x[va], y[va])


def _toy(name: str, n: int, noise: float, classes: int = 2) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    return lambda seed: make_toy(name, n, noise, seed, classes)


def _tabular(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A regression on 8 standardised features: a smooth nonlinear target plus 10 % noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1600, 8)).astype(np.float32)
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] ** 2 - 0.4 * x[:, 4] + 0.2 * x[:, 5]
    y = y + 0.1 * rng.normal(size=len(y))
    y = (y - y.mean()) / y.std()
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)[:, None])


def _idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@lru_cache(maxsize=1)
def _fashion_all() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(_idx(FASHION / "train-images-idx3-ubyte.gz").copy()).float().div_(255)  # (60000, 28, 28)
    y = torch.from_numpy(_idx(FASHION / "train-labels-idx1-ubyte.gz").astype(np.int64))
    return x, y


def _fashion(n: int, image: bool) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = _fashion_all()
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(1000 + seed))[:n]
        xs = x[pick]
        if image:
            return torch.nn.functional.avg_pool2d(xs[:, None], 2), y[pick]  # (n, 1, 14, 14): a quick CNN
        return xs.flatten(1), y[pick]  # (n, 784) in [0, 1]
    return make


TOY = dict(epochs=30, batch_size=32, optimizer="sgd", lr=0.1, init="he")
TASKS: list[Task] = [
    Task("moons", "classification", 2, _toy("moons", 600, 0.1), dict(TOY, hidden=[32])),
    Task("circle", "classification", 2, _toy("circle", 600, 0.05), dict(TOY, hidden=[32], activation="tanh",
                                                                        init="xavier", lr=0.3)),
    Task("spiral", "classification", 2, _toy("spiral", 800, 0.0),
         dict(TOY, hidden=[64, 64], optimizer="adam", lr=0.01, epochs=60)),
    Task("tabular-regression", "regression", None, _tabular,
         dict(epochs=25, batch_size=64, optimizer="sgd", lr=0.02, hidden=[64], init="he")),
    Task("fashion-mlp", "classification", 10, _fashion(3000, image=False),
         dict(epochs=10, batch_size=64, optimizer="sgd", lr=0.1, hidden=[128], init="he")),
    Task("fashion-cnn", "classification", 10, _fashion(2000, image=True),
         dict(epochs=8, batch_size=64, optimizer="adam", lr=0.003, hidden=[32], init="he",
              **{"model.name": "cnn", "model.channels": [8, 16]}), model_name="cnn"),
    Task("user-module-gauss", "classification", 4, _toy("gauss", 600, 0.1, classes=4),
         dict(epochs=15, batch_size=32, optimizer="sgd", lr=0.1), user=UserSpec(width=32, depth=2)),
    # healthy runs only: other tasks
    Task("xor", "classification", 2, _toy("xor", 600, 0.05), dict(TOY, hidden=[32], epochs=25), faults=False),
    Task("user-module-moons", "classification", 2, _toy("moons", 600, 0.15),
         dict(epochs=10, batch_size=32, optimizer="adam", lr=0.01), user=UserSpec(width=16, depth=2), faults=False),
]
TASK_BY_NAME = {t.name: t for t in TASKS}


def constant_loss(kind: str, y_train: torch.Tensor) -> float:
    """The training loss of the best constant predictor: class frequencies (cross-entropy) or the mean (MSE)."""
    if kind == "regression":
        return float(y_train.float().var(unbiased=False))
    p = torch.bincount(y_train).float() / len(y_train)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def knn_score(kind: str, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
              k: int = 5) -> float:
    """Validation accuracy (classification) or R² (regression) of a k-NN on the training split: what the
    inputs say about the targets without any network."""
    xt, yt = train[0].flatten(1).float(), train[1]
    xv, yv = val[0].flatten(1).float(), val[1]
    near = torch.cdist(xv, xt).topk(k, largest=False).indices  # (n_val, k)
    if kind == "regression":
        pred = yt[near].float().mean(1)
        return 1 - float(((pred - yv) ** 2).mean() / yv.float().var(unbiased=False))
    votes = torch.zeros(len(xv), int(yt.max()) + 1).scatter_add_(1, yt[near], torch.ones(near.shape))
    return float((votes.argmax(1) == yv).float().mean())


def chance(task: Task) -> float:
    return 1 / task.n_classes if task.n_classes else 0.0


def skill(task: Task, score: float) -> float:
    """A score's fraction of the way from chance (classification) or 0 (R²) to perfect."""
    c = chance(task)
    return (score - c) / (1 - c) if not math.isnan(score) else float("nan")
