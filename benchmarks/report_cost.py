"""What the live curves and the HTML report cost ``trainlab train``: the classic Fashion-MNIST MLP (the default
config, 10 epochs) as a whole process, with the report and with ``--no-report``, in A/B pairs.

Each run is a fresh ``python -m trainlab.cli train`` (interpreter start, imports, data, training, test, verdict,
and for A the live curves.png redraws and report.html with all its pictures). Per run it reads the training
loop's own time (the sum of ``epoch_time`` in metrics.jsonl: the epochs' updates and validation, without the
callbacks) and prints, as mean ± std over the pairs:

* whole: the process's wall seconds; loop: the training loop's; whole / loop;
* report cost: (whole - loop) of A minus that of B in the same pair. Taking the loop out leaves what the report
  adds, not how fast the epochs happened to run (on a shared 2-core machine they vary by tens of percent).

Target (the report-cost issue): the report costing ~1 s or less. Measured 2026-12-04 on the project's 2-core CPU
machine, shared with other jobs (5 pairs, mean ± std): report cost 3.3 ± 0.6 s before this change (11 live
redraws, the dataset read again, constrained layout; 6.4 s on a busier machine: 16.3 s whole vs 9.9 s), 1.7 ± 0.6 s
after it (1.3 s median when only quiet runs are kept): matplotlib's import ~0.3 s, one live redraw ~0.15 s, the
report's five pictures ~0.6 s. whole / loop is ~2.0 with the report and ~1.8 without: ``--no-report`` alone (torch
import, data, TensorBoard, checkpoints, the test) is past 1.5x its loop.

Since then (issue 16: picture workers, plots imported without torch, gc.freeze at exit; measured 2026-12-05, idle
machine, 5 pairs): whole 5.70 ± 0.15 s with the report, loop 3.53 s, whole / loop 1.62; ``--no-report`` 5.04 s
(1.49); report cost 0.51 ± 0.06 s. What is left at the end of a run is the pictures' own CPU (~0.6 s over the two
workers: the confusion matrix ~0.18 s, curves and gradient norms ~0.15 s each).

2026-12-06 (the confusion matrix a table, no second validation pass, the end of the run on one thread beside the
workers, only the shown wrong examples sent; 5 pairs): whole 5.88 ± 0.16 s with the report, loop 3.93 s, whole /
loop 1.50; ``--no-report`` 5.39 s (1.44); report cost 0.31 ± 0.05 s.

    python benchmarks/report_cost.py [--pairs 5] [--epochs 10]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from programs import byte_compile_trainlab  # noqa: E402


def one_run(report: bool, epochs: int) -> tuple[float, float]:
    """(whole-process wall seconds, training-loop seconds) of one ``trainlab train``."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "trainlab.cli", "train", "--set", f"out_dir={out}", "--set", f"epochs={epochs}"]
        t0 = time.perf_counter()
        subprocess.run(cmd + ([] if report else ["--no-report"]), check=True, capture_output=True)
        whole = time.perf_counter() - t0
        [run_dir] = Path(out).iterdir()
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        if report:
            assert (run_dir / "report.html").is_file()
        return whole, sum(r["epoch_time"] for r in rows)


def mean_std(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    byte_compile_trainlab()
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for i in range(args.pairs):
        a.append(one_run(True, args.epochs))
        b.append(one_run(False, args.epochs))
        print(f"pair {i + 1}: report {a[-1][0]:.2f} s (loop {a[-1][1]:.2f})   "
              f"--no-report {b[-1][0]:.2f} s (loop {b[-1][1]:.2f})", flush=True)
    for name, runs in (("report", a), ("--no-report", b)):
        print(f"{name:12s} whole {mean_std([w for w, _ in runs])} s   loop {mean_std([lp for _, lp in runs])} s   "
              f"whole / loop {mean_std([w / lp for w, lp in runs])}")
    cost = [(wa - la) - (wb - lb) for (wa, la), (wb, lb) in zip(a, b)]
    print(f"report cost (outside-the-loop time, A - B per pair): {mean_std(cost)} s")


if __name__ == "__main__":
    main()
