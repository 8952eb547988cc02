"""Input features of 2-D points, by name: TF Playground's x1, x2, x1², x2², x1·x2, sin x1, sin x2.

Each entry of the FEATURES registry maps points ``(N, 2)`` to one input column ``(N,)``; ``data.features``
lists the names to use (config validation checks them, the toy and CSV loaders apply them before any
normalisation, ``trainlab predict`` applies them to raw ``x1, x2`` rows, and the playground's input menu is
this registry). The names are ASCII so they work in YAML and on the command line; the help is the formula.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch

from trainlab.data.transforms import Standardizer
from trainlab.errors import DataError, problem
from trainlab.registry import FEATURES

__all__ = ["apply_features", "feature_label", "feature_stats", "model_inputs", "raw_columns", "Feature"]

Feature = Callable[[torch.Tensor], torch.Tensor]  # points (N, 2) → one input (N,)


@FEATURES.register("x1", "x1")
def _x1(p: torch.Tensor) -> torch.Tensor:
    return p[:, 0]


@FEATURES.register("x2", "x2")
def _x2(p: torch.Tensor) -> torch.Tensor:
    return p[:, 1]


@FEATURES.register("x1_sq", "x1²")
def _x1_sq(p: torch.Tensor) -> torch.Tensor:
    return p[:, 0] * p[:, 0]


@FEATURES.register("x2_sq", "x2²")
def _x2_sq(p: torch.Tensor) -> torch.Tensor:
    return p[:, 1] * p[:, 1]


@FEATURES.register("x1_x2", "x1·x2")
def _x1_x2(p: torch.Tensor) -> torch.Tensor:
    return p[:, 0] * p[:, 1]


@FEATURES.register("sin_x1", "sin x1")
def _sin_x1(p: torch.Tensor) -> torch.Tensor:
    return torch.sin(p[:, 0])


@FEATURES.register("sin_x2", "sin x2")
def _sin_x2(p: torch.Tensor) -> torch.Tensor:
    return torch.sin(p[:, 1])


def feature_label(name: str) -> str:
    """The formula shown for feature ``name`` (``'x1_sq'`` → ``'x1²'``)."""
    return FEATURES.help(name) or name


def apply_features(x: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """Points ``x`` (N, 2) → inputs (N, F), one column per name in order, same dtype; raw values (no scaling).

    An unknown name is a ConfigError with 'did you mean'; points that are not (N, 2) a DataError.
    """
    fns = [FEATURES.get(n) for n in names]
    if x.ndim != 2 or x.shape[1] != 2:
        raise DataError(problem("data.features", "applied to 2-D points, shape (N, 2)", tuple(x.shape),
                                "Use them with a toy set or a CSV with 2 feature columns, or remove data.features"))
    if not fns:
        raise DataError(problem("data.features", "at least one feature name", list(names), "Name e.g. [x1, x2]"))
    return torch.stack([f(x) for f in fns], 1).contiguous()  # (N, F)


def feature_stats(columns: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """The run-stats entry a loader records for ``data.features``: the raw columns read, the features made."""
    return {"features": {"columns": list(columns), "names": list(names)}}


def raw_columns(stats: Mapping[str, Any], feature_names: Sequence[str]) -> list[str]:
    """The columns a new input must hold: the raw ones for a run on ``data.features``, else its features."""
    feats = stats.get("features")
    return list(feats["columns"]) if feats else list(feature_names)


def model_inputs(x: torch.Tensor, stats: Mapping[str, Any]) -> torch.Tensor:
    """Raw rows (N, raw columns) → what the run's model was trained on: its ``data.features`` (if any), then
    its normalisation with training statistics (if any). Used by predict, ``Run.predict`` and the report."""
    feats = stats.get("features")
    if feats:
        x = apply_features(x, feats["names"])
    norm = stats.get("normalize")
    return Standardizer.from_state(norm)(x) if norm is not None else x
