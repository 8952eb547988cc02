"""Search-space parsing, Optuna round trips, and one-line house-style errors for every bad input."""
from __future__ import annotations

import re

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from trainlab.errors import ConfigError
from trainlab.search import Param, SearchSpace

SPACE_YAML = """\
optimizer.lr: {low: 1.0e-4, high: 1, log: true}
model.blocks: {low: 1, high: 4}
model.dropout: {low: 0, high: 0.5, step: 0.1}
model.hidden: {choices: [[128], [256, 128], [512, 256, 128]]}
optimizer.name: [sgd, adam]
"""


def _problems(spec) -> list[str]:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict(spec)
    return str(info.value).splitlines()


def test_from_yaml_parses_every_kind(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE_YAML)
    space = SearchSpace.from_yaml(path)
    assert [p.name for p in space] == ["optimizer.lr", "model.blocks", "model.dropout", "model.hidden", "optimizer.name"]
    assert space["optimizer.lr"] == Param("optimizer.lr", "float", low=1e-4, high=1.0, log=True)
    assert space["model.blocks"] == Param("model.blocks", "int", low=1, high=4)  # int from the config field's type
    assert space["model.dropout"].kind == "float" and space["model.dropout"].step == 0.1
    assert space["model.hidden"].choices == ([128], [256, 128], [512, 256, 128])
    assert space["optimizer.name"].choices == ("sgd", "adam")
    dists = space.to_distributions()
    assert dists["optimizer.lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert dists["model.blocks"] == IntDistribution(1, 4)
    # Optuna categoricals must be primitives: list choices travel as JSON text
    assert dists["model.hidden"] == CategoricalDistribution(["[128]", "[256, 128]", "[512, 256, 128]"])


def test_suggest_through_optuna_maps_list_choices_back():
    space = SearchSpace.from_dict({"model.hidden": {"choices": [[128], [256, 128]]},
                                   "optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True},
                                   "batch_size": {"low": 16, "high": 64, "step": 16}})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial)
        seen.append(params)
        study.tell(trial, 0.0)
    assert {tuple(p["model.hidden"]) for p in seen} == {(128,), (256, 128)}
    assert all(isinstance(p["model.hidden"], list) for p in seen)
    assert all(1e-3 <= p["optimizer.lr"] <= 1e-1 for p in seen)
    assert {p["batch_size"] for p in seen} <= {16, 32, 48, 64}
    assert space.decode(study.trials[0].params) == seen[0]


def test_narrowed_snaps_ints_to_step_grid_and_keeps_categorical_distribution():
    space = SearchSpace.from_dict({"batch_size": {"low": 16, "high": 256, "step": 16},
                                   "optimizer.name": ["sgd", "adam", "adamw"]})
    narrow = space.narrowed({"batch_size": (40.2, 100.7), "optimizer.name": ["adam"]})
    assert narrow["batch_size"].low == 32 and narrow["batch_size"].high == 112  # outward onto 16 + 16k
    assert narrow.ranges() == {"batch_size": (32, 112), "optimizer.name": ["adam"]}
    # the study-wide distribution keeps every choice; only the sampled subset narrows
    assert narrow.to_distributions()["optimizer.name"] == space.to_distributions()["optimizer.name"]
    assert space.ranges()["batch_size"] == (16, 256)  # the original is untouched
    with pytest.raises(ConfigError, match=r"^ranges must name parameters of this space\. Got \['nope'\]"):
        space.narrowed({"nope": (0, 1)})


@pytest.mark.parametrize("spec, message", [
    ({"optimizer.lrr": {"low": 0.1, "high": 1}},
     r"^optimizer\.lrr must be a config key\. Got 'optimizer\.lrr'\. Did you mean 'optimizer\.lr'\?$"),
    ({"optimizer.lr": {"low": 1, "high": 0.1}},
     r"^optimizer\.lr\.low must be < optimizer\.lr\.high\. Got low=1, high=0\.1\. Swap them or widen the range\.$"),
    ({"optimizer.lr": {"low": 0.5, "high": 0.5}}, r"^optimizer\.lr\.low must be < optimizer\.lr\.high\. Got low=0\.5"),
    ({"optimizer.weight_decay": {"low": 0, "high": 0.1, "log": True}},
     r"^optimizer\.weight_decay\.low must be > 0 when log is true\. Got 0\. .*set log: false\.$"),
    ({"model.blocks": {"low": 1.5, "high": 4}},
     r"^model\.blocks\.low must be a whole number \(model\.blocks is an integer setting\)\. Got 1\.5\. Write 1 or 2\.$"),
    ({"model.hidden": {"choices": []}}, r"^model\.hidden\.choices must be a non-empty list\. Got \[\]\. "),
    ({"optimizer.lr": {"low": 1e-4, "high": 1, "hihg": 1}},
     r"^optimizer\.lr spec must use only the fields choices, high, log, low, step\. Got 'hihg'\. Did you mean 'high'\?$"),
    ({"model.dropout": {"low": 0, "high": 1.5}}, r"^model\.dropout\.high must be < 1\.0\. Got 1\.5\. "),
    ({"optimizer.lr": {"low": -1, "high": 1}}, r"^optimizer\.lr\.low must be > 0\.0\. Got -1\. Use a valid value such as the default 0\.1\.$"),
    ({"optimizer.name": ["sgd", "adamm"]}, r"^optimizer\.name\.choices\[1\] must be one of .*Got 'adamm'\."),
    ({"model.activation": {"low": 1, "high": 2}}, r"^model\.activation must be searched over choices"),
    ({"optimizer.lr": {"low": 1e-4}}, r"^optimizer\.lr\.high must be given for a range\."),
    ({"optimizer.lr": {"low": 1e-4, "high": 1, "log": True, "step": 0.1}},
     r"^optimizer\.lr\.step must be left out when log is true\."),
    ({"model.blocks": {"low": 1, "high": 4, "step": 2}}, r"^model\.blocks\.high must be low plus a multiple of step\."),
    ({"optimizer.name": ["sgd", "sgd"]}, r"^optimizer\.name\.choices must be distinct\."),
    ({}, r"^search space must be a non-empty mapping"),
])
def test_each_bad_input_is_one_house_style_line(spec, message):
    lines = _problems(spec)
    assert len(lines) == 1, lines  # one problem → exactly one line
    assert re.search(message, lines[0]), lines[0]
    assert " Got " in lines[0] and lines[0].endswith((".", "?"))


def test_all_problems_are_collected_into_one_error():
    lines = _problems({"optimizer.lrr": {"low": 0.1, "high": 1},
                       "optimizer.lr": {"low": 1, "high": 0.1},
                       "model.hidden": {"choices": []},
                       "model.blocks": {"low": 1.5, "high": 4}})
    assert [line.split(" must ")[0] for line in lines] == [
        "optimizer.lrr", "optimizer.lr.low", "model.hidden.choices", "model.blocks.low"]


def test_from_yaml_rejects_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"^search space file must be an existing YAML file\. Got '.*nope\.yaml'"):
        SearchSpace.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer.lr: {low: 1\n")
    with pytest.raises(ConfigError, match=r"^search space file must be valid YAML\."):
        SearchSpace.from_yaml(bad)
    twice = tmp_path / "twice.yaml"  # the second range would silently replace the first
    twice.write_text("optimizer.lr: {low: 0.001, high: 1}\noptimizer.lr: {low: 0.01, high: 0.1}\n")
    with pytest.raises(ConfigError, match=r"^search space file must name each key once\. Got 'optimizer\.lr' twice "
                                          r"in '.*twice\.yaml' \(lines 1 and 2\)\. Keep the one you mean\.$"):
        SearchSpace.from_yaml(twice)


def test_nested_sections_are_the_dotted_keys_of_a_config_file():
    # was two confusing lines: "optimizer spec must use only the fields ..." and "optimizer must be searched over choices"
    nested = SearchSpace.from_dict({"optimizer": {"lr": {"low": 1e-3, "high": 1, "log": True}, "name": ["sgd", "adam"]},
                                    "model": {"hidden": {"choices": [[8], [16]]}}})
    flat = SearchSpace.from_dict({"optimizer.lr": {"low": 1e-3, "high": 1, "log": True}, "optimizer.name": ["sgd", "adam"],
                                  "model.hidden": {"choices": [[8], [16]]}})
    assert nested.to_distributions() == flat.to_distributions()
    with pytest.raises(ConfigError, match=r"^optimizer\.lrr must be a config key\. Got 'optimizer\.lrr'\. Did you mean "
                                          r"'optimizer\.lr'\?$"):
        SearchSpace.from_dict({"optimizer": {"lrr": {"low": 1e-3, "high": 1}}})
