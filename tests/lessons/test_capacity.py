"""Lesson capacity: more capacity fits the training set better; the best validation error is not at the smallest net."""
from __future__ import annotations

import pytest

import trainlab.lessons.capacity as capacity
from tests.conftest import FASHION_DIR


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
def test_training_error_falls_with_size(lesson_run):
    md, out = lesson_run("capacity")
    widths = out.results["width"]
    assert widths[-1]["train_err"] < widths[0]["train_err"] - 0.2  # width 64 vs width 1
    assert out.results["width_shape"]["best"] > 0  # the smallest net underfits
    assert (md.parent / "capacity.png").stat().st_size > 10_000


def test_shape_and_wording_follow_the_numbers():
    rows = lambda vals: [{"hidden": [2 ** i], "train_err": 0.1, "val_err": v} for i, v in enumerate(vals)]  # noqa: E731
    u = capacity.shape_of(rows([0.5, 0.2, 0.3]))
    assert u["best"] == 1 and u["u_curve"]
    assert "not underfitting" in capacity.describe(rows([0.5, 0.2, 0.3]), "widths", lambda r: "x")
    underfit = rows([0.5, 0.2, 0.3])
    underfit[0]["train_err"] = 0.4
    assert "the U-curve, underfitting on the left" in capacity.describe(underfit, "widths", lambda r: "x")
    assert "no U-curve" in capacity.describe(rows([0.5, 0.2, 0.205]), "widths", lambda r: "x")
