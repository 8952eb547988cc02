"""``LiveCurves``: keeps ``runs/<run>/curves.png`` current while a run trains, so it can stay open in a viewer."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainlab.report.plots import best_epoch, plot_curves
from trainlab.train.callbacks import Callback, TrainState


class LiveCurves(Callback):
    """Redraws ``curves.png`` from ``state.history`` at the end of each epoch and once when training ends.

    Drawing costs ~0.1-0.2 s, more than a whole epoch of a toy net. So a redraw is skipped while less than
    ``min_interval`` seconds have passed since the last one ended — by default 2× what the last drawing took,
    which keeps drawing under a third of the wall time: the classic MLP's 0.45 s epochs (a drawing: ~0.14 s)
    get (almost) every redraw, a toy net's 10 ms epochs one every few dozen. The final picture (stop reason,
    all epochs) is always drawn.
    """

    name = "live_curves"

    def __init__(self, run_dir: str | Path, min_interval: float | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.min_interval = min_interval
        self.drawn_at: float | None = None
        self.draw_seconds = 0.0  # how long the last drawing took
        self.draws = 0
        self.last: dict[str, Any] | None = None  # what the latest picture shows (see plot_curves)

    def _draw(self, state: TrainState, stop_reason: str | None) -> None:
        start = time.perf_counter()
        monitor = state.cfg.monitor
        summary = {"monitor": monitor, "best_epoch": best_epoch(state.history, monitor), "stop_reason": stop_reason}
        self.last = plot_curves(self.run_dir, history=state.history, summary=summary)
        self.drawn_at = time.perf_counter()
        self.draw_seconds = self.drawn_at - start
        self.draws += 1

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        wait = 2 * self.draw_seconds if self.min_interval is None else self.min_interval
        if self.drawn_at is not None and time.perf_counter() - self.drawn_at < wait:
            return
        self._draw(state, f"still training (epoch {metrics['epoch']} of {state.cfg.epochs})")

    def on_train_end(self, state: TrainState) -> None:
        if state.history:
            self._draw(state, state.stop_reason)
