"""What the Python API costs: the classic Fashion-MNIST MLP recipe three ways, in one process.

1. a plain hand-written tensor loop (data as tensors, index-slice batches, validation each epoch, test at
   the end) — the floor;
2. ``trainlab.fit(net, (X, y), test=(Xt, yt), ...)`` on the same tensors (report off: the loop, checkpoints,
   metrics files, TensorBoard, per-layer statistics, the verdict);
3. the ``trainlab train`` path (config dataset, plus the HTML report with all its pictures).

Each runs ``--runs`` times (seeds 0..); prints mean ± std wall seconds and the ratios to the plain loop.
Target: ``fit`` within 10 % of the plain loop. Measured on the project's 2-core CPU machine (see the
closing notes of the Python API issue).

    python benchmarks/api_overhead.py [--runs 3] [--epochs 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import trainlab as tl
from trainlab.config import resolve_config
from trainlab.data import load_data
from trainlab.workflow import run as cli_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from programs import classic_net, plain_loop  # noqa: E402


def timed(fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    acc = fn()
    return time.perf_counter() - t0, acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args()
    cfg = resolve_config(overrides={"epochs": a.epochs})
    bundle = load_data(cfg.data, cfg.seed)
    test = bundle.test.open()
    x, y, xv, yv = bundle.train.x, bundle.train.y, bundle.val.x, bundle.val.y
    torch.set_num_threads(2)
    results: dict[str, list[tuple[float, float]]] = {"plain loop": [], "trainlab.fit": [], "trainlab train": []}
    with tempfile.TemporaryDirectory() as out:
        for seed in range(a.runs):
            results["plain loop"].append(timed(lambda: plain_loop(x, y, xv, yv, test.x, test.y, seed, a.epochs)))
            results["trainlab.fit"].append(timed(lambda: tl.fit(
                classic_net(seed), (x, y), val=(xv, yv), test=(test.x, test.y),
                epochs=a.epochs, lr=0.1, batch_size=256, seed=seed, out_dir=out, report=False,
                verbose=False).evaluate()["test_acc"]))
            run_cfg = resolve_config(overrides={"epochs": a.epochs, "seed": seed, "out_dir": out})
            results["trainlab train"].append(timed(
                lambda: cli_run(run_cfg, verbose=False).result.summary["test"]["test_acc"]))
    base = statistics.mean(t for t, _ in results["plain loop"])
    for name, rows in results.items():
        ts, accs = [t for t, _ in rows], [acc for _, acc in rows]
        sd = statistics.stdev(ts) if len(ts) > 1 else 0.0
        print(f"{name:15s} {statistics.mean(ts):6.2f} ± {sd:.2f} s   ×{statistics.mean(ts) / base:.3f} of the plain "
              f"loop   test acc {statistics.mean(accs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
