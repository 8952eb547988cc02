"""Lesson learning-rate: the verdicts go the way the learning rates do, and the diverging run is caught."""
from __future__ import annotations

import trainlab.lessons.learning_rate  # noqa: F401  (registers the lesson)
from trainlab.lessons.base import run_lesson


def test_verdicts_follow_the_learning_rate(tmp_path):
    md, out = run_lesson("learning-rate", tmp_path, seed=0, quick=True)
    runs = out.results["runs"]
    small, good, huge = runs["10× too small"], runs["good"], runs["far too large"]
    assert {"lr_too_low", "underfitting", "still_improving"} & set(small["rules"]), small["rules"]
    assert good["diverged"] is None and good["errors"] == [], good["rules"]
    assert good["final_train_loss"] < small["final_train_loss"]
    assert huge["verdict"] == "lr_too_high" and "non_finite" in huge["errors"]  # the cause heads, the NaN beside it
    assert huge["diverged"]["epoch"] >= 1 and huge["diverged"]["step"] >= 1
    assert len(huge["train_loss"]) == huge["diverged"]["epoch"] - 1  # the finished epochs before the break
    text = md.read_text()
    assert f"diverged at epoch {huge['diverged']['epoch']}, step {huge['diverged']['step']}" in text
    assert (tmp_path / "learning_rate.png").stat().st_size > 10_000
