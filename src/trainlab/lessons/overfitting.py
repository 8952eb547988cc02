"""Lesson ``overfitting``: a 7-layer net on 300 Fashion-MNIST images, the course's four remedies (§6.4) and three
of today's recipes.

784-100×6-10 ReLU, He init, plain SGD lr 0.01, batch 100, 200 epochs, all runs from the same weights: no
remedy, weight decay λ = 0.1 (the loss gets λ/2·‖w‖²), dropout 0.2, early stopping (patience 20 on the
validation loss, best weights restored) and augmentation (random shifts of up to 2 px and horizontal flips);
then label smoothing ε = 0.1, mixup α = 0.4 and a moving average of the weights (ema.decay 0.99), which
practitioners' recipes (timm, Keras) add to the same end. The held-out curve is 1000 other images of the training
file (the course plots the test set; the test file stays closed here). Full size about 30 s on 2 cores.
"""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

import trainlab
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, fashion_subsets
from trainlab.report.plots import save_png

HIDDEN, LR, BATCH, PATIENCE = [100] * 6, 0.01, 100, 20
QUICK_LR = 0.05  # quick (tests): 5× the lr reaches the overfitting regime in a quarter of the epochs
OVERFIT_GAP = 0.1  # a train/held-out accuracy gap worth naming (10 points)
REMEDIES: dict[str, dict[str, Any]] = {
    "no remedy": {},
    "weight decay λ 0.1": {"l2": 0.1},
    "dropout 0.2": {"dropout": 0.2},
    "early stopping": {"early_stopping": {"patience": PATIENCE}},
    "augmentation": {"augment": {"translate": 2, "flip": True}},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "mixup α 0.4": {"augment": {"mixup": 0.4}},
    "weight average 0.99": {"ema_decay": 0.99},
}


def accuracy(run: Any, data: Pair) -> float:
    """Accuracy of the run's final model (eval mode: no dropout, no augmentation) on ``data``."""
    return float((run.predict(data[0]) == data[1]).float().mean())


def train_with(label: str, train: Pair, val: Pair, epochs: int, lr: float, ctx: LessonContext) -> dict[str, Any]:
    name = "-".join(w for w in label.split() if w.isascii())  # "weight-decay-0.1": a run directory's name
    run = trainlab.fit(None, train, val=val, hidden=HIDDEN, init="he", optimizer="sgd", lr=lr, batch_size=BATCH,
                       epochs=epochs, out_dir=ctx.runs_dir(), name=name, seed=ctx.seed, verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device, **REMEDIES[label])
    train_acc, val_acc = accuracy(run, train), accuracy(run, val)
    return {"remedy": label, "epochs_run": len(run.history), "train_acc": train_acc, "val_acc": val_acc,
            "gap": train_acc - val_acc, "verdict": run.diagnosis.verdict,
            "train_curve": [h["train_acc"] for h in run.history], "val_curve": [h["val_acc"] for h in run.history]}


def draw(runs: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax_curves, ax_gap = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colors = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
    for r, color in zip(runs, colors):
        epochs = range(1, len(r["train_curve"]) + 1)
        ax_curves.plot(epochs, r["train_curve"], color=color, label=f"{r['remedy']} train")
        ax_curves.plot(epochs, r["val_curve"], color=color, ls="--", label=f"{r['remedy']} held-out")
    ax_curves.set(xlabel="epoch", ylabel="accuracy", title="Train (solid, epoch mean) and held-out (dashed)")
    ax_curves.legend(fontsize=7, ncol=2)
    names = [r["remedy"] for r in runs]
    ax_gap.bar(names, [r["train_acc"] for r in runs], color="#bbbbbb", label="train")
    ax_gap.bar(names, [r["val_acc"] for r in runs], color=colors[: len(runs)], label="held-out")
    ax_gap.set(ylabel="final accuracy", ylim=(0, 1), title="Final accuracy; the grey above each bar is the gap")
    ax_gap.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax_gap.legend(fontsize=8)
    for ax in (ax_curves, ax_gap):
        ax.grid(alpha=0.3)
    return fig


def conclude(runs: list[dict[str, Any]], lr: float = LR) -> str:
    """How far each remedy closed the train/held-out gap and what it did to held-out accuracy, from the numbers."""
    base = runs[0]
    parts = [f"Without a remedy the net reaches {base['train_acc']:.3f} on its 300 training images but "
             f"{base['val_acc']:.3f} on held-out images: a gap of {base['gap']:.3f} (verdict `{base['verdict']}`)."]
    for r in runs[1:]:
        closed = base["gap"] - r["gap"]
        gap = (f"narrows the gap by {closed:.3f} to {r['gap']:.3f}" if closed > 0
               else f"does not narrow the gap ({r['gap']:.3f})")
        change = r["val_acc"] - base["val_acc"]
        held = f"held-out accuracy {'+' if change >= 0 else '−'}{abs(change):.3f} ({r['val_acc']:.3f})"
        parts.append(f"**{r['remedy']}** {gap}; {held}; verdict `{r['verdict']}`.")
    best = max(runs, key=lambda r: r["val_acc"])
    narrowest = min(runs[1:], key=lambda r: r["gap"])
    parts.append(f"The narrowest gap is {narrowest['remedy']}'s; the best held-out accuracy is {best['remedy']}'s "
                 f"({best['val_acc']:.3f}).")
    if best is base:
        parts.append(f"No remedy raised held-out accuracy at this budget ({len(base['train_curve'])} epochs of SGD "
                     f"lr {lr:g}): each one closes the gap mostly by fitting the training images less.")
    if base["gap"] > OVERFIT_GAP and base["verdict"] not in ("overfitting", "generalization_gap"):
        parts.append(f"The diagnosis calls the unremedied run `{base['verdict']}` despite a gap above {OVERFIT_GAP}: "
                     "the overfitting rule reads the held-out loss, not the accuracy gap, and that loss did not rise clearly "
                     "here.")
    return " ".join(parts)


@lesson("overfitting", "Overfitting on 300 images and seven remedies",
        "A deep net trained long on few examples fits them almost perfectly and generalises worse; weight decay, "
        "dropout, early stopping and augmentation each narrow the gap, and so do label smoothing, mixup and a moving "
        "average of the weights.")
def run(ctx: LessonContext) -> LessonOutput:
    n_train, n_val, epochs, lr = (300, 300, 50, QUICK_LR) if ctx.quick else (300, 1000, 200, LR)
    data = fashion_subsets({"train": n_train, "val": n_val}, ctx.seed)
    runs = [train_with(label, data["train"], data["val"], epochs, lr, ctx) for label in REMEDIES]
    fig = save_png(draw(runs), ctx.figure_path("overfitting"))
    table = [{k: r[k] for k in ("remedy", "epochs_run", "train_acc", "val_acc", "gap", "verdict")} for r in runs]
    setup = (f"{n_train} Fashion-MNIST training images and {n_val} other images of the training file as the held-out "
             f"set (passed as `val=`; the course plots its test set, whose file stays closed here). Net 784-"
             f"{'-'.join(map(str, HIDDEN))}-10 ReLU, He init, the same start for every run; `trainlab.fit` with plain "
             f"SGD lr {lr:g}, batch {BATCH}, {epochs} epochs. Remedies: "
             + "; ".join(f"{k}: `{v}`" for k, v in REMEDIES.items() if v) + ". Final accuracies are of the final "
             "model in eval mode (no dropout, no augmentation; early stopping restores its best epoch, the weight "
             "average is its averaged weights); the curves are the per-epoch means the engine logs (mixup's training "
             "curve: on mixed batches).")
    results = {"n_train": n_train, "epochs": epochs, "runs": {r["remedy"]: r for r in runs}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(runs, lr), figures=[fig], table=table)
