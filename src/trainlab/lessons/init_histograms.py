"""Lesson ``init-histograms``: activations of a 5-layer net at initialisation, for six (activation, init) pairs.

1000 Gaussian inputs (100 features) go through 5 dense layers of 100 units built by ``build_model``
with the engine's init schemes; one histogram per layer per setting, as in Saito's *Deep Learning from
Scratch* §6.2. No training: only the forward pass at initialisation. Runs in a few seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure

from trainlab.config import ModelConfig
from trainlab.diagnose.stats import SATURATION
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.models import build_model
from trainlab.report.plots import TRAIN, save_png

WIDTH, DEPTH = 100, 5
HIST_RANGE = {"sigmoid": (0.0, 1.0), "relu": (0.0, 3.0)}  # ReLU: zeros are counted, not drawn


@dataclass(frozen=True)
class Setting:
    label: str
    activation: str
    init: str
    init_std: float = 0.01  # read by the "normal" scheme only


SETTINGS = (
    Setting("sigmoid, N(0, 1)", "sigmoid", "normal", 1.0),
    Setting("sigmoid, N(0, 0.01²)", "sigmoid", "normal", 0.01),
    Setting("sigmoid, Xavier", "sigmoid", "xavier"),
    Setting("ReLU, N(0, 0.01²)", "relu", "normal", 0.01),
    Setting("ReLU, Xavier", "relu", "xavier"),
    Setting("ReLU, He", "relu", "he"),
)


def saturated(a: torch.Tensor, activation: str) -> float:
    """Fraction of outputs with (almost) no slope: sigmoid outside [0.1, 0.9], ReLU exactly 0."""
    return float((a == 0).float().mean()) if activation == "relu" else float(SATURATION[activation](a).float().mean())


@torch.no_grad()
def layer_outputs(s: Setting, x: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """The activations (N, WIDTH) after each of the DEPTH dense blocks of a freshly initialised mlp."""
    cfg = ModelConfig(name="mlp", hidden=[WIDTH] * DEPTH, activation=s.activation, init=s.init, init_std=s.init_std)
    model = build_model(cfg, (x.shape[1],), 1, seed=seed)
    outs, h = [], x
    for block in model.layers:  # linear → activation; the head is not part of the experiment
        h = block(h)
        outs.append(h)
    return outs


def layer_stats(s: Setting, acts: list[torch.Tensor]) -> dict[str, Any]:
    """Per layer: mean, std and saturated fraction of the activations."""
    return {"activation": s.activation, "init": s.init, "init_std": s.init_std if s.init == "normal" else None,
            "mean": [float(a.mean()) for a in acts], "std": [float(a.std()) for a in acts],
            "saturated": [saturated(a, s.activation) for a in acts]}


def draw(acts: dict[str, list[torch.Tensor]], stats: dict[str, dict]) -> Figure:
    """A grid: one row per setting, one histogram per layer."""
    fig = Figure(figsize=(13, 2.1 * len(acts) + 0.6), layout="constrained")
    fig.suptitle(f"Activations per layer at initialisation ({DEPTH} layers × {WIDTH} units); "
                 "ReLU panels show the non-zero outputs", fontsize=11)
    for r, s in enumerate(SETTINGS):
        for i, a in enumerate(acts[s.label]):
            ax = fig.add_subplot(len(SETTINGS), DEPTH, r * DEPTH + i + 1)
            values = a.flatten()
            ax.hist(values[values != 0] if s.activation == "relu" else values, bins=30,
                    range=HIST_RANGE[s.activation], color=TRAIN)
            what = "zero" if s.activation == "relu" else "sat."
            ax.set_title(f"layer {i + 1}: std {stats[s.label]['std'][i]:.2g}, "
                         f"{what} {stats[s.label]['saturated'][i]:.0%}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(s.label, fontsize=9)
    return fig


def trend(std: list[float]) -> str:
    """How the activation std changes from the first to the last layer, in words."""
    ratio = std[-1] / std[0]
    if ratio < 0.5:
        return f"shrinks from {std[0]:.2g} to {std[-1]:.2g} over {DEPTH} layers (×{ratio:.2g})"
    return f"stays near {std[0]:.2g} (layer {DEPTH}: {std[-1]:.2g})"


def conclude(stats: dict[str, dict]) -> str:
    """The conclusion, worded from the measured stds and saturated fractions."""
    mean_sat = {k: sum(v["saturated"]) / DEPTH for k, v in stats.items()}
    wide, tiny, xav = "sigmoid, N(0, 1)", "sigmoid, N(0, 0.01²)", "sigmoid, Xavier"
    more = "more" if mean_sat[wide] > mean_sat[xav] else "no more"
    relu = [s for s in SETTINGS if s.activation == "relu"]
    trends = "; ".join(f"with {s.label.split(', ', 1)[1]} the std {trend(stats[s.label]['std'])}" for s in relu)
    zeros = [z for s in relu for z in stats[s.label]["saturated"]]
    return (f"Sigmoid with N(0, 1) weights saturates {more} than with Xavier: on average {mean_sat[wide]:.0%} of its "
            f"outputs are below 0.1 or above 0.9 (Xavier: {mean_sat[xav]:.0%}), where the gradient all but vanishes. "
            f"With N(0, 0.01²) the opposite failure: every unit outputs ≈ {stats[tiny]['mean'][-1]:.2f} "
            f"(layer-{DEPTH} std {stats[tiny]['std'][-1]:.2g}), so the units are interchangeable and the layer "
            f"expresses little. For ReLU, {trends}. Whatever the init, {min(zeros):.0%}–{max(zeros):.0%} of every "
            "ReLU layer is exactly 0; what the init decides is whether the rest keeps its scale through depth.")


@lesson("init-histograms", "Weight initialisation and activation histograms",
        "The weight scale decides whether activations saturate, collapse, or keep their spread through depth: "
        "Xavier for sigmoid, He for ReLU.")
def run(ctx: LessonContext) -> LessonOutput:
    n = 200 if ctx.quick else 1000
    x = torch.randn(n, WIDTH, generator=torch.Generator().manual_seed(ctx.seed))  # (N, 100)
    acts = {s.label: layer_outputs(s, x, ctx.seed) for s in SETTINGS}
    stats = {s.label: layer_stats(s, acts[s.label]) for s in SETTINGS}
    fig = save_png(draw(acts, stats), ctx.figure_path("histograms"))
    table = [{"setting": k, f"std, layers 1→{DEPTH}": " / ".join(f"{v:.2g}" for v in st["std"]),
              "saturated (sigmoid) / zero (ReLU)": " / ".join(f"{v:.0%}" for v in st["saturated"])}
             for k, st in stats.items()]
    setup = (f"{n} inputs x ~ N(0, 1)^{WIDTH} through an mlp of {DEPTH} dense layers × {WIDTH} units, biases 0, "
             "built by `build_model` with the engine's init schemes (Xavier: Glorot uniform; He: Kaiming normal). "
             "Saturated means a sigmoid output < 0.1 or > 0.9 (slope < 0.09 of at most 0.25); for ReLU, an output "
             "exactly 0.")
    return LessonOutput(setup=setup, results={"inputs": n, "settings": stats}, conclusion=conclude(stats),
                        figures=[fig], table=table)
