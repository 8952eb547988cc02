"""Lesson weight-decay: the L2 penalty shrinks ‖w‖ and lowers the held-out loss; the wording follows the numbers."""
from __future__ import annotations

import json

import trainlab.lessons.weight_decay as weight_decay


def test_penalty_shrinks_weights_and_test_loss(lesson_run):
    md, out = lesson_run("weight-decay")
    free, decayed = out.results["runs"]["0"], out.results["runs"]["3"]
    assert decayed["w_norm"] < free["w_norm"] / 2  # far below: λ = 3 vs no penalty
    assert decayed["test_loss"] < free["test_loss"]
    assert free["train_loss"] < free["test_loss"] / 100  # 200 weights, 20 examples: an (almost) exact fit
    saved = json.loads((md.parent / "results.json").read_text())
    assert saved["results"]["runs"]["3"]["w_norm"] == decayed["w_norm"]
    assert (md.parent / "weight_decay.png").stat().st_size > 10_000
    assert f"{decayed['w_norm']:.3g}" in out.conclusion and f"{decayed['w_norm']:.3g}" in md.read_text()


def test_data_follows_the_stated_formula():
    import torch

    x, y = weight_decay.synthetic_data(5000, torch.Generator().manual_seed(1))
    residual = y[:, 0] - 0.05 - 0.01 * x.sum(1)
    assert x.shape == (5000, 200) and y.shape == (5000, 1)
    assert abs(float(residual.mean())) < 1e-3 and abs(float(residual.std()) - 0.01) < 1e-3


def test_conclusion_wording_follows_the_numbers():
    free = {"lambda": 0.0, "w_norm": 14.0, "train_loss": 1e-9, "test_loss": 200.0}
    helped = weight_decay.conclude(free, {"lambda": 3.0, "w_norm": 0.4, "train_loss": 1e-3, "test_loss": 0.3})
    hurt = weight_decay.conclude(free, {"lambda": 3.0, "w_norm": 0.4, "train_loss": 1e-3, "test_loss": 300.0})
    assert "generalise better" in helped and "35×" in helped
    assert "did not help" in hurt and "generalise better" not in hurt
