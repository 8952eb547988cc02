"""The ``vanishing-gradients`` lesson: deep sigmoid + Xavier starves its first layer; ReLU + He and the
residual MLP do not, and they learn where it does not."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import trainlab.lessons.vanishing_gradients as lesson_mod


@pytest.fixture(scope="module")
def outcome(lesson_run):
    md, result = lesson_run("vanishing-gradients")
    return md.parent, result.results["models"], result


def test_sigmoid_gradients_vanish_and_residual_or_relu_he_keep_them(outcome) -> None:
    _, m, _ = outcome
    sig, wide = m["sigmoid MLP, Xavier"]["ratio_init"], m["sigmoid MLP, N(0, 1)"]["ratio_init"]
    relu, res = m["ReLU MLP, He"]["ratio_init"], m["residual MLP, sigmoid, Xavier"]["ratio_init"]
    assert sig < 1e-4
    assert sig < 1e-3 * relu and sig < 1e-3 * res  # the same sigmoid + Xavier with identity paths
    assert wide < relu


def test_relu_he_learns_where_the_vanishing_sigmoid_net_does_not(outcome) -> None:
    _, m, _ = outcome
    assert m["ReLU MLP, He"]["val_acc"] > m["sigmoid MLP, Xavier"]["val_acc"] + 0.2


def test_xavier_sigmoid_loses_about_the_sigmoid_slope_per_layer_and_wins_when_shallow(outcome) -> None:
    _, m, result = outcome
    per_layer = m["sigmoid MLP, Xavier"]["ratio_init"] ** (1 / lesson_mod.DEPTH)
    assert 0.1 < per_layer < 0.35  # ≈ σ'(0) = 1/4 per layer
    shallow = result.results["shallow"]
    assert shallow["sigmoid MLP, Xavier"]["test_acc"] > shallow["sigmoid MLP, N(0, 1)"]["test_acc"] + 0.05
    assert shallow["sigmoid MLP, N(0, 1)"]["saturated_init"] > 0.5 > shallow["sigmoid MLP, Xavier"]["saturated_init"]
    assert "Xavier wins" in result.conclusion


def test_layer_grad_norms_match_autograd_by_hand() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    norms = lesson_mod.layer_grad_norms(model, x, y)
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), [model[0].weight, model[2].weight])
    assert list(norms) == ["0", "2"]
    assert norms["0"] == pytest.approx(float(grads[0].norm()))
    assert norms["2"] == pytest.approx(float(grads[1].norm()))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # leaves no gradient behind


def test_lesson_files(outcome) -> None:
    out, m, _ = outcome
    payload = json.loads((out / "results.json").read_text())
    assert set(payload["results"]["models"]) == set(lesson_mod.MODELS)
    assert (out / "grad_norms.png").stat().st_size > 10_000
    assert len(list((out / "runs").iterdir())) == len(lesson_mod.MODELS) + 2  # one ordinary run per net, 2 shallow
