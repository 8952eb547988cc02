"""Live training display for Jupyter: one figure of train-vs-validation curves redrawn every epoch
(as d2l's Animator does) and an HTML progress bar, both updated in place through IPython display handles."""
from __future__ import annotations

import io
from typing import Any

from trainlab.train.callbacks import Callback, TrainState


class NotebookLive(Callback):
    """Redraws the learning curves after each epoch and a progress bar during it, in one notebook cell."""

    name = "notebook_live"

    def __init__(self) -> None:
        self.bar = self.plot = None

    def on_train_begin(self, state: TrainState) -> None:
        from IPython.display import HTML, display

        self.bar = display(HTML(self._bar_html(state, 0)), display_id=True)
        self.plot = display(HTML("<i>learning curves appear after the first epoch</i>"), display_id=True)

    def _bar_html(self, state: TrainState, step: int, loss: float | None = None) -> str:
        total = state.steps_per_epoch
        tail = f" loss {loss:.4f}" if loss is not None else ""
        return (f"<div style='font-family:monospace'>epoch {state.epoch}/{state.cfg.epochs} "
                f"<progress value='{step}' max='{total}' style='width:40%'></progress> {step}/{total}{tail}</div>")

    def on_progress(self, state: TrainState, step: int, running_loss: float) -> None:
        from IPython.display import HTML

        if self.bar is not None:
            self.bar.update(HTML(self._bar_html(state, step, running_loss)))

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        from IPython.display import Image

        from trainlab.report.plots import curves_figure

        fig = curves_figure(list(state.history), {})
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        if self.plot is not None:
            self.plot.update(Image(data=buf.getvalue()))
