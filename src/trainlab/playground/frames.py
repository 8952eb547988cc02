"""What the page draws, as JSON: points, each network's structure, and the frames of a training network.

A frame holds, per network, the boundary over the 100×100 grid and every neuron's 10×10 thumbnail (values in
[−1, 1] quantised to one byte each, base64), the weights for the links, the history rows the page has not
seen yet, the confusion matrix, and (every ``VERDICT_EVERY`` seconds) the live verdict. The session thread
builds frames between epochs; nothing here trains.
"""
from __future__ import annotations

import base64
import math
from typing import Any

import torch

from trainlab.playground import data as pdata
from trainlab.playground.net import Network, Trainer
from trainlab.playground.state import FEATURES, feature_label
from trainlab.playground.verdict import add_layer_row, live_verdict

__all__ = ["NetHolder", "quantize", "points_json", "net_json", "net_frame", "describe", "GRID", "THUMB",
           "VERDICT_EVERY"]

GRID, THUMB = 100, 10  # boundary resolution and neuron thumbnail resolution (TF's)
VERDICT_EVERY = 0.5  # seconds between live verdicts (the rules read the whole history)
GRID_XY = torch.cat([pdata.grid(GRID), pdata.grid(THUMB)])  # (10100, 2): boundary cells, then thumbnail cells


def quantize(v: torch.Tensor) -> str:
    """Values in [−1, 1] (clamped; NaN → 0) → base64 of uint8 0..255: what the page's colour scale reads."""
    b = v.nan_to_num(0.0).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return base64.b64encode(b.contiguous().numpy().tobytes()).decode("ascii")


class NetHolder:
    """A trainer plus what drawing it needs: its feature keys, the grid's features, its per-layer samples."""

    def __init__(self, which: str, trainer: Trainer, feats: list[str]) -> None:
        self.which, self.trainer, self.feats = which, trainer, feats
        g = pdata.features(GRID_XY, feats)  # (10100, F)
        self.grid_feats = g
        # Inputs span ±6 (x) to ±36 (x1²): scale each input's picture by its largest value on the grid.
        self.input_scale = g.abs().amax(0).clamp_min(1e-6)
        self.sent = -1  # last history row sent to the page
        self.layers: list[dict[str, Any]] = []  # per-layer statistics for the verdict (verdict.add_layer_row)


def describe(net: Network) -> list[dict[str, Any]]:
    """Weights and biases of every linear layer as nested lists (rounded), for drawing the links."""
    out = []
    for lin in net.linears:
        w = lin.weight.detach()
        b = lin.bias.detach() if lin.bias is not None else torch.zeros(w.shape[0])
        out.append({"w": w.mul(1e4).round().div(1e4).tolist(), "b": b.mul(1e4).round().div(1e4).tolist()})
    return out


def points_json(p: pdata.Points) -> list[list[float]]:
    """Rows ``[x1, x2, label]`` rounded to 3 decimals (what the page draws and "Download CSV" writes)."""
    rows = torch.cat([p.xy, p.label.float().view(-1, 1)], 1)
    return rows.mul(1000).round().div(1000).tolist()


def net_json(h: NetHolder) -> dict[str, Any]:
    """A network's structure for drawing it: inputs, hidden sizes, activations, output, input thumbnails."""
    spec_ = h.trainer.net.spec
    thumbs = pdata.features(GRID_XY[GRID * GRID:], list(FEATURES))  # every input TF offers, (100, 7)
    inputs = {k: quantize(thumbs[:, i] / thumbs[:, i].abs().max().clamp_min(1e-6)) for i, k in enumerate(FEATURES)}
    return {"features": h.feats, "labels": [feature_label(f) for f in h.feats], "hidden": list(spec_.hidden),
            "activations": list(spec_.activations), "output": spec_.output, "outputs": spec_.n_outputs,
            "fast": spec_.fast, "inputThumbs": inputs}


@torch.no_grad()
def net_frame(h: NetHolder, hover: tuple[str, int, int] | None, verdict_due: bool) -> dict[str, Any]:
    """One network's part of a frame; ``hover`` = (net, layer, unit) the pointer is on, if any."""
    t = h.trainer
    outs, final = t.net.activations(h.grid_feats)  # per hidden layer (10100, width); output (10100, K)
    n = GRID * GRID
    out: dict[str, Any] = {"epoch": t.epochs, "stopped": t.stopped}
    if t.net.spec.output == "softmax" and t.net.spec.n_outputs > 2:
        conf, cls = final[:n].max(1)
        out["boundary"] = base64.b64encode(cls.to(torch.uint8).numpy().tobytes()).decode("ascii")
        out["confidence"] = quantize(conf * 2 - 1)
        out["outputThumb"] = quantize(final[n:].max(1).values * 2 - 1)
    else:
        v = final[:, 1] * 2 - 1 if t.net.spec.output == "softmax" else final[:, 0]
        out["boundary"] = quantize(v[:n])
        out["outputThumb"] = quantize(v[n:])
    out["thumbs"] = [[quantize(layer[n:, i]) for i in range(layer.shape[1])] for layer in outs]
    if hover is not None and hover[0] == h.which:
        out["hover"] = hover_image(h, hover, outs, final)
    out["weights"] = describe(t.net)
    rows = t.rows(h.sent + 1)
    h.sent = t.epochs
    # The trainer undoes an epoch that turns NaN/Inf, so rows are finite; None would stand for one that is not.
    out["rows"] = [[r[0], *(v if math.isfinite(v) else None for v in r[1:])] for r in rows]
    out["confusion"] = t.confusion()
    if verdict_due:
        if t.epochs >= 1:
            add_layer_row(h.layers, t)
        out["verdict"] = live_verdict(t, h.layers)
    return out


def hover_image(h: NetHolder, hover: tuple[str, int, int], outs: list[torch.Tensor],
                final: torch.Tensor) -> dict[str, Any] | None:
    """The hovered unit's output over the 100×100 grid: an input (layer 0), a hidden unit, or the output."""
    _, layer, i = hover
    n = GRID * GRID
    if layer == 0 and 0 <= i < len(h.feats):
        values = h.grid_feats[:n, i] / h.input_scale[i]
    elif 1 <= layer <= len(outs) and 0 <= i < outs[layer - 1].shape[1]:
        values = outs[layer - 1][:n, i]
    elif layer == len(outs) + 1:
        values = final[:n, 0] if final.shape[1] == 1 else final[:n].max(1).values * 2 - 1
    else:
        return None
    return {"layer": layer, "i": i, "image": quantize(values)}
