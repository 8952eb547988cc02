"""Lesson ``capacity``: width and depth sweeps on a small fixed training set, training vs validation error.

500 Fashion-MNIST training images, 1000 other images of the training file for validation. One hidden layer of
width 1 … 512, then depth 1 … 8 hidden layers of width 64; ReLU, He init, Adam lr 1e-3, batch 50, 100 epochs
(no early stopping: each net is judged after the same budget) through ``trainlab.fit``. Errors are of the final
model on the whole training set and on the validation set. Full size about 90 s on 2 cores.
"""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

import trainlab
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, fashion_subsets
from trainlab.report.plots import save_png

LR, BATCH = 1e-3, 50
WIDTHS, DEPTHS, DEPTH_WIDTH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512), (1, 2, 3, 4, 6, 8), 64
RISE = 0.01  # a validation error 1 point above the best (10 of 1000 images) counts as a rise


def error(run: Any, data: Pair) -> float:
    return float((run.predict(data[0]) != data[1]).float().mean())


def train_one(hidden: list[int], train: Pair, val: Pair, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    run = trainlab.fit(None, train, val=val, hidden=hidden, init="he", optimizer="adam", lr=LR, batch_size=BATCH,
                       epochs=epochs, out_dir=ctx.runs_dir(), name="h" + "x".join(map(str, hidden)), seed=ctx.seed,
                       verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device)
    return {"hidden": hidden, "params": sum(p.numel() for p in run.model.parameters()),
            "train_err": error(run, train), "val_err": error(run, val)}


def shape_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Best row (lowest validation error) and whether the curve rises on each side of it by more than RISE."""
    best = min(range(len(rows)), key=lambda i: rows[i]["val_err"])
    low = rows[best]["val_err"]
    return {"best": best, "left_rise": rows[0]["val_err"] - low, "right_rise": rows[-1]["val_err"] - low,
            "u_curve": rows[0]["val_err"] - low > RISE and rows[-1]["val_err"] - low > RISE}


def draw(width_rows: list[dict[str, Any]], depth_rows: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    for k, (rows, xs, label) in enumerate(((width_rows, [r["hidden"][0] for r in width_rows], "width (1 hidden layer)"),
                                           (depth_rows, [len(r["hidden"]) for r in depth_rows],
                                            f"depth (hidden layers of {DEPTH_WIDTH})"))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot(xs, [r["train_err"] for r in rows], "o-", label="training error")
        ax.plot(xs, [r["val_err"] for r in rows], "o-", label="validation error")
        b = shape_of(rows)["best"]
        ax.plot([xs[b]], [rows[b]["val_err"]], "*", ms=16, color="#d62728", label=f"best: {xs[b]}")
        ax.set(xlabel=label, ylabel="error", xscale="log" if k == 0 else "linear", title=f"Error against {label}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def describe(rows: list[dict[str, Any]], what: str, size: Any) -> str:
    s = shape_of(rows)
    b = rows[s["best"]]
    text = (f"Across {what} the training error falls from {rows[0]['train_err']:.3f} to {rows[-1]['train_err']:.3f}; "
            f"the validation error is lowest, {b['val_err']:.3f}, at {size(b)}")
    if s["u_curve"]:
        text += f", and higher on both sides (+{s['left_rise']:.3f} at the smallest, +{s['right_rise']:.3f} at the largest)"
        if rows[0]["train_err"] > b["train_err"] + RISE:
            return text + ": the U-curve, underfitting on the left and overfitting on the right."
        return text + (f": a U, but the smallest already fits its training set (training error {rows[0]['train_err']:.3f}), "
                       "so its left side is not underfitting.")
    if s["left_rise"] > RISE:
        return text + (f"; the smallest is {s['left_rise']:.3f} worse (underfitting), but the largest is only "
                       f"{s['right_rise']:+.3f} from the best: no rise on the right at this budget, so no U-curve.")
    return text + "; the curve shows no clear underfitting side."


def conclude(width_rows: list[dict[str, Any]], depth_rows: list[dict[str, Any]]) -> str:
    return (describe(width_rows, "widths", lambda r: f"width {r['hidden'][0]}") + " "
            + describe(depth_rows, "depths", lambda r: f"{len(r['hidden'])} hidden layers"))


@lesson("capacity", "Capacity: training and validation error against network size",
        "Too small a net underfits, too large a one overfits a small training set: the validation error draws a "
        "U against size, and the best size sits in between.")
def run(ctx: LessonContext) -> LessonOutput:
    if ctx.quick:
        n_train, n_val, epochs, widths, depths = 300, 300, 30, (1, 8, 64), (1, 4)
    else:
        n_train, n_val, epochs, widths, depths = 500, 1000, 100, WIDTHS, DEPTHS
    data = fashion_subsets({"train": n_train, "val": n_val}, ctx.seed)
    width_rows = [train_one([w], data["train"], data["val"], epochs, ctx) for w in widths]
    depth_rows = [train_one([DEPTH_WIDTH] * d, data["train"], data["val"], epochs, ctx) for d in depths]
    fig = save_png(draw(width_rows, depth_rows), ctx.figure_path("capacity"))
    table = [{"sweep": sweep, "hidden": "×".join(map(str, r["hidden"])), "params": r["params"],
              "train err": r["train_err"], "val err": r["val_err"]}
             for sweep, rows in (("width", width_rows), ("depth", depth_rows)) for r in rows]
    setup = (f"{n_train} Fashion-MNIST training images (fixed), {n_val} other images of the training file as "
             f"validation (`val=`). One hidden layer of width {', '.join(map(str, widths))}; then "
             f"{', '.join(map(str, depths))} hidden layers of {DEPTH_WIDTH}. ReLU, He init, `trainlab.fit` with Adam "
             f"lr {LR:g}, batch {BATCH}, {epochs} epochs, no early stopping; errors of the final model in eval mode.")
    results = {"width": width_rows, "depth": depth_rows, "width_shape": shape_of(width_rows),
               "depth_shape": shape_of(depth_rows)}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(width_rows, depth_rows), figures=[fig],
                        table=table)
