"""Lesson overfitting: 300 images, 7 layers: a large train/held-out gap that every remedy narrows."""
from __future__ import annotations

import pytest

import trainlab.lessons.overfitting as overfitting
from tests.conftest import needs_fashion


@pytest.mark.e2e
@needs_fashion
def test_remedies_narrow_the_gap(lesson_run):
    md, out = lesson_run("overfitting")
    runs = out.results["runs"]
    base = runs["no remedy"]
    assert base["gap"] > 0.1  # 300 images: the net fits them far better than unseen ones
    for label in ("weight decay λ 0.1", "dropout 0.2", "augmentation"):
        assert runs[label]["gap"] < base["gap"], label
    assert (md.parent / "overfitting.png").stat().st_size > 10_000
    assert f"{base['gap']:.3f}" in out.conclusion


def test_conclusion_follows_the_numbers():
    def row(name, tr, va, verdict="good_fit"):
        return {"remedy": name, "train_acc": tr, "val_acc": va, "gap": tr - va, "verdict": verdict, "train_curve": [0] * 5}

    text = overfitting.conclude([row("no remedy", 1.0, 0.7), row("dropout 0.2", 0.8, 0.75)])
    assert "narrows the gap by 0.250" in text and "best held-out accuracy is dropout 0.2's" in text
    assert "does not call" not in text and "calls the unremedied run `good_fit`" in text
    worse = overfitting.conclude([row("no remedy", 0.8, 0.75, "overfitting"), row("dropout 0.2", 0.9, 0.7)])
    assert "does not narrow the gap" in worse and "No remedy raised" in worse and "calls the unremedied" not in worse
    named = overfitting.conclude([row("no remedy", 1.0, 0.7, "generalization_gap"), row("dropout 0.2", 0.8, 0.75)])
    assert "calls the unremedied" not in named  # the gap rule names it
