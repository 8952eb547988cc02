"""The classic Fashion-MNIST recipe (W1) on this CPU: `trainlab train` against skorch, a plain tensor loop and
the tutorial's per-sample DataLoader loop, each program a whole process (imports, data, training, validation,
test; trainlab also its checkpoints, verdict, live curves and report), runs interleaved, medians. The checks take
the median of ratios measured together: each trainlab run's whole process over its own loop, and each repeat's
other program over that repeat's trainlab run (a slow moment of a shared machine then stretches one ratio's two
figures, not one side of a ratio of medians).

Recipe: Flatten → Linear(784,256) → ReLU → Linear(256,10), N(0, 0.01) init, SGD lr 0.1, batch 256, 10 epochs,
cross-entropy. Targets (issue 16): trainlab's whole process ≤ 1.5× its own training loop, ≥ 2× faster than
skorch and ≥ 5× faster than the tutorial loop, test accuracy within 1 point. Run it alone: on a busy machine
every figure doubles (the tutorial loop took 76 s instead of 40 s with other jobs running). The closing notes of
issue 16 hold the figures measured on this project's 2-core machine.

    python benchmarks/classic_mlp.py [--repeats 3] [--skip-tutorial]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TRAINLAB_BENCH_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from programs import attempt, byte_compile_trainlab, installed, med, run_child, trainlab_w1  # noqa: E402,I001


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-tutorial", action="store_true")
    a = ap.parse_args()
    byte_compile_trainlab()
    programs = {"trainlab train": lambda tmp: trainlab_w1(tmp, report=True),
                "trainlab train --no-report": lambda tmp: trainlab_w1(tmp, report=False),
                "plain loop": lambda tmp: run_child("plain-w1")}
    if installed("skorch"):
        programs["skorch"] = lambda tmp: run_child("skorch-w1")
    if not a.skip_tutorial:
        programs["tutorial loop"] = lambda tmp: run_child("tutorial-w1")
    runs: dict[str, list[tuple[float, dict] | None]] = {name: [] for name in programs}  # one per repeat, None: failed
    with tempfile.TemporaryDirectory() as tmp:
        attempt("warm-up", lambda: trainlab_w1(tmp, report=False))  # fills the dataset cache and the OS file cache
        for _ in range(a.repeats):
            for name, fn in programs.items():
                runs[name].append(attempt(name, lambda fn=fn: fn(tmp)))
    rows = {k: [r for r in v if r is not None] for k, v in runs.items() if any(v)}
    if "trainlab train" not in rows:
        return 1
    ours = med([w for w, _ in rows["trainlab train"]])
    print(f"W1 on {os.cpu_count()} CPU cores, whole process, median of {a.repeats} (interleaved):")
    for name, rs in rows.items():
        wall, loop, acc = med([w for w, _ in rs]), med([r["loop_s"] for _, r in rs]), med([r["test_acc"] for _, r in rs])
        print(f"  {name:28s} {wall:6.2f} s   {wall / ours:5.2f}× trainlab's   loop {loop:5.2f} s   test acc {acc:.4f}")
    # Ratios per run or per interleaved pair, then their median: on a shared machine a slow moment stretches both
    # figures of one run (its whole process and its own loop) or of one pair, not the other runs'.
    mine = rows["trainlab train"]
    own = med([w / r["loop_s"] for w, r in mine])
    acc = med([r["test_acc"] for _, r in mine])
    checks = [(f"trainlab train whole process ≤ 1.5× its training loop ({own:.2f}×, median of per-run ratios)",
               own <= 1.5)]
    for name, factor in (("skorch", 2), ("tutorial loop", 5)):
        if name in rows:
            pairs = [b[0] / a[0] for a, b in zip(runs["trainlab train"], runs[name]) if a and b]  # same repeat
            checks.append((f"≥ {factor}× faster than {name} ({med(pairs):.2f}×, median of {len(pairs)} pairs)",
                           med(pairs) >= factor))
            their_acc = med([r["test_acc"] for _, r in rows[name]])
            checks.append((f"accuracy within 1 point of {name} ({(acc - their_acc) * 100:+.2f})",
                           abs(acc - their_acc) <= 0.01))
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
