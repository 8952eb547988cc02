"""Models by name: perceptron, linear, mlp, cnn, resnet; activations and init schemes by name.

``build_model(cfg, input_shape, n_outputs, seed)`` is the one entry point the engine uses: it looks the
builder up in ``MODELS`` and initialises the weights with ``cfg.init`` from a generator seeded with
``seed``, so the same config and seed always give the same network and the global RNG is left alone.
"""
from __future__ import annotations

import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError, DataError, problem
from trainlab.models import activations, init, resnet, zoo  # noqa: F401  (register the pieces)
from trainlab.models.activations import LEAKY_RELU_SLOPE, make_activation
from trainlab.models.init import init_weights
from trainlab.models.summary import LayerRow, ModelTable, model_table, traced_forward
from trainlab.registry import ACTIVATIONS, INITS, MODELS

__all__ = [
    "build_model", "count_parameters", "check_fits", "check_trainable", "init_weights", "make_activation", "uncompiled",
    "has_lazy_parameters", "model_table", "ModelTable", "LayerRow",
    "LEAKY_RELU_SLOPE", "MODELS", "ACTIVATIONS", "INITS",
]


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int, seed: int = 0) -> nn.Module:
    """The ``cfg.name`` model for examples of ``input_shape`` (no batch dim) → (B, n_outputs).

    Weights come from ``cfg.init`` drawn from a generator seeded with ``seed``.
    """
    _check_shapes(input_shape, n_outputs)
    builder = MODELS.get(cfg.name)
    # Constructing torch layers draws their default init from the global RNG; fork it so building a
    # model never shifts the caller's random stream. The weights themselves come from the generator.
    with torch.random.fork_rng(devices=[]):
        model = builder(cfg, tuple(input_shape), n_outputs)
    init_weights(model, cfg, torch.Generator().manual_seed(seed))
    return model


def _check_shapes(input_shape: tuple[int, ...], n_outputs: int) -> None:
    if not input_shape or any(not isinstance(s, int) or s < 1 for s in input_shape):
        raise ConfigError(problem("input_shape", "a non-empty tuple of sizes >= 1 (no batch dimension)",
                                  input_shape, "Pass e.g. (1, 28, 28) for images or (2,) for 2-D points"))
    if not isinstance(n_outputs, int) or n_outputs < 1:
        raise ConfigError(problem("n_outputs", "a whole number >= 1", n_outputs,
                                  "Pass the number of classes, 1 for a binary score, or the number of targets"))


def uncompiled(model: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """(the module, the ``torch.compile`` wrapper it came in, or None).

    A compiled module trains through its compiled code; checkpoints, hooks, evaluation, the report and export use
    the module it wraps, whose parameters are the very same tensors, so a checkpoint's keys are the module's own
    (no ``_orig_mod.`` prefix) and load into it compiled or not. Recognised without importing torch._dynamo."""
    inner = getattr(model, "_orig_mod", None)
    if isinstance(inner, nn.Module) and type(model).__module__.startswith("torch._dynamo"):
        return inner, model
    return model, None


def has_lazy_parameters(model: nn.Module) -> bool:
    """Whether ``model`` holds parameters whose shape its first forward pass decides (``nn.LazyLinear``, …)."""
    return any(nn.parameter.is_lazy(p) for p in model.parameters())


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_fits(model: nn.Module, input_shape: tuple[int, ...], n_outputs: int, field_hint: str = "model",
               custom: bool = False, class_names: list[str] | None = None) -> ModelTable:
    """Dry-run a batch of 2 zero examples; a one-line ConfigError naming both shapes if ``model`` does not fit, else
    the layer table that pass traced (``models.summary.traced_forward``).

    ``custom``: the model is the user's own module, so the fix names the module, not ``build_model``.
    ``class_names``: the data's labels; an output one class short of integer labels such as 0, 1, 5 is then
    blamed on the labels (a stray label makes a class the module was not built for), not on the module."""
    batch_shape = (2, *input_shape)
    name = type(model).__name__
    try:  # on the module's own device: a user's module may already sit on a GPU (trained before, or .cuda())
        out, table = traced_forward(model, input_shape)  # out: (2, n_outputs) when it fits
    except (RuntimeError, ValueError) as exc:  # torch reports shape mismatches as either
        raise ConfigError(
            f"{field_hint} must take the data's examples of shape {tuple(input_shape)}. Got an error on a batch of "
            f"input shape {batch_shape}: {_first_line(exc)}. " + (
                f"Make your module take examples of shape {tuple(input_shape)} (its first layer's input size must "
                "match the data)." if custom else "Make the model's input size match the data, e.g. rebuild it with "
                f"build_model(cfg, input_shape={tuple(input_shape)}, n_outputs={n_outputs}).")) from None
    except Exception as exc:  # noqa: BLE001 — any error of a user's forward is named with its module, not re-raised raw
        raise ConfigError(f"{field_hint} {name}.forward must run on a batch of input shape {batch_shape}. Got "
                          f"{type(exc).__name__}: {_first_line(exc)}. Fix {name}.forward (call it on "
                          f"torch.zeros{batch_shape} to see the traceback).") from None
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != (2, n_outputs):
        stray = _stray_labels(got, n_outputs, class_names) if custom else None
        if stray:
            width = got[1]  # type: ignore[index]
            raise DataError(f"labels must be the {width} classes 0..{width - 1} that {name} outputs. Got the labels "
                            f"{class_names}: {', '.join(stray)} {'is' if len(stray) == 1 else 'are'} outside them. "
                            f"Fix or drop the rows labelled {', '.join(stray)}, or make {name}'s last layer output "
                            f"{n_outputs} values per example.")
        what = f"{n_outputs} classes" if n_outputs > 1 else "1 output (a binary score or one regression target)"
        fix = (f"Make your module's last layer output {n_outputs} value(s) per example" if custom
               else f"Rebuild the model with n_outputs={n_outputs} for this data")
        if custom and n_outputs == 2 and got == (2, 1):  # a Keras-style binary classifier: one score per example
            fix += ", or set loss='bce' for its one score (a logit; from_logits=False after a Sigmoid)"
        raise ConfigError(f"{field_hint} output must be (batch, {n_outputs}) for {what}. Got {got}. {fix}.")
    return table


def _stray_labels(got: object, n_outputs: int, class_names: list[str] | None) -> list[str]:
    """Integer labels at or beyond a too-narrow output's width (``5`` among ``0, 1`` for 2 outputs), else []."""
    if not class_names or len(class_names) != n_outputs or not isinstance(got, tuple) or len(got) != 2:
        return []
    width = got[1]
    if not isinstance(width, int) or not 2 <= width < n_outputs:
        return []
    try:
        labels = [int(c) for c in class_names]
    except ValueError:
        return []
    inside = [c for c in labels if 0 <= c < width]
    return [str(c) for c in labels if not 0 <= c < width] if len(inside) == width else []


def device_of(model: nn.Module) -> torch.device:
    """Where ``model`` lives: its first parameter's device, else its first buffer's, else the CPU."""
    return next(iter(model.parameters()), next(iter(model.buffers()), torch.empty(0))).device


def check_trainable(model: nn.Module, custom: bool = False) -> None:
    """ConfigError when ``model`` has no parameter to train (an optimizer would get an empty list) or starts from
    NaN/Inf weights."""
    params = list(model.parameters())
    bad = [(n, p) for n, p in model.named_parameters() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:  # NaN/Inf from a diverged run, or a bad init: every step would be NaN, and the probes' histograms fail
        name, p = bad[0]
        count = int((~torch.isfinite(p)).sum())
        more = f" (and {len(bad) - 1} more parameter(s))" if len(bad) > 1 else ""
        raise ConfigError(f"model must start from finite weights. Got {count} NaN/Inf of the {p.numel()} values of "
                          f"{name}{more}. " + ("Pass a freshly built module, or re-initialise it "
                                               "(reset_parameters())." if custom else "Rebuild the model."))
    other = [(n, p.dtype) for n, p in model.named_parameters() if p.is_floating_point() and p.dtype != torch.float32]
    if other:  # the data and every batch are float32: the first matmul would fail on "Float and Double"
        name, dtype = other[0]
        raise ConfigError(f"model weights must be float32, as the data trainlab feeds them. Got {name} as "
                          f"{str(dtype).removeprefix('torch.')}. " + ("Call model.float() before passing it (or drop "
                                                                      ".double() / .half())." if custom else "Rebuild the model."))
    if any(p.requires_grad for p in params):
        return
    got = f"{type(model).__name__} with " + ("every parameter frozen" if params else "no parameters")
    fix = ("Unfreeze some (requires_grad=True)" if params else
           "Give it a layer with weights, e.g. nn.Linear") if custom else "Use a model with weights"
    raise ConfigError(f"model must be a module with trainable parameters. Got {got}. {fix}.")


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
