"""Lesson symmetric-init: constant starts keep hidden units identical and are diagnosed; a random start is not."""
from __future__ import annotations

import torch

import trainlab.lessons.symmetric_init as lesson_mod


def test_constant_starts_stay_identical_and_are_named(lesson_run):
    md, out = lesson_run("symmetric-init")
    starts = out.results["starts"]
    rand = starts["Xavier (random)"]
    for name in ("all zero", f"all {lesson_mod.CONSTANT}"):
        r = starts[name]
        assert r["identical"] and max(r["moved"]) > 1e-3, (name, r["spread"], r["moved"])  # moved, in lockstep
        assert r["verdict"] == "symmetric_init"
        assert rand["test_acc"] > r["test_acc"] + 0.1
    assert not rand["identical"] and min(rand["spread"]) > 0.5
    assert "symmetric_init" not in rand["rules"]
    assert (md.parent / "symmetry.png").stat().st_size > 10_000


def test_unit_spread_by_hand():
    same = torch.ones(4, 3)
    assert lesson_mod.unit_spread(same) == 0.0
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert abs(lesson_mod.unit_spread(w) - 2 ** 0.5) < 1e-6  # ‖(−1, 1)‖ / 1
