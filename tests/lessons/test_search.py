"""Lesson search: coarse-to-fine rounds narrow the ranges and lift the typical trial; only the chosen config's run
opens the test set."""
from __future__ import annotations

import math

import pytest

import trainlab.lessons.search as lesson_search
from tests.conftest import FASHION_DIR


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
def test_rounds_narrow_the_ranges_and_only_the_chosen_run_sees_the_test_set(lesson_run):
    md, out = lesson_run("search")
    r = out.results
    first, last = r["ranges"][0], r["ranges"][-1]
    for key in lesson_search.KEYS:  # every range is narrower in the last round than in the first
        assert lesson_search.decades(last[key]) < lesson_search.decades(first[key])

    assert r["rounds"][-1]["median"] >= r["rounds"][0]["median"]  # the later trials sit where the good values are
    assert set(r["rank_correlation_round_1"]) == set(lesson_search.KEYS)  # 3 trials at quick size: no direction

    assert r["trials_that_opened_test"] == 0 and r["test"]["n"] == 10_000 and 0.1 < r["test"]["test_acc"] <= 1
    assert "the only time the test set was opened" in out.conclusion
    assert (md.parent / "search.png").stat().st_size > 10_000


def test_the_conclusion_follows_the_numbers():
    stats = [{"round": 1, "trials": 3, "best": 0.5, "median": 0.2}, {"round": 2, "trials": 3, "best": 0.6, "median": 0.5},
             {"round": 3, "trials": 3, "best": 0.62, "median": 0.55}]
    ranges = [{"optimizer.lr": [1e-6, 1e-2], "optimizer.weight_decay": [1e-8, 1e-4]},
              {"optimizer.lr": [1e-3, 1e-2], "optimizer.weight_decay": [1e-7, 1e-4]},
              {"optimizer.lr": [3e-3, 1e-2], "optimizer.weight_decay": [1e-7, 1e-5]}]
    text = lesson_search.conclude(stats, ranges, {"optimizer.lr": 5e-3, "optimizer.weight_decay": 1e-6},
                                  {"n": 10000, "test_acc": 0.71}, {"optimizer.lr": 0.9, "optimizer.weight_decay": -0.1})
    assert "from 4.0 decades" not in text and "over 4.0 decades" in text and "to 0.5 (" in text
    assert "from 0.200 to 0.550" in text and "later rounds spend their trials where the good values are" in text
    assert "with the learning rate at ρ = +0.90 and with the weight decay at ρ = -0.10: the learning rate decides" in text
    assert "test accuracy 0.710" in text
    assert math.isclose(lesson_search.decades([1e-6, 1e-2]), 4.0)
    assert lesson_search.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert lesson_search.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
