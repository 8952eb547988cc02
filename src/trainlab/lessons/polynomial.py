"""Lesson ``polynomial``: under- and overfitting with polynomial regression, trained by ``trainlab.fit``.

Part 1 is the demo of *Dive into Deep Learning* §3.6/4.4: y = 5 + 1.2x − 3.4x²/2! + 5.6x³/3! + N(0, 0.1²)
with features xⁱ/i! (i < 20), 100 train / 100 test points, fitted with the first 2, 4 and 20 features by
a bias-free ``nn.Linear`` and SGD. Part 2 is Bishop's (*PRML* §1.1): ten noisy samples of sin(2πx) fitted
by polynomials of degree 0, 1, 3 and 9, with and without an L2 penalty. Runs in ~30 s (quick: a few s).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.polynomial import legendre
from torch import nn
from torch.nn import functional as F

import trainlab
from trainlab.config import ModelConfig
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.models import init_weights
from trainlab.report.plots import TEST, TRAIN, save_png

# Part 1 (d2l)
TRUE_W = (5.0, 1.2, -3.4, 5.6)
N_FEATURES, N_TRAIN, N_TEST, NOISE = 20, 100, 100, 0.1
FITS = {"linear": 2, "cubic": 4, "degree 19": 20}  # name → number of leading features used
SGD = {"optimizer": "sgd", "lr": 0.01, "batch_size": 10, "loss": "mse"}
# Part 2 (Bishop)
SIN_DEGREES, SIN_TRAIN, SIN_TEST, SIN_NOISE, SIN_L2 = (0, 1, 3, 9), 10, 100, 0.3, 0.3
# Full-batch momentum on the orthonormal basis reaches the least-squares fit in ~100 steps.
SIN_OPT = {"optimizer": "momentum", "lr": 0.1, "momentum": 0.9, "batch_size": SIN_TRAIN, "loss": "mse"}
QUIET = {"verbose": False, "report": False, "tensorboard": False, "threads": 1}


def factorial_features(x: np.ndarray, k: int) -> torch.Tensor:
    """(N, k) float32 features xⁱ/i!, i = 0..k−1: the factorial keeps high powers from exploding."""
    return torch.tensor(np.stack([x ** i / math.factorial(i) for i in range(k)], 1), dtype=torch.float32)


def legendre_features(x: np.ndarray, degree: int) -> torch.Tensor:
    """(N, degree + 1) orthonormal Legendre polynomials of u = 2x − 1 for x in [0, 1].

    They span the same polynomials as 1, x, …, x⁹, but on ten points the monomials' condition number
    (~1e7) makes gradient descent crawl; this basis reaches the same least-squares fit in a few steps.
    """
    basis = legendre.legvander(2 * x - 1, degree) * np.sqrt(2 * np.arange(degree + 1) + 1)
    return torch.tensor(basis, dtype=torch.float32)


def cubic_data(seed: int) -> dict[str, Any]:
    """x (200,), and (features (100, 20), y (100, 1)) for train and for test."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N_TRAIN + N_TEST)
    y = factorial_features(x, len(TRUE_W)).numpy() @ np.array(TRUE_W) + rng.normal(0, NOISE, x.shape)
    y = torch.tensor(y, dtype=torch.float32)[:, None]  # (N, 1)
    feats = factorial_features(x, N_FEATURES)
    return {"x": x, "train": (feats[:N_TRAIN], y[:N_TRAIN]), "test": (feats[N_TRAIN:], y[N_TRAIN:])}


def sin_data(seed: int) -> dict[str, np.ndarray]:
    """Ten evenly spaced training inputs in [0, 1] and random test inputs, with noisy sin(2πx) targets."""
    rng = np.random.default_rng(seed)
    x_train, x_test = np.linspace(0, 1, SIN_TRAIN), rng.uniform(0, 1, SIN_TEST)
    return {"x_train": x_train, "x_test": x_test,
            "t_train": np.sin(2 * np.pi * x_train) + rng.normal(0, SIN_NOISE, SIN_TRAIN),
            "t_test": np.sin(2 * np.pi * x_test) + rng.normal(0, SIN_NOISE, SIN_TEST)}


def fit_linear(train: tuple, test: tuple, ctx: LessonContext, epochs: int, **options: Any) -> dict[str, Any]:
    """Fit a bias-free ``nn.Linear`` on the feature matrix; the test set is the held-out curve (fit's val)."""
    model = nn.Linear(train[0].shape[1], 1, bias=False)
    init_weights(model, ModelConfig(init="default"), torch.Generator().manual_seed(ctx.seed))
    run = trainlab.fit(model, train, val=test, epochs=epochs, seed=ctx.seed, out_dir=ctx.runs_dir(),
                       **QUIET, device=ctx.device, **options)
    h = run.history
    with torch.no_grad():  # the final model's MSE (history's train_loss averages over the epoch's updates)
        train_loss, test_loss = (float(F.mse_loss(run.model(x), y)) for x, y in (train, test))
    return {"weights": run.model.weight.detach()[0].tolist(), "train_loss": train_loss,
            "test_loss": test_loss, "train_curve": [r["train_loss"] for r in h],
            "test_curve": [r["val_loss"] for r in h], "model": run.model}


def draw_cubic(fits: dict[str, dict], data: dict[str, Any]) -> Figure:
    """Top: train and test (held-out) loss per epoch of each fit; bottom: its fitted curve over the data."""
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    grid = np.linspace(data["x"].min(), data["x"].max(), 200)
    truth = factorial_features(grid, len(TRUE_W)).numpy() @ np.array(TRUE_W)
    for i, (name, f) in enumerate(fits.items()):
        ax = fig.add_subplot(2, len(fits), i + 1)
        ax.plot(range(1, len(f["train_curve"]) + 1), f["train_curve"], color=TRAIN, label="train loss")
        ax.plot(range(1, len(f["test_curve"]) + 1), f["test_curve"], color=TEST, label="test (held-out) loss")
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="MSE", title=f"{name} ({FITS[name]} features): test {f['test_loss']:.3g}")
        ax.legend(fontsize=8)
        ax = fig.add_subplot(2, len(fits), len(fits) + i + 1)
        ax.scatter(data["x"][:N_TRAIN], data["train"][1][:, 0], s=8, color=TRAIN, label="train points")
        ax.scatter(data["x"][N_TRAIN:], data["test"][1][:, 0], s=8, color=TEST, alpha=0.5, label="test points")
        ax.plot(grid, truth, "k--", lw=1, label="true function")
        with torch.no_grad():
            ax.plot(grid, f["model"](factorial_features(grid, FITS[name]))[:, 0].numpy(), color="k", label="fit")
        ax.set(xlabel="x", ylabel="y", title=f"{name}: fitted curve")
        ax.legend(fontsize=8)
    return fig


def draw_sin(fits: dict[str, dict], data: dict[str, np.ndarray]) -> Figure:
    """Bishop's grid: one panel per degree, without (top row) and with (bottom row) the L2 penalty."""
    fig = Figure(figsize=(14, 6.5), layout="constrained")
    grid = np.linspace(0, 1, 200)
    for r, l2 in enumerate((0.0, SIN_L2)):
        for c, m in enumerate(SIN_DEGREES):
            f = fits[sin_key(m, l2)]
            ax = fig.add_subplot(2, len(SIN_DEGREES), r * len(SIN_DEGREES) + c + 1)
            ax.plot(grid, np.sin(2 * np.pi * grid), "--", color="0.5", lw=1)
            ax.scatter(data["x_train"], data["t_train"], s=18, facecolors="none", edgecolors=TRAIN)
            with torch.no_grad():
                ax.plot(grid, f["model"](legendre_features(grid, m))[:, 0].numpy(), color=TEST)
            ax.set_ylim(-1.8, 1.8)
            ax.set_title(f"M = {m}, λ = {l2:g}: train {f['train_loss']:.2g}, test {f['test_loss']:.2g}", fontsize=9)
    fig.suptitle("sin(2πx) (dashed) from 10 noisy points (circles): polynomial fits of degree M, "
                 "without (top) and with (bottom) an L2 penalty", fontsize=10)
    return fig


def sin_key(degree: int, l2: float) -> str:
    return f"M={degree}" + (f", l2={l2:g}" if l2 else "")


def conclude_cubic(fits: dict[str, dict]) -> str:
    """Part 1's conclusion, worded from the measured losses and weights."""
    lin, cub, big = fits["linear"], fits["cubic"], fits["degree 19"]
    w = ", ".join(f"{v:.2f}" for v in cub["weights"])
    if big["test_loss"] <= cub["test_loss"]:
        overfit = "tests no worse than the cubic"
    elif big["train_loss"] < cub["train_loss"]:
        overfit = "fits the training set better but tests worse: it overfits"
    else:
        overfit = (f"is worse than the cubic on both sets after {len(big['train_curve'])} epochs: the extra features "
                   "slow SGD down and pull weight away from the true ones")
    under = ("high too: a line cannot follow the curve, and more data would not change that"
             if lin["train_loss"] > 10 * cub["train_loss"] else "close to the cubic's")
    recovers = ("recovers" if max(abs(a - b) for a, b in zip(cub["weights"], TRUE_W)) < 0.1
                else "is still approaching")
    extra = max(abs(v) for v in big["weights"][len(TRUE_W):])
    floor = "near" if cub["test_loss"] < 2 * NOISE ** 2 else "above"
    return (f"The linear model underfits: its test loss {lin['test_loss']:.3g} is "
            f"{lin['test_loss'] / cub['test_loss']:.0f}× the cubic's ({cub['test_loss']:.3g}), and its train loss "
            f"({lin['train_loss']:.3g}) is {under}. The cubic {recovers} the true weights "
            f"({w} vs {', '.join(map(str, TRUE_W))}) and its test loss is {floor} the noise floor "
            f"σ² = {NOISE ** 2:g}. Degree 19 (train {big['train_loss']:.3g}, test {big['test_loss']:.3g}) {overfit} "
            f"(weights {', '.join(f'{v:.2f}' for v in big['weights'][:4])}, and up to {extra:.2g} on the features "
            "whose true weight is 0).")


def conclude_sin(fits: dict[str, dict]) -> str:
    """Part 2's conclusion, worded from the measured losses and weight norms."""
    plain = {m: fits[sin_key(m, 0.0)] for m in SIN_DEGREES}
    best = min(plain, key=lambda m: plain[m]["test_loss"])
    top, reg = plain[SIN_DEGREES[-1]], fits[sin_key(SIN_DEGREES[-1], SIN_L2)]
    trains = ", ".join(f"{plain[m]['train_loss']:.2g}" for m in SIN_DEGREES)
    tests = ", ".join(f"{plain[m]['test_loss']:.2g}" for m in SIN_DEGREES)
    effect = "lowers" if reg["test_loss"] < top["test_loss"] else "does not lower"
    fits_all = ("passes through the ten points" if top["train_loss"] < 0.01 * SIN_NOISE ** 2
                else "fits the points best")
    return (f"On sin(2πx), train loss falls with the degree M = {', '.join(map(str, SIN_DEGREES))} ({trains}) while "
            f"test loss ({tests}) is lowest at M = {best}. M = {SIN_DEGREES[-1]} {fits_all} "
            f"(train {top['train_loss']:.2g}) and tests {top['test_loss'] / plain[best]['test_loss']:.1f}× worse than "
            f"M = {best}. An L2 penalty λ = {SIN_L2:g} {effect} its test loss to {reg['test_loss']:.2g}, shrinking "
            f"‖w‖ from {np.linalg.norm(top['weights']):.2g} to {np.linalg.norm(reg['weights']):.2g}.")


def fit_cubic(ctx: LessonContext, epochs: int) -> tuple[dict[str, dict], dict[str, Any]]:
    """Part 1: the linear, cubic and degree-19 fits of the cubic data (and the data, for the figure)."""
    data = cubic_data(ctx.seed)
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    fits = {name: fit_linear((x_train[:, :k], y_train), (x_test[:, :k], y_test), ctx, epochs, **SGD)
            for name, k in FITS.items()}
    return fits, data


def fit_sine(ctx: LessonContext, epochs: int) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Part 2: every degree of ``SIN_DEGREES``, without and with the L2 penalty (and the data, for the figure)."""
    sin = sin_data(ctx.seed)
    t_train, t_test = (torch.tensor(sin[k], dtype=torch.float32)[:, None] for k in ("t_train", "t_test"))
    fits = {sin_key(m, l2): fit_linear((legendre_features(sin["x_train"], m), t_train),
                                       (legendre_features(sin["x_test"], m), t_test), ctx, epochs, l2=l2, **SIN_OPT)
            for l2 in (0.0, SIN_L2) for m in SIN_DEGREES}
    return fits, sin


def table_rows(fits: dict[str, dict], sin_fits: dict[str, dict]) -> list[dict[str, Any]]:
    def shown(w: list[float]) -> str:
        return "[" + ", ".join(f"{v:.3g}" for v in w[:6]) + (", …]" if len(w) > 6 else "]")

    return ([{"data": "cubic", "model": n, "train loss": f["train_loss"], "test loss": f["test_loss"],
              "weights": shown(f["weights"])} for n, f in fits.items()]
            + [{"data": "sin", "model": k, "train loss": f["train_loss"], "test loss": f["test_loss"],
                "weights": f"‖w‖ = {np.linalg.norm(f['weights']):.3g}"} for k, f in sin_fits.items()])


def describe(epochs: int, sin_epochs: int) -> str:
    return (f"**Cubic data** (d2l): x ~ N(0, 1), y = 5 + 1.2x − 3.4x²/2! + 5.6x³/3! + N(0, {NOISE}²), features "
            f"xⁱ/i! for i < {N_FEATURES}, {N_TRAIN} train / {N_TEST} test points. `nn.Linear(k, 1, bias=False)` on "
            f"the first k = {', '.join(map(str, FITS.values()))} features, trained by `trainlab.fit` with SGD lr "
            f"{SGD['lr']}, batch {SGD['batch_size']}, MSE, {epochs} epochs; the test set is passed as `val`: the "
            "test (held-out) loss curve. "
            f"**Sine data** (Bishop): {SIN_TRAIN} points x evenly spaced in [0, 1], t = sin(2πx) + "
            f"N(0, {SIN_NOISE}²), {SIN_TEST} random test points; polynomials of degree M = "
            f"{', '.join(map(str, SIN_DEGREES))} (orthonormal Legendre basis: the same functions as 1, x, …, x^M) "
            f"fitted by full-batch momentum lr {SIN_OPT['lr']}, {sin_epochs} epochs, MSE, without and with an L2 "
            f"penalty λ/2·‖w‖², λ = {SIN_L2:g}.")


def summary(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if k != "model"}


@lesson("polynomial", "Underfitting and overfitting with polynomials",
        "Too few features underfit (train and test loss both high), too many fit the noise (train loss below test "
        "loss); the right capacity, or a penalty on the weights, generalises.")
def run(ctx: LessonContext) -> LessonOutput:
    epochs, sin_epochs = (50, 100) if ctx.quick else (400, 100)
    fits, data = fit_cubic(ctx, epochs)
    sin_fits, sin = fit_sine(ctx, sin_epochs)
    figures = [save_png(draw_cubic(fits, data), ctx.figure_path("cubic_fits")),
               save_png(draw_sin(sin_fits, sin), ctx.figure_path("sin_fits"))]
    results = {"cubic": {n: summary(f) for n, f in fits.items()}, "true_weights": list(TRUE_W),
               "sin": {k: summary(f) for k, f in sin_fits.items()}, "sin_l2": SIN_L2, "epochs": epochs}
    conclusion = conclude_cubic(fits) + "\n\n" + conclude_sin(sin_fits)
    return LessonOutput(setup=describe(epochs, sin_epochs), results=results, conclusion=conclusion,
                        figures=figures, table=table_rows(fits, sin_fits))
