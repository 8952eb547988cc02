"""``LiveCurves``: keeps ``runs/<run>/curves.png`` current while a run trains, so it can stay open in a viewer."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainlab.report.plots import best_epoch, plot_curves
from trainlab.train.callbacks import Callback, TrainState


class LiveCurves(Callback):
    """Redraws ``curves.png`` from ``state.history`` at the end of each epoch and once when training ends.

    Drawing costs ~0.1-0.2 s, more than a whole epoch of a toy net, so a redraw is skipped when the last one
    is less than ``min_interval`` seconds old; epochs of real datasets take longer and get every redraw.
    The final picture (stop reason, all epochs) is always drawn.
    """

    name = "live_curves"

    def __init__(self, run_dir: str | Path, min_interval: float = 1.0) -> None:
        self.run_dir = Path(run_dir)
        self.min_interval = min_interval
        self.drawn_at: float | None = None
        self.draws = 0
        self.last: dict[str, Any] | None = None  # what the latest picture shows (see plot_curves)

    def _draw(self, state: TrainState, stop_reason: str | None) -> None:
        monitor = state.cfg.monitor
        summary = {"monitor": monitor, "best_epoch": best_epoch(state.history, monitor), "stop_reason": stop_reason}
        self.last = plot_curves(self.run_dir, history=state.history, summary=summary)
        self.drawn_at = time.perf_counter()
        self.draws += 1

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        if self.drawn_at is not None and time.perf_counter() - self.drawn_at < self.min_interval:
            return
        self._draw(state, f"still training (epoch {metrics['epoch']} of {state.cfg.epochs})")

    def on_train_end(self, state: TrainState) -> None:
        if state.history:
            self._draw(state, state.stop_reason)
