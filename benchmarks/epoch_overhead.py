"""What a checkpoint's history costs a long run of a small model: ``trainlab.fit`` of a toy net for many full-batch
epochs (the polynomial and shallow-vs-deep lessons, TF Playground-style runs), where each epoch's own work is a few
milliseconds and ``checkpoints/last.pt`` is written after every one.

A/B in this process, alternating, the same run: A stores the history as JSON text, each row encoded once
(``train.checkpoint.HistoryText``, what trainlab does); B pickles the whole list of rows at every save (what it did
before: torch.save calls back into Python for each of the history's objects, so a save grew with the epochs and the
run's saves with their square). Prints the medians, the median of the per-pair ratios A / B, and each one's seconds
per epoch outside the loop (the whole fit minus the sum of its ``epoch_time``: checkpoints, statistics, files).

Measured 2026-12-07 on the project's 2-core machine (400 epochs, 4 pairs): A 4.44 s, B 5.09 s, A / B 0.85.

    python benchmarks/epoch_overhead.py [--epochs 400] [--pairs 4]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import trainlab as tl
import trainlab.train.run as run_module
from trainlab.train.checkpoint import HistoryText


class PickledList:
    """B: the history as a list, pickled anew by every save."""

    def __call__(self, history: list[dict]) -> list[dict]:
        return list(history)


def one_fit(epochs: int, out_dir: str) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=g)
    y = (x.norm(dim=1) > 1).long()
    t = time.perf_counter()
    run = tl.fit(data=(x[:200], y[:200]), val=(x[200:], y[200:]), hidden=[8, 8], activation="tanh",
                 optimizer="adam", lr=0.03, batch_size=200, epochs=epochs, out_dir=out_dir, verbose=False,
                 report=False, tensorboard=False, threads=1)
    wall = time.perf_counter() - t
    return wall, wall - sum(h["epoch_time"] for h in run.history)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--pairs", type=int, default=4)
    a = ap.parse_args()
    kinds = {"A: history as JSON text (HistoryText)": HistoryText, "B: history pickled as a list": PickledList}
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    outside: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        one_fit(5, tmp)  # warm-up: imports, first allocations
        for _ in range(a.pairs):
            for name, kind in kinds.items():
                run_module.HistoryText = kind  # type: ignore[assignment]  # what execute builds its checkpoints with
                wall, rest = one_fit(a.epochs, tmp)
                walls[name].append(wall)
                outside[name].append(rest)
    run_module.HistoryText = HistoryText  # type: ignore[assignment]
    print(f"toy fit, {a.epochs} full-batch epochs, {a.pairs} alternating pairs, medians:")
    for name in kinds:
        print(f"  {name:40s} {statistics.median(walls[name]):6.2f} s   outside the loop "
              f"{1e3 * statistics.median(outside[name]) / a.epochs:5.2f} ms an epoch")
    a_name, b_name = kinds
    ratio = statistics.median([x / y for x, y in zip(walls[a_name], walls[b_name])])
    print(f"  A / B {ratio:.3f} (median of the per-pair ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
