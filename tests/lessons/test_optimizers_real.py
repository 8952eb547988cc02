"""Lesson optimizers-real: on Fashion-MNIST Momentum, AdaGrad and Adam all end below SGD's loss."""
from __future__ import annotations

import json


def test_the_other_three_learn_faster_than_sgd(lesson_run):
    md, out = lesson_run("optimizers-real")
    res = out.results["optimizers"]
    sgd = res["SGD"]
    for name in ("Momentum", "AdaGrad", "Adam"):
        assert res[name]["final_loss"] < 0.8 * sgd["final_loss"], name
        assert res[name]["test_acc"] > sgd["test_acc"], name
    assert "the course's claim holds" in out.conclusion
    assert len(sgd["smoothed"]) == out.results["updates"] == 200
    saved = json.loads((md.parent / "results.json").read_text())
    assert saved["results"]["optimizers"]["Adam"]["test_acc"] == res["Adam"]["test_acc"]
    assert (md.parent / "optimizers.png").stat().st_size > 10_000
