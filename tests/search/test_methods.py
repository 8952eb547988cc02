"""Methods and pruners by name: the shared registries, grid values, and each factory's Optuna object."""
from __future__ import annotations

import optuna
import pytest

from trainlab.errors import ConfigError
from trainlab.registry import PRUNERS, SEARCH_METHODS
from trainlab.search import SearchSpace
from trainlab.search.methods import grid_size, grid_values, make_pruner, make_sampler

SPACE = SearchSpace.from_dict({"optimizer.lr": {"low": 1e-4, "high": 1.0, "log": True},
                               "batch_size": {"low": 16, "high": 64, "step": 16},
                               "model.dropout": {"low": 0.0, "high": 0.5},
                               "model.hidden": {"choices": [[8], [16, 8]]}})


def test_registries_name_every_method_and_pruner():
    assert SEARCH_METHODS.names() == ["random", "tpe", "grid", "coarse-to-fine"]
    assert PRUNERS.names() == ["none", "median", "successive-halving", "hyperband"]
    assert all(SEARCH_METHODS.help(n) for n in SEARCH_METHODS) and all(PRUNERS.help(n) for n in PRUNERS)


def test_grid_values_follow_steps_log_scale_and_choices():
    g = grid_values(SPACE)
    assert g["optimizer.lr"] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert g["batch_size"] == [16, 32, 48, 64]
    assert g["model.dropout"] == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5])
    assert g["model.hidden"] == ["[8]", "[16, 8]"]  # Optuna's encoding of list choices
    assert grid_size(SPACE) == 5 * 4 * 5 * 2


@pytest.mark.parametrize("name, cls", [("random", optuna.samplers.RandomSampler), ("tpe", optuna.samplers.TPESampler),
                                       ("grid", optuna.samplers.GridSampler),
                                       ("coarse-to-fine", optuna.samplers.RandomSampler)])
def test_make_sampler(name, cls):
    assert isinstance(make_sampler(name, SPACE, seed=0, trials=20), cls)


def test_coarse_to_fine_sampler_draws_only_active_choices():
    narrowed = SPACE.narrowed({"model.hidden": [[16, 8]]})
    study = optuna.create_study(sampler=make_sampler("coarse-to-fine", narrowed, seed=0, trials=10))
    study.optimize(lambda t: len(narrowed.suggest(t)["model.hidden"]), n_trials=8)
    assert {t.params["model.hidden"] for t in study.trials} == {"[16, 8]"}


def test_make_pruner_and_unknown_names():
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 9), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", 9), optuna.pruners.NopPruner)
    with pytest.raises(ConfigError, match=r"^--prune must be one of .* Got 'asha'\. Choose one of"):
        make_pruner("asha", 3)
