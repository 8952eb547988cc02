"""Lesson ``learning-rate``: one small net at lr 100× and 10× too small, good, 10× too large and far too large.

A ReLU net with one hidden layer of 8 units on the circle toy set, plain SGD, batch 20, 20 epochs, the
same start for every lr (``trainlab.fit`` seeds the model). Each run's curve and its verdict come from the
engine (``run.diagnosis``); the run that blows up raises ``TrainingError``, whose ``outcome`` holds the
diagnosis and whose message names the epoch and step. The 10× too small run still reaches ~0.9 validation
accuracy in 20 epochs (slow, not stuck: the diagnosis rightly finds nothing wrong); at 100× too small the loss
barely moves and the diagnosis names it ``lr_too_low``. About 4 s on 2 cores.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import trainlab
from trainlab.data.toy import make_toy
from trainlab.errors import TrainingError
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import read_metrics, save_png
from trainlab.train.callbacks import Callback, TrainState

GOOD_LR = 0.3
SETTINGS: dict[str, float] = {"100× too small": GOOD_LR / 100, "10× too small": GOOD_LR / 10, "good": GOOD_LR,
                              "10× too large": GOOD_LR * 10, "far too large": GOOD_LR * 100}
# The loss "barely moves" when it falls by less than this fraction of its first epoch's value over the run
# (the good lr: ~95 %; lr ÷100: ~10 %, the diagnosis's lr_low_change).
BARELY = 0.15
N_POINTS, NOISE, VAL, BATCH, EPOCHS = 400, 0.05, 0.25, 20, 20


class BatchLosses(Callback):
    """Every update's minibatch loss (the NaN/Inf one included) and its step within the epoch."""

    name = "batch_losses"

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.steps: list[int] = []

    def on_batch_end(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        self.losses.append(float(loss.detach()))
        self.steps.append(step)


def train_at(label: str, lr: float, data: tuple[torch.Tensor, torch.Tensor], ctx: LessonContext) -> dict[str, Any]:
    """One run at ``lr``: per-update losses, per-epoch metrics, the verdict, and where it diverged if it did."""
    log = BatchLosses()
    opts = dict(hidden=[8], activation="relu", init="xavier", optimizer="sgd", lr=lr, batch_size=BATCH,
                epochs=EPOCHS, name=f"lr-{lr:g}", out_dir=ctx.runs_dir(), seed=ctx.seed, verbose=False,
                report=False, tensorboard=False, threads=1, device=ctx.device)
    diverged = None
    try:
        run = trainlab.fit(None, data, val=VAL, callbacks=[log], **opts)
        history, diagnosis = list(run.history), run.diagnosis
    except TrainingError as err:
        outcome = getattr(err, "outcome", None)
        history = read_metrics(err.run_dir) if err.run_dir else []
        diagnosis = outcome.diagnosis if outcome is not None else None
        facts = err.facts or {}  # what the loop saw, as data (summary.json's "non_finite")
        diverged = {k: facts[k] for k in ("epoch", "step") if isinstance(facts.get(k), int)}
        diverged["message"] = str(err)
    findings = [{"rule": f.rule, "severity": f.severity, "title": f.title, "message": f.message}
                for f in (diagnosis.findings if diagnosis else [])]
    return {"label": label, "lr": lr, "verdict": diagnosis.verdict if diagnosis else "diverged",
            "findings": findings, "rules": [f["rule"] for f in findings],
            "errors": [f["rule"] for f in findings if f["severity"] == "error"], "diverged": diverged,
            "train_loss": [h["train_loss"] for h in history], "val_acc": [h["val_acc"] for h in history],
            "final_train_loss": history[-1]["train_loss"] if history else math.nan,
            "final_val_acc": history[-1]["val_acc"] if history else math.nan,
            "batch_losses": log.losses, "steps_per_epoch": max(log.steps, default=0) + 1}


def status(r: dict[str, Any]) -> str:
    d = r["diverged"]
    if d is None:
        return f"finished {len(r['train_loss'])} epochs"
    return f"diverged at epoch {d.get('epoch', '?')}, step {d.get('step', '?')}"


def draw(runs: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    # the y range of the runs that finished; a diverging run leaves it through the top (its peak is annotated)
    top = 10 * max((max(r["train_loss"]) for r in runs if r["diverged"] is None and r["train_loss"]), default=10.0)
    for r, color in zip(runs, ("#8c564b", "#9467bd", "#2ca02c", "#ff7f0e", "#d62728")):
        label = f"{r['label']} (lr {r['lr']:g}): {r['verdict']}"
        losses = np.array(r["batch_losses"])
        finite = np.isfinite(losses)
        upto = int(np.argmin(finite)) if not finite.all() else len(losses)  # updates before the first non-finite
        ax_loss.plot(np.arange(1, upto + 1), losses[:upto], color=color, lw=0.6, alpha=0.35)
        ends = np.arange(1, len(r["train_loss"]) + 1) * r["steps_per_epoch"]
        ax_loss.plot(ends, r["train_loss"], color=color, lw=1.8, label=label)
        if r["diverged"] is not None and upto > 0:
            peak = float(np.max(losses[:upto]))
            ax_loss.plot(upto, top, "x", color=color, ms=10, mew=2, clip_on=False)
            ax_loss.annotate(f"{status(r)} (loss had reached {peak:.2g})", (upto, top), fontsize=8, color=color,
                             xytext=(8, -12), textcoords="offset points")
        ax_acc.plot(range(1, len(r["val_acc"]) + 1), r["val_acc"], color=color, marker=".", label=label)
    low = min(float(np.nanmin(np.where(np.isfinite(r["batch_losses"]), r["batch_losses"], np.nan)))
              for r in runs if r["batch_losses"])
    ax_loss.set(yscale="log", ylim=(max(low, 1e-4) / 2, top), xlabel="update",
                ylabel="training loss (thin: minibatch, thick: epoch mean)", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy", ylim=(0.3, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    ax_loss.legend(fontsize=7.5, loc="lower left")
    return fig


def conclude(runs: dict[str, dict[str, Any]]) -> str:
    """One sentence per lr from its measured outcome and findings, then how the finished runs compare."""
    parts = []
    for r in runs.values():
        lead = next((f for f in r["findings"] if f["rule"] == r["verdict"]), None)
        why = f" — {lead['title']}: {lead['message']}" if lead else ""
        also = [f["title"] for f in r["findings"] if f is not lead]
        end = (f"training loss {r['final_train_loss']:.3g}, validation accuracy {r['final_val_acc']:.2f}"
               if r["diverged"] is None else status(r))
        parts.append(f"**{r['label']}** (lr {r['lr']:g}): {end}; verdict `{r['verdict']}`{why}"
                     + (f" (also: {', '.join(also)})" if also else "") + ".")
    done = {k: r for k, r in runs.items() if r["diverged"] is None}
    summary = ""
    if done:
        best = min(done, key=lambda k: done[k]["final_train_loss"])
        low = done[best]["final_train_loss"]
        others = ", ".join(f"{k} {r['final_train_loss'] / low:.3g}× higher" for k, r in done.items() if k != best)
        summary = f" Of the runs that finished, {best} ends with the lowest training loss ({low:.3g})" + (
            f"; {others}." if others else ".")
    blown = [k for k, r in runs.items() if r["diverged"] is not None]
    if blown:
        summary += f" {' and '.join(blown)} did not survive: the loss became non-finite and training stopped."
    return " ".join(parts) + summary + " " + too_small(runs)


def moved(r: dict[str, Any]) -> float:
    """How far the training loss fell over the run, as a fraction of its first epoch's value."""
    loss = r["train_loss"]
    return (loss[0] - min(loss)) / loss[0] if loss and loss[0] > 0 else math.nan


def too_small(runs: dict[str, dict[str, Any]]) -> str:
    """When the course's "too small crawls" shows, from the too-small runs' measured movement and verdicts."""
    good = runs["good"]
    small = [r for k, r in runs.items() if "too small" in k and r["diverged"] is None]
    said = "; ".join(f"at lr {r['lr']:g} it fell {moved(r):.0%} (`{r['verdict']}`)" for r in small)
    barely = [r for r in small if moved(r) < BARELY]
    if not barely:
        return (f"The good lr's training loss fell {moved(good):.0%} in {EPOCHS} epochs; {said}: none of the small "
                f"rates left the loss barely moving (< {BARELY:.0%}), so this budget does not show the crawl.")
    first = max(barely, key=lambda r: r["lr"])
    named = "and the diagnosis names it" if first["verdict"] == "lr_too_low" else "but the diagnosis does not name it"
    slower = [r for r in small if r not in barely]
    slow = ("; " + "; ".join(f"lr {r['lr']:g} ({GOOD_LR / r['lr']:.0f}× too small) is only slower, reaching "
                             f"validation accuracy {r['final_val_acc']:.2f} against {good['final_val_acc']:.2f}, and "
                             f"the diagnosis, judging the curve, finds `{r['verdict']}`" for r in slower)) if slower else ""
    return (f"The good lr's training loss fell {moved(good):.0%} in {EPOCHS} epochs; {said}. The course's \"too small "
            f"a learning rate crawls\" shows here from {GOOD_LR / first['lr']:.0f}× below the good rate (lr "
            f"{first['lr']:g}): the loss barely moves (< {BARELY:.0%}) {named}{slow}.")


@lesson("learning-rate", "Learning rate: too small, good, too large, diverging",
        "Too small a learning rate crawls, a good one converges, a too large one thrashes or kills units, and a far "
        "too large one diverges to NaN — and the diagnosis says which.")
def run(ctx: LessonContext) -> LessonOutput:
    # quick mode runs the same: five 20-epoch runs on 400 points take about 4 s in all
    data = make_toy("circle", N_POINTS, NOISE, ctx.seed)
    runs = {label: train_at(label, lr, data, ctx) for label, lr in SETTINGS.items()}
    fig = save_png(draw(list(runs.values())), ctx.figure_path("learning_rate"))
    table = [{"lr": r["lr"], "setting": k, "outcome": status(r), "verdict": r["verdict"],
              "train loss (last epoch)": r["final_train_loss"], "val acc (last epoch)": r["final_val_acc"]}
             for k, r in runs.items()]
    setup = (f"circle ({N_POINTS} points, noise {NOISE}; {VAL:.0%} held out for validation). `trainlab.fit` with "
             f"hidden=[8], ReLU, Xavier init, plain SGD, batch {BATCH}, {EPOCHS} epochs, the same seed (same start) "
             f"for each lr in {', '.join(f'{v:g}' for v in SETTINGS.values())} (good = {GOOD_LR:g}). Verdicts are "
             "`run.diagnosis` (for the run that raises `TrainingError`, `err.outcome.diagnosis`); its epochs before "
             "the break are read from its run's metrics.jsonl.")
    results = {"good_lr": GOOD_LR, "runs": {k: {key: v for key, v in r.items() if key != "batch_losses"}
                                            for k, r in runs.items()}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(runs), figures=[fig], table=table)
