"""Per-layer statistics collected while training: gradient norms and activation statistics.

``LayerStats`` is a callback. After every epoch it writes one row to ``runs/<run>/layers.jsonl``:

    {"epoch": 3,
     "grad_norm": {"layers.0.linear": 0.012, "head": 0.31},        # RMS over the epoch's updates
     "activations": {"layers.0.act": {"kind": "relu", "mean": 0.4, "std": 0.7, "dead": 0.05,
                                      "saturated": 0.0, "units": 256}}}

and keeps ``activations.json`` with histograms of every probed layer at the first and the latest finished epoch
(written when the first epoch ends and when training ends):
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
    summary, hists = measure_activations(model, x)
    return summary, {name: h.as_json() for name, h in hists.items()}


class Histogram:
    """One layer's histogram of ``HIST_BINS`` equal bins from ``lo`` to ``hi``, its counts still a tensor: turned into
    lists (a host read) only when a file needs them."""

    def __init__(self, counts: torch.Tensor, lo: float, hi: float) -> None:
        self.counts, self.lo, self.hi = counts, lo, hi

    def as_json(self) -> dict[str, list[float]]:
        return {"edges": torch.linspace(self.lo, self.hi, HIST_BINS + 1).tolist(), "counts": self.counts.tolist()}


@torch.no_grad()
def measure_activations(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, Any], dict[str, Histogram]]:
    """:func:`activation_stats` with the histograms left as tensors. Every layer's numbers come back to the host in
    one read (a stack of each layer's six), not a dozen per layer: on a GPU each read waits for the device."""
    outputs: dict[str, torch.Tensor] = {}
    probed = probe_modules(model)
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: outputs.__setitem__(name, out.detach()))
             for name, (m, _) in probed.items()]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows = []  # per layer (6,): mean, std, dead, saturated, min, max
    for name, a in outputs.items():
        a = outputs[name] = a.float()
        kind = probed[name][1]
        units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 1 else a[None]  # (units, values)
        zero = a.new_zeros(())
        sat = SATURATION.get(kind)
        rows.append(torch.stack([
            a.mean(), a.std() if a.numel() > 1 else zero,
            # dead: a unit that is never positive on any probe example (ReLU-like units get no gradient)
            (units.amax(dim=1) <= 0).float().mean() if kind in ("relu", "leaky_relu") else zero,
            sat(a).float().mean() if sat else zero, a.min(), a.max()]))
    values = torch.stack(rows).tolist() if rows else []
    summary, hists = {}, {}
    for (name, a), (mean, std, dead, saturated, lo, hi) in zip(outputs.items(), values):
        units_n = a.shape[1] if a.ndim > 1 else 1
        summary[name] = {"kind": probed[name][1], "mean": mean, "std": std, "dead": dead, "saturated": saturated,
                         "units": int(units_n)}
        if hi <= lo:
            hi = lo + 1e-6
        hists[name] = Histogram(torch.histc(a.flatten(), bins=HIST_BINS, min=lo, max=hi), lo, hi)
    return summary, hists


class LayerStats(Callback):
    """Writes ``layers.jsonl`` (per epoch) and ``activations.json`` (histograms, first and latest epoch).

    ``activations.json`` is written when the first epoch ends and when training ends (a run stopped by an error or
    Ctrl-C too), with the histograms of the last epoch that finished: writing it at every epoch end had cost a toy
    net's run ~1.5 ms an epoch (a JSON text and an fsync) for a file only the report reads. A killed process's run
    keeps the first epoch's file; its resume reads ``first`` back and writes the rest at its end."""

    name = "layer_stats"

    def __init__(self, run_dir: Path, probe: torch.Tensor, probe_size: int = 512) -> None:
        self.path, self.hist_path = Path(run_dir) / "layers.jsonl", Path(run_dir) / "activations.json"
        self.probe = probe[:probe_size]
        self.first: dict[str, Any] | None = None
        self.latest: tuple[int, dict[str, Histogram]] | None = None  # (epoch, histograms) not yet in the file

    def on_train_begin(self, state: TrainState) -> None:
        # On resume keep the rows of finished epochs only (a crash may have left a later one).
        done = {h["epoch"] for h in state.history}
        rows = [r for r in read_layers(self.path.parent) if r["epoch"] in done]
        files.write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.latest = None
        if self.hist_path.exists() and done:
            self.first = (files.read_json(self.hist_path, missing={}) or {}).get("first")

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        summary, hists = measure_activations(state.model, self.probe)
        row = {"epoch": metrics["epoch"], "grad_norm": dict(state.layer_grad_norms), "activations": summary}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.latest = (metrics["epoch"], hists)
        if self.first is None:
            self.first = _entry(*self.latest)
            self._write()

    def on_train_end(self, state: TrainState) -> None:
        self._write()

    def _write(self) -> None:
        if self.latest is not None:
            files.write_json(self.hist_path, {"first": self.first, "last": _entry(*self.latest)})
            self.latest = None


def _entry(epoch: int, hists: dict[str, Histogram]) -> dict[str, Any]:
    return {"epoch": epoch, "layers": {name: h.as_json() for name, h in hists.items()}}
