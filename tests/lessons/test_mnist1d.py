"""Lesson mnist1d: the CNN leads on ordered sequences and loses more than the MLP when the positions are shuffled."""
from __future__ import annotations

import pytest

import trainlab.lessons.mnist1d as lesson_mnist1d

pytest.importorskip("mnist1d")
CNN, MLP = "CNN 3×conv1d(25)", "MLP 40-100-100-10"


def test_cnn_needs_the_order_of_positions(lesson_run):
    md, out = lesson_run("mnist1d")
    acc = out.results["test_acc"]
    assert acc[CNN]["original"] > acc[MLP]["original"] + 0.05
    cnn_drop = acc[CNN]["original"] - acc[CNN]["shuffled"]
    mlp_drop = acc[MLP]["original"] - acc[MLP]["shuffled"]
    assert cnn_drop > 0.05 and cnn_drop > abs(mlp_drop)
    assert sorted(out.results["permutation"]) == list(range(40))
    assert (md.parent / "mnist1d.png").stat().st_size > 10_000
    assert f"{acc[CNN]['original']:.3f}" in out.conclusion and "comes from the order" in out.conclusion


def test_conclusion_follows_the_numbers():
    same = {"original": 0.6, "shuffled": 0.6}
    text = lesson_mnist1d.conclude({"linear": same, MLP: same, CNN: {"original": 0.6, "shuffled": 0.61}})
    assert "did not hurt the CNN" in text and "does not depend on the order" in text
