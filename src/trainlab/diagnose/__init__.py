"""Understanding a run: per-layer statistics while training, and a rule-based verdict afterwards."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from trainlab.diagnose.rules import RULES, Finding, RunContext, Thresholds
from trainlab.diagnose.stats import LayerStats, activation_stats, measure_activations, read_layers
from trainlab.diagnose.verdict import Diagnosis, diagnose, diagnose_run, format_diagnosis
from trainlab.data import Split
from trainlab.train.callbacks import Callback
from trainlab.train.run import Prepared

__all__ = ["LayerStats", "activation_stats", "measure_activations", "read_layers", "diagnostic_callbacks", "Diagnosis",
           "Finding", "RunContext", "Thresholds", "RULES", "diagnose", "diagnose_run", "format_diagnosis"]


def diagnostic_callbacks(p: Prepared, run_dir: Path) -> Sequence[Callback]:
    """The callbacks every run gets for diagnosis (a ``setup`` for ``trainlab.train.run.train``)."""
    val = p.bundle.val
    probe = val.x if isinstance(val, Split) else val.head(512).x  # a streamed split: its first examples
    return [LayerStats(run_dir, probe[:512].to(p.device))]
