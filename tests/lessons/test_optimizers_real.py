"""Lesson optimizers-real: on Fashion-MNIST Momentum, AdaGrad and Adam all end below SGD's loss."""
from __future__ import annotations

import json

import trainlab.lessons  # noqa: F401  (registers every lesson)
from trainlab.lessons.base import run_lesson


def test_the_other_three_learn_faster_than_sgd(tmp_path):
    md, out = run_lesson("optimizers-real", tmp_path, seed=0, quick=True)
    res = out.results["optimizers"]
    sgd = res["SGD"]
    for name in ("Momentum", "AdaGrad", "Adam"):
        assert res[name]["final_loss"] < 0.8 * sgd["final_loss"], name
        assert res[name]["test_acc"] > sgd["test_acc"], name
    assert "the course's claim holds" in out.conclusion
    assert len(sgd["smoothed"]) == out.results["updates"] == 200
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"]["optimizers"]["Adam"]["test_acc"] == res["Adam"]["test_acc"]
    assert (tmp_path / "optimizers.png").stat().st_size > 10_000
