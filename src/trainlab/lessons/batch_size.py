"""Lesson ``batch-size``: full-batch, minibatch (100, 10) and online (1) SGD on the circle toy set.

The same small net (tanh [8], Xavier init, the same start for every run) and the same lr train for the same
number of epochs through ``trainlab.fit``; a callback times every update (from ``on_batch_begin`` to
``on_batch_end``, so epoch-end validation and checkpoints are not counted) and measures the loss on the
whole training set at log-spaced update counts (outside the timed span). Full size about 8 s on 2 cores.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import trainlab
from trainlab.data.toy import make_toy
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import save_png
from trainlab.train.callbacks import Callback, TrainState

LR, NOISE = 0.3, 0.05
TARGET = 0.3  # training loss (cross-entropy; chance is ln 2 ≈ 0.69) whose wall-clock arrival we compare
PROBES = 60  # log-spaced full-training-set evaluations per run
Pair = tuple[torch.Tensor, torch.Tensor]


class UpdateLog(Callback):
    """Per update: its minibatch loss, the time spent in it and its step within the epoch; at the update
    counts in ``at``, the cross-entropy on the whole ``probe`` set as (update, seconds so far, loss)."""

    name = "update_log"

    def __init__(self, probe: Pair | None = None, at: set[int] | frozenset[int] = frozenset()) -> None:
        self.probe, self.at = probe, at
        self.batch_losses: list[float] = []
        self.durations: list[float] = []
        self.steps: list[int] = []
        self.seconds = 0.0
        self.points: list[tuple[int, float, float]] = []
        self._t0 = 0.0

    def on_batch_begin(self, state: TrainState, step: int) -> None:
        self._t0 = time.perf_counter()

    def on_batch_end(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        spent = time.perf_counter() - self._t0
        self.seconds += spent
        self.durations.append(spent)
        self.steps.append(step)
        self.batch_losses.append(float(loss.detach()))
        if self.probe is not None and len(self.batch_losses) in self.at:
            with torch.no_grad():
                full = float(F.cross_entropy(state.model(self.probe[0]), self.probe[1]))
            self.points.append((len(self.batch_losses), self.seconds, full))


def train_batch(batch: int, train: Pair, val: Pair, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    """One run with minibatches of ``batch``: its probed training-loss curve and update timings."""
    per_epoch = math.ceil(len(train[0]) / batch)
    total = per_epoch * epochs
    log = UpdateLog(train, set(np.unique(np.geomspace(1, total, PROBES).astype(int)).tolist()) | {total})
    trainlab.fit(None, train, val=val, hidden=[8], activation="tanh", init="xavier", optimizer="sgd", lr=LR,
                 batch_size=batch, epochs=epochs, callbacks=[log], name=f"batch-{batch}", out_dir=ctx.runs_dir(),
                 seed=ctx.seed, verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device)
    updates, seconds, losses = (list(v) for v in zip(*log.points))
    reached = next((s for s, v in zip(seconds, losses) if v <= TARGET), None)
    return {"batch": batch, "label": "full batch" if batch >= len(train[0]) else f"batch {batch}",
            "updates_per_epoch": per_epoch, "updates": total, "seconds": log.seconds,
            "ms_per_update": 1e3 * float(np.median(log.durations)),
            # the first update of an epoch runs cold after the epoch's validation and checkpoint; it is the only
            # kind full batch makes, so costs are compared on it
            "ms_first_update": 1e3 * float(np.median([d for d, s in zip(log.durations, log.steps) if s == 0])),
            "final_loss": losses[-1],
            "seconds_to_target": reached, "curve": {"update": updates, "seconds": seconds, "loss": losses}}


def draw(runs: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    for r in runs:
        c = r["curve"]
        epochs = [u / r["updates_per_epoch"] for u in c["update"]]
        for ax, xs in zip(axes, (c["update"], c["seconds"], epochs)):
            ax.plot(xs, c["loss"], marker="." if len(xs) < 30 else None, label=r["label"])
    for ax, label in zip(axes, ("updates", "seconds spent in updates", "epochs")):
        ax.axhline(TARGET, color="0.5", ls=":", lw=1, label=f"loss {TARGET}")
        ax.set_xscale("log" if label != "epochs" else "linear")
        ax.set_yscale("log")
        ax.set(xlabel=label + (" (log)" if label != "epochs" else ""), ylabel="training loss (whole set)")
        ax.set_title(f"Loss against {label}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    return fig


def _lowest(values: dict[str, float], tie: float = 0.1, word: str = "lowest") -> str:
    """"A is lowest", or "A and B are level" when the runner-up is within ``tie`` (relative) of the best."""
    ranked = sorted(values, key=values.get)
    level = [k for k in ranked if values[k] <= values[ranked[0]] * (1 + tie)]
    if len(level) == 1:
        return f"{level[0]} is {word}"
    return f"{', '.join(level[:-1])} and {level[-1]} are level (within {tie:.0%})"


def conclude(runs: list[dict[str, Any]], epochs: int) -> str:
    """Per epoch, per update and per wall-second comparisons, worded from the measured curves."""
    by_epoch = min(runs, key=lambda r: r["final_loss"])
    more = [r["label"] for r in runs if r["updates"] > by_epoch["updates"]]
    epoch_note = (f"more updates per epoch help up to {by_epoch['label']}; {' and '.join(more)} made more but noisier "
                  "updates and ended higher" if more else "the run with the most updates per epoch wins")
    fewest = min(runs, key=lambda r: r["updates"])
    at_k = {r["label"]: _loss_at(r, fewest["updates"]) for r in runs}  # everyone after the shortest run's updates
    cheap = min(runs, key=lambda r: r["ms_first_update"])
    dear = max(runs, key=lambda r: r["ms_first_update"])
    ratio = dear["ms_first_update"] / cheap["ms_first_update"]
    cost_note = ("within 1.5× of each other: on a net this small the per-update overhead dominates, so time "
                 "follows the number of updates" if ratio < 1.5 else
                 f"{ratio:.2g}× more for {dear['label']} than for {cheap['label']}")
    timed = {r["label"]: r["seconds_to_target"] for r in runs if r["seconds_to_target"] is not None}
    if timed:
        clock = f"to a training loss of {TARGET}, {_lowest(timed, 0.2, 'fastest')}: " + ", ".join(
            f"{k} {v:.3g} s" for k, v in timed.items())
        missed = [r["label"] for r in runs if r["seconds_to_target"] is None]
        clock += f"; {' and '.join(missed)} never got there in {epochs} epochs" if missed else ""
    else:
        clock = f"no run reached a training loss of {TARGET} in {epochs} epochs"
    return (f"After {epochs} epochs {by_epoch['label']} has the lowest training loss ({by_epoch['final_loss']:.3g}; "
            + ", ".join(f"{r['label']} {r['final_loss']:.3g}" for r in runs if r is not by_epoch)
            + f"): {epoch_note}. Per update: after {fewest['updates']} updates (all that {fewest['label']} "
            f"made) {_lowest(at_k)}: " + ", ".join(f"{k} {v:.3g}" for k, v in at_k.items()) + ". The first update of "
            f"an epoch (the only kind {fewest['label']} makes; it runs cold after the epoch's validation) costs "
            + ", ".join(f"{r['label']} {r['ms_first_update']:.2g} ms" for r in runs) + f" (median), {cost_note}. "
            f"By the clock, {clock}.")


def _loss_at(run: dict[str, Any], updates: int) -> float:
    """The probed training loss at the last probe at or before ``updates``."""
    c = run["curve"]
    return [v for u, v in zip(c["update"], c["loss"]) if u <= updates][-1]


@lesson("batch-size", "Full-batch, minibatch and online SGD",
        "Small batches make more, noisier updates per epoch; per epoch they win, per update large batches do, "
        "and by the clock the best batch is the one whose updates are cheap yet still informative.")
def run(ctx: LessonContext) -> LessonOutput:
    n_points, epochs = (300, 10) if ctx.quick else (500, 30)
    x, y = make_toy("circle", n_points, NOISE, ctx.seed)
    k = 4 * n_points // 5
    train, val = (x[:k], y[:k]), (x[k:], y[k:])
    # online first: the process's first update pays one-time costs, which 1 of thousands of updates absorbs
    runs = [train_batch(b, train, val, epochs, ctx) for b in (1, 10, 100, k)]
    fig = save_png(draw(runs), ctx.figure_path("batch_size"))
    table = [{"run": r["label"], "updates/epoch": r["updates_per_epoch"], "updates": r["updates"],
              "ms/update": r["ms_per_update"], "ms/first update of epoch": r["ms_first_update"],
              "seconds in updates": r["seconds"], f"loss after {epochs} epochs": r["final_loss"],
              f"seconds to loss {TARGET}": "not reached" if r["seconds_to_target"] is None else r["seconds_to_target"]}
             for r in runs]
    setup = (f"circle ({n_points} points, noise {NOISE}), {k} for training. `trainlab.fit` with hidden=[8], tanh, "
             f"Xavier init, plain SGD lr {LR} for every batch size, {epochs} epochs, batch sizes 1 (online), 10, 100 "
             f"and {k} (full batch). Time is the sum over updates of on_batch_begin → on_batch_end; the loss is the "
             f"cross-entropy on all {k} training points at {PROBES} log-spaced update counts.")
    results = {"epochs": epochs, "n_train": k, "target": TARGET,
               "runs": {r["label"]: r for r in runs}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(runs, epochs), figures=[fig], table=table)
