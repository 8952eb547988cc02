"""The ``polynomial`` lesson: a line underfits the cubic; degree 9 through ten sine points overfits and L2 helps."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import trainlab.lessons.polynomial as lesson_mod


@pytest.fixture(scope="module")
def outcome(lesson_run):
    md, result = lesson_run("polynomial")
    return md.parent, result.results


def test_linear_test_loss_far_above_the_cubics(outcome) -> None:
    _, r = outcome
    assert r["cubic"]["linear"]["test_loss"] > 10 * r["cubic"]["cubic"]["test_loss"]
    assert r["cubic"]["linear"]["train_loss"] > 5 * r["cubic"]["cubic"]["train_loss"]  # underfit, not overfit
    assert len(r["cubic"]["cubic"]["test_curve"]) == r["epochs"]  # the held-out curve, every epoch


def test_sine_degree_9_fits_the_points_tests_worse_and_l2_helps(outcome) -> None:
    _, r = outcome
    sin, l2 = r["sin"], r["sin_l2"]
    trains = [sin[lesson_mod.sin_key(m, 0.0)]["train_loss"] for m in lesson_mod.SIN_DEGREES]
    assert trains == sorted(trains, reverse=True)
    top, cubic, reg = sin["M=9"], sin["M=3"], sin[lesson_mod.sin_key(9, l2)]
    assert top["train_loss"] < 0.01 * cubic["train_loss"]
    assert top["test_loss"] > 2 * cubic["test_loss"]
    assert sin["M=0"]["test_loss"] > 2 * cubic["test_loss"]
    assert reg["test_loss"] < 0.5 * top["test_loss"]
    assert np.linalg.norm(reg["weights"]) < np.linalg.norm(top["weights"])


def test_features_by_hand() -> None:
    x = np.array([2.0, -1.0])
    expected = torch.tensor([[1, 2, 2, 8 / 6], [1, -1, 1 / 2, -1 / 6]], dtype=torch.float32)
    torch.testing.assert_close(lesson_mod.factorial_features(x, 4), expected)
    u = 2 * x - 1  # Legendre P0 = 1, P1 = u, P2 = (3u² − 1)/2, scaled by sqrt(2i + 1)
    by_hand = np.stack([np.ones_like(u), math.sqrt(3) * u, math.sqrt(5) * (3 * u ** 2 - 1) / 2], 1)
    torch.testing.assert_close(lesson_mod.legendre_features(x, 2), torch.tensor(by_hand, dtype=torch.float32))


def test_lesson_files(outcome) -> None:
    out, r = outcome
    payload = json.loads((out / "results.json").read_text())
    assert "model" not in payload["results"]["cubic"]["cubic"]
    for name in ("cubic_fits", "sin_fits"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert "held-out" in (out / "lesson.md").read_text()
