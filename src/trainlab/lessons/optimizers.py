"""Lesson ``optimizers``: SGD, Momentum, AdaGrad and Adam on the narrow valley f(x, y) = x²/20 + y², then on
Fashion-MNIST, where the course's claim ("the other three usually learn faster than SGD") is about.

The valley is 20× steeper across (y) than along (x), the shape that makes plain SGD zig-zag. Each
optimizer is the engine's own (``make_optimizer`` by name, torch underneath) stepping a 2-parameter
tensor from (−7, 2), 30 updates, with the learning rates of Saito's *Deep Learning from Scratch* §6.1:
one hand-picked step size each, so the valley ranks those step sizes as much as the methods. The same
four optimizers then train a 784-100×4-10 ReLU net (He init, batch 128) on Fashion-MNIST at Saito's
§6.1.8 rates (``REAL_SETTINGS``, shared with the ``optimizers-real`` lesson, which runs 2000 updates);
here 500 updates. About 10 s.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from trainlab.config import OptimizerConfig
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, fashion_mnist, fit_logged, smooth
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
# Saito's optimizer_compare_mnist.py: every optimizer at its usual rate on a 784-100×4-10 ReLU net.
REAL_SETTINGS: dict[str, dict[str, Any]] = {
    "SGD": {"optimizer": "sgd", "lr": 0.01},
    "Momentum": {"optimizer": "momentum", "lr": 0.01, "momentum": 0.9},
    "AdaGrad": {"optimizer": "adagrad", "lr": 0.01},
    "Adam": {"optimizer": "adam", "lr": 0.001},
}
REAL_NET = {"hidden": [100] * 4, "activation": "relu", "init": "he", "batch_size": 128}
SMOOTH = 50  # updates averaged into one point of a smoothed loss curve (a minibatch loss is noisy)


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


def condition(finals: dict[str, dict[str, float]], real: dict[str, dict[str, Any]]) -> str:
    """Why the valley's ranking is not the course's claim, and the claim tested where it is made."""
    limit = 2 / 2  # SGD on y² (curvature 2) stays bounded for lr < 2 / curvature
    sgd_rank = sorted(finals, key=lambda n: finals[n]["f"]).index("SGD") + 1
    return (f"On the valley SGD ranks {sgd_rank} of 4 because each optimizer has one hand-picked step size: SGD's lr "
            f"{SETTINGS['SGD'].lr} is {SETTINGS['SGD'].lr / limit:.0%} of the largest at which its y stays bounded "
            f"(2 / the curvature 2 across the valley = {limit:g}), as fast as plain SGD can go there, so this "
            "ranking is of four step sizes on one 2-D function as much as of the methods. The course's claim "
            "(the other three usually learn faster than SGD) is about training networks at each optimizer's usual "
            f"rate, and is tested there, on Fashion-MNIST. {real_verdict(real)}.")


def train_optimizers(train: Pair, test: Pair, ctx: LessonContext, epochs: int) -> dict[str, dict[str, Any]]:
    """Each of ``REAL_SETTINGS`` trains ``REAL_NET`` from the same start; losses per update, smoothed, and test metrics."""
    res = {}
    for name, opt in REAL_SETTINGS.items():
        r = fit_logged(train, test, ctx, name.lower(), epochs=epochs, **REAL_NET, **opt)
        r["smoothed"] = smooth(r["step_losses"], SMOOTH)
        r["final_loss"] = r["smoothed"][-1]
        res[name] = r
    return res


def opt_label(name: str) -> str:
    return f"{name} ({', '.join(f'{k} {v}' for k, v in REAL_SETTINGS[name].items() if k != 'optimizer')})"


def draw_real(res: dict[str, dict[str, Any]], title: str, labels: dict[str, str]) -> Figure:
    """Smoothed training loss per update and test accuracy per epoch, one line per run (legend: ``labels``)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    fig.suptitle(title, fontsize=11)
    ax_loss, ax_acc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, r in res.items():
        label = labels[name]
        ax_loss.plot(range(1, len(r["smoothed"]) + 1), r["smoothed"], label=label)
        ax_acc.plot(range(1, len(r["test_acc_curve"]) + 1), r["test_acc_curve"], "o-", ms=3, label=label)
    ax_loss.set(yscale="log", xlabel="update", ylabel=f"training loss (mean of the last {SMOOTH} updates)",
                title="Training loss, smoothed")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def real_verdict(res: dict[str, dict[str, Any]]) -> str:
    """Whether the course's claim (Momentum, AdaGrad and Adam learn faster than SGD) held, from the measured losses."""
    updates = len(res["SGD"]["step_losses"])
    ranked = sorted(res, key=lambda n: res[n]["final_loss"])
    order = " < ".join(f"{n} {res[n]['final_loss']:.3g}" for n in ranked)
    accs = ", ".join(f"{n} {res[n]['test_acc']:.3f}" for n in ranked)
    sgd = res["SGD"]["final_loss"]
    slower = [n for n in res if n != "SGD" and res[n]["final_loss"] >= sgd]
    if not slower:
        held = (f"Every other optimizer ends below SGD's {sgd:.3g} (the nearest, {ranked[-2]}, at "
                f"{sgd / res[ranked[-2]]['final_loss']:.2g}× lower): the course's claim holds")
    else:
        held = f"{' and '.join(slower)} did not end below SGD's {sgd:.3g}: the course's claim does not hold here"
    return (f"After {updates} updates, smoothed training loss (mean of the last {SMOOTH}): {order}; test accuracy: "
            f"{accs}. {held}")


@lesson("optimizers", "Optimizers on a narrow valley",
        "On an elongated bowl plain SGD zig-zags across the steep direction; momentum and per-parameter step "
        "sizes (AdaGrad, Adam) take other paths to the minimum.")
def run(ctx: LessonContext) -> LessonOutput:
    paths = {name: trajectory(cfg, START, STEPS) for name, cfg in SETTINGS.items()}
    finals = {name: {"x": float(p[-1, 0]), "y": float(p[-1, 1]), "f": float(valley(p[-1])),
                     "y_sign_flips": sign_flips(p[:, 1])} for name, p in paths.items()}
    fig = save_png(draw(paths, finals, grid=100 if ctx.quick else 300), ctx.figure_path("trajectories"))
    n_train, n_test, epochs = (1280, 500, 20) if ctx.quick else (12800, 2000, 5)  # 200 or 500 updates of 128
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    real = train_optimizers(train, test, ctx, epochs)
    updates = len(real["SGD"]["step_losses"])
    fig_real = save_png(draw_real(real, f"Fashion-MNIST, 784-100×4-10 ReLU, He init: {updates} updates of 128 "
                                        f"({n_train} training images)", {n: opt_label(n) for n in real}),
                       ctx.figure_path("fashion_mnist"))
    table = [{"optimizer": n, "lr": SETTINGS[n].lr, "final x": v["x"], "final y": v["y"], "f(final)": v["f"],
              "y sign flips": v["y_sign_flips"], "Fashion-MNIST lr": REAL_SETTINGS[n]["lr"],
              "smoothed train loss": real[n]["final_loss"], "test acc": real[n]["test_acc"]}
             for n, v in finals.items()]
    setup = (f"Minimise f(x, y) = x²/20 + y² from (x, y) = {START} with {STEPS} updates of each optimizer, "
             "using the engine's optimizers (`make_optimizer`, torch underneath) on one 2-parameter tensor: "
             + ", ".join(f"{n} lr {c.lr}" + (f" β {c.momentum}" if c.name == "momentum" else "")
                         for n, c in SETTINGS.items()) + ". The minimum is f = 0 at (0, 0). Then the same four "
             f"optimizers train a 784-100×4-10 ReLU net (He init, batch 128) with `trainlab.fit` on {n_train} "
             f"Fashion-MNIST training images for {updates} updates at Saito's rates ("
             + ", ".join(f"{n} {o['lr']}" for n, o in REAL_SETTINGS.items()) + f", momentum 0.9), tested on "
             f"{n_test} test images; the training loss is smoothed over {SMOOTH} updates. `optimizers-real` runs "
             "2000 updates.")
    results = {"start": list(START), "steps": STEPS, "final": finals,
               "closest": min(finals, key=lambda n: finals[n]["f"]),
               "trajectories": {n: p.tolist() for n, p in paths.items()},
               "fashion_mnist": {n: {k: v for k, v in r.items() if k not in ("step_losses", "smoothed")}
                                 for n, r in real.items()}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(finals) + " " + condition(finals, real),
                        figures=[fig, fig_real], table=table)
