"""Weight-initialisation schemes by name, applied to every Linear/Conv weight from an explicit generator.

Each entry of ``INITS`` is ``scheme(layer, cfg, generator) -> None`` that overwrites ``layer.weight``
(and ``layer.bias``) in place. BatchNorm layers keep torch's weight = 1, bias = 0. Every draw comes
from the generator passed in, never the global RNG, so the same seed gives the same network anywhere.
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.models.activations import LEAKY_RELU_SLOPE
from trainlab.registry import INITS

__all__ = ["WEIGHTED_LAYERS", "init_weights"]

# The layers whose weights a scheme initialises; norms, activations and pools are left alone.
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
Layer = Union[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d]
Scheme = Callable[[Layer, ModelConfig, torch.Generator], None]


def _fan_in(weight: torch.Tensor) -> int:
    # Linear (out, in) → in; Conv (out, in, kh, kw) → in·kh·kw: the inputs summed into one output unit.
    return weight[0].numel()


def _zero_bias(layer: Layer) -> None:
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def _default(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    """Torch's own default (as in ``reset_parameters``), redrawn from the generator for reproducibility."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)  # U(±1/sqrt(fan_in))
    if layer.bias is not None:
        bound = 1 / math.sqrt(_fan_in(layer.weight))
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


@torch.no_grad()
def _normal(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    nn.init.normal_(layer.weight, 0.0, cfg.init_std, generator=generator)
    _zero_bias(layer)


@torch.no_grad()
def _uniform(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    nn.init.uniform_(layer.weight, -cfg.init_bound, cfg.init_bound, generator=generator)
    _zero_bias(layer)


@torch.no_grad()
def _zeros(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    nn.init.zeros_(layer.weight)
    _zero_bias(layer)


@torch.no_grad()
def _xavier(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    # Uniform with gain 1, as Keras's default glorot_uniform: U(±sqrt(6 / (fan_in + fan_out))).
    nn.init.xavier_uniform_(layer.weight, gain=1.0, generator=generator)
    _zero_bias(layer)


@torch.no_grad()
def _he(layer: Layer, cfg: ModelConfig, generator: torch.Generator) -> None:
    # Gain sqrt(2) keeps the variance of ReLU outputs constant through depth; leaky_relu's slope a
    # changes it to sqrt(2 / (1 + a²)). Other activations get the ReLU gain (use xavier for tanh).
    if cfg.activation == "leaky_relu":
        nn.init.kaiming_normal_(layer.weight, a=LEAKY_RELU_SLOPE, mode="fan_in",
                                nonlinearity="leaky_relu", generator=generator)
    else:
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
    _zero_bias(layer)


_ENTRIES: list[tuple[str, Scheme, str]] = [
    ("default", _default, "torch's default: weights U(±1/sqrt(fan_in)), biases likewise"),
    ("normal", _normal, "weights N(0, model.init_std), biases 0 (the classic recipe: std 0.01)"),
    ("uniform", _uniform, "weights U(-model.init_bound, model.init_bound), biases 0"),
    ("zeros", _zeros, "all weights and biases 0: every hidden unit stays identical (symmetry is never broken)"),
    ("xavier", _xavier, "Glorot uniform U(±sqrt(6/(fan_in+fan_out))), biases 0: for tanh/sigmoid/linear"),
    ("he", _he, "Kaiming normal N(0, 2/fan_in) (leaky_relu's gain in layers whose activation it is), biases 0: "
                "for ReLU"),
]

for _name, _scheme, _help in _ENTRIES:
    INITS.add(_name, _scheme, _help)


def init_weights(model: nn.Module, cfg: ModelConfig, generator: torch.Generator) -> None:
    """Initialise every Linear/Conv layer of ``model`` in place with scheme ``cfg.init``, drawing from ``generator``;
    then, with ``cfg.init_bias``, set every such bias to that constant."""
    scheme: Scheme = INITS.get(cfg.init)
    per_layer = _per_layer_configs(cfg)
    for name, module in model.named_modules():  # a fixed order, so one seed always gives the same weights
        if isinstance(module, WEIGHTED_LAYERS):
            scheme(module, per_layer.get(name, cfg), generator)
            if cfg.init_bias is not None and module.bias is not None:
                nn.init.constant_(module.bias, cfg.init_bias)


def _per_layer_configs(cfg: ModelConfig) -> dict[str, ModelConfig]:
    """With ``cfg.activations`` (mlp), each Linear's own config whose ``activation`` is its layer's, so a scheme
    whose gain depends on it (he) reads the right one; the head, which has none, the last hidden layer's."""
    if not cfg.activations:
        return {}
    own = {f"layers.{i}.linear": act for i, act in enumerate(cfg.activations)} | {"head": cfg.activations[-1]}
    return {name: cfg.model_copy(update={"activation": act, "activations": None}) for name, act in own.items()}
