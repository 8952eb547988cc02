"""Search methods (samplers) and pruners by name, in the shared registries behind ``--method`` and ``--prune``."""
from __future__ import annotations

import math
from typing import Any, Callable

import optuna

from trainlab.registry import PRUNERS, SEARCH_METHODS
from trainlab.search.coarse_to_fine import _RoundSampler
from trainlab.search.space import SearchSpace

__all__ = ["grid_size", "grid_values", "make_pruner", "make_sampler"]

GRID_POINTS = 5  # points per numeric parameter without a step (log-spaced where log)

Sampler = Callable[[SearchSpace, int, int], optuna.samplers.BaseSampler]


@SEARCH_METHODS.register("random", "uniform sampling (log-uniform where log: true), independent trials")
def _random(space: SearchSpace, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@SEARCH_METHODS.register("tpe", "Optuna's tree-structured Parzen estimator: samples near the best trials so far")
def _tpe(space: SearchSpace, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    # TPE needs a few random trials to model from; a third of the budget, at most Optuna's default 10.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))


@SEARCH_METHODS.register("grid", f"every combination: choices, step grids, else {GRID_POINTS} points per range")
def _grid(space: SearchSpace, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GridSampler(grid_values(space), seed=seed)


@SEARCH_METHODS.register("coarse-to-fine", "rounds of random sampling, each range shrunk to the top-k of the last")
def _coarse_to_fine(space: SearchSpace, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    sampler = _RoundSampler(seed=seed)
    sampler.active = {p.name: [p.encode(c) for c in p.active_choices] for p in space if p.kind == "categorical"}
    return sampler


def make_sampler(method: str, space: SearchSpace, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return SEARCH_METHODS.get(method)(space, seed, trials)


def grid_values(space: SearchSpace) -> dict[str, list[Any]]:
    """The values a grid search visits per parameter (Optuna's encoding: list choices as JSON text)."""
    out: dict[str, list[Any]] = {}
    for p in space:
        if p.kind == "categorical":
            out[p.name] = [p.encode(c) for c in p.active_choices]
            continue
        lo, hi = float(p.low), float(p.high)
        if p.step:
            n = int(round((hi - lo) / p.step)) + 1
            values = [lo + i * p.step for i in range(n)]
        elif p.log:
            values = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (GRID_POINTS - 1))
                      for i in range(GRID_POINTS)]
        else:
            values = [lo + i * (hi - lo) / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
        if p.kind == "int":
            values = sorted({min(max(int(round(v)), int(lo)), int(hi)) for v in values})
        else:
            values = [min(max(v, lo), hi) for v in values]
        out[p.name] = values
    return out


def grid_size(space: SearchSpace) -> int:
    return math.prod(len(v) for v in grid_values(space).values())


@PRUNERS.register("none", "every trial runs all its epochs")
def _none(steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


@PRUNERS.register("median", "stop a trial whose metric is worse than the median of earlier trials at that epoch")
def _median(steps: int) -> optuna.pruners.BasePruner:
    # 3 finished trials make a median worth trusting; pruning may start after the first epoch.
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


@PRUNERS.register("successive-halving", "asynchronous successive halving: keep the best 1/3 at each rung")
def _successive_halving(steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


@PRUNERS.register("hyperband", "several successive-halving brackets from 1 epoch up to the trial's epochs")
def _hyperband(steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(steps, 1), reduction_factor=3)


def make_pruner(name: str, steps: int) -> optuna.pruners.BasePruner:
    """``steps``: reports per trial (its epochs, or its folds with cross-validation)."""
    return PRUNERS.get(name)(steps)
