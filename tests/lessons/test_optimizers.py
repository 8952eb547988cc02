"""The ``optimizers`` lesson: SGD zig-zags across the valley, AdaGrad never crosses it and ends closest; on
Fashion-MNIST at the usual rates the other three learn faster than SGD, as the course says."""
from __future__ import annotations

import json

import pytest
import torch

import trainlab.lessons.optimizers as lesson_mod
from trainlab.config import OptimizerConfig


@pytest.fixture(scope="module")
def outcome(lesson_run):
    md, result = lesson_run("optimizers")
    return md.parent, md, result


def test_sgd_zig_zags_while_adagrad_never_crosses_and_ends_closest(outcome) -> None:
    _, _, result = outcome
    final = result.results["final"]
    assert final["SGD"]["y_sign_flips"] >= 0.9 * lesson_mod.STEPS
    assert final["AdaGrad"]["y_sign_flips"] == 0
    assert result.results["closest"] == "AdaGrad"
    assert all(final["AdaGrad"]["f"] < v["f"] for k, v in final.items() if k != "AdaGrad")
    assert "AdaGrad ends closest to the minimum" in result.conclusion


def test_on_fashion_mnist_the_other_three_learn_faster_than_sgd(outcome) -> None:
    _, _, result = outcome
    real = result.results["fashion_mnist"]
    assert all(real[n]["final_loss"] < 0.8 * real["SGD"]["final_loss"] for n in ("Momentum", "AdaGrad", "Adam"))
    assert all(real[n]["test_acc"] > real["SGD"]["test_acc"] for n in ("Momentum", "AdaGrad", "Adam"))
    assert "the course's claim holds" in result.conclusion and "ranks 2 of 4" in result.conclusion


def test_claim_wording_follows_the_numbers() -> None:
    def r(loss):
        return {"final_loss": loss, "test_acc": 0.5, "step_losses": [0.0] * 10}

    assert "claim holds" in lesson_mod.real_verdict({"SGD": r(1), "Momentum": r(0.5), "AdaGrad": r(0.6), "Adam": r(0.2)})
    text = lesson_mod.real_verdict({"SGD": r(1), "Momentum": r(0.5), "AdaGrad": r(1.2), "Adam": r(0.2)})
    assert "AdaGrad did not end below SGD's 1" in text and "does not hold" in text


def test_smooth_is_a_trailing_mean() -> None:
    from trainlab.lessons.fashion_subset import smooth

    assert smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


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
    assert (out / "fashion_mnist.png").stat().st_size > 10_000
    assert f"{result.results['final']['AdaGrad']['f']:.4g}" in md.read_text()
