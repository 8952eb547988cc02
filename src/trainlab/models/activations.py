"""Activation functions by name: each entry of ``ACTIVATIONS`` is a zero-arg factory returning a fresh module.

A fresh module per layer (rather than one shared instance) keeps every activation a separate named
submodule, so forward hooks report ``layers.0.act`` and ``layers.1.act`` apart.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from trainlab.registry import ACTIVATIONS

__all__ = ["LEAKY_RELU_SLOPE", "make_activation"]

# Negative-side slope of leaky_relu; the He init reads it too, so that its gain matches the activation.
LEAKY_RELU_SLOPE = 0.01

_ENTRIES: list[tuple[str, Callable[[], nn.Module], str]] = [
    ("relu", nn.ReLU, "max(0, x): the default; cheap, does not saturate for x > 0"),
    ("leaky_relu", lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
     f"x for x > 0, {LEAKY_RELU_SLOPE}·x otherwise: ReLU that keeps a small gradient for x < 0"),
    ("sigmoid", nn.Sigmoid, "1 / (1 + e^-x): squashes to (0, 1); saturates, so deep stacks see vanishing gradients"),
    ("tanh", nn.Tanh, "squashes to (-1, 1), zero-centred; saturates like sigmoid"),
    ("gelu", nn.GELU, "x·Φ(x): smooth ReLU used by transformers"),
    ("linear", nn.Identity, "identity (no nonlinearity): stacked layers collapse to one linear map"),
]

for _name, _factory, _help in _ENTRIES:
    ACTIVATIONS.add(_name, _factory, _help)


def make_activation(name: str) -> nn.Module:
    """A new activation module for the registered ``name`` (ConfigError naming the choices otherwise)."""
    return ACTIVATIONS.get(name)()
