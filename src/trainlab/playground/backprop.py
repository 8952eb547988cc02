"""The playground's fast path: hand-written gradients for the plain networks TF Playground draws.

For networks without BatchNorm or dropout whose activations have a known derivative, the mean gradient of
the loss over a batch is three matmuls per layer with no autograd graph — ~3× faster than autograd at these
sizes (10 points × a few units, where every op is overhead). tests/playground/test_logic.py compares it
with autograd for every activation and output kind.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models import LEAKY_RELU_SLOPE

__all__ = ["FORWARD", "DERIVATIVES", "manual_gradients"]

Tensor = torch.Tensor

# Hand-written forward and derivative (from z and a = act(z)) of the activations the fast path knows;
# each must equal the registry's module (test_logic.py checks them against autograd).
FORWARD: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_RELU_SLOPE), "linear": lambda z: z,
}
DERIVATIVES: dict[str, Callable[[Tensor, Tensor], Tensor] | None] = {
    "tanh": lambda z, a: torch.addcmul(torch.ones_like(a), a, a, value=-1.0),  # 1 − a²
    "sigmoid": lambda z, a: a * (1 - a),
    "relu": lambda z, a: (z > 0).to(a.dtype),  # TF: 0 at z ≤ 0
    "leaky_relu": lambda z, a: torch.where(z > 0, 1.0, LEAKY_RELU_SLOPE).to(a.dtype),
    "linear": None,  # derivative 1: nothing to multiply
}


def manual_gradients(linears: Sequence[nn.Linear], activations: Sequence[str], output: str, xb: Tensor,
                     yb: Tensor) -> list[Tensor]:
    """Mean gradients over the batch (B, F) for weight, bias of every linear layer, first layer first.

    ``output``: "tanh" (TF's square loss on tanh), "linear" (square loss) or "softmax" (cross-entropy on
    the scores, ``yb`` class ids); else ``yb`` is (B, 1).
    """
    acts, zs = [xb], []
    with torch.no_grad():
        h = xb
        for lin, name in zip(linears, activations):
            z = torch.addmm(lin.bias, h, lin.weight.t())  # (B, width)
            h = FORWARD[name](z)
            zs.append(z)
            acts.append(h)
        head = linears[-1]
        z = torch.addmm(head.bias, h, head.weight.t())  # (B, n_outputs)
        inv_b = 1.0 / len(xb)
        if output == "softmax":  # d CE / dz = softmax − one-hot
            g = z.softmax(1)
            g[torch.arange(len(yb)), yb] -= 1.0
        elif output == "tanh":  # d 0.5(tanh z − y)² / dz = (o − y)(1 − o²)
            o = torch.tanh(z)
            g = (o - yb).mul_(torch.addcmul(torch.ones_like(o), o, o, value=-1.0))
        else:
            g = z - yb
        g.mul_(inv_b)
        grads: list[Tensor] = []
        for i in range(len(linears) - 1, -1, -1):
            lin = linears[i]
            grads += [g.sum(0), g.t().mm(acts[i])]  # bias (out,), weight (out, in)
            if i:
                g = g.mm(lin.weight)
                der = DERIVATIVES[activations[i - 1]]
                if der is not None:
                    g.mul_(der(zs[i - 1], acts[i]))
    grads.reverse()  # → weight, bias per layer, first layer first: the order of module.parameters()
    return grads
