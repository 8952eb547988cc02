"""Mixed precision for the training steps (``speed.precision``), as Lightning's ``precision="bf16-mixed"`` and
Keras's ``mixed_bfloat16``: the forward pass and the loss of each update run under ``torch.autocast`` in bfloat16,
so a GPU's tensor cores (Ampere or newer) do the matrix products; the weights, their gradients and the optimizer's
update stay float32. bfloat16 has float32's range, so no loss scaling is needed (float16 would need a scaler that
reads every update's overflow check back to the host).

Only the updates change. Validation, the test, the report's pictures and predictions run in float32 on the same
float32 weights, so the logged validation loss is the one ``trainlab report`` and ``trainlab evaluate`` find again.
On a CPU without bfloat16 units (most of them) the steps are slower than in float32, not faster.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from trainlab.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16}  # speed.precision → the autocast dtype; fp32: no autocast


def check(precision: str, device: torch.device) -> None:
    """A ConfigError where this device cannot compute in ``precision`` (before anything is written)."""
    if precision == "fp32":
        return
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"speed.precision must be fp32 on device {device.type}. Got {precision!r}. "
                          "Use speed.precision=fp32, or train on cuda or cpu.")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise ConfigError(f"speed.precision=bf16 needs a GPU that computes in bfloat16 (Ampere or newer). Got "
                          f"{precision!r} on {name}. Use speed.precision=fp32.")


def autocast(precision: str, device: torch.device, *, in_graph: bool = False) -> ContextManager:
    """The context a training step's forward pass and loss run in: autocast to ``precision``'s dtype, or nothing
    for fp32. ``in_graph``: inside a CUDA graph capture, whose casts of the weights must be redone every replay
    (autocast's cache would keep the first step's bfloat16 copies of weights the update then changes)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision], cache_enabled=not in_graph)
