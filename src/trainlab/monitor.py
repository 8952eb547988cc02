"""Which value of a monitored metric is better: lower for losses, higher for the rest (accuracy, R²).

One rule for the stop rules, the best checkpoint and the report's best epoch. Kept apart from ``trainlab.train``
(whose package imports torch) because the report's picture workers need it without torch.
"""
from __future__ import annotations

import math


def lower_is_better(metric: str) -> bool:
    """Losses fall as a run improves; every other metric trainlab monitors rises."""
    return metric.endswith("loss")


def better(metric: str, new: float | None, old: float | None, min_delta: float = 0.0) -> bool:
    """Whether ``new`` improves on ``old`` by more than ``min_delta`` (a missing or NaN ``new`` never does)."""
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False
    if old is None:
        return True
    return new < old - min_delta if lower_is_better(metric) else new > old + min_delta
