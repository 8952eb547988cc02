"""The 2-D toy sets of TensorFlow Playground (``dataset.ts``), plus two-moons, as tensors.

Formulas, ranges and noise meaning follow TF Playground exactly (see shared/reference/tf-playground.md):
``noise`` is its slider / 100, in [0, 0.5]. TF labels ±1 become class ids here: −1 → 0, +1 → 1.
Differences on purpose: the point count is ``n_points`` for every set (TF: 500, regression 1200);
an odd count gives the extra point to class 1; the points come out shuffled once, as TF shuffles them
before splitting; ``spiral`` and ``gauss`` also take ``classes`` > 2 (TF's geometry when it is 2).
With ``data.features`` the inputs are those features of the points (data/features.py) instead of x1, x2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch

from trainlab.data.base import DatasetSource, RawData, Split
from trainlab.data.features import apply_features, feature_stats
from trainlab.errors import ConfigError, problem
from trainlab.registry import DATASETS

__all__ = ["make_toy", "TOY_SETS", "ToySet"]

Gen = Callable[[np.random.Generator, int, float, int], tuple[np.ndarray, np.ndarray]]


def _halves(n: int) -> tuple[int, int]:
    """(points labelled −1, points labelled +1); +1 gets the odd one as TF's loop runs to n/2 twice."""
    return n // 2, n - n // 2


def _circle(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # TF: radius 5; +1 drawn at r ~ U(0, 2.5), −1 at r ~ U(3.5, 5); the label is decided on a noisy
    # copy of the point (noise moves labels, never points).
    n_neg, n_pos = _halves(n)
    r = np.concatenate([rng.uniform(0, 2.5, n_pos), rng.uniform(3.5, 5, n_neg)])
    angle = rng.uniform(0, 2 * math.pi, n)
    xy = np.stack([r * np.sin(angle), r * np.cos(angle)], 1)
    noisy = xy + rng.uniform(-5, 5, (n, 2)) * noise
    return xy, (np.hypot(noisy[:, 0], noisy[:, 1]) < 2.5).astype(np.int64)


def _xor(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.uniform(-5, 5, (n, 2))
    xy += np.where(xy > 0, 0.3, -0.3)  # TF's padding: a 0.3 gap along both axes
    noisy = xy + rng.uniform(-5, 5, (n, 2)) * noise
    return xy, (noisy[:, 0] * noisy[:, 1] >= 0).astype(np.int64)


def _counts(n: int, classes: int) -> np.ndarray:
    """Points per class, as even as possible; the last classes get the extra ones (class 1 of 2, as TF)."""
    return np.full(classes, n // classes) + (np.arange(classes) >= classes - n % classes)


def _gauss(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # TF: variance = 0.5 + 7·noise (d3 scale [0, .5] → [.5, 4]), centres (2, 2) for +1, (−2, −2) for −1.
    # More classes: the same radius 2√2, centres spread evenly starting from class 0 at (−2, −2).
    angle = math.radians(225) + 2 * math.pi * np.arange(classes) / classes
    centres = np.round(2 * math.sqrt(2) * np.stack([np.cos(angle), np.sin(angle)], 1), 12)
    labels = np.repeat(np.arange(classes), _counts(n, classes))
    xy = centres[labels] + rng.normal(0, math.sqrt(0.5 + 7 * noise), (n, 2))
    return xy, labels


def _spiral(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # TF per arm of m points, i = 0..m−1: r = 5i/m, t = 1.75·(i/m)·2π + Δ, Δ = 0 for +1 and π for −1.
    # Arm c of K turns by Δ = π + 2πc/K, which is exactly TF's pair for K = 2 (class 0 = −1 at π).
    counts = _counts(n, classes)
    labels = np.repeat(np.arange(classes), counts)
    m = counts[labels]
    i = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)  # index along its own arm
    r = 5 * i / m
    t = 1.75 * i / m * 2 * math.pi + math.pi + 2 * math.pi * labels / classes
    xy = np.stack([r * np.sin(t), r * np.cos(t)], 1) + rng.uniform(-1, 1, (n, 2)) * noise
    return xy, labels


def _plane(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # TF: x, y ~ U(−6, 6); label = (x + nx + y + ny) / 10 with nx, ny ~ U(−6, 6)·noise.
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, (n, 2)) * noise
    return xy, (noisy.sum(1) / 10)[:, None]


_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def _multi_gauss(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # TF: label = sign·max(0, 1 − d/2) of the bump with the largest magnitude at the noisy point.
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, (n, 2)) * noise
    d = np.hypot(noisy[:, None, 0] - _BUMPS[:, 0], noisy[:, None, 1] - _BUMPS[:, 1])  # (N, 6)
    values = _BUMPS[:, 2] * np.clip(1 - d / 2, 0, 1)
    # argmax keeps the first of equal magnitudes, like TF's strict ">" scan from label 0.
    best = np.abs(values).argmax(1)
    return xy, values[np.arange(n), best][:, None]


def _moons(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    # sklearn's make_moons (evenly spaced angles, upper moon = class 0, Gaussian noise of std `noise`
    # in moon radii), scaled ×2.5 and centred so it fills the same ±5 field as the TF sets.
    n_up, n_low = n // 2, n - n // 2
    a_up, a_low = np.linspace(0, math.pi, n_up), np.linspace(0, math.pi, n_low)
    xy = np.concatenate([np.stack([np.cos(a_up), np.sin(a_up)], 1),
                         np.stack([1 - np.cos(a_low), 0.5 - np.sin(a_low)], 1)])
    xy = xy + rng.normal(0, noise, (n, 2)) if noise > 0 else xy
    labels = np.repeat([0, 1], [n_up, n_low])
    return (xy - [0.5, 0.25]) * 2.5, labels


@dataclass(frozen=True)
class ToySet:
    """One generator and what it produces."""

    generate: Gen
    task: Literal["classification", "regression"]
    description: str
    multiclass: bool = False  # honours ``classes`` > 2


TOY_SETS: dict[str, ToySet] = {
    "circle": ToySet(_circle, "classification", "TF Playground: a disc inside a ring"),
    "xor": ToySet(_xor, "classification", "TF Playground: quadrants, label = sign(x1·x2)"),
    "gauss": ToySet(_gauss, "classification", "TF Playground: two Gaussian blobs (data.classes blobs)", True),
    "spiral": ToySet(_spiral, "classification", "TF Playground: two interleaved spirals (data.classes arms)", True),
    "plane": ToySet(_plane, "regression", "TF Playground regression: a tilted plane (x1 + x2) / 10"),
    "multi-gauss": ToySet(_multi_gauss, "regression", "TF Playground regression: six ±1 bumps"),
    "moons": ToySet(_moons, "classification", "two interleaving half circles (sklearn make_moons)"),
}


def _check(name: str, n_points: int, noise: float, classes: int) -> ToySet:
    if name not in TOY_SETS:
        raise ConfigError(problem("data.name", f"one of {', '.join(TOY_SETS)}", name, "Pick a toy set"))
    spec = TOY_SETS[name]
    if not 0 <= noise <= 0.5:
        raise ConfigError(problem("data.noise", "between 0 and 0.5 (TF Playground's 0-50 %)", noise,
                                  "Use e.g. 0.1 for 10 %"))
    if classes != 2 and not spec.multiclass:
        raise ConfigError(problem("data.classes", f"2 for {name!r}", classes,
                                  "Use spiral or gauss for more classes, or set data.classes=2"))
    if not 2 <= classes <= n_points:
        raise ConfigError(problem("data.n_points", f"at least data.classes ({classes})", n_points,
                                  "Ask for more points"))
    return spec


def make_toy(name: str, n_points: int, noise: float, seed: int, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``x`` (N, 2) float32 and targets: class ids (N,) int64, or (N, 1) float32 for regression.

    Same arguments → same data (its own ``numpy.random.default_rng(seed)``); rows come shuffled.
    """
    spec = _check(name, n_points, noise, classes)
    rng = np.random.default_rng(seed)
    xy, target = spec.generate(rng, n_points, float(noise), classes)
    order = rng.permutation(n_points)
    x = torch.from_numpy(np.ascontiguousarray(xy[order], dtype=np.float32))
    if spec.task == "classification":
        return x, torch.from_numpy(np.ascontiguousarray(target[order], dtype=np.int64))
    return x, torch.from_numpy(np.ascontiguousarray(target[order], dtype=np.float32))


def _class_names(name: str, classes: int) -> list[str]:
    if name == "moons":
        return ["upper", "lower"]
    if classes == 2:
        return ["negative (-1)", "positive (+1)"]  # TF Playground's orange / blue
    return [f"{'arm' if name == 'spiral' else 'blob'} {c}" for c in range(classes)]


def _loader(name: str) -> Callable[[Any, int], RawData]:
    def load(cfg: Any, seed: int) -> RawData:
        spec, classes = TOY_SETS[name], cfg.classes
        x, y = make_toy(name, cfg.n_points, cfg.noise, seed, classes)
        names, meta = ["x1", "x2"], {"generator": name, "noise": cfg.noise}
        features = getattr(cfg, "features", None)
        if features:
            # the inputs become the named features of the points (before any normalisation); predict reads
            # the stats entry to compute them from raw x1, x2 rows
            x, names = apply_features(x, features), list(features)
            meta["stats"] = feature_stats(["x1", "x2"], names)
        common = dict(train=Split(x, y), test=None, input_shape=(len(names),), feature_names=names, meta=meta)
        if spec.task == "classification":
            return RawData(task="classification", n_classes=classes, class_names=_class_names(name, classes),
                           **common)
        return RawData(task="regression", n_classes=None, target_names=["label"], **common)

    return load


def _describe(cfg: Any) -> dict[str, Any]:
    return {"available": True, "location": "generated", "sizes": {"points": cfg.n_points}}


for _name, _spec in TOY_SETS.items():
    DATASETS.add(_name, DatasetSource(name=_name, kind="toy", description=_spec.description,
                                      load=_loader(_name), describe=_describe), _spec.description)
