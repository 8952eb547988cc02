"""Every registered model × activation × init goes through one shared check.

The table below says which inputs a model takes; a newly registered model not named in it is tested on
flat and image input with every activation, so it cannot slip past the contract.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.models import ACTIVATIONS, INITS, MODELS, build_model, check_fits, count_parameters

FLAT, IMAGE, SEQUENCE = (2,), (1, 8, 8), (2, 12)
IMAGE_ONLY = {"cnn"}
SEQUENCE_ONLY = {"conv1d"}  # (L,) or (C, L)
BINARY_ONLY = {"perceptron"}  # one score whose sign is the class
NO_ACTIVATION = {"perceptron", "linear"}  # these ignore model.activation: one activation is enough
SMALL = dict(hidden=[5], channels=[4, 6], blocks=2, kernel=3)


def _cases() -> list:
    cases = []
    for model in MODELS.names():
        shapes = [IMAGE] if model in IMAGE_ONLY else [FLAT, SEQUENCE] if model in SEQUENCE_ONLY else [FLAT, IMAGE]
        acts = ["relu"] if model in NO_ACTIVATION else ACTIVATIONS.names()
        for shape in shapes:
            for act in acts:
                for init in INITS.names():
                    cases.append(pytest.param(model, act, init, shape, id=f"{model}-{act}-{init}-{len(shape)}d"))
    return cases


def check_model_contract(model: nn.Module, input_shape: tuple[int, ...], n_outputs: int) -> None:
    """Forward shape, finite gradients for every parameter, named head, a fitting dry run."""
    x = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(1))  # (4, *input_shape)
    model.train()
    out = model(x)
    assert out.shape == (4, n_outputs)
    (out - 1).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert count_parameters(model) > 0
    assert isinstance(model.get_submodule("head"), nn.Linear)  # hooks and the engine find the output layer
    check_fits(model, input_shape, n_outputs)


@pytest.mark.parametrize("name, activation, init, input_shape", _cases())
def test_every_model_activation_init(name: str, activation: str, init: str, input_shape: tuple, mcfg) -> None:
    n_outputs = 1 if name in BINARY_ONLY else 3
    cfg = mcfg(name=name, activation=activation, init=init, **SMALL)
    check_model_contract(build_model(cfg, input_shape, n_outputs, seed=0), input_shape, n_outputs)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_with_batchnorm_and_dropout(name: str, mcfg) -> None:
    n_outputs = 1 if name in BINARY_ONLY else 3
    cfg = mcfg(name=name, batchnorm=True, dropout=0.3, init="he", **SMALL)
    shape = SEQUENCE if name in SEQUENCE_ONLY else IMAGE
    check_model_contract(build_model(cfg, shape, n_outputs), shape, n_outputs)


def test_every_model_has_help_text() -> None:
    for name in MODELS.names():
        assert MODELS.help(name), name
