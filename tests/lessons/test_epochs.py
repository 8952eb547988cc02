"""Lesson epochs: the validation loss turns upwards inside the run, and the engine's early stopping stops where the
recorded curve says it would."""
from __future__ import annotations

import pytest

import trainlab.lessons.epochs as epochs
from tests.conftest import FASHION_DIR


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
def test_turning_point_and_early_stop(lesson_run):
    md, out = lesson_run("epochs")
    r = out.results
    assert 1 < r["turn_epoch"] < r["epochs"]  # the validation loss turned inside the run
    assert r["val_loss_end"] > r["val_loss_min"] and r["train_loss_end"] < r["train_loss_turn"]
    assert r["stop_epoch"] is not None and r["engine_stop_epoch"] == r["stop_epoch"]
    assert r["engine_best_epoch"] == r["turn_epoch"]
    assert (md.parent / "epochs.png").stat().st_size > 10_000


def test_stop_epoch_counts_patience_from_the_last_improvement():
    assert epochs.stop_epoch([3, 2, 1, 1.5, 1.2, 1.1], patience=3) == 6
    assert epochs.stop_epoch([3, 2, 1, 0.9], patience=2) is None
    assert epochs.stop_epoch([1, 2, 0.5, 0.6, 0.7], patience=2) == 5
