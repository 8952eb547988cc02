"""The live over/underfitting verdict: trainlab's diagnosis rules on the playground's history so far.

The rules' validation loss is the loss on the validation points the session carves from the training points
(``percValData``); the test points are never read here, so no choice is made on them. Long histories are
thinned to at most ``MAX_ROWS`` evenly spaced
epochs: the rules look at trends, the minimum and the last few rows, which thinning keeps.

Per-layer statistics (what the vanishing-gradient, dead-unit, saturation and exploding-gradient rules read)
come from :func:`layer_row`, a sample the session takes after epoch 1 and then once per verdict (every
~0.5 s), never per epoch: one pass over the batches without updating (gradients only) and one forward pass
over the training points, ~2-5 ms on the default network, so training speed is unchanged. Each row has the
shape of a ``layers.jsonl`` row, with the page's names for the layers ("hidden layer 1", "output layer").

The rules' remedies name CLI config keys (``optimizer.lr=0.003``); :func:`in_playground_terms` rewrites
them into the page's controls ("lower the learning rate to 0.003"), snapping numbers to the menus.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

import torch

from trainlab.config import config_to_dict
from trainlab.diagnose import diagnose, measure_activations
from trainlab.playground.backprop import manual_gradients
from trainlab.playground.export import to_config
from trainlab.playground.net import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS, Trainer
from trainlab.playground.state import LEARNING_RATES, MAX_NEURONS, REG_RATES

__all__ = ["live_verdict", "layer_row", "add_layer_row", "in_playground_terms", "MAX_ROWS", "MIN_EPOCHS",
           "MAX_LAYER_ROWS"]

MAX_ROWS = 300
MAX_LAYER_ROWS = 64  # per-layer samples kept (first one always); the rules take the first, last and median
MIN_EPOCHS = 10  # fewer epochs say nothing about fit
PROBE_POINTS = 512  # training points the activation statistics and gradient norms are measured on


def history_rows(t: Trainer) -> list[dict[str, Any]]:
    """The trainer's epochs 1..E as the engine's metrics rows (train and validation columns only), thinned to
    ≤ MAX_ROWS."""
    stride = max(1, -(-t.epochs // MAX_ROWS))
    epochs = list(range(t.epochs, 0, -stride))[::-1]  # always keeps the latest epoch
    columns = [TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC]
    values = t.history[epochs][:, columns].tolist() if epochs else []
    lr = t.optimizer.param_groups[0]["lr"]
    rows = []
    acc = t.classification
    for e, (tr, tr_acc, va, va_acc) in zip(epochs, values):
        rows.append({"epoch": e, "train_loss": tr, "val_loss": va, "train_acc": tr_acc if acc else None,
                     "val_acc": va_acc if acc else None, "lr": lr})
    return rows


# --- per-layer statistics ---------------------------------------------------------------------------------


def layer_names(t: Trainer) -> list[str]:
    n = len(t.net.spec.hidden)
    return [f"hidden layer {i + 1}" for i in range(n)] + ["output layer"]


def _batch_gradients(t: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> list[torch.Tensor]:
    """Mean gradients on one batch in ``net.params`` order, changing nothing (no BatchNorm statistics, no RNG)."""
    spec = t.net.spec
    if spec.fast:
        return manual_gradients(t.net.linears, spec.activations, spec.output, xb, yb)
    m = t.net.module
    was = m.training
    m.eval()  # dropout off, BatchNorm on its running statistics: nothing is updated by this probe
    try:
        with torch.enable_grad():
            grads = torch.autograd.grad(t.loss_fn(m(xb), yb), t.net.params, allow_unused=True)
    finally:
        m.train(was)
    return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, t.net.params)]


@torch.no_grad()
def layer_row(t: Trainer) -> dict[str, Any]:
    """A ``layers.jsonl``-shaped row for the trainer's current weights.

    ``grad_norm``: per linear layer (weight and bias together), the root-mean-square over the epoch's batches
    of its gradient norm, as the engine's loop measures it; ``activations``: the engine's
    :func:`~trainlab.diagnose.measure_activations` of each hidden layer on the training points.
    """
    names = layer_names(t)
    groups = [[i for i, p in enumerate(t.net.params) if p is lin.weight or p is lin.bias] for lin in t.net.linears]
    x, y = t.x[:PROBE_POINTS], t.y[:PROBE_POINTS]
    bs = max(t.batch_size, 1)
    sq = torch.zeros(len(groups))
    batches = 0
    for a in range(0, len(x) - bs + 1, bs):
        grads = _batch_gradients(t, x[a:a + bs], y[a:a + bs])
        norms = torch.stack(torch._foreach_norm(grads)).square()
        sq += torch.stack([norms[g].sum() for g in groups])
        batches += 1
    rms = (sq / max(batches, 1)).sqrt().tolist()
    summary, _ = measure_activations(t.net.module, x) if t.net.spec.hidden else ({}, {})
    activations = {}
    for key, s in summary.items():
        m = re.fullmatch(r"layers\.(\d+)\.act", key)
        if m:
            activations[names[int(m[1])]] = s
    return {"epoch": t.epochs, "grad_norm": {n: v for n, v in zip(names, rms) if math.isfinite(v)},
            "activations": activations}


def add_layer_row(rows: list[dict[str, Any]], t: Trainer) -> None:
    """Append a sample of the current epoch (unless it has one) to ``rows``; keep at most MAX_LAYER_ROWS."""
    if rows and rows[-1]["epoch"] >= t.epochs:
        if rows[-1]["epoch"] > t.epochs:  # the network went back (an undone epoch): start over
            rows.clear()
        else:
            return
    rows.append(layer_row(t))
    if len(rows) > MAX_LAYER_ROWS:
        rows[1:-1] = rows[2:-1:2]  # every other sample between the first and the latest: the span stays


# --- the remedies in the page's words ---------------------------------------------------------------------


def _snap(value: float, menu: list[float], now: float | None, direction: int) -> float:
    """The menu step nearest ``value`` on a log scale, moved one step further if that is not past ``now``."""
    steps = sorted(v for v in menu if v > 0)
    near = min(steps, key=lambda v: abs(math.log(v) - math.log(max(value, 1e-12))))
    if now is not None and direction and (near - now) * direction <= 0:
        further = [v for v in steps if (v - now) * direction > 0]
        if further:
            near = min(further) if direction > 0 else max(further)
    return near


def _lr(direction: int) -> Callable[[re.Match], str]:
    def fix(m: re.Match) -> str:
        now = float(m["now"])
        lr = _snap(float(m["to"]), LEARNING_RATES, now, direction)
        return f"{'lower' if direction < 0 else 'raise'} the learning rate to {lr:g} (now {now:g})"
    return fix


def _hidden(m: re.Match) -> str:
    sizes = [min(int(v), MAX_NEURONS) for v in re.findall(r"\d+", m["to"])]
    now = re.findall(r"\d+", m["now"] or "")
    return f"{', '.join(map(str, sizes))} neurons per hidden layer (now {', '.join(now) or 'no hidden layer'})"


_NUMBER = r"[-+]?\d[\d.e+-]*"
# CLI config keys → the page's controls, most specific first. Numbers are snapped to the page's menus.
_REWRITES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    # a remedy that agrees with a higher-ranked one on a key takes that one's value (diagnose.verdict.coherent)
    (r"; with [^;]*? from (“[^”]+”) above", r"; for the setting they share, follow \1 above"),

    (rf"lower optimizer\.lr to (?P<to>{_NUMBER}) \(now (?P<now>{_NUMBER})\)", _lr(-1)),
    (rf"raise optimizer\.lr to (?P<to>{_NUMBER}) \(now (?P<now>{_NUMBER})\)", _lr(+1)),
    (r"set grad_clip=[\d.]+ and ", ""),  # the playground has no gradient clipping
    (r" and set grad_clip=[\d.]+", ""),
    (r" and set data\.normalize=true", ""),  # its inputs are TF's raw features
    (r"use model\.activation=(\w+) with model\.init=\w+ \(now (\w+) with [^)]*\)", r"use the \1 activation (now \2)"),
    (r"model\.activation=(\w+)", r"the \1 activation"),
    (r"set model\.batchnorm=true", "turn on BatchNorm"),
    (r"use fewer layers \(model\.hidden=\[(?P<now>[^\]]*)\]\)",
     lambda m: f"use fewer hidden layers (now {len(re.findall(r'[0-9]+', m['now']))})"),
    (r"model\.name=mlp with ", ""),
    (r"model\.hidden=\[(?P<to>[^\]]*)\] \(now (?:\[(?P<now>[^\]]*)\]|\w+)\)", _hidden),
    (r"a smaller model\.hidden", "fewer neurons"),
    (r"set stop\.early_stopping\.patience=(\d+) \(it restores the best weights\)", r"set early-stop patience to \1"),
    (r"\(stop\.early_stopping\.patience\)", "(early-stop patience)"),
    (r"optimizer\.name=adamw with optimizer\.weight_decay=([\d.e-]+)", r"the adamw optimizer with weight decay \1"),
    (r"optimizer\.weight_decay=1e-4", f"L2 regularization at rate {min(r for r in REG_RATES if r > 0):g}"),
    (r"augmentation \(images: data\.augment\.translate=\d+\), ", ""),  # its points are no images
    (r"model\.dropout=([\d.]+)", r"dropout \1"),
    (r"training examples", "training points"),
    (r"loss\.l1=([\d.e+-]+)", r"L1 rate \1"),
    (r"loss\.l2=([\d.e+-]+)", r"L2 rate \1"),
    (r"checkpoints/best\.pt holds the weights of the best \w+ epoch", '"Save as run" keeps these weights'),
    (r"set epochs=(\d+) \(now (\d+)\)", r"set max epochs to \1 (now \2)"),
    (r"\(epochs=(\d+), now (\d+)\)", r"(max epochs \1, now \2)"),
    (r"on the probe batch", "on the training points"),
    (r"val_loss", "validation loss"),
]
_COMPILED = [(re.compile(p), r) for p, r in _REWRITES]


def in_playground_terms(text: str, *, max_epochs: int = 0) -> str:
    """A rule's message and remedy with CLI keys rewritten as the playground's controls."""
    for pattern, repl in _COMPILED:
        if not max_epochs and pattern.pattern.startswith(r"\(epochs="):
            repl = ""  # without a stop rule the playground trains on while playing: "train longer" says it all
        text = pattern.sub(repl, text)
    return re.sub(r"  +", " ", text)


# --- the verdict ------------------------------------------------------------------------------------------


def live_verdict(t: Trainer, layers: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """``{"verdict", "title", "severity", "text"}`` of the headline finding, or None before MIN_EPOCHS.

    ``layers``: per-layer samples from :func:`add_layer_row` (none: the layer rules stay quiet).
    """
    if t.epochs < MIN_EPOCHS:
        return None
    if not t.has_val:
        return {"verdict": None, "title": "No verdict", "severity": "info",
                "text": "the verdict reads validation points: set Validation above 0 %"}
    s, spec = t.settings, t.net.spec
    config = config_to_dict(to_config(t))  # the same config copy-config and save-as-run write
    # No model.init: the playground's init (TF's) is not a choice, so the rules must not suggest another; nor is
    # data.normalize (its inputs are TF's raw features): "set data.normalize=true" was shown for saturated units.
    config["model"].pop("init")
    config["data"].pop("normalize")

    # The engine's stop rules stopped it, with the engine's reasons: a maxEpochs stop is the engine's "ran out of
    # epochs" (stopped_by "epochs", so "still improving" can say: raise it).
    summary = {"stop_reason": t.stopped or "playground: training", "monitor": "val_loss", "stopped_by": t.stopped_by}
    d = diagnose(history_rows(t), layers or [], summary, config, n_classes=spec.n_outputs if spec.n_outputs > 1 else 2)
    if not d.findings:
        return {"verdict": d.verdict, "title": "No verdict yet", "severity": "info", "text": ""}
    f = d.findings[0]
    text = in_playground_terms(f"{f.message}. Try: {f.remedy}", max_epochs=s.max_epochs)
    return {"verdict": f.rule, "title": f.title, "severity": f.severity, "text": text}
