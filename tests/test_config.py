"""The config tree: defaults → YAML → --set, every problem collected, one line each, names from registries."""
from __future__ import annotations

import pytest
import torch

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


@pytest.mark.parametrize("key, hint", [
    ("lr", "Did you mean 'optimizer.lr'?"),  # the last part of one key: its section named
    ("model.lr", "Did you mean 'optimizer.lr'?"),  # a key put in the wrong section
    ("moment", "Did you mean 'optimizer.momentum'?"),  # a close last part, not a close whole (model.init, monitor)
    ("optimzer.lr", "Did you mean 'optimizer.lr'?"),  # a misspelled section
    ("epoch", "Did you mean 'epochs'?"),
    ("stop.early_stoping.patience", "Did you mean 'stop.early_stopping.patience' or 'stop.convergence.patience'?"),
    # Keras' and Lightning's names: ours, and what theirs is
    ("learning_rate", "Did you mean 'optimizer.lr'? (the optimizer's learning_rate)"),
    ("accelerator", "Did you mean 'device'? (Lightning's accelerator: device='cuda' or 'cpu')"),
    # tl.fit's val=0.2 in a file or --set (was "See every key with 'trainlab train --print-config'")
    ("validation_split", "Did you mean 'data.val_fraction'? (Keras' validation_split: the fraction of the training "
                         "data held out, as 0.2)"),
])
def test_an_unknown_key_names_the_key_that_was_meant(key, hint):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[f"{key}=1"])
    assert str(info.value) == f"{key} is not a config key. Got {key}=1. {hint}"


def test_a_key_trainlab_needs_none_of_says_why():
    with pytest.raises(ConfigError, match=r"^metrics is not a config key\. Got metrics=\['accuracy'\]\. Keras' "
                                          r"metrics: trainlab records the loss and, for classes, the accuracy"):
        resolve_config(overrides=["metrics=[accuracy]"])


def test_an_unknown_key_of_a_section_lists_that_sections_keys(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=["optimizer.foo=1"])
    assert str(info.value).endswith("Valid keys here: optimizer.name, optimizer.lr, optimizer.momentum, "
                                    "optimizer.betas, optimizer.alpha, optimizer.eps, optimizer.weight_decay.")
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\n")  # in a file too
    with pytest.raises(ConfigError, match=r"^lr is not a config key\. Did you mean 'optimizer\.lr'\?$"):
        resolve_config(path)


def test_a_name_given_for_a_section_is_that_sections_name(tmp_path):
    # as tl.fit(optimizer="adamw") and Hydra's optimizer=adamw: the section's other keys stay as set, either order
    cfg = resolve_config(overrides=["optimizer=adamw", "optimizer.lr=0.01", "loss=mse", "data=circle"])
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.loss.name, cfg.data.name) == ("adamw", 0.01, "mse", "circle")
    cfg = resolve_config(overrides=["optimizer.lr=0.01", "optimizer=adamw"])
    assert (cfg.optimizer.name, cfg.optimizer.lr) == ("adamw", 0.01)
    assert resolve_config(overrides=["optimizer.lr=0.01", "optimizer=null"]).optimizer.lr == 0.1  # null: defaults
    path = tmp_path / "c.yaml"
    path.write_text("optimizer: adam\nschedule: cosine\n")
    cfg = resolve_config(path, ["optimizer.lr=0.002"])
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.schedule.name) == ("adam", 0.002, "cosine")
    with pytest.raises(ConfigError, match=r"^optimizer\.name must be one of .* Got 'adamm'\. Did you mean 'adam'\?"):
        resolve_config(overrides=["optimizer=adamm"])  # the name is checked as optimizer.name is
    with pytest.raises(ConfigError, match=r"^stop\.early_stopping must be a mapping of keys to values\. Got 'patience'"):
        resolve_config(overrides=["stop.early_stopping=patience"])  # a section without a name takes no string
    with pytest.raises(ConfigError, match=r"^stop\.early_stopping must be a mapping of keys to values\. Got True"):
        resolve_config(overrides=["stop.early_stopping=on"])  # YAML's on: not "a number, not true or false"


def test_a_path_is_its_string(tmp_path):
    cfg = resolve_config(overrides={"out_dir": tmp_path / "runs", "data.dir": tmp_path})
    assert (cfg.out_dir, cfg.data.dir) == (str(tmp_path / "runs"), str(tmp_path))


def test_a_gpu_is_cuda():
    with pytest.raises(ConfigError, match=r"^device must be one of auto, cpu, cuda, cuda:N, mps \(torch calls an "
                                          r"NVIDIA GPU 'cuda:1'\)\. Got 'gpu:1'\."):
        resolve_config(overrides=["device=gpu:1"])


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


def test_null_stop_rule_turns_it_off_from_set_yaml_and_replace(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stop:\n  early_stopping: {patience: 5, restore_best: false}\n  convergence: {tol: 0.001}\n"
                    "  target: {metric: val_loss, value: 0.3}\n")
    on = resolve_config(path)
    assert (on.stop.early_stopping.patience, on.stop.convergence.tol, on.stop.target.value) == (5, 0.001, 0.3)
    off = resolve_config(path, ["stop.early_stopping=null", "stop.convergence=null", "stop.target=null"])
    assert off.stop == TrainConfig().stop  # every rule back to its defaults, which are off
    assert (off.stop.early_stopping.patience, off.stop.convergence.tol, off.stop.target.value) == (None, None, None)
    path.write_text("stop:\n  early_stopping: null\n  convergence:\n")  # null, or a section left empty
    assert resolve_config(path, ["stop.early_stopping.patience=3"]).stop.early_stopping.patience == 3
    assert resolve_config(path).stop == TrainConfig().stop
    assert replace(on, **{"stop.early_stopping": None}).stop.early_stopping.patience is None
    assert replace(on, **{"stop.early_stopping": None}).stop.convergence.tol == 0.001  # only that rule
    # A later key on top of null: the defaults plus that key.
    cfg = resolve_config(path, ["stop.early_stopping=null", "stop.early_stopping.min_delta=0.01"])
    assert (cfg.stop.early_stopping.patience, cfg.stop.early_stopping.min_delta) == (None, 0.01)
    # The saved config never holds a null section: config.yaml rebuilds the same run.
    assert config_to_dict(off)["stop"]["early_stopping"] == {"patience": None, "min_delta": 0.0, "restore_best": True}
    assert resolve_config(base=config_to_dict(off)) == off


def test_null_section_is_its_defaults_everywhere(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  # hidden: [64]\noptimizer: null\nstop:\n")  # sections with every key commented out
    assert resolve_config(path) == TrainConfig()
    cfg = resolve_config(overrides=["data.augment.flip=true", "data.augment=null", "speed=null"])
    assert cfg.data.augment.flip is False and cfg.speed == TrainConfig().speed
    assert resolve_config(overrides={"optimizer.lr": 0.5, "optimizer": None}).optimizer.lr == 0.1
    assert resolve_config(overrides={"grad_clip": None}).grad_clip is None  # plain keys take null as before


def test_a_section_given_a_value_is_one_line_naming_a_key_and_null():
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides=["stop.early_stopping=5", "model=[mlp]"])
    lines = str(err.value).splitlines()
    assert sorted(lines, reverse=True) == [
        "stop.early_stopping must be a mapping of keys to values. Got 5. Set its keys one by one "
        "(e.g. --set stop.early_stopping.patience=...), or null for its defaults (off).",
        "model must be a mapping of keys to values. Got ['mlp']. Set its keys one by one (e.g. --set model.name=...), "
        "or null for its defaults."]


def test_api_keyword_none_is_the_sections_defaults():
    from trainlab.api import options_to_overrides

    assert options_to_overrides({"early_stopping": None}) == {"stop.early_stopping": None}
    on = resolve_config(overrides=options_to_overrides({"early_stopping": {"patience": 5}}))
    assert on.stop.early_stopping.patience == 5
    assert replace(on, **options_to_overrides({"early_stopping": None})).stop.early_stopping.patience is None


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_momentum_with_an_optimizer_that_ignores_it_is_refused_with_the_fix(name):
    # custom_cnn.ipynb once trained optimizer='sgd', momentum=0.9: plain SGD, the momentum silently dropped
    with pytest.raises(ConfigError, match=rf"optimizer.momentum must be left unset with optimizer.name='{name}'.*"
                                          r"Got 0.9. Did you mean optimizer.name=momentum"):
        resolve_config(overrides={"optimizer.name": name, "optimizer.momentum": 0.9})


def test_momentum_defaults_to_0_9_where_it_is_used():
    from trainlab.train.optim import make_optimizer

    p = [torch.nn.Parameter(torch.ones(2))]
    for name, given, used in (("momentum", None, 0.9), ("nesterov", 0.5, 0.5), ("sgd", None, 0.0)):
        cfg = resolve_config(overrides={"optimizer.name": name, "optimizer.momentum": given})
        assert make_optimizer(p, cfg.optimizer).param_groups[0]["momentum"] == used


@pytest.mark.parametrize("key, default", [("batch_size", 256), ("epochs", 10), ("data.limit", None),
                                          ("model.init_bias", None), ("optimizer.lr", 0.1)])
def test_true_or_false_for_a_number_is_refused(key, default):
    # pydantic reads true as 1: batch_size=true trained on batches of one example
    with pytest.raises(ConfigError, match=rf"^{key} must be a number, not true or false\. Got True\.") as info:
        resolve_config(overrides=[f"{key}=true"])
    assert "\n" not in str(info.value)
    assert resolve_config(overrides=["tensorboard=false", "data.normalize=true"]).tensorboard is False  # bools still are


def test_min_lr_is_a_cosine_or_plateau_floor_below_the_lr():
    with pytest.raises(ConfigError, match=r"^schedule\.min_lr must be left at 0 unless schedule\.name is cosine or "
                                          r"plateau .*Got 0\.01 with schedule\.name='step'\. Set schedule\.name=cosine"):
        resolve_config(overrides=["schedule.name=step", "schedule.min_lr=0.01"])
    with pytest.raises(ConfigError, match=r"^schedule\.min_lr must be below optimizer\.lr \(0\.1\): cosine lowers "
                                          r"the lr down to it\. Got 5\.0\. Use e\.g\. schedule\.min_lr=0\.001"):
        resolve_config(overrides=["schedule.name=cosine", "schedule.min_lr=5"])
    with pytest.raises(ConfigError, match=r"^schedule\.min_lr must be below optimizer\.lr \(0\.1\): plateau lowers"):
        resolve_config(overrides=["schedule.name=plateau", "schedule.min_lr=0.1"])
    assert resolve_config(overrides=["schedule.name=plateau", "schedule.min_lr=0.001"]).schedule.min_lr == 0.001
    assert resolve_config(overrides=["schedule.name=cosine", "schedule.min_lr=0.001"]).schedule.min_lr == 0.001


def test_a_warmup_longer_than_the_run_is_refused():
    with pytest.raises(ConfigError, match=r"^schedule\.warmup_epochs must be at most epochs \(10\): the lr reaches "
                                          r"optimizer\.lr only at the warm-up's end\. Got 12\.0\."):
        resolve_config(overrides=["schedule.warmup_epochs=12"])
    assert resolve_config(overrides=["schedule.warmup_epochs=10"]).schedule.warmup_epochs == 10


@pytest.mark.parametrize("metric, value, fix", [
    ("val_acc", 90, r"Use 0\.9 for 90 %"),  # a percentage: never reached, the rule silently off
    ("val_acc", -1, r"Use e\.g\. 0\.9 for 90 %"),  # reached at once: the run stops after epoch 1
    ("train_acc", 1.5, r"Use 0\.015 for 1\.5 %"),
])
def test_an_accuracy_target_outside_0_1_is_refused(metric, value, fix):
    with pytest.raises(ConfigError, match=rf"^stop\.target\.value must be an accuracy in \(0, 1\] for "
                                          rf"stop\.target\.metric='{metric}'\. Got {float(value)}\. {fix}, or null"):
        resolve_config(overrides={"stop.target.metric": metric, "stop.target.value": value})


def test_a_loss_target_must_be_above_0():
    with pytest.raises(ConfigError, match=r"^stop\.target\.value must be a loss > 0 for stop\.target\.metric='val_loss'\."):
        resolve_config(overrides={"stop.target.metric": "val_loss", "stop.target.value": 0})
    assert resolve_config(overrides={"stop.target.metric": "val_loss", "stop.target.value": 0.3}).stop.target.value == 0.3
    assert resolve_config(overrides={"stop.target.value": 1}).stop.target.value == 1.0


def test_a_key_named_twice_in_a_config_file_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 2\noptimizer:\n  lr: 0.1\nepochs: 3\n")  # YAML alone keeps the last: 3 epochs
    with pytest.raises(ConfigError, match=r"^--config must name each key once\. Got 'epochs' twice in '.*c\.yaml' "
                                          r"\(lines 1 and 4\)\. Keep the one you mean\.$"):
        resolve_config(path)
    path.write_text("optimizer:\n  lr: 0.1\n  name: adam\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"Got 'lr' twice in .* \(lines 2 and 4\)"):
        resolve_config(path)


def test_a_list_with_several_bad_elements_is_one_line():
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=["model.hidden=[a, b, c]"])
    assert str(info.value) == "model.hidden must be a whole number. Got 'a'. Use a valid value such as the default [256]."


def test_a_trained_runs_config_with_a_value_refused_since_is_still_read(make_cfg):
    # the checks added for new runs (target range, warm-up, min_lr) must not lock old runs out of report/evaluate
    from trainlab.train.run import read_run_config, train

    result = train(make_cfg(epochs=1), verbose=False)
    path = result.run_dir / "config.yaml"
    path.write_text(path.read_text().replace("  target:\n    metric: val_acc\n    value: null",
                                             "  target:\n    metric: val_acc\n    value: 0.0"))
    assert read_run_config(result.run_dir).stop.target.value == 0.0
    with pytest.raises(ConfigError, match=r"^stop\.target\.value must be an accuracy in \(0, 1\]"):
        resolve_config(path)  # as the settings of a new run: refused


@pytest.mark.parametrize("key, given, ours", [
    ("optimizer.name", "Adam", "adam"), ("optimizer.name", "RMSprop", "rmsprop"), ("optimizer.name", "SGD", "sgd"),
    ("loss.name", "sparse_categorical_crossentropy", "cross_entropy"), ("loss.name", "CrossEntropyLoss", "cross_entropy"),
    ("loss.name", "mean_squared_error", "mse"), ("loss.name", "binary_crossentropy", "bce"), ("loss.name", "MSE", "mse"),
])
def test_keras_and_torch_names_and_any_case_are_read_as_ours(key, given, ours):
    section, field = key.split(".")
    assert getattr(getattr(resolve_config(overrides={key: given}), section), field) == ours


def test_a_misspelt_name_in_another_case_still_gets_did_you_mean():
    with pytest.raises(ConfigError, match=r"^optimizer\.name must be one of .* Got 'Adamm'\. Did you mean 'adam'\?"):
        resolve_config(overrides={"optimizer.name": "Adamm"})


@pytest.mark.parametrize("given, stored", [
    ("balanced", "balanced"), ([1, 2.5], [1.0, 2.5]), ({0: 1.0, "pos": 3}, {0: 1.0, "pos": 3.0}), (None, None),
])
def test_class_weights_take_balanced_a_list_an_array_or_a_mapping(given, stored):
    import numpy as np

    assert resolve_config(overrides={"loss.class_weights": given}).loss.class_weights == stored
    if isinstance(given, list):  # scikit-learn's compute_class_weight gives an array; a tensor works too
        assert resolve_config(overrides={"loss.class_weights": np.array(given)}).loss.class_weights == stored
        assert resolve_config(overrides={"loss.class_weights": torch.tensor(given)}).loss.class_weights == stored


@pytest.mark.parametrize("bad", ["foo", [1, True], {0: "x"}, 3.0])
def test_bad_class_weights_are_one_line_naming_the_three_forms(bad):
    with pytest.raises(ConfigError, match=r"^loss\.class_weights must be 'balanced', a list of one weight per class "
                                          r"\(e\.g\. \[1\.0, 5\.0\]\) or a mapping \{class: weight\} \(e\.g\. "
                                          r"\{0: 1\.0, 1: 5\.0\}\)\. Got .*\.$") as err:
        resolve_config(overrides={"loss.class_weights": bad})
    assert "\n" not in str(err.value)
