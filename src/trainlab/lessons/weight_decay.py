"""Lesson ``weight-decay``: an L2 penalty on high-dimensional linear regression (d2l §3.7).

20 training and 100 held-out examples in d = 200 dimensions, y = 0.05 + Σ 0.01·xᵢ + N(0, 0.01²): with
ten times more weights than examples, plain least squares fits the training set exactly and the test set
badly. ``trainlab.fit`` trains the same ``nn.Linear(200, 1)`` (w ~ N(0, 1), b = 0) with ``l2`` = λ = 0
and λ = 3 (the loss gets λ/2·‖w‖²), SGD lr 0.003, batch 5, 100 epochs. Runs in a few seconds.
"""
from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

import trainlab
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import save_png
from trainlab.train.callbacks import Callback, TrainState

DIM, N_TRAIN, N_TEST = 200, 20, 100
TRUE_W, TRUE_B, NOISE = 0.01, 0.05, 0.01
LAMBDAS = (0.0, 3.0)
LR, BATCH = 0.003, 5
Pair = tuple[torch.Tensor, torch.Tensor]


class WeightNorm(Callback):
    """‖w‖ of the model's weight matrix after every epoch."""

    name = "weight_norm"

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.norms.append(float(state.model.weight.detach().norm()))


def synthetic_data(n: int, gen: torch.Generator) -> Pair:
    """``n`` examples x ~ N(0, I) (n, DIM) with y = 0.05 + Σ 0.01·xᵢ + N(0, 0.01²), shape (n, 1)."""
    x = torch.randn(n, DIM, generator=gen)
    y = TRUE_B + TRUE_W * x.sum(1, keepdim=True) + NOISE * torch.randn(n, 1, generator=gen)
    return x, y



def train_with(lam: float, init: dict[str, torch.Tensor], train: Pair, test: Pair, epochs: int,
               ctx: LessonContext) -> dict[str, Any]:
    """Fit a fresh nn.Linear from the weights ``init`` with L2 penalty ``lam``; its norms and losses."""
    model = nn.Linear(DIM, 1)
    model.load_state_dict(init)
    norms = WeightNorm()
    run = trainlab.fit(model, train, val=test, optimizer="sgd", lr=LR, batch_size=BATCH, epochs=epochs,
                       loss="mse", l2=lam, callbacks=[norms], name=f"lambda-{lam:g}", out_dir=ctx.runs_dir(),
                       seed=ctx.seed, verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device)
    with torch.no_grad():  # the data term on all 20 points after training (history's is the epoch's running mean)
        train_loss = float(nn.functional.mse_loss(run.model(train[0]), train[1]))
    return {"lambda": lam, "w_norm": norms.norms[-1], "train_loss": train_loss,
            "test_loss": run.history[-1]["val_loss"], "w_norms": norms.norms,
            "train_curve": [h["train_loss"] for h in run.history],
            "test_curve": [h["val_loss"] for h in run.history]}


def draw(runs: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_norm = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for r, color in zip(runs, ("#d62728", "#1f77b4")):
        epochs = range(1, len(r["train_curve"]) + 1)
        label = f"λ = {r['lambda']:g}"
        ax_loss.semilogy(epochs, r["train_curve"], color=color, label=f"{label} train")
        ax_loss.semilogy(epochs, r["test_curve"], color=color, ls="--", label=f"{label} test (held-out)")
        ax_norm.plot(epochs, r["w_norms"], color=color, label=f"{label}: ‖w‖ = {r['w_norm']:.3g}")
    ax_loss.set(xlabel="epoch", ylabel="MSE (log scale)", title="Loss: train (solid, epoch mean) and test (dashed)")
    ax_norm.set(xlabel="epoch", ylabel="‖w‖", title="Norm of the weights", ylim=(0, None))
    for ax in (ax_loss, ax_norm):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def conclude(free: dict[str, Any], decayed: dict[str, Any]) -> str:
    """The conclusion, worded from the measured norms and losses (``free``: λ = 0, ``decayed``: λ > 0)."""
    lam = decayed["lambda"]
    shrink = free["w_norm"] / decayed["w_norm"]
    fit = ("fits the training set less closely" if decayed["train_loss"] > free["train_loss"]
           else "fits the training set at least as closely")
    if decayed["test_loss"] < free["test_loss"]:
        verdict = (f"the test loss fell {free['test_loss'] / decayed['test_loss']:.3g}× (from {free['test_loss']:.3g} "
                   f"to {decayed['test_loss']:.3g}): the smaller weights generalise better")
    else:
        verdict = (f"the test loss did not fall ({free['test_loss']:.3g} → {decayed['test_loss']:.3g}): here the "
                   "penalty did not help")
    return (f"Without a penalty, 200 weights fitted to 20 examples drive the training loss to {free['train_loss']:.3g} "
            f"but leave a test loss of {free['test_loss']:.3g}, with ‖w‖ = {free['w_norm']:.3g}. "
            f"With λ = {lam:g}, ‖w‖ ends at {decayed['w_norm']:.3g}, {shrink:.3g}× smaller; the model {fit} "
            f"(training loss {decayed['train_loss']:.3g}), and {verdict}.")


@lesson("weight-decay", "Weight decay on high-dimensional linear regression",
        "With more weights than examples, an L2 penalty shrinks the weights and closes the gap between "
        "training and test loss.")
def run(ctx: LessonContext) -> LessonOutput:
    gen = torch.Generator().manual_seed(ctx.seed)
    train, test = synthetic_data(N_TRAIN, gen), synthetic_data(N_TEST, gen)
    init = nn.Linear(DIM, 1)
    with torch.no_grad():
        init.weight.normal_(0, 1, generator=gen)
        init.bias.zero_()
    epochs = 30 if ctx.quick else 100
    runs = [train_with(lam, init.state_dict(), train, test, epochs, ctx) for lam in LAMBDAS]
    fig = save_png(draw(runs), ctx.figure_path("weight_decay"))
    table = [{"λ": r["lambda"], "‖w‖": r["w_norm"], "train loss": r["train_loss"], "test loss": r["test_loss"]}
             for r in runs]
    setup = (f"{N_TRAIN} training and {N_TEST} held-out examples, x ~ N(0, I) in d = {DIM} dimensions, "
             f"y = {TRUE_B} + Σ {TRUE_W}·xᵢ + N(0, {NOISE}²). Model `nn.Linear({DIM}, 1)`, w ~ N(0, 1), b = 0 "
             f"(the same start for every λ), trained by `trainlab.fit` with plain SGD, lr {LR}, batch {BATCH}, "
             f"{epochs} epochs, `loss='mse'` (mean (ŷ − y)², without d2l's ½) plus `l2=λ`, which adds λ/2·‖w‖² "
             f"(weights, not the bias); λ ∈ {{{', '.join(f'{lam:g}' for lam in LAMBDAS)}}}. The {N_TEST} held-out "
             "examples are passed as `val=` and reported as the test loss; the training loss is the MSE on all "
             f"{N_TRAIN} training examples after the last epoch (without the penalty).")
    results = {"runs": {f"{r['lambda']:g}": r for r in runs}, "epochs": epochs,
               "w_norm_ratio": runs[0]["w_norm"] / runs[1]["w_norm"]}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(*runs), figures=[fig], table=table)
