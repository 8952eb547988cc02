"""The config tree: defaults → YAML → --set, every problem collected, one line each, names from registries."""
from __future__ import annotations

import pytest

from trainlab.config import ALL_KEYS, TrainConfig, config_to_dict, parse_override, replace, resolve_config
from trainlab.errors import ConfigError
from trainlab.registry import OPTIMIZERS


def test_defaults_are_the_classic_recipe():
    c = TrainConfig()
    assert (c.data.name, c.model.name, c.model.hidden, c.model.activation) == ("fashion-mnist", "mlp", [256], "relu")
    assert (c.model.init, c.model.init_std, c.optimizer.name, c.optimizer.lr) == ("normal", 0.01, "sgd", 0.1)
    assert (c.batch_size, c.epochs, c.loss.name) == (256, 10, "auto")


def test_order_defaults_then_yaml_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\noptimizer:\n  lr: 0.5\n  name: adam\n")
    cfg = resolve_config(path, ["optimizer.lr=0.05", "model.hidden=[128, 64]"])
    assert (cfg.epochs, cfg.optimizer.lr, cfg.optimizer.name, cfg.model.hidden) == (5, 0.05, "adam", [128, 64])
    assert cfg.batch_size == 256  # untouched default


def test_all_problems_are_reported_together_one_line_each():
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=["optimizer.lr=-1", "batch_size=0", "model.hiden=[3]", "model.kernel=4"])
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert any(line.startswith("optimizer.lr must be > 0") for line in lines)
    assert any("Did you mean 'model.hidden'" in line for line in lines)
    assert any(line.startswith("model.kernel must be an odd number") for line in lines)


def test_unknown_yaml_key_gets_did_you_mean(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"optimizer.lrr is not a config key. Did you mean 'optimizer.lr'\?"):
        resolve_config(path)


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match=r"--config must be valid YAML.*line"):
        resolve_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve_config(path)


def test_names_are_checked_against_the_registries():
    for name in OPTIMIZERS.names():
        assert resolve_config(overrides={"optimizer.name": name}).optimizer.name == name
    with pytest.raises(ConfigError, match=r"optimizer.name must be one of sgd, momentum"):
        resolve_config(overrides={"optimizer.name": "lbfgs"})


def test_override_parsing():
    assert parse_override("model.hidden=[1,2]") == ("model.hidden", [1, 2])
    assert parse_override("grad_clip=null") == ("grad_clip", None)
    assert parse_override("data.augment.flip=true") == ("data.augment.flip", True)
    with pytest.raises(ConfigError, match="--set must be key=value"):
        parse_override("epochs")


def test_replace_and_roundtrip():
    cfg = replace(TrainConfig(), **{"optimizer.lr": 0.3, "epochs": 2})
    assert (cfg.optimizer.lr, cfg.epochs) == (0.3, 2)
    assert resolve_config(base=config_to_dict(cfg)) == cfg
    assert "stop.early_stopping.patience" in ALL_KEYS


def test_test_path_is_for_csv_data_only():
    with pytest.raises(ConfigError, match=r"^data\.test_path must be left out unless data\.name is csv\. "
                                          r"Got data\.name='circle'\. Remove data\.test_path"):
        resolve_config(overrides={"data.name": "circle", "data.test_path": "test.csv"})
    assert resolve_config(overrides={"data.name": "csv", "data.path": "a.csv", "data.test_path": "b.csv"}).data.test_path == "b.csv"


def test_data_features_round_trip_and_are_reported_with_other_problems():
    cfg = resolve_config(overrides={"data.name": "spiral", "data.features": ["x1", "x2", "sin_x1"]})
    assert resolve_config(base=config_to_dict(cfg)).data.features == ["x1", "x2", "sin_x1"]  # config.yaml → same run
    assert config_to_dict(TrainConfig())["data"]["features"] is None  # default: the data's own columns
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides={"data.name": "circle", "data.features": ["x1", "x3"], "optimizer.lr": -1})
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and any(line.startswith("data.features[1] must be one of x1, x2,") and "Got 'x3'" in line
                                   for line in lines)
    assert any(line.startswith("optimizer.lr must be > 0") for line in lines)
