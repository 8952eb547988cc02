"""Data-parallel scaling: throughput of `trainlab train --nproc-per-node P` for P = 1, 2, … on the classic
Fashion-MNIST recipe (784-256-10 MLP, batch 256) and on the example CNN (examples/fashion_cnn.yaml), as ratios
against one process, from the same run of this script.

Throughput is training examples per second of the epochs themselves (summary.json's epoch_time_mean on rank 0:
the updates, the all-reduces and the validation pass), so process start-up and data loading are left out; the
whole command's wall time is printed beside it. Each process gets cores / P threads. On this project's 2-core
machine two processes share the two cores a single process already uses, so the ratio says what the gradient
all-reduce costs rather than what a bigger machine gains; run it on a machine with more cores or GPUs (``--procs
1 2 4 8``) to see scaling.

    python benchmarks/ddp_scaling.py [--procs 1 2] [--epochs 3] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FASHION = os.environ.get("TRAINLAB_DATA", "/usr/share/datasets/fashion-mnist")
WORKLOADS = {
    "classic MLP (batch 256)": [],
    "example CNN (batch 64, 12000 images)": ["--config", str(ROOT / "examples" / "fashion_cnn.yaml"),
                                             "--set", "data.limit=12000"],
}


def run(args: list[str], procs: int, epochs: int, out: Path, name: str) -> tuple[float, float, float]:
    """(examples/s over the epochs, whole-command seconds, test accuracy) of one run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "trainlab", "train", *args, "--set", f"epochs={epochs}", "--set", "tensorboard=false",
           "--set", f"data.dir={FASHION}", "--no-report", "--quiet", "--name", name, "--nproc-per-node", str(procs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    s = json.loads((out / "runs" / name / "summary.json").read_text())
    return s["data"]["train"] / s["epoch_time_mean"], wall, s["test"]["test_acc"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    print(f"data-parallel scaling on {os.cpu_count()} CPU cores, {a.epochs} epochs, median of {a.repeats}:")
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in WORKLOADS.items():
            rows = {}
            for p in a.procs:
                got = [run(args, p, a.epochs, Path(tmp), f"w{abs(hash(label)) % 1000}-p{p}-{r}") for r in range(a.repeats)]
                rows[p] = tuple(statistics.median(g[i] for g in got) for i in range(3))
            base = rows[a.procs[0]][0]
            print(f"  {label}")
            for p, (speed, wall, acc) in rows.items():
                print(f"    {p} process{'es' if p > 1 else '  '}  {speed:9.0f} examples/s  {speed / base:5.2f}× of "
                      f"{a.procs[0]}   whole command {wall:5.1f} s   test acc {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
