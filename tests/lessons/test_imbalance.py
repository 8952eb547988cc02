"""Lesson imbalance: one class 30× rarer; accuracy hides it, the balanced accuracy and the verdict do not."""
from __future__ import annotations

import pytest

import trainlab.lessons.imbalance as imbalance
from tests.conftest import needs_fashion


@pytest.mark.e2e
@needs_fashion
def test_accuracy_hides_the_rare_class_and_class_weights_recall_more_of_it(lesson_run):
    md, out = lesson_run("imbalance")
    plain, weighted = (out.results["runs"][k] for k in imbalance.RUNS)
    assert "class_imbalance" in plain["rules"]  # named before training
    assert plain["acc"] > plain["balanced_acc"] and plain["rare_recall"] < 0.5  # held-out in training's proportions
    assert weighted["rare_recall"] > plain["rare_recall"]
    assert "class_imbalance" not in weighted["rules"]  # the fix in place
    assert (md.parent / "imbalance.png").stat().st_size > 10_000
    assert f"{plain['acc']:.3f}" in out.conclusion and f"{weighted['rare_recall']:.2f}" in out.conclusion


def test_the_held_out_images_keep_the_training_proportions_and_never_overlap(monkeypatch):
    import torch

    from trainlab.lessons import fashion_subset

    class Split:
        def __init__(self, y):
            self.y, self.x = y, y.float().view(-1, 1, 1, 1)

        def subset(self, idx):
            return Split(self.y[idx])

        def unit_pixels(self):
            return self

        def __len__(self):
            return len(self.y)

    class Raw:
        train, class_names = Split(torch.arange(10).repeat(1000)), [f"c{i}" for i in range(10)]

    monkeypatch.setattr(imbalance, "_raw", lambda seed: Raw())
    (x, y), (xh, yh), names = imbalance.imbalanced_subsets(40, 4, 20, seed=0)
    counts, held = torch.bincount(y, minlength=10), torch.bincount(yh, minlength=10)
    assert counts[imbalance.RARE] == 4 and all(counts[c] == 40 for c in range(10) if c != imbalance.RARE)
    assert held[imbalance.RARE] == 2 and all(held[c] == 20 for c in range(10) if c != imbalance.RARE)
    assert names[imbalance.RARE] == "c6" and fashion_subset is not None


def test_conclusion_follows_the_numbers():
    names = [f"c{i}" for i in range(10)]

    def row(acc, bal, rare, rules=()):
        return {"run": "r", "acc": acc, "balanced_acc": bal, "macro_f1": bal, "rare_recall": rare,
                "verdict": (list(rules) or ["good_fit"])[0], "rules": list(rules)}

    text = imbalance.conclude([row(0.87, 0.79, 0.0, ["class_imbalance"]), row(0.86, 0.8, 0.2)], names, 30)
    assert "recalls only 0.00 of the 'c6' images" in text and "0.080 lower: what accuracy hides" in text
    assert "names the imbalance" in text and "raise the 'c6' recall to 0.20 (+0.20)" in text
    assert "come partly from the classes it is confused with" in text
    quiet = imbalance.conclude([row(0.8, 0.8, 0.3), row(0.8, 0.8, 0.3)], names, 30)
    assert "does not name the imbalance" in quiet and "do not raise" in quiet and "what accuracy hides" not in quiet
