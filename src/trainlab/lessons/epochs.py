"""Lesson ``epochs``: one long run, where underfitting turns into overfitting, and where early stopping stops.

1000 Fashion-MNIST training images, 1000 other images of the training file as the validation set; MLP
784-100-100-10 ReLU, He init, Adam lr 1e-3, batch 100, 150 epochs through ``trainlab.fit``. The turning
point is the epoch of the lowest validation loss; the same run is then trained again with the engine's
early stopping (patience 10, best weights restored), which must stop where the recorded curve says it would.
Full size about 15 s on 2 cores.
"""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

import trainlab
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, fashion_subsets
from trainlab.report.plots import save_png

HIDDEN, LR, BATCH, PATIENCE = [100, 100], 1e-3, 100, 10


def fit(train: Pair, val: Pair, epochs: int, ctx: LessonContext, **stop: Any) -> Any:
    return trainlab.fit(None, train, val=val, hidden=HIDDEN, init="he", optimizer="adam", lr=LR, batch_size=BATCH,
                        epochs=epochs, out_dir=ctx.runs_dir(), seed=ctx.seed, verbose=False, report=False,
                        tensorboard=False, threads=1, device=ctx.device, **stop)


def stop_epoch(val_loss: list[float], patience: int) -> int | None:
    """The epoch (1-based) at which early stopping with ``patience`` ends a run with these validation losses:
    the first one ``patience`` epochs after the last improvement; None if the run ends first."""
    best, best_at = float("inf"), 0
    for epoch, loss in enumerate(val_loss, start=1):
        if loss < best:
            best, best_at = loss, epoch
        elif epoch - best_at >= patience:
            return epoch
    return None


def draw(history: list[dict[str, Any]], turn: int, stopped: int | None) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_acc"] for h in history], label="validation")
    for ax in (ax_loss, ax_acc):
        ax.axvline(turn, color="k", ls="--", lw=1, label=f"lowest validation loss (epoch {turn})")
        if stopped is not None:
            ax.axvline(stopped, color="#d62728", ls=":", lw=1.5, label=f"early stopping stops (epoch {stopped})")
        ax.axvspan(0, turn, color="#1f77b4", alpha=0.06)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log",
                title="Underfitting (shaded) → overfitting: loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    return fig


def conclude(r: dict[str, Any]) -> str:
    if r["turn_epoch"] == r["epochs"]:
        return (f"The validation loss was still falling at the last epoch ({r['val_loss_min']:.3f} at epoch "
                f"{r['epochs']}): the run never left underfitting, and early stopping had nothing to stop.")
    text = (f"The validation loss falls to {r['val_loss_min']:.3f} at epoch {r['turn_epoch']} and then rises to "
            f"{r['val_loss_end']:.3f} by epoch {r['epochs']}, while the training loss keeps falling "
            f"({r['train_loss_turn']:.3g} → {r['train_loss_end']:.3g}): before epoch {r['turn_epoch']} more training "
            f"helps (underfitting), after it the net fits its {r['n_train']} images at the expense of unseen ones. "
            f"Validation accuracy: {r['val_acc_turn']:.3f} at the turn, {r['val_acc_end']:.3f} at the end.")
    if r["stop_epoch"] is None:
        return text + f" Early stopping with patience {PATIENCE} would not have stopped this run."
    same = ("exactly where the recorded curve predicts" if r["engine_stop_epoch"] == r["stop_epoch"]
            else f"at epoch {r['engine_stop_epoch']}, not at {r['stop_epoch']} as the recorded curve predicts")
    return text + (f" Early stopping with patience {PATIENCE} stops at epoch {r['stop_epoch']}; the engine's rule "
                   f"stopped {same}, saving {r['epochs'] - r['engine_stop_epoch']} of {r['epochs']} epochs and "
                   f"ending with the weights of epoch {r['engine_best_epoch']} (validation accuracy "
                   f"{r['engine_val_acc']:.3f}).")


@lesson("epochs", "Epochs: from underfitting to overfitting in one run",
        "Training longer first helps and then hurts: the validation loss turns upwards while the training loss "
        "keeps falling, and early stopping stops soon after the turn.")
def run(ctx: LessonContext) -> LessonOutput:
    n_train, n_val, epochs = (400, 300, 40) if ctx.quick else (1000, 1000, 150)
    data = fashion_subsets({"train": n_train, "val": n_val}, ctx.seed)
    long_run = fit(data["train"], data["val"], epochs, ctx, name="long")
    h = long_run.history
    val_loss = [row["val_loss"] for row in h]
    turn = min(range(len(h)), key=lambda i: val_loss[i])
    stopped = stop_epoch(val_loss, PATIENCE)
    short = fit(data["train"], data["val"], epochs, ctx, name="early-stopping", early_stopping={"patience": PATIENCE})
    best = short.summary["best_epoch"]
    r = {"n_train": n_train, "epochs": epochs, "turn_epoch": h[turn]["epoch"], "val_loss_min": val_loss[turn],
         "val_loss_end": val_loss[-1], "train_loss_turn": h[turn]["train_loss"], "train_loss_end": h[-1]["train_loss"],
         "val_acc_turn": h[turn]["val_acc"], "val_acc_end": h[-1]["val_acc"], "stop_epoch": stopped,
         "engine_stop_epoch": len(short.history), "engine_best_epoch": best,
         "engine_val_acc": short.history[best - 1]["val_acc"]}
    fig = save_png(draw(h, r["turn_epoch"], stopped), ctx.figure_path("epochs"))
    table = [{"epoch": f"{label} ({h[i]['epoch']})", "train loss": h[i]["train_loss"], "val loss": h[i]["val_loss"],
              "train acc": h[i]["train_acc"], "val acc": h[i]["val_acc"]}
             for label, i in (("first", 0), ("turn", turn), ("last", len(h) - 1))]
    setup = (f"{n_train} Fashion-MNIST training images; {n_val} other images of the training file as validation "
             f"(`val=`). MLP 784-{'-'.join(map(str, HIDDEN))}-10 ReLU, He init, `trainlab.fit` with Adam lr {LR:g}, "
             f"batch {BATCH}, {epochs} epochs, no stop rule. The same run again with "
             f"`early_stopping={{'patience': {PATIENCE}}}` (monitor val_loss, best weights restored).")
    return LessonOutput(setup=setup, results=r, conclusion=conclude(r), figures=[fig], table=table)
