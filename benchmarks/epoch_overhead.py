"""What the work after each epoch costs a long run of a small model: ``trainlab.fit`` of a toy net for many full-batch
epochs (the polynomial and shallow-vs-deep lessons, TF Playground-style runs), where each epoch's own work is a few
milliseconds and ``checkpoints/last.pt`` is written after every one.

A/B in this process, alternating, the same run: A is what trainlab does; each B puts back one earlier cost:
  B: the history pickled as a list of rows at every save (before ``train.checkpoint.HistoryText`` stored it as JSON
     text, each row encoded once: torch.save calls back into Python for each object, so a save grew with the epochs
     and the run's saves with their square);
  C: ``activations.json`` (the per-layer histograms) written after every epoch, as JSON text with an fsync (before
     ``diagnose.stats.LayerStats`` wrote it after the first epoch and when training ends: only the report reads it).
Prints the medians, the median of the per-pair ratios A / B and A / C, and each one's milliseconds per epoch outside
the loop (the whole fit minus the sum of its ``epoch_time``: checkpoints, statistics, files).

Measured on the project's 2-core machine (400 epochs, 4 pairs): 2026-12-07, A / B 0.85 (A 4.44 s, B 5.09 s);
2026-12-07 later, A / C 0.90 (A 3.94 s, C 4.55 s; outside the loop 6.8 vs 8.2 ms an epoch).

    python benchmarks/epoch_overhead.py [--epochs 400] [--pairs 4]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import trainlab as tl
import trainlab.diagnose as diagnose_module
import trainlab.train.run as run_module
from trainlab.diagnose.stats import LayerStats
from trainlab.train.checkpoint import HistoryText


class PickledList:
    """B: the history as a list, pickled anew by every save."""

    def __call__(self, history: list[dict]) -> list[dict]:
        return list(history)


class EveryEpochStats(LayerStats):
    """C: activations.json written after every epoch."""

    def on_epoch_end(self, state, metrics) -> None:
        super().on_epoch_end(state, metrics)
        self._write()


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


VARIANTS = {"A: trainlab": (HistoryText, LayerStats),
            "B: history pickled as a list": (PickledList, LayerStats),
            "C: activations.json every epoch": (HistoryText, EveryEpochStats)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--pairs", type=int, default=4)
    a = ap.parse_args()
    walls: dict[str, list[float]] = {k: [] for k in VARIANTS}
    outside: dict[str, list[float]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        one_fit(5, tmp)  # warm-up: imports, first allocations
        for _ in range(a.pairs):
            for name, (history, stats) in VARIANTS.items():
                run_module.HistoryText = history  # type: ignore[assignment]  # what execute builds its checkpoints with
                diagnose_module.LayerStats = stats  # type: ignore[misc]  # what diagnostic_callbacks builds
                wall, rest = one_fit(a.epochs, tmp)
                walls[name].append(wall)
                outside[name].append(rest)
    run_module.HistoryText = HistoryText  # type: ignore[assignment]
    diagnose_module.LayerStats = LayerStats  # type: ignore[misc]
    print(f"toy fit, {a.epochs} full-batch epochs, {a.pairs} alternating rounds, medians:")
    for name in VARIANTS:
        print(f"  {name:40s} {statistics.median(walls[name]):6.2f} s   outside the loop "
              f"{1e3 * statistics.median(outside[name]) / a.epochs:5.2f} ms an epoch")
    ours, *others = VARIANTS
    for other in others:
        ratio = statistics.median([x / y for x, y in zip(walls[ours], walls[other])])
        print(f"  A / {other[0]} {ratio:.3f} (median of the per-pair ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
