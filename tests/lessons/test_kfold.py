"""Lesson kfold: per-fold scores of two configs on the same folds; a large lr gap is larger than the spread."""
from __future__ import annotations

import pytest

import trainlab.lessons.kfold as kfold
from tests.conftest import FASHION_DIR


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
def test_difference_is_larger_than_the_spread(lesson_run):
    md, out = lesson_run("kfold")
    r = out.results
    assert [len(s) for s in r["scores"].values()] == [5, 5]
    assert r["larger_than_spread"] and r["better"] == "SGD lr 0.1" and r["same_sign"]
    assert (md.parent / "kfold.png").stat().st_size > 10_000


def test_compare_and_wording_follow_the_numbers():
    close = kfold.compare({"a": [0.80, 0.82, 0.78, 0.81, 0.79], "b": [0.81, 0.80, 0.79, 0.80, 0.78]})
    assert not close["larger_than_spread"] and not close["same_sign"]
    assert "do not separate" in kfold.conclude(close)
    far = kfold.compare({"a": [0.9, 0.91, 0.89, 0.9, 0.9], "b": [0.5, 0.52, 0.48, 0.5, 0.51]})
    assert far["larger_than_spread"] and far["better"] == "a" and "a is the better config" in kfold.conclude(far)
