"""How stable is each LR-finder suggestion rule across seeds? One sweep per (task, seed), four rules read off it.

Per task it runs ``trainlab.train.lr_find.find_lr`` (1e-7 .. 10, 100 steps) on N seeds, then reads four rules
from each seed's raw losses:

* ``min/10``      trainlab's rule (``lr_find.suggest``): a tenth of the lr at the minimum of the loss smoothed
                  with beta 0.9, none when it never fell clearly (4 sigma of its noise, >= 2 %) below its start;
* ``min/10 .98``  the same with fastai/Lightning's smoothing, beta 0.98;
* ``steepest``    Lightning's ``suggestion()``: the most negative np.gradient of the (beta 0.98) smoothed loss,
                  skipping the first 10 and the last point;
* ``valley``      fastai's ``valley``: the longest strictly descending run of the smoothed loss, 1/2 of the
                  way into it (``max_start + sections + sections/2`` with sections = its length / 3).

It prints, per task and rule, the suggestions and their spread (max / min over seeds, 1.0 = identical), and the
geometric mean of the spreads over the tasks: a ratio, comparable between rules, not a time.

    python benchmarks/lr_find_stability.py [--seeds 5] [--tasks moons,spiral,...]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys

import numpy as np

from trainlab.config import resolve_config
from trainlab.train.lr_find import find_lr, smooth, suggest

TASKS = {
    "moons-sgd": {"data.name": "moons", "data.n_points": 1000, "data.noise": 0.2, "model.hidden": [16, 16],
                  "model.init": "he", "batch_size": 32, "optimizer.name": "sgd"},
    "moons-adam": {"data.name": "moons", "data.n_points": 1000, "data.noise": 0.2, "model.hidden": [16, 16],
                   "model.init": "he", "batch_size": 32, "optimizer.name": "adam"},
    "spiral-tanh": {"data.name": "spiral", "data.n_points": 1000, "model.hidden": [8, 8], "model.activation": "tanh",
                    "model.init": "xavier", "batch_size": 16, "optimizer.name": "sgd"},
    "circle-momentum": {"data.name": "circle", "data.n_points": 1000, "model.hidden": [8], "model.init": "he", "batch_size": 32,
                        "optimizer.name": "momentum"},
    "fashion-mlp": {"data.limit": 6000, "batch_size": 256},  # the classic recipe (SGD, N(0, 0.01) init)
}


def rule_steepest(lrs: list[float], losses: list[float]) -> float | None:
    s = np.asarray(smooth(losses, 0.98))[10:-1]
    if len(s) < 3:
        return None
    return lrs[10 + int(np.argmin(np.gradient(s)))]


def rule_valley(lrs: list[float], losses: list[float], beta: float = 0.98) -> float | None:
    s = smooth(losses, beta)
    n = len(s)
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if s[i] < s[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return lrs[max_start + int(sections) + int(sections / 2)]


RULES = {"min/10": suggest, "min/10 .98": lambda l, s: suggest(l, s, beta=0.98),
         "steepest": rule_steepest, "valley": rule_valley}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tasks", default=",".join(TASKS))
    a = ap.parse_args(argv)
    spreads: dict[str, list[float]] = {r: [] for r in RULES}
    nones: dict[str, int] = {r: 0 for r in RULES}
    for task in a.tasks.split(","):
        cfg = resolve_config(overrides={**TASKS[task], "tensorboard": False})
        res = find_lr(cfg, seeds=range(a.seeds))
        print(f"\n{task}: {cfg.optimizer.name} lr, batch {cfg.batch_size}; sweeps stopped: "
              + "; ".join(s.stop_reason for s in res.sweeps))
        for name, rule in RULES.items():
            found = [rule(s.lrs, s.losses) for s in res.sweeps]
            ok = [f for f in found if f is not None]
            nones[name] += len(found) - len(ok)
            spread = max(ok) / min(ok) if ok else math.nan
            spreads[name].append(spread)
            print(f"  {name:<11} spread {spread:7.1f}x   " + ", ".join("none" if f is None else f"{f:.2g}" for f in found))
    print("\ngeometric mean of the spread over the tasks (1.0 = every seed suggests the same lr):")
    for name, xs in spreads.items():
        xs = [x for x in xs if math.isfinite(x)]
        print(f"  {name:<11} {math.exp(statistics.fmean(math.log(x) for x in xs)):6.2f}x   worst {max(xs):.1f}x   "
              f"no suggestion on {nones[name]} of {a.seeds * len(spreads[name])} sweeps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
