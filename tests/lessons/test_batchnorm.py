"""Lesson batchnorm: with BatchNorm the net learns faster and at more weight scales than without."""
from __future__ import annotations

import math

import trainlab.lessons.batchnorm as lesson_mod


def test_batchnorm_learns_faster_and_at_more_scales(lesson_run):
    md, out = lesson_run("batchnorm")
    m = out.results["measured"]
    assert m["bn"]["early_acc_mean"] > m["plain"]["early_acc_mean"] + 0.1
    assert m["bn"]["learned"] > m["plain"]["learned"]
    assert "Faster learning holds" in out.conclusion
    assert (md.parent / "curves.png").exists() and (md.parent / "final.png").exists()


def test_a_run_that_broke_counts_at_chance():
    broke = {"train_acc_curve": [], "train_acc": math.nan, "test_acc": math.nan, "verdict": "diverged"}
    ok = {"train_acc_curve": [0.5, 0.8], "train_acc": 0.9, "test_acc": 0.8, "verdict": "good_fit"}
    m = lesson_mod.measure({False: [broke, ok], True: [ok, ok]})
    assert m["plain"]["diverged"] == 1 and m["plain"]["final_min"] == lesson_mod.CHANCE
    assert m["both_learned"] == 1 and m["faster_at"] == 1
