"""Lesson ``batchnorm``: a deep ReLU net with and without BatchNorm across 16 weight scales (Saito §6.3.2).

1000 Fashion-MNIST training images, 784-100×5-10 ReLU MLP, weights N(0, s²) for s in logspace(0, −4, 16),
biases 0, SGD lr 0.01, batch 100, 20 epochs (200 updates), each scale trained by ``trainlab.fit`` once with
``batchnorm=False`` and once with ``batchnorm=True`` (linear → BatchNorm → ReLU in every hidden block). The
course's three claims are measured: faster learning (training accuracy early on), less dependence on the
init (the spread of final training accuracy across scales), less overfitting (training minus test
accuracy, on 1000 test images, where both nets learned). About 40 s on one core.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import trainlab
from trainlab.errors import TrainingError
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, fashion_mnist
from trainlab.report.plots import read_metrics, save_png

NET = {"hidden": [100] * 5, "activation": "relu", "init": "normal", "optimizer": "sgd", "lr": 0.01, "batch_size": 100}
# A net "learned" when its final training accuracy is at least 0.5 (chance: 0.1); below it, training failed
# at that scale and its train − test gap says nothing about overfitting.
LEARNED = 0.5
EARLY = 0.25  # "faster learning" is read at a quarter of the run
CHANCE = 0.1  # 10 classes


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Pair) -> float:
    model.eval()
    return float((model(data[0]).argmax(1) == data[1]).float().mean())


def train_at(scale: float, bn: bool, train: Pair, test: Pair, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    """One run at weight std ``scale``, with or without BatchNorm; per-epoch curves and final accuracies.
    A run whose loss breaks to NaN (large weights without BatchNorm) is kept, with accuracies NaN."""
    try:
        run = trainlab.fit(None, train, val=test, init_std=scale, batchnorm=bn, epochs=epochs,
                           name=f"{'bn' if bn else 'plain'}-{scale:.3g}", out_dir=ctx.runs_dir(), seed=ctx.seed,
                           verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device, **NET)
    except TrainingError as err:
        history = read_metrics(err.run_dir) if err.run_dir else []
        return {"scale": scale, "batchnorm": bn, "train_acc_curve": [h["train_acc"] for h in history],
                "train_acc": math.nan, "test_acc": math.nan, "verdict": "diverged"}
    return {"scale": scale, "batchnorm": bn, "train_acc_curve": [h["train_acc"] for h in run.history],
            "train_acc": accuracy(run.model, train), "test_acc": accuracy(run.model, test),
            "verdict": run.diagnosis.verdict}


def early_acc(r: dict[str, Any], epoch: int) -> float:
    """Training accuracy of epoch ``epoch``; chance for a run that broke before it (it learned nothing)."""
    return r["train_acc_curve"][epoch - 1] if len(r["train_acc_curve"]) >= epoch else CHANCE


def measure(res: dict[bool, list[dict[str, Any]]]) -> dict[str, Any]:
    """The three claims as numbers: early accuracy, spread across scales, train − test gap where both learned."""
    epochs = max(len(r["train_acc_curve"]) for r in res[True])
    early = max(1, round(EARLY * epochs))
    out: dict[str, Any] = {"early_epoch": early}
    for bn, runs in res.items():
        key = "bn" if bn else "plain"
        # a diverged run ends at chance for the spread: it learned nothing
        final = np.nan_to_num(np.array([r["train_acc"] for r in runs]), nan=CHANCE)
        out[key] = {"early_acc_mean": float(np.mean([early_acc(r, early) for r in runs])),
                    "final_min": float(final.min()), "final_max": float(final.max()), "final_std": float(final.std()),
                    "learned": int((final >= LEARNED).sum()), "diverged": sum(r["verdict"] == "diverged" for r in runs)}
    out["faster_at"] = sum(early_acc(b, early) > early_acc(p, early) for p, b in zip(res[False], res[True]))
    both = [(p, b) for p, b in zip(res[False], res[True])
            if min(p["train_acc"], b["train_acc"]) >= LEARNED]  # NaN (diverged) compares False
    out["both_learned"] = len(both)
    out["gap_plain"] = float(np.mean([p["train_acc"] - p["test_acc"] for p, _ in both])) if both else None
    out["gap_bn"] = float(np.mean([b["train_acc"] - b["test_acc"] for _, b in both])) if both else None
    return out


def draw(res: dict[bool, list[dict[str, Any]]], scales: list[float]) -> list[Figure]:
    """Per scale: training-accuracy curves (as Saito's grid); and final accuracies against the scale."""
    cols = 4
    rows = -(-len(scales) // cols)
    grid = Figure(figsize=(12, 2.3 * rows + 0.5), layout="constrained")
    grid.suptitle("Training accuracy per epoch at each weight std (solid: BatchNorm, dashed: none)", fontsize=11)
    for i, s in enumerate(scales):
        ax = grid.add_subplot(rows, cols, i + 1)
        ax.plot(res[True][i]["train_acc_curve"], color="#1f77b4")
        ax.plot(res[False][i]["train_acc_curve"], color="#7f7f7f", ls="--")
        ax.set_title(f"w std {s:.2g}", fontsize=9)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    final = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = final.add_subplot()
    for bn, color, name in ((True, "#1f77b4", "BatchNorm"), (False, "#7f7f7f", "no BatchNorm")):
        ax.semilogx(scales, [r["train_acc"] for r in res[bn]], "o-", color=color, label=f"{name}: train")
        ax.semilogx(scales, [r["test_acc"] for r in res[bn]], "x:", color=color, label=f"{name}: test")
    ax.set(xlabel="weight std at init", ylabel="accuracy after training", ylim=(0, 1.02),
           title="Final accuracy against the init scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return [grid, final]


def conclude(m: dict[str, Any], n_scales: int) -> str:
    """Each of the course's three claims, held or not, from the measured numbers."""
    p, b = m["plain"], m["bn"]
    faster = ("holds" if m["faster_at"] > n_scales / 2 and b["early_acc_mean"] > p["early_acc_mean"] else "does not hold")
    steadier = "holds" if b["final_std"] < p["final_std"] and b["learned"] >= p["learned"] else "does not hold"
    text = [f"Faster learning {faster}: after {m['early_epoch']} of the epochs BatchNorm's training accuracy is higher "
            f"at {m['faster_at']} of {n_scales} weight scales (mean {b['early_acc_mean']:.3f} against "
            f"{p['early_acc_mean']:.3f}).",
            f"Less dependence on the init {steadier}: with BatchNorm the final training accuracy spans "
            f"{b['final_min']:.3f}–{b['final_max']:.3f} across the scales (std {b['final_std']:.3f}) and {b['learned']} of "
            f"{n_scales} reach {LEARNED}; without, {p['final_min']:.3f}–{p['final_max']:.3f} (std {p['final_std']:.3f}), "
            f"{p['learned']} of {n_scales}" + (f" ({p['diverged']} broke to NaN, counted at chance)" if p["diverged"] else "")
            + "."]
    if not m["both_learned"]:
        text.append(f"Less overfitting cannot be judged: at no scale did both nets reach training accuracy {LEARNED}.")
    else:
        less = "holds" if m["gap_bn"] < m["gap_plain"] else "does not hold here"
        text.append(f"Less overfitting {less}: at the {m['both_learned']} scales where both nets learned, training "
                    f"minus test accuracy averages {m['gap_bn']:.3f} with BatchNorm and {m['gap_plain']:.3f} without"
                    + (" — BatchNorm fits the 1000 images faster and so also further past what generalises."
                       if m["gap_bn"] >= m["gap_plain"] else "."))
    return " ".join(text)


@lesson("batchnorm", "Batch normalisation across weight scales",
        "BatchNorm makes learning faster, less dependent on the initial weight scale, and less prone to overfitting.")
def run(ctx: LessonContext) -> LessonOutput:
    # quick: two scales inside the full range, one each side of where the plain net stops learning
    n_train, n_test, epochs, span = (500, 300, 30, (-1, -3, 2)) if ctx.quick else (1000, 1000, 20, (0, -4, 16))
    scales = [float(s) for s in np.logspace(*span)]
    n_scales = len(scales)
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    res = {bn: [train_at(s, bn, train, test, epochs, ctx) for s in scales] for bn in (False, True)}
    m = measure(res)
    figs = [save_png(f, ctx.figure_path(name)) for f, name in zip(draw(res, scales), ("curves", "final"))]
    table = [{"w std": s, "train acc (BN)": b["train_acc"], "test acc (BN)": b["test_acc"],
              "train acc (none)": p["train_acc"], "test acc (none)": p["test_acc"],
              f"train acc @ epoch {m['early_epoch']} (BN / none)":
                  f"{early_acc(b, m['early_epoch']):.3f} / {early_acc(p, m['early_epoch']):.3f}"}
             for s, p, b in zip(scales, res[False], res[True])]
    setup = (f"{n_train} Fashion-MNIST training images, {n_test} test images. 784-100×5-10 ReLU MLP, weights "
             f"N(0, s²) for {n_scales} values of s in logspace({span[0]}, {span[1]}), biases 0; `trainlab.fit` with SGD lr 0.01, "
             f"batch 100, {epochs} epochs, once with `batchnorm=True` (linear → BatchNorm → ReLU) and once without. "
             "Curves: the training accuracy of each epoch (a running mean over its batches); final accuracies: the "
             "trained model in eval mode on all training and test images.")
    return LessonOutput(setup=setup, results={"scales": scales, "measured": m,
                                              "runs": {"batchnorm": res[True], "plain": res[False]}},
                        conclusion=conclude(m, n_scales), figures=figs, table=table)
