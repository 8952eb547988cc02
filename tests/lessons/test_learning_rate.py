"""Lesson learning-rate: the verdicts go the way the learning rates do, and the diverging run is caught."""
from __future__ import annotations

import trainlab.lessons.learning_rate as lesson_mod


def test_verdicts_follow_the_learning_rate(lesson_run):
    md, out = lesson_run("learning-rate")
    runs = out.results["runs"]
    tiny, small, good, huge = runs["100× too small"], runs["10× too small"], runs["good"], runs["far too large"]
    # 100× too small: the loss barely moves and the diagnosis names the cause
    assert tiny["verdict"] == "lr_too_low", tiny["rules"]
    assert lesson_mod.moved(tiny) < lesson_mod.BARELY < lesson_mod.moved(good)
    assert good["diverged"] is None and good["errors"] == [], good["rules"]
    assert good["final_train_loss"] < small["final_train_loss"] < tiny["final_train_loss"]
    assert huge["verdict"] == "lr_too_high" and "non_finite" in huge["errors"]  # the cause heads, the NaN beside it
    assert huge["diverged"]["epoch"] >= 1 and huge["diverged"]["step"] >= 1
    assert len(huge["train_loss"]) == huge["diverged"]["epoch"] - 1  # the finished epochs before the break
    text = md.read_text()
    assert f"diverged at epoch {huge['diverged']['epoch']}, step {huge['diverged']['step']}" in text
    assert "shows here from 100× below the good rate" in out.conclusion and "diagnosis names it" in out.conclusion
    assert (md.parent / "learning_rate.png").stat().st_size > 10_000


def test_too_small_wording_follows_the_numbers():
    def r(lr, first, last, verdict):
        return {"lr": lr, "train_loss": [first, last], "verdict": verdict, "diverged": None, "final_val_acc": 0.5}

    runs = {"good": r(0.3, 1.0, 0.1, "good_fit"), "10× too small": r(0.03, 1.0, 0.5, "good_fit"),
            "100× too small": r(0.003, 1.0, 0.95, "lr_too_low")}
    text = lesson_mod.too_small(runs)
    assert "from 100× below" in text and "diagnosis names it" in text and "only slower" in text
    runs["100× too small"] = r(0.003, 1.0, 0.6, "underfitting")
    assert "does not show the crawl" in lesson_mod.too_small(runs)
