"""The ``init-histograms`` lesson: N(0, 1) sigmoid saturates, small ReLU weights collapse, He keeps the scale."""
from __future__ import annotations

import json

import pytest
import torch

import trainlab.lessons.init_histograms as lesson_mod


@pytest.fixture(scope="module")
def outcome(lesson_run):
    md, result = lesson_run("init-histograms")
    return md.parent, result.results["settings"]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_unit_variance_sigmoid_saturates_more_than_xavier(outcome) -> None:
    _, s = outcome
    assert mean(s["sigmoid, N(0, 1)"]["saturated"]) > 0.5
    assert mean(s["sigmoid, Xavier"]["saturated"]) < 0.1
    assert s["sigmoid, N(0, 0.01²)"]["std"][-1] < 0.25 * s["sigmoid, Xavier"]["std"][-1]  # all ≈ 0.5


def test_relu_activations_collapse_with_small_weights_and_keep_their_scale_with_he(outcome) -> None:
    _, s = outcome
    he, xavier, small = (s[f"ReLU, {k}"]["std"] for k in ("He", "Xavier", "N(0, 0.01²)"))
    assert 0.5 < he[-1] / he[0] < 2
    assert xavier[-1] / xavier[0] < 0.5
    assert small[-1] < 1e-3 * he[-1]


def test_saturated_uses_the_lessons_thresholds() -> None:
    a = torch.tensor([0.05, 0.5, 0.95, 0.2])
    assert lesson_mod.saturated(a, "sigmoid") == pytest.approx(0.5)
    assert lesson_mod.saturated(torch.tensor([0.0, 0.0, 0.3, 1e-9]), "relu") == pytest.approx(0.5)


def test_layer_outputs_are_the_blocks_of_the_built_mlp() -> None:
    x = torch.randn(7, lesson_mod.WIDTH, generator=torch.Generator().manual_seed(1))
    outs = lesson_mod.layer_outputs(lesson_mod.Setting("t", "relu", "he"), x, seed=0)
    assert [tuple(a.shape) for a in outs] == [(7, lesson_mod.WIDTH)] * lesson_mod.DEPTH
    assert all((a >= 0).all() for a in outs)


def test_lesson_files(outcome) -> None:
    out, s = outcome
    payload = json.loads((out / "results.json").read_text())
    assert set(payload["results"]["settings"]) == {t.label for t in lesson_mod.SETTINGS}
    assert (out / "histograms.png").stat().st_size > 10_000
    assert "Xavier" in (out / "lesson.md").read_text()
