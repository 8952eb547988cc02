"""Per-layer statistics collected while training: gradient norms and activation statistics.

``LayerStats`` is a callback. After every epoch it writes one row to ``runs/<run>/layers.jsonl``:

    {"epoch": 3,
     "grad_norm": {"layers.0.linear": 0.012, "head": 0.31},        # RMS over the epoch's updates
     "activations": {"layers.0.act": {"kind": "relu", "mean": 0.4, "std": 0.7, "dead": 0.05,
                                      "saturated": 0.0, "units": 256}}}

and keeps ``activations.json`` with histograms of every probed layer at the first and the latest epoch:
``{"first": {"epoch": 1, "layers": {name: {"edges": [...], "counts": [...]}}}, "last": {...}}``.

Activations are measured by one extra forward pass in eval mode over a fixed probe batch (the first
``probe_size`` validation examples), with forward hooks on the activation modules — so user models with
activation modules work too; a model without any is probed at its Linear/Conv outputs instead.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import files
from trainlab.models.init import WEIGHTED_LAYERS
from trainlab.report.history import read_layers
from trainlab.train.callbacks import Callback, TrainState

ACTIVATION_KINDS: dict[type, str] = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Sigmoid: "sigmoid",
                                     nn.Tanh: "tanh", nn.GELU: "gelu", nn.ELU: "elu", nn.SiLU: "silu"}
# A unit is saturated where the activation's slope is < ~0.1 of its maximum: sigmoid outside [0.1, 0.9]
# (σ' = σ(1-σ) ≤ 0.09 vs 0.25 at 0), tanh with |a| > 0.9 (tanh' = 1 - a² ≤ 0.19 vs 1 at 0).
SATURATION = {"sigmoid": lambda a: (a < 0.1) | (a > 0.9), "tanh": lambda a: a.abs() > 0.9}
HIST_BINS = 40


def probe_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Named modules whose outputs are worth watching: activations, else Linear/Conv layers."""
    acts = {n: (m, ACTIVATION_KINDS[type(m)]) for n, m in model.named_modules() if type(m) in ACTIVATION_KINDS}
    if acts:
        return acts
    return {n: (m, "linear") for n, m in model.named_modules() if isinstance(m, WEIGHTED_LAYERS)}


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary per layer, histogram per layer) of the probed modules' outputs on the batch ``x``."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: outputs.__setitem__(name, out.detach()))
             for name, (m, _) in probe_modules(model).items()]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    kinds = {name: kind for name, (_, kind) in probe_modules(model).items()}
    summary, hists = {}, {}
    for name, a in outputs.items():
        a = a.float()
        units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 1 else a[None]  # (units, values)
        kind = kinds[name]
        sat = SATURATION.get(kind)
        summary[name] = {
            "kind": kind, "mean": float(a.mean()), "std": float(a.std()) if a.numel() > 1 else 0.0,
            # dead: a unit that is never positive on any probe example (ReLU-like units get no gradient)
            "dead": float((units.amax(dim=1) <= 0).float().mean()) if kind in ("relu", "leaky_relu") else 0.0,
            "saturated": float(sat(a).float().mean()) if sat else 0.0, "units": int(units.shape[0]),
        }
        lo, hi = float(a.min()), float(a.max())
        if hi <= lo:
            hi = lo + 1e-6
        counts = torch.histc(a.flatten(), bins=HIST_BINS, min=lo, max=hi)
        hists[name] = {"edges": torch.linspace(lo, hi, HIST_BINS + 1).tolist(), "counts": counts.tolist()}
    return summary, hists


class LayerStats(Callback):
    """Writes ``layers.jsonl`` (per epoch) and ``activations.json`` (histograms, first and latest epoch)."""

    name = "layer_stats"

    def __init__(self, run_dir: Path, probe: torch.Tensor, probe_size: int = 512) -> None:
        self.path, self.hist_path = Path(run_dir) / "layers.jsonl", Path(run_dir) / "activations.json"
        self.probe = probe[:probe_size]
        self.first: dict[str, Any] | None = None

    def on_train_begin(self, state: TrainState) -> None:
        # On resume keep the rows of finished epochs only (a crash may have left a later one).
        done = {h["epoch"] for h in state.history}
        rows = [r for r in read_layers(self.path.parent) if r["epoch"] in done]
        files.write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        if self.hist_path.exists() and done:
            self.first = (files.read_json(self.hist_path, missing={}) or {}).get("first")

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        summary, hists = activation_stats(state.model, self.probe)
        row = {"epoch": metrics["epoch"], "grad_norm": dict(state.layer_grad_norms), "activations": summary}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        latest = {"epoch": metrics["epoch"], "layers": hists}
        if self.first is None:
            self.first = latest
        files.write_json(self.hist_path, {"first": self.first, "last": latest})


