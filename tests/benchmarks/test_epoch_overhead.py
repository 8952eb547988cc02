"""benchmarks/epoch_overhead.py runs (a tiny A/B/C) and prints every variant and its ratio to A; times not asserted."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_epoch_overhead_benchmark_runs_every_variant_and_prints_their_ratios(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "epoch_overhead.py"), "--epochs", "3",
                           "--pairs", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "A: trainlab" in proc.stdout and "B: history pickled as a list" in proc.stdout
    assert "C: activations.json every epoch" in proc.stdout
    assert re.search(r"A / B \d+\.\d{3} \(median", proc.stdout), proc.stdout
    assert re.search(r"A / C \d+\.\d{3} \(median", proc.stdout), proc.stdout
