"""Lesson ``optimizers``: SGD, Momentum, AdaGrad and Adam on the narrow valley f(x, y) = x²/20 + y².

The valley is 20× steeper across (y) than along (x), the shape that makes plain SGD zig-zag. Each
optimizer is the engine's own (``make_optimizer`` by name, torch underneath) stepping a 2-parameter
tensor from (−7, 2), 30 updates, with the learning rates of Saito's *Deep Learning from Scratch* §6.1.
Runs in well under a second.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from trainlab.config import OptimizerConfig
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import save_png
from trainlab.train.optim import make_optimizer

START = (-7.0, 2.0)
STEPS = 30
SETTINGS: dict[str, OptimizerConfig] = {
    "SGD": OptimizerConfig(name="sgd", lr=0.95),
    "Momentum": OptimizerConfig(name="momentum", lr=0.1, momentum=0.9),
    "AdaGrad": OptimizerConfig(name="adagrad", lr=1.5),
    "Adam": OptimizerConfig(name="adam", lr=0.3),
}


def valley(p: torch.Tensor) -> torch.Tensor:
    """f(x, y) = x²/20 + y² for points ``p`` of shape (..., 2); minimum 0 at the origin."""
    return p[..., 0] ** 2 / 20 + p[..., 1] ** 2


def trajectory(cfg: OptimizerConfig, start: tuple[float, float], steps: int) -> torch.Tensor:
    """The points (steps + 1, 2) the optimizer ``cfg`` visits minimising :func:`valley` from ``start``."""
    point = torch.tensor(start, requires_grad=True)
    opt = make_optimizer([point], cfg)
    path = [point.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        valley(point).backward()
        opt.step()
        path.append(point.detach().clone())
    return torch.stack(path)  # (steps + 1, 2)


def sign_flips(values: torch.Tensor) -> int:
    """How many consecutive pairs of ``values`` have opposite signs."""
    return int((values[1:] * values[:-1] < 0).sum())


def draw(paths: dict[str, torch.Tensor], finals: dict[str, dict[str, float]], grid: int) -> Figure:
    """One contour panel per optimizer with its path drawn over it."""
    xs, ys = np.linspace(-10, 10, grid), np.linspace(-5, 5, grid)
    gx, gy = np.meshgrid(xs, ys)
    fz = valley(torch.from_numpy(np.stack([gx, gy], -1))).numpy()
    fig = Figure(figsize=(10, 7), layout="constrained")
    fig.suptitle(f"{STEPS} updates on f(x, y) = x²/20 + y² from {START}", fontsize=11)
    for i, (name, path) in enumerate(paths.items()):
        ax = fig.add_subplot(2, 2, i + 1)
        ax.contour(gx, gy, fz, levels=np.geomspace(0.05, 30, 12), colors="0.75", linewidths=0.8)
        ax.plot(path[:, 0], path[:, 1], "o-", color="#d62728", ms=3, lw=1)
        ax.plot(0, 0, "+", color="k", ms=10, mew=1.5)
        cfg = SETTINGS[name]
        extra = f", β {cfg.momentum}" if cfg.name == "momentum" else ""
        ax.set_title(f"{name} (lr {cfg.lr}{extra}): ends at f = {finals[name]['f']:.3g}", fontsize=10)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-5, 5)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    return fig


def conclude(finals: dict[str, dict[str, float]]) -> str:
    """The conclusion, worded from the measured end points and sign flips."""
    ranked = sorted(finals, key=lambda n: finals[n]["f"])
    best, sgd, ada = ranked[0], finals["SGD"], finals["AdaGrad"]
    sgd_lr = SETTINGS["SGD"].lr
    zig = "zig-zags across the valley" if sgd["y_sign_flips"] > STEPS / 2 else "rarely crosses the valley floor"
    ada_flips = "never does" if ada["y_sign_flips"] == 0 else f"does so {ada['y_sign_flips']} times"
    order = " < ".join(f"{n} ({finals[n]['f']:.3g})" for n in ranked)
    return (f"SGD's y coordinate changes sign at {sgd['y_sign_flips']} of its {STEPS} steps: it {zig} "
            f"(each step multiplies y by 1 − 2·lr = {1 - 2 * sgd_lr:.2g}), while x shrinks smoothly by 1 − lr/10 "
            f"per step, from {START[0]} to {sgd['x']:.2f}. AdaGrad's y {ada_flips}: dividing by the accumulated "
            f"squared gradients shrinks the steep direction's steps first. {best} ends closest to the minimum "
            f"(f = {finals[best]['f']:.3g}). Final f, best first: {order}.")


@lesson("optimizers", "Optimizers on a narrow valley",
        "On an elongated bowl plain SGD zig-zags across the steep direction; momentum and per-parameter step "
        "sizes (AdaGrad, Adam) take other paths to the minimum.")
def run(ctx: LessonContext) -> LessonOutput:
    paths = {name: trajectory(cfg, START, STEPS) for name, cfg in SETTINGS.items()}
    finals = {name: {"x": float(p[-1, 0]), "y": float(p[-1, 1]), "f": float(valley(p[-1])),
                     "y_sign_flips": sign_flips(p[:, 1])} for name, p in paths.items()}
    fig = save_png(draw(paths, finals, grid=100 if ctx.quick else 300), ctx.figure_path("trajectories"))
    table = [{"optimizer": n, "lr": SETTINGS[n].lr, "final x": v["x"], "final y": v["y"], "f(final)": v["f"],
              "y sign flips": v["y_sign_flips"]} for n, v in finals.items()]
    setup = (f"Minimise f(x, y) = x²/20 + y² from (x, y) = {START} with {STEPS} updates of each optimizer, "
             "using the engine's optimizers (`make_optimizer`, torch underneath) on one 2-parameter tensor: "
             + ", ".join(f"{n} lr {c.lr}" + (f" β {c.momentum}" if c.name == "momentum" else "")
                         for n, c in SETTINGS.items()) + ". The minimum is f = 0 at (0, 0).")
    results = {"start": list(START), "steps": STEPS, "final": finals,
               "closest": min(finals, key=lambda n: finals[n]["f"]),
               "trajectories": {n: p.tolist() for n, p in paths.items()}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(finals), figures=[fig], table=table)
