"""Understanding a run: per-layer statistics while training, and a rule-based verdict afterwards."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from trainlab.diagnose.stats import LayerStats, activation_stats, read_layers
from trainlab.train.callbacks import Callback
from trainlab.train.run import Prepared

__all__ = ["LayerStats", "activation_stats", "read_layers", "diagnostic_callbacks"]


def diagnostic_callbacks(p: Prepared, run_dir: Path) -> Sequence[Callback]:
    """The callbacks every run gets for diagnosis (a ``setup`` for ``trainlab.train.run.train``)."""
    return [LayerStats(run_dir, p.bundle.val.x.to(p.device))]
