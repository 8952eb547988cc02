"""Lesson ``shallow-vs-deep``: no hidden layer vs [4, 2] vs [8, 8, 8] (tanh) on circle, xor and spiral.

The TF Playground sets, raw (x1, x2) inputs only: a model without a hidden layer draws one straight line,
so it cannot separate a disc from a ring, quadrants, or two spirals. Every model gets the same budget
(Adam lr 0.03, full-batch, the same epochs) through ``trainlab.fit``; the held-out third of each set is
the test set. Full size: 9 runs in about 20 s on 2 cores; quick: about 10 s.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import trainlab
from trainlab.data.toy import make_toy
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import CLASS_COLORS, save_png

DATASETS = ("circle", "xor", "spiral")
MODELS: dict[str, list[int]] = {"no hidden": [], "[4, 2]": [4, 2], "[8, 8, 8]": [8, 8, 8]}
NOISE, LR = 0.05, 0.03
GRID = 120  # decision-boundary resolution per axis
Pair = tuple[torch.Tensor, torch.Tensor]


def split(name: str, n_points: int, seed: int) -> tuple[Pair, Pair]:
    """(train, test): the first two thirds of the (already shuffled) toy set, then the rest."""
    x, y = make_toy(name, n_points, NOISE, seed)
    k = 2 * n_points // 3
    return (x[:k], y[:k]), (x[k:], y[k:])


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_one(dataset: str, label: str, train: Pair, test: Pair, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    """One model on one set; its test loss/accuracy and P(class 1) over the plane for the figure."""
    hidden = MODELS[label]
    run = trainlab.fit(None, train, val=test, hidden=hidden, activation="tanh", init="xavier", optimizer="adam",
                       lr=LR, batch_size=len(train[0]), epochs=epochs, out_dir=ctx.runs_dir(), seed=ctx.seed,
                       name=f"{dataset}-hidden-{'x'.join(map(str, hidden)) or 'none'}",
                       verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device)
    last = run.history[-1]
    xs = torch.cat([train[0], test[0]])
    axis = np.linspace(float(xs.min()) - 0.5, float(xs.max()) + 0.5, GRID)
    gx, gy = np.meshgrid(axis, axis)
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)  # (GRID², 2)
    proba = run.predict(grid, proba=True)[:, 1].reshape(GRID, GRID).numpy()
    return {"dataset": dataset, "model": label, "params": n_params(run.model), "train_acc": last["train_acc"],
            "test_loss": last["val_loss"], "test_acc": last["val_acc"], "axis": axis, "proba": proba}


def draw(runs: list[dict[str, Any]], tests: dict[str, Pair], epochs: int) -> Figure:
    """A grid of decision boundaries: one row per dataset, one column per model; test points on top."""
    fig = Figure(figsize=(10, 10), layout="constrained")
    fig.suptitle(f"P(class 1), red 0 → blue 1, after {epochs} full-batch Adam epochs; test points on top",
                 fontsize=11)
    cols = len(MODELS)
    for i, r in enumerate(runs):
        ax = fig.add_subplot(len(DATASETS), cols, i + 1)
        ax.contourf(r["axis"], r["axis"], r["proba"], levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.45)
        ax.contour(r["axis"], r["axis"], r["proba"], levels=[0.5], colors="k", linewidths=0.8)
        x, y = tests[r["dataset"]]
        ax.scatter(x[:, 0], x[:, 1], s=8, c=[CLASS_COLORS[int(c)] for c in y], edgecolors="white", linewidths=0.3)
        ax.set_title(f"{r['dataset']} · {r['model']}: test acc {r['test_acc']:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    return fig


def conclude(runs: list[dict[str, Any]]) -> str:
    """Per dataset, which depth won and whether the hidden layers beat the straight line, from the accuracies."""
    parts = []
    for name in DATASETS:
        rows = {r["model"]: r for r in runs if r["dataset"] == name}
        flat = rows["no hidden"]["test_acc"]
        best = max(rows, key=lambda m: (rows[m]["test_acc"], -rows[m]["test_loss"]))
        beaten = [m for m in rows if m != "no hidden" and rows[m]["test_acc"] > flat + 0.05]
        accs = ", ".join(f"{m} {rows[m]['test_acc']:.2f}" for m in rows)
        if beaten:
            verdict = f"{' and '.join(beaten)} beat the straight line by more than 5 points"
        else:
            verdict = "no hidden configuration beats the straight line by more than 5 points"
        parts.append(f"**{name}**: test accuracy {accs}; {verdict}, best {best}.")
    line = [r["test_acc"] for r in runs if r["model"] == "no hidden"]
    return (" ".join(parts) + f" Without a hidden layer the test accuracy stays between {min(line):.2f} and "
            f"{max(line):.2f}: one straight boundary cannot follow a ring, quadrants or a spiral.")


@lesson("shallow-vs-deep", "Shallow vs deep networks on the playground sets",
        "A network without hidden layers draws one straight line; hidden layers bend the boundary around "
        "circles, quadrants and spirals.")
def run(ctx: LessonContext) -> LessonOutput:
    n_points, epochs = (300, 150) if ctx.quick else (600, 300)
    data = {name: split(name, n_points, ctx.seed) for name in DATASETS}
    runs = [train_one(name, label, *data[name], epochs, ctx) for name in DATASETS for label in MODELS]
    fig = save_png(draw(runs, {n: d[1] for n, d in data.items()}, epochs), ctx.figure_path("boundaries"))
    table = [{k: r[k] for k in ("dataset", "model", "params", "train_acc", "test_loss", "test_acc")} for r in runs]
    setup = (f"TF Playground sets {', '.join(DATASETS)} with {n_points} points each (noise {NOISE}), raw (x1, x2) "
             f"inputs; two thirds train, one third held-out test (passed as `val=`). Models via `trainlab.fit`: "
             f"{', '.join(f'{k} (hidden={v})' for k, v in MODELS.items())}, tanh, Xavier init, cross-entropy. "
             f"Same budget for all: Adam lr {LR}, full-batch, {epochs} epochs; the table reports the final weights.")
    results = {"n_points": n_points, "epochs": epochs,
               "test_acc": {d: {r["model"]: r["test_acc"] for r in runs if r["dataset"] == d} for d in DATASETS},
               "test_loss": {d: {r["model"]: r["test_loss"] for r in runs if r["dataset"] == d} for d in DATASETS}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(runs), figures=[fig], table=table)
