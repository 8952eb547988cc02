"""Per-layer activations of the mlp (``model.activations``): the built layers, init gains, config errors,
the YAML round trip and a short run."""
from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from trainlab.config import ModelConfig, config_to_yaml, resolve_config, validate_config
from trainlab.errors import ConfigError
from trainlab.models import LEAKY_RELU_SLOPE, build_model


def act_types(model: nn.Module) -> list[type]:
    return [type(block.act) for block in model.layers]


def test_mlp_has_the_requested_activation_in_each_layer(mcfg) -> None:
    model = build_model(mcfg(hidden=[6, 5, 4], activation="relu", activations=["tanh", "sigmoid", "gelu"]), (3,), 2)
    assert act_types(model) == [nn.Tanh, nn.Sigmoid, nn.GELU]
    assert model(torch.zeros(2, 3)).shape == (2, 2)


def test_per_layer_mlp_has_the_same_parameter_names_and_shapes(mcfg) -> None:
    # so a checkpoint of a one-activation run loads into the per-layer model and back
    one = build_model(mcfg(hidden=[6, 5], activation="tanh"), (3,), 2)
    mixed = build_model(mcfg(hidden=[6, 5], activation="tanh", activations=["relu", "tanh"]), (3,), 2)
    assert {k: v.shape for k, v in one.state_dict().items()} == {k: v.shape for k, v in mixed.state_dict().items()}
    mixed.load_state_dict(one.state_dict())
    assert [n for n, _ in one.named_modules()] == [n for n, _ in mixed.named_modules()]


def test_without_activations_every_layer_uses_activation(mcfg) -> None:
    assert act_types(build_model(mcfg(hidden=[4, 4], activation="sigmoid"), (3,), 2)) == [nn.Sigmoid, nn.Sigmoid]
    same = build_model(mcfg(hidden=[4, 4], activation="sigmoid", activations=["sigmoid", "sigmoid"]), (3,), 2, seed=3)
    plain = build_model(mcfg(hidden=[4, 4], activation="sigmoid"), (3,), 2, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), plain.state_dict().values()))


def test_he_init_reads_each_layers_own_activation(mcfg) -> None:
    # the exact draws: layer 0 with relu's gain, layer 1 and the head (it reads layer 1) with leaky_relu's
    cfg = mcfg(hidden=[64, 32], activation="relu", activations=["relu", "leaky_relu"], init="he")
    model = build_model(cfg, (16,), 3, seed=7)
    g = torch.Generator().manual_seed(7)
    for name, shape, a, nonlinearity in [("layers.0.linear", (64, 16), 0.0, "relu"),
                                         ("layers.1.linear", (32, 64), LEAKY_RELU_SLOPE, "leaky_relu"),
                                         ("head", (3, 32), LEAKY_RELU_SLOPE, "leaky_relu")]:
        expected = torch.empty(shape)
        nn.init.kaiming_normal_(expected, a=a, nonlinearity=nonlinearity, generator=g)
        torch.testing.assert_close(model.get_submodule(name).weight.detach(), expected)


def test_wrong_number_of_activations_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        validate_config({"model": {"hidden": [8, 8, 8], "activations": ["relu", "tanh"]}})
    assert str(exc.value) == ("model.activations must have one name per hidden layer (3). Got ['relu', 'tanh']. "
                              "List 3 names or leave it out.")


def test_unknown_activation_names_the_choices_and_a_close_match() -> None:
    with pytest.raises(ConfigError, match=r"^model\.activations\[1\] must be one of relu, .*\. Got 'tanhh'\. "
                                          r"Did you mean 'tanh'\?$"):
        validate_config({"model": {"hidden": [8, 8], "activations": ["relu", "tanhh"]}})


@pytest.mark.parametrize("name", ["cnn", "linear"])
def test_activations_are_refused_for_models_other_than_mlp(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^model\.activations must be left out unless model\.name is mlp\. "
                                          rf"Got model\.name='{name}'\. Remove model\.activations, or set "
                                          r"model\.name=mlp\.$"):
        validate_config({"model": {"name": name, "hidden": [8], "activations": ["relu"]}})


def test_activations_round_trip_through_yaml_and_set() -> None:
    cfg = validate_config({"model": {"hidden": [8, 4], "activations": ["relu", "tanh"]}})
    again = validate_config(yaml.safe_load(config_to_yaml(cfg)))
    assert again == cfg and again.model.activations == ["relu", "tanh"]
    assert again.model.hidden_activations() == ["relu", "tanh"]
    from_set = resolve_config(overrides=["model.hidden=[8, 4]", "model.activations=relu,tanh"])
    assert from_set.model == cfg.model
    assert validate_config({}).model.activations is None
    assert ModelConfig(hidden=[3, 3], activation="gelu").hidden_activations() == ["gelu", "gelu"]


def test_short_run_on_circle_with_per_layer_activations(make_cfg) -> None:
    from trainlab.train.run import read_run_config, train

    cfg = make_cfg(**{"model.hidden": [8, 8], "model.activations": ["relu", "tanh"], "epochs": 3})
    result = train(cfg, verbose=False)
    assert act_types(result.model) == [nn.ReLU, nn.Tanh]
    assert read_run_config(result.run_dir).model.activations == ["relu", "tanh"]
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    assert len(result.history) == 3
