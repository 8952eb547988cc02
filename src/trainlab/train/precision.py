"""Mixed precision for the training steps (``speed.precision``), as Lightning's ``precision="bf16-mixed"`` /
``"16-mixed"`` and Keras's ``mixed_bfloat16`` / ``mixed_float16``: the forward pass and the loss of each update run
under ``torch.autocast``, so a GPU's tensor cores do the matrix products; the weights, their gradients and the
optimizer's update stay float32.

* ``bf16`` (Ampere or newer): bfloat16 has float32's range, so nothing else changes.
* ``fp16`` (any CUDA GPU: a T4, a V100): float16 tops out at 65504 and loses gradients below ~6e-8, so the loss
  is scaled up before the backward pass and the gradients scaled back before the update (``torch.amp.GradScaler``).
  An update whose scaled gradients overflowed is skipped and the scale halved; after 2000 good ones it doubles.
  Deciding that reads one number back to the host each update, so fp16 steps never run as a CUDA graph. A run's
  first few updates are usually skipped while the scale finds its level: ``skipped_updates`` in metrics.jsonl
  counts them, and an epoch with no update left is a TrainingError that says so.

Only the updates change. Validation, the test, the report's pictures and predictions run in float32 on the same
float32 weights, so the logged validation loss is the one ``trainlab report`` and ``trainlab evaluate`` find again.
On a CPU without bfloat16 / float16 instructions (most of them) the steps are slower than in float32, not faster
(the classic MLP on an AVX2 CPU: ~4× in bf16, ~14× in fp16), and the run's first console line says so.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from trainlab.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # speed.precision → the autocast dtype; fp32: no autocast


def check(precision: str, device: torch.device) -> None:
    """A ConfigError where this device cannot compute in ``precision`` (before anything is written)."""
    if precision == "fp32":
        return
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"speed.precision must be fp32 on device {device.type}. Got {precision!r}. "
                          "Use speed.precision=fp32, or train on cuda or cpu.")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise ConfigError(f"speed.precision must be fp16 or fp32 on a GPU without bfloat16 (older than Ampere). Got "
                          f"{precision!r} on {name}. Use speed.precision=fp16 (with loss scaling) or fp32.")


# The instructions that compute in each dtype, as Linux names them in /proc/cpuinfo (x86 "flags", Arm "Features")
NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16", "bf16"), "fp16": ("avx512_fp16", "amx_fp16", "fphp")}
_NAMES = {"bf16": "bfloat16", "fp16": "float16"}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str] | None:
    """This CPU's instruction-set flags from /proc/cpuinfo; None where there is none to read (macOS, Windows)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags or None


def emulated_note(precision: str, device: torch.device) -> str | None:
    """A line for the console where ``precision`` runs on a CPU without instructions for it: autocast then
    converts every product, and the steps run slower than in float32 (the classic MLP on an AVX2 CPU: ~4× slower in
    bf16). None where it has them, on a GPU, for fp32, or where the flags cannot be read."""
    if precision == "fp32" or device.type != "cpu":
        return None
    flags = cpu_flags()
    if flags is None or flags & set(NATIVE_CPU_FLAGS[precision]):
        return None
    return (f"note: this CPU has no {_NAMES[precision]} instructions ({' or '.join(NATIVE_CPU_FLAGS[precision])}): "
            f"speed.precision={precision} is emulated here and usually slower than fp32, the faster choice on it")


def autocast(precision: str, device: torch.device, *, in_graph: bool = False) -> ContextManager:
    """The context a training step's forward pass and loss run in: autocast to ``precision``'s dtype, or nothing
    for fp32. ``in_graph``: inside a CUDA graph capture, whose casts of the weights must be redone every replay
    (autocast's cache would keep the first step's bfloat16 copies of weights the update then changes)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision], cache_enabled=not in_graph)


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler of an fp16 run (its state goes into every checkpoint); None for fp32 and bf16."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def step_unless_overflow(opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, gnorm: torch.Tensor) -> bool:
    """After ``scaler.unscale_(opt)``: the update where the gradients are finite (``gnorm``, their global norm, is),
    else none; then the scale moves (``GradScaler.step`` + ``update``, with trainlab's ``optim.step``, which does
    not import torch._dynamo). Returns whether the update was applied. One host read."""
    from trainlab.train import optim

    applied = bool(torch.isfinite(gnorm))
    if applied:
        optim.step(opt)
    scaler.update()
    return applied
