"""The ``optimizers`` lesson: SGD zig-zags across the valley, AdaGrad never crosses it and ends closest."""
from __future__ import annotations

import json

import pytest
import torch

import trainlab.lessons.optimizers as lesson_mod
from trainlab.config import OptimizerConfig
from trainlab.lessons.base import run_lesson


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers")
    md, result = run_lesson("optimizers", out, seed=0, quick=True)
    return out, md, result


def test_sgd_zig_zags_while_adagrad_never_crosses_and_ends_closest(outcome) -> None:
    _, _, result = outcome
    final = result.results["final"]
    assert final["SGD"]["y_sign_flips"] >= 0.9 * lesson_mod.STEPS
    assert final["AdaGrad"]["y_sign_flips"] == 0
    assert result.results["closest"] == "AdaGrad"
    assert all(final["AdaGrad"]["f"] < v["f"] for k, v in final.items() if k != "AdaGrad")
    assert "AdaGrad ends closest to the minimum" in result.conclusion


def test_sgd_trajectory_matches_the_update_rule_by_hand() -> None:
    # f = x²/20 + y², so one SGD step is x ← x·(1 − lr/10), y ← y·(1 − 2·lr).
    lr, steps = 0.95, 5
    path = lesson_mod.trajectory(OptimizerConfig(name="sgd", lr=lr), (-7.0, 2.0), steps)
    k = torch.arange(steps + 1, dtype=torch.float32)
    expected = torch.stack([-7.0 * (1 - lr / 10) ** k, 2.0 * (1 - 2 * lr) ** k], 1)
    torch.testing.assert_close(path, expected)


def test_sign_flips_counts_changes_of_sign() -> None:
    assert lesson_mod.sign_flips(torch.tensor([1.0, -1.0, -2.0, 3.0, 0.5])) == 2


def test_lesson_files_hold_the_measured_numbers(outcome) -> None:
    out, md, result = outcome
    payload = json.loads((out / "results.json").read_text())
    assert payload["results"]["final"]["AdaGrad"]["f"] == pytest.approx(result.results["final"]["AdaGrad"]["f"])
    assert len(payload["results"]["trajectories"]["SGD"]) == lesson_mod.STEPS + 1
    assert (out / "trajectories.png").stat().st_size > 10_000
    assert f"{result.results['final']['AdaGrad']['f']:.4g}" in md.read_text()
