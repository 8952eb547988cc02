"""A model's layers as a table: name, type, output shape and parameters of each, in the order the forward pass
calls them, with the totals — what Keras's ``model.summary()`` and Lightning's ``ModelSummary`` print, for the
built-in models and any ``nn.Module`` alike.

The shapes come from one forward pass of 2 zero examples (eval mode, no gradients, the module's modes given
back), hooked on every leaf module and on every module that holds parameters of its own, so a user's module
with a bare ``nn.Parameter`` is counted where it lives. Kept in ``summary.json["model_table"]``, shown in the
report, printed by ``trainlab train --print-model`` and returned by ``trainlab.summary``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    """One module of the table. ``output``: its output's shape per example (no batch dim), "(a), (b)" for
    several tensors, a type name for anything else, "" where the forward pass never called it; ``calls``: how
    often one forward pass called it (a module used twice shares its parameters)."""

    name: str
    kind: str
    output: str
    params: int
    trainable: int
    calls: int = 1

    @property
    def shown_output(self) -> str:
        return self.output or "not called"


@dataclass(frozen=True)
class ModelTable:
    """The rows with the model's totals (each parameter counted once, however often it is used)."""

    input_shape: tuple[int, ...]
    rows: list[LayerRow] = field(default_factory=list)
    total: int = 0
    trainable: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "rows": [asdict(r) for r in self.rows],
                "total": self.total, "trainable": self.trainable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelTable":
        return cls(tuple(data["input_shape"]), [LayerRow(**r) for r in data["rows"]], data["total"],
                   data["trainable"])

    @property
    def counts(self) -> str:
        """"203,530 parameters", with the trainable and frozen ones where some are frozen."""
        frozen = self.total - self.trainable
        return f"{self.total:,} parameters" + (f" ({self.trainable:,} trainable, {frozen:,} frozen)" if frozen else "")

    def __str__(self) -> str:
        head = ("layer", "type", "output", "parameters")
        body = [(r.name + (f" (×{r.calls})" if r.calls > 1 else ""), r.kind, r.shown_output, f"{r.params:,}")
                for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths)), row[3].rjust(widths[3])]).rstrip()

        foot = f"input {shape_text(self.input_shape)} · {self.counts}"
        return "\n".join([line(head), *(line(r) for r in body), foot])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython / Jupyter show the table, not the fields
        printer.text(str(self))


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _output_text(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return shape_text(out.shape[1:])
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return ", ".join(shape_text(o.shape[1:]) for o in out)
    return type(out).__name__


def _own_counts(module: nn.Module, seen: set[int]) -> tuple[int, int]:
    """(parameters, trainable ones) held by ``module`` itself, each tensor counted at its first holder only."""
    total = trainable = 0
    for p in module.parameters(recurse=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def model_table(model: nn.Module, input_shape: tuple[int, ...]) -> ModelTable:
    """The layer table of ``model`` for examples of ``input_shape`` (no batch dim), from one forward pass of 2
    zero examples on the module's own device. Errors of the forward pass propagate."""
    return traced_forward(model, input_shape)[1]


def traced_forward(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, ModelTable]:
    """(the output, the layer table) of one forward pass of 2 zero examples of ``input_shape`` on the module's own
    device: eval mode (BatchNorm's running statistics untouched, Dropout drawing nothing), no gradients, every
    module's mode given back. ``check_fits`` judges the output of the same pass. Errors of the forward propagate."""
    from trainlab.models import device_of

    named = [(n, m) for n, m in model.named_modules()
             if not any(True for _ in m.children()) or any(True for _ in m.parameters(recurse=False))]
    outputs: dict[int, str] = {}
    calls: dict[int, int] = {}
    order: list[int] = []

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        key = id(module)
        if key not in calls:
            order.append(key)
            outputs[key] = _output_text(out)
        calls[key] = calls.get(key, 0) + 1

    handles = [m.register_forward_hook(hook) for _, m in named]
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros((2, *input_shape), device=device_of(model)))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.train(training)
    by_id = {id(m): (n or type(model).__name__, m) for n, m in named}
    seen: set[int] = set()
    rows = []
    for key in [*order, *(k for k in by_id if k not in calls)]:  # called ones first, in call order
        name, module = by_id[key]
        params, trainable = _own_counts(module, seen)
        if key not in calls and not params:
            continue  # a parameter-free module the forward pass never used: nothing to show
        rows.append(LayerRow(name, type(module).__name__, outputs.get(key, ""), params, trainable, calls.get(key, 0)))
    unique = {id(p): p for p in model.parameters()}.values()
    return out, ModelTable(tuple(int(s) for s in input_shape), rows, sum(p.numel() for p in unique),
                           sum(p.numel() for p in unique if p.requires_grad))
