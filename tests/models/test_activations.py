"""Activations: each name gives a fresh module computing the documented function."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError
from trainlab.models import ACTIVATIONS, make_activation

X = torch.linspace(-4, 4, 81)
EXPECTED = {
    "relu": torch.clamp(X, min=0),
    "leaky_relu": torch.where(X > 0, X, 0.01 * X),
    "sigmoid": 1 / (1 + torch.exp(-X)),
    "tanh": (torch.exp(X) - torch.exp(-X)) / (torch.exp(X) + torch.exp(-X)),
    "gelu": X * 0.5 * (1 + torch.erf(X / 2 ** 0.5)),
    "linear": X,
}


def test_registered_names() -> None:
    assert set(ACTIVATIONS.names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activation_computes_its_formula(name: str) -> None:
    torch.testing.assert_close(make_activation(name)(X), EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activation_gradient_matches_autograd_of_the_formula(name: str) -> None:
    # micrograd-style: the module and the hand-written formula agree on gradients too.
    x1, x2 = X.clone().requires_grad_(), X.clone().requires_grad_()
    make_activation(name)(x1).sum().backward()
    formula = {"relu": F.relu, "leaky_relu": lambda t: torch.where(t > 0, t, 0.01 * t), "sigmoid": torch.sigmoid,
               "tanh": torch.tanh, "gelu": lambda t: t * 0.5 * (1 + torch.erf(t / 2 ** 0.5)), "linear": lambda t: t}
    formula[name](x2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_each_call_gives_a_fresh_module() -> None:
    for name in ACTIVATIONS.names():
        assert make_activation(name) is not make_activation(name), name
        assert ACTIVATIONS.help(name) and "\n" not in ACTIVATIONS.help(name), name


def test_unknown_activation_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"^model\.activation must be one of .*Did you mean 'relu'\?$"):
        make_activation("rleu")
