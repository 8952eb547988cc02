"""``LiveCurves``: keeps ``runs/<run>/curves.png`` current while a run trains, so it can stay open in a viewer."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from trainlab.report.history import best_epoch
from trainlab.report.painter import Job, Painter
from trainlab.train.callbacks import Callback, TrainState

# A redraw waits at least this long after the start or the last drawing: a person watching the file in a viewer
# reads no more than that, and the classic MLP's ~4.2 s of epochs pay for no drawing beside the loop, not 11: its
# one redraw due (after epoch 8) would be replaced by the final picture 0.8 s later. That drawing, on the core the
# loop's second thread needs, had made its epoch ~0.15 s longer (0.55-0.60 s instead of 0.41 s, 4 runs, 2 cores).
MIN_WAIT = 3.0
# ... and at least this many times what the last drawing took, so drawing stays under a tenth of the wall time
# however short the epochs and however large the picture (a toy net's 10 ms epochs, a 100-epoch history).
WAIT_PER_DRAW_SECOND = 9.0


class LiveCurves(Callback):
    """Redraws ``curves.png`` from ``state.history`` at the end of an epoch, and once when training ends.

    Drawing costs ~0.15 s (more than a whole epoch of a toy net) on the training's critical path, so an epoch's
    end redraws only once ``min_interval`` seconds have passed since training began or the last drawing ended:
    by default the larger of ``MIN_WAIT`` and ``WAIT_PER_DRAW_SECOND`` x the last drawing's time; and not when
    the run, at its pace so far, ends within that wait (the final picture comes first). A run whose epochs take
    longer than that gets every redraw but the last epoch's. The final picture (stop reason, all epochs) is drawn unless
    ``final`` is False: ``trainlab train`` redraws curves.png with the test result moments later anyway.

    ``painter`` draws (this process when None). A WorkerPainter's worker draws beside the loop, still on a core the
    loop would use, so the same wait holds; an epoch's end that finds the last drawing unfinished skips its own.
    """

    name = "live_curves"

    def __init__(self, run_dir: str | Path, min_interval: float | None = None, final: bool = True,
                 clock: Callable[[], float] = time.perf_counter, painter: Painter | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.clock = clock  # seconds; tests pass their own to decide when a redraw is due
        self.min_interval = min_interval
        self.final = final
        self.painter = painter or Painter()
        self.started_at: float | None = None
        self.drawn_at: float | None = None
        self.draw_seconds = 0.0  # how long the last drawing took
        self.draws = 0
        self.last: dict[str, Any] | None = None  # what the latest picture shows (see plot_curves)
        self.job: Job | None = None  # a drawing not yet collected
        self.epochs_seen = 0  # epochs ended since on_train_begin (a resumed run counts from its restart)

    def _draw(self, state: TrainState, stop_reason: str | None) -> None:
        monitor = state.cfg.monitor
        summary = {"monitor": monitor, "best_epoch": best_epoch(state.history, monitor), "stop_reason": stop_reason}
        self.job = self.painter.draw("plot_curves", self.run_dir, history=list(state.history), summary=summary)
        self.drawn_at = self.clock()  # after the drawing when it ran here; when it was sent off to a worker
        self.draws += 1
        if self.job.done():
            self._collect()

    def _collect(self) -> None:
        """The last drawing's picture and cost (its error, if it failed, is raised here)."""
        job, self.job = self.job, None
        if job is not None:
            self.last = job.result()
            self.draw_seconds = job.seconds

    def wait(self) -> float:
        """Seconds an epoch's end waits after the start or the last drawing before it redraws."""
        if self.min_interval is not None:
            return self.min_interval
        return max(MIN_WAIT, WAIT_PER_DRAW_SECOND * self.draw_seconds)

    def on_train_begin(self, state: TrainState) -> None:
        self.started_at = self.clock()
        self.epochs_seen = 0

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.epochs_seen += 1
        if self.job is not None:
            if not self.job.done():  # a worker is still drawing the last one: no queue of stale pictures
                return
            self._collect()
        since = self.drawn_at if self.drawn_at is not None else self.started_at
        now = self.clock()
        if since is not None and now - since < self.wait():
            return
        if self.started_at is not None and self._ends_within(state, metrics["epoch"], now) < self.wait():
            return  # the final picture replaces this one sooner than a watcher looks again: its drawing is waste
        self._draw(state, f"still training (epoch {metrics['epoch']} of {state.cfg.epochs})")

    def _ends_within(self, state: TrainState, epoch: int, now: float) -> float:
        """Seconds the run has left at its epochs' mean pace so far (at most: a stop rule may end it sooner)."""
        assert self.started_at is not None
        return (state.cfg.epochs - epoch) * (now - self.started_at) / max(self.epochs_seen, 1)

    def on_train_end(self, state: TrainState) -> None:
        self._collect()  # on disk before anything else draws curves.png (the report, the final picture)
        if self.final and state.history:
            self._draw(state, state.stop_reason)
            self._collect()


class DrawAhead(Callback):
    """Starts the report's per-layer pictures the moment training ends, while the run goes on to test its best
    checkpoint and predict the validation split: they are drawn from ``layers.jsonl`` and ``activations.json``,
    which the last epoch has finished. With a WorkerPainter that takes their ~0.2 s off the end of
    ``trainlab train``; the report's own ``draw`` of each then collects the picture (a Painter draws nothing ahead).
    """

    name = "draw_ahead"

    def __init__(self, run_dir: str | Path, painter: Painter) -> None:
        self.run_dir, self.painter = Path(run_dir), painter

    def on_train_end(self, state: TrainState) -> None:
        if state.history:  # an epoch finished: the per-layer files exist
            from trainlab.report.html import PER_LAYER

            for plot in PER_LAYER.values():
                self.painter.draw_ahead(plot, self.run_dir)
            if self.painter.beside:  # the test runs on one thread beside them (see one_thread_beside)
                torch.set_num_threads(1)  # the run's own thread count comes back when it ends (threads_and_rng)


@contextlib.contextmanager
def one_thread_beside(painter: Painter | None) -> Iterator[None]:
    """This process on one torch thread while ``painter``'s workers draw beside it, then the thread count it had.

    At the end of ``trainlab train`` the test, the validation predictions and two picture workers share the cores:
    torch's two threads each waited for a core a worker held, and a 0.02 s prediction took 0.05-0.13 s. On one
    thread the end of the classic MLP's run took 0.40 s instead of 0.46 s (medians of 8 A/B pairs, 2-core machine).
    A Painter that draws here (or None: the default one) changes nothing."""
    old = torch.get_num_threads()
    if painter is not None and painter.beside:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
