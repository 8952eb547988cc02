"""Init schemes: the statistics each promises, determinism from the seed, and the global RNG left alone."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import INITS, LEAKY_RELU_SLOPE, build_model, init_weights

FAN_IN, FAN_OUT = 784, 256  # the first layer of the default recipe: a 256×784 weight


def first_layer(mcfg, seed: int = 0, **changes) -> nn.Linear:
    model = build_model(mcfg(hidden=[FAN_OUT], **changes), (1, 28, 28), 10, seed=seed)
    return model.get_submodule("layers.0.linear")


def weights_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_normal_has_the_configured_std_and_zero_bias(mcfg) -> None:
    layer = first_layer(mcfg, init="normal", init_std=0.02)
    assert layer.weight.shape == (FAN_OUT, FAN_IN)
    assert layer.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert abs(layer.weight.mean().item()) < 0.002
    assert torch.count_nonzero(layer.bias) == 0


def test_uniform_fills_the_configured_interval(mcfg) -> None:
    layer = first_layer(mcfg, init="uniform", init_bound=0.1)
    w = layer.weight
    assert w.abs().max().item() <= 0.1
    assert w.abs().max().item() > 0.099
    assert w.std().item() == pytest.approx(0.1 / math.sqrt(3), rel=0.1)  # std of U(-b, b) is b/√3
    assert torch.count_nonzero(layer.bias) == 0


def test_zeros_zeroes_every_weight_and_bias(mcfg) -> None:
    model = build_model(mcfg(name="cnn", channels=[4], hidden=[8], init="zeros"), (1, 8, 8), 3)
    for name, p in model.named_parameters():
        assert torch.count_nonzero(p) == 0, name
    assert "identical" in INITS.help("zeros")


def test_he_std_is_sqrt_2_over_fan_in(mcfg) -> None:
    layer = first_layer(mcfg, init="he")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / FAN_IN), rel=0.1)
    assert torch.count_nonzero(layer.bias) == 0


def test_he_counts_the_receptive_field_in_conv_fan_in(mcfg) -> None:
    model = build_model(mcfg(name="cnn", channels=[64], kernel=5, init="he"), (16, 8, 8), 3)
    conv = model.get_submodule("features.0.conv")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 5 * 5)), rel=0.1)


@pytest.mark.parametrize("activation, a, nonlinearity", [("relu", 0.0, "relu"),
                                                         ("leaky_relu", LEAKY_RELU_SLOPE, "leaky_relu")])
def test_he_uses_the_gain_of_the_activation(mcfg, activation: str, a: float, nonlinearity: str) -> None:
    # The slope's effect on the std (1 + a²) is too small to see statistically, so compare the exact draw.
    layer = first_layer(mcfg, seed=5, init="he", activation=activation)
    expected = torch.empty(FAN_OUT, FAN_IN)
    nn.init.kaiming_normal_(expected, a=a, nonlinearity=nonlinearity, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(layer.weight.detach(), expected)


def test_xavier_fills_the_glorot_uniform_interval(mcfg) -> None:
    layer = first_layer(mcfg, init="xavier")
    bound = math.sqrt(6 / (FAN_IN + FAN_OUT))
    assert layer.weight.abs().max().item() <= bound
    assert layer.weight.abs().max().item() > 0.99 * bound
    assert torch.count_nonzero(layer.bias) == 0


def test_default_is_torch_default_drawn_from_the_seed(mcfg) -> None:
    layer = first_layer(mcfg, init="default")
    bound = 1 / math.sqrt(FAN_IN)
    assert layer.weight.abs().max().item() <= bound and layer.weight.abs().max().item() > 0.99 * bound
    assert layer.bias.abs().max().item() <= bound and torch.count_nonzero(layer.bias) == FAN_OUT


def test_batchnorm_keeps_weight_one_and_bias_zero(mcfg) -> None:
    model = build_model(mcfg(hidden=[8], batchnorm=True, init="normal"), (4,), 2)
    norm = model.get_submodule("layers.0.norm")
    assert torch.equal(norm.weight, torch.ones(8)) and torch.equal(norm.bias, torch.zeros(8))


@pytest.mark.parametrize("init", INITS.names())
def test_same_seed_same_weights_different_seed_different(mcfg, init: str) -> None:
    cfg = mcfg(name="cnn", channels=[4], hidden=[8], init=init)
    a = weights_of(build_model(cfg, (1, 8, 8), 3, seed=1))
    b = weights_of(build_model(cfg, (1, 8, 8), 3, seed=1))
    c = weights_of(build_model(cfg, (1, 8, 8), 3, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    if init != "zeros":
        assert not all(torch.equal(x, z) for x, z in zip(a, c))


def test_weights_ignore_the_global_rng_and_leave_it_alone(mcfg) -> None:
    cfg = mcfg(hidden=[16], init="default")
    torch.manual_seed(1)
    a = weights_of(build_model(cfg, (4,), 2, seed=0))
    torch.manual_seed(2)
    b = weights_of(build_model(cfg, (4,), 2, seed=0))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    build_model(cfg, (4,), 2, seed=0)
    assert torch.equal(torch.rand(5), expected)  # building did not advance the caller's random stream


def test_init_weights_draws_only_from_the_generator(mcfg) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    init_weights(model, mcfg(init="normal", init_std=0.5), torch.Generator().manual_seed(7))
    expected = torch.empty(4, 3).normal_(0, 0.5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(model[0].weight.detach(), expected)


def test_unknown_init_is_a_config_error(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"model\.init must be one of .*Did you mean 'xavier'"):
        build_model(mcfg(init="xavire"), (2,), 2)


def test_every_init_has_help_text() -> None:
    for name in INITS.names():
        assert INITS.help(name) and "\n" not in INITS.help(name), name


def test_init_bias_sets_every_bias_after_the_scheme():
    from trainlab.config import ModelConfig
    from trainlab.models import build_model

    model = build_model(ModelConfig(hidden=[4, 2], activation="tanh", init="uniform", init_bound=0.5, init_bias=0.1),
                        (2,), 1, seed=0)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3 and all(torch.all(m.bias == 0.1) for m in linears)
    weights = torch.cat([m.weight.flatten() for m in linears])  # the scheme's U(±0.5) draws are kept
    assert weights.abs().max() <= 0.5 and weights.std() > 0.15
