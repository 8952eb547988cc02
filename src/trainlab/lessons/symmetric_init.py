"""Lesson ``symmetric-init``: all-zero and all-equal weights keep every hidden unit an identical copy.

A 784-50-50-10 sigmoid MLP on a Fashion-MNIST subset, trained by ``trainlab.fit`` with SGD from three
starts: all weights 0 (the engine's ``zeros`` init), all weights 0.05 (a ``build_model`` net whose weights
are then filled with the constant, passed to ``fit`` as a module), and Xavier. After training, each hidden
layer's spread (how far its units' weight vectors lie from the first unit's) says whether the units are
still copies; the verdict is ``run.diagnosis``, whose pre-flight check sees the constant weights. Sigmoid,
not ReLU: with zero weights a ReLU layer outputs 0 with slope 0 and nothing but the biases ever moves;
a sigmoid layer outputs 0.5, so the weights do move, and the lesson shows that they move in lockstep.
About 10 s.
"""
from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

import trainlab
from trainlab.config import ModelConfig
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import fashion_mnist
from trainlab.models import build_model
from trainlab.report.plots import save_png

HIDDEN = [50, 50]
CONSTANT = 0.05
STARTS = {"all zero": "zeros", f"all {CONSTANT}": "constant", "Xavier (random)": "xavier"}  # label → run name
TRAIN = {"optimizer": "sgd", "lr": 0.5, "batch_size": 32}
# Units are "identical" when every unit's weight vector lies within 1e-4 (relative to the largest) of the first
# unit's: float rounding in a matmul leaves copies ~1e-7 apart; random units differ by ~1 (√2 for independent).
IDENTICAL = 1e-4


def start_model(start: str, seed: int) -> nn.Module:
    """The 784-50-50-10 sigmoid MLP at ``start``: built by the engine's builder, its init chosen by name."""
    init = {"all zero": "zeros"}.get(start, "xavier")
    model = build_model(ModelConfig(name="mlp", hidden=HIDDEN, activation="sigmoid", init=init), (784,), 10, seed=seed)
    if start == f"all {CONSTANT}":
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.fill_(CONSTANT)
                    m.bias.zero_()
    return model


def unit_spread(weight: torch.Tensor) -> float:
    """max over units of ‖wᵢ − w₀‖ / max ‖wᵢ‖ for a layer's weight (units, inputs); 0 when all units are copies."""
    norms = weight.norm(dim=1)
    return float((weight - weight[0]).norm(dim=1).max() / norms.max().clamp_min(1e-12))


def hidden_spreads(model: nn.Module) -> list[float]:
    """:func:`unit_spread` of every hidden Linear layer (not the output head), input → output."""
    return [unit_spread(m.weight.detach()) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not name.startswith("head")]


def train_from(start: str, train: Any, test: Any, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    model = start_model(start, ctx.seed)
    before = hidden_spreads(model)
    start_weights = [m.weight.detach().clone() for name, m in model.named_modules()
                     if isinstance(m, nn.Linear) and not name.startswith("head")]
    run = trainlab.fit(model, train, val=test, epochs=epochs, name=STARTS[start],
                       out_dir=ctx.runs_dir(), seed=ctx.seed, verbose=False, report=False, tensorboard=False,
                       threads=1, device=ctx.device, **TRAIN)
    after = hidden_spreads(run.model)
    trained = [m.weight.detach() for name, m in run.model.named_modules()
               if isinstance(m, nn.Linear) and not name.startswith("head")]
    moved = [float((w - w0).abs().max()) for w, w0 in zip(trained, start_weights)]
    d = run.diagnosis
    return {"spread_init": before, "spread": after, "moved": moved,
            "identical": all(s < IDENTICAL for s in after), "verdict": d.verdict,
            "rules": [f.rule for f in d.findings],
            "symmetric_layers": next((f.evidence.get("layers") for f in d.findings if f.rule == "symmetric_init"), []),
            "test_acc": run.history[-1]["val_acc"], "train_acc": run.history[-1]["train_acc"],
            "test_acc_curve": [h["val_acc"] for h in run.history]}


def draw(res: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_s, ax_a = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (name, r) in enumerate(res.items()):
        pos = [j + (i - 1) * 0.25 for j in range(len(HIDDEN))]
        ax_s.bar(pos, [max(s, 1e-9) for s in r["spread"]], width=0.25, label=f"{name}: `{r['verdict']}`")
        ax_a.plot(range(1, len(r["test_acc_curve"]) + 1), r["test_acc_curve"], "o-", ms=3, label=name)
    ax_s.axhline(IDENTICAL, color="k", lw=0.8, ls="--")
    ax_s.set(yscale="log", xticks=range(len(HIDDEN)), xticklabels=[f"hidden layer {j + 1}" for j in range(len(HIDDEN))],
             ylabel="max ‖wᵢ − w₀‖ / max ‖wᵢ‖ after training", title="How different the units are (dashed: identical)")
    ax_a.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy")
    for ax in (ax_s, ax_a):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def conclude(res: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, r in res.items():
        state = ("every unit of each hidden layer is still a copy of the first" if r["identical"]
                 else "the units differ")
        named = (f"the diagnosis names it (`symmetric_init`, layers {', '.join(r['symmetric_layers'])})"
                 if "symmetric_init" in r["rules"] else f"the diagnosis finds no symmetry (verdict `{r['verdict']}`)")
        parts.append(f"**{name}**: after training {state} (spread {', '.join(f'{s:.1e}' for s in r['spread'])}; "
                     f"the weights moved by up to {max(r['moved']):.2g}), test accuracy "
                     f"{r['test_acc']:.3f}; {named}.")
    rand = res["Xavier (random)"]
    sym = [n for n, r in res.items() if r is not rand and r["identical"]]
    drifted = [n for n, r in res.items() if r is not rand and not r["identical"]]
    if sym:
        best_sym = max(res[n]["test_acc"] for n in sym)
        parts.append(f"Identical units compute the same output and receive the same gradient, so the updates do not "
                     f"separate them: in {' and '.join(sym)} each hidden layer of {HIDDEN[0]} units works as one, "
                     f"reaching test accuracy {best_sym:.3f} where the random start reaches {rand['test_acc']:.3f}.")
    if drifted:
        parts.append(f"In {' and '.join(drifted)} the units did drift apart although every weight started equal: "
                     "the symmetric state is an unstable balance, and differences as small as float rounding (not "
                     "measured here) grow over the updates — a slow, accidental symmetry breaking, not a cure.")
    parts.append("A random init breaks the symmetry from the first update.")
    return " ".join(parts)


@lesson("symmetric-init", "Symmetric initialisation: all-zero and all-equal weights",
        "If every weight starts equal, every hidden unit gets the same update and stays an identical copy: the "
        "layer acts as one unit. A random init breaks the symmetry.")
def run(ctx: LessonContext) -> LessonOutput:
    n_train, n_test, epochs = (1000, 500, 3) if ctx.quick else (5000, 2000, 10)
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    res = {start: train_from(start, train, test, epochs, ctx) for start in STARTS}
    fig = save_png(draw(res), ctx.figure_path("symmetry"))
    table = [{"start": n, "spread at init": " / ".join(f"{s:.1e}" for s in r["spread_init"]),
              "spread after": " / ".join(f"{s:.1e}" for s in r["spread"]), "identical units": r["identical"],
              "test acc": r["test_acc"], "verdict": r["verdict"]} for n, r in res.items()]
    setup = (f"{n_train} Fashion-MNIST training images, {n_test} test images. 784-{'-'.join(map(str, HIDDEN))}-10 "
             f"sigmoid MLP, `trainlab.fit` with SGD lr {TRAIN['lr']}, batch {TRAIN['batch_size']}, {epochs} epochs, "
             f"from: all weights and biases 0 (`init='zeros'`); every weight {CONSTANT}, biases 0; Xavier. Spread of a "
             "layer = max over its units of ‖wᵢ − w₀‖ / max ‖wᵢ‖ (0: all units copies of the first); identical "
             f"means < {IDENTICAL:g} in every hidden layer.")
    return LessonOutput(setup=setup, results={"starts": res}, conclusion=conclude(res), figures=[fig], table=table)
