"""Coarse-to-fine on a synthetic objective with a known optimum (lr = 1e-2, width = 64), via Optuna ask/tell."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from trainlab.errors import ConfigError
from trainlab.search import CoarseToFine, SearchSpace, plot_ranges
from trainlab.search.coarse_to_fine import ROUND_ATTR

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = {"optimizer.lr": {"low": 1e-5, "high": 1, "log": True},
        "batch_size": {"low": 8, "high": 512},  # stands in for a width: an int config key with a wide range
        "model.hidden": {"choices": [[128], [256, 128], [512, 256, 128]]}}


def objective(p: dict) -> float:
    """Maximum 0 at lr = 1e-2, width = 64, hidden = [256, 128]."""
    penalty = 0.0 if p["model.hidden"] == [256, 128] else 0.3
    return -((math.log10(p["optimizer.lr"]) + 2) ** 2 + ((p["batch_size"] - 64) / 64) ** 2) - penalty


def _run(study=None, seed=0, log=None):
    lines = [] if log is None else log
    search = CoarseToFine(SearchSpace.from_dict(SPEC), rounds=3, per_round=25, top_k=5, seed=seed)
    return search.run(objective, study, log=lines.append), lines


def test_ranges_narrow_around_the_known_optimum():
    result, lines = _run()
    (lo0, hi0), (lo, hi) = result.ranges_per_round[0]["optimizer.lr"], result.ranges_per_round[-1]["optimizer.lr"]
    assert (lo0, hi0) == (1e-5, 1.0)
    assert lo <= 1e-2 <= hi
    assert math.log10(hi / lo) < 0.5 * math.log10(hi0 / lo0)  # much narrower in log10 span
    w_lo, w_hi = result.ranges_per_round[-1]["batch_size"]
    assert w_lo <= 64 <= w_hi and w_hi - w_lo < 0.5 * (512 - 8)
    assert isinstance(w_lo, int) and isinstance(w_hi, int)
    assert [256, 128] in result.ranges_per_round[-1]["model.hidden"]
    assert len(result.ranges_per_round) == 3
    # every later range lies inside the original one, and the search improves
    assert all(1e-5 <= r["optimizer.lr"][0] <= r["optimizer.lr"][1] <= 1 for r in result.ranges_per_round)
    assert result.best_per_round[-1] >= result.best_per_round[0]
    assert result.best_value == max(result.best_per_round)
    assert result.best_params["model.hidden"] == [256, 128]
    assert abs(math.log10(result.best_params["optimizer.lr"]) + 2) < 0.5
    # ranges are printed once per round (before sampling), with the round's best after
    assert [line.split(":")[0] for line in lines if "in [" in line] == ["round 1/3", "round 2/3", "round 3/3"]
    assert "optimizer.lr in [1e-05, 1] log" in lines[0]


def test_all_trials_land_in_the_study_with_their_round():
    own_sampler = optuna.samplers.TPESampler(seed=0)
    study = optuna.create_study(direction="maximize", sampler=own_sampler)
    result, _ = _run(study)
    assert result.study is study
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 75
    assert [t.user_attrs[ROUND_ATTR] for t in trials] == [r for r in range(3) for _ in range(25)]
    assert study.best_value == pytest.approx(result.best_value)
    # round 3's trials were sampled inside round 3's ranges
    lo, hi = result.ranges_per_round[2]["optimizer.lr"]
    assert all(lo <= t.params["optimizer.lr"] <= hi for t in trials[50:])
    assert study.sampler is own_sampler  # borrowed for sampling, then given back


def test_journal_storage_is_shared(tmp_path):
    path = str(tmp_path / "j.log")
    study = optuna.create_study(study_name="c2f", direction="maximize",
                                storage=JournalStorage(JournalFileBackend(path)))
    result, _ = _run(study)
    reloaded = optuna.load_study(study_name="c2f", storage=JournalStorage(JournalFileBackend(path)))
    assert len(reloaded.trials) == 75
    assert reloaded.best_value == pytest.approx(result.best_value)
    assert SearchSpace.from_dict(SPEC).decode(reloaded.best_params) == result.best_params


def test_same_seed_same_ranges_and_other_seed_differs():
    a, _ = _run(seed=3)
    b, _ = _run(seed=3)
    c, _ = _run(seed=4)
    assert a.ranges_per_round == b.ranges_per_round and a.best_value == b.best_value
    assert a.ranges_per_round[1] != c.ranges_per_round[1]


def test_minimize_and_failed_trials():
    space = SearchSpace.from_dict({"optimizer.lr": {"low": 1e-4, "high": 1, "log": True}})

    def loss(p):
        if p["optimizer.lr"] > 0.5:
            raise RuntimeError("diverged")
        return (math.log10(p["optimizer.lr"]) + 3) ** 2

    result = CoarseToFine(space, rounds=2, per_round=20, top_k=4, direction="minimize", seed=0).run(loss, log=lambda s: None)
    lo, hi = result.ranges_per_round[-1]["optimizer.lr"]
    assert lo <= 1e-3 <= hi and hi < 0.5
    states = {t.state for t in result.study.trials}
    assert optuna.trial.TrialState.FAIL in states  # diverged configs are recorded, not ranked
    assert result.best_value == min(result.best_per_round)


def test_bad_arguments_are_one_line_each():
    space = SearchSpace.from_dict({"optimizer.lr": {"low": 1e-4, "high": 1, "log": True}})
    with pytest.raises(ConfigError) as info:
        CoarseToFine(space, rounds=0, per_round=5, top_k=6, margin=2).run(objective, log=lambda s: None)
    lines = str(info.value).splitlines()
    assert [line.split(" must ")[0] for line in lines] == ["rounds", "top_k", "margin"]
    with pytest.raises(ConfigError, match=r"^study direction must match direction='maximize'\. Got 'minimize'"):
        CoarseToFine(space).run(objective, optuna.create_study(direction="minimize"))


def test_plot_ranges_writes_a_png(tmp_path):
    result, _ = _run()
    path = plot_ranges(result.ranges_per_round, tmp_path / "sub" / "ranges.png", space=SearchSpace.from_dict(SPEC))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
