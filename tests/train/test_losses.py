"""Losses by name: each registered loss agrees with its formula written out by hand, in value and gradient.

micrograd-style: the same loss is computed twice (the registered ``Loss.fn`` and an explicit formula on a
small hand-made batch) and both the values and the gradients w.r.t. the model outputs must match.
"""
from __future__ import annotations

import math
from typing import Callable

import pytest
import torch

from trainlab.config import OptimizerConfig
from trainlab.errors import ConfigError
from trainlab.registry import LOSSES
from trainlab.train.losses import Loss, on_probabilities, predict_classes, resolve_loss, weight_penalty, weighted
from trainlab.train.optim import make_optimizer

Tensor = torch.Tensor

# A hand-made batch. Multi-class: 4 examples, 3 classes. Binary: 6 scores, none on a kink of the hinge
# (y·s = 1) or of the perceptron loss (y·s = 0), so every gradient is well defined; both active and
# inactive points are present.
MULTI_OUT = torch.tensor([[2.0, -1.0, 0.5],
                          [0.1, 0.2, 0.3],
                          [-1.0, 3.0, 0.0],
                          [0.7, 0.6, -2.0]])  # (4, 3)
MULTI_Y = torch.tensor([0, 2, 1, 1])  # (4,) int64 class ids
BIN_OUT = torch.tensor([[2.0], [-0.5], [0.3], [-1.5], [0.8], [-0.2]])  # (6, 1) one score each
BIN_Y = torch.tensor([1, 1, 0, 0, 1, 0])  # (6,) class ids 0/1
BIN_PM = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0, -1.0])  # the same labels written as ±1


def _manual_cross_entropy(out: Tensor, y: Tensor) -> Tensor:
    # -log softmax(out)[y], with log-softmax spelled out: out_y - log Σ_j exp(out_j)
    log_z = torch.log(torch.exp(out).sum(dim=1))
    picked = torch.stack([out[i, int(y[i])] for i in range(len(y))])
    return -(picked - log_z).mean()


def _manual_mse_classification(out: Tensor, y: Tensor) -> Tensor:
    one_hot = torch.eye(out.shape[1])[y]  # (N, C)
    return ((out - one_hot) ** 2).sum() / out.numel()


def _manual_bce(out: Tensor, y: Tensor) -> Tensor:
    s, t = out[:, 0], y.to(torch.float32)
    p = 1 / (1 + torch.exp(-s))
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


def _manual_hinge(out: Tensor, y: Tensor) -> Tensor:
    margin = 1 - BIN_PM * out[:, 0]
    return (margin * (margin > 0)).mean()


def _manual_perceptron(out: Tensor, y: Tensor) -> Tensor:
    neg = -BIN_PM * out[:, 0]
    return (neg * (neg > 0)).mean()


# name -> (outputs, labels, formula)
REFERENCE: dict[str, tuple[Tensor, Tensor, Callable[[Tensor, Tensor], Tensor]]] = {
    "cross_entropy": (MULTI_OUT, MULTI_Y, _manual_cross_entropy),
    "mse": (MULTI_OUT, MULTI_Y, _manual_mse_classification),
    "bce": (BIN_OUT, BIN_Y, _manual_bce),
    "hinge": (BIN_OUT, BIN_Y, _manual_hinge),
    "perceptron": (BIN_OUT, BIN_Y, _manual_perceptron),
}
LOSS_NAMES = [n for n in LOSSES.names() if n != "auto"]
BINARY = {"bce", "hinge", "perceptron"}


def test_every_registered_loss_has_a_reference_formula() -> None:
    # A new loss must come with a hand-written formula here, or this fails.
    assert set(LOSS_NAMES) == set(REFERENCE)
    for name in LOSS_NAMES:
        loss = LOSSES.get(name)
        assert isinstance(loss, Loss) and loss.name == name
        assert loss.binary == (name in BINARY), name
        assert LOSSES.help(name) and "\n" not in LOSSES.help(name), name


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_value_and_gradient_match_the_hand_written_formula(name: str) -> None:
    out, y, formula = REFERENCE[name]
    out1, out2 = out.clone().requires_grad_(), out.clone().requires_grad_()
    got, want = LOSSES.get(name).fn(out1, y), formula(out2, y)
    assert got.ndim == 0
    torch.testing.assert_close(got, want)
    (g1,) = torch.autograd.grad(got, out1)
    (g2,) = torch.autograd.grad(want, out2)
    assert g1.abs().sum() > 0, "the hand-made batch must produce a non-zero gradient"
    torch.testing.assert_close(g1, g2)


def test_known_values_of_the_binary_losses() -> None:
    # Written out per point: y·s = [2, -0.5, -0.3, 1.5, 0.8, 0.2]
    ys = [2.0, -0.5, -0.3, 1.5, 0.8, 0.2]
    hinge = sum(max(0.0, 1 - v) for v in ys) / 6
    perceptron = sum(max(0.0, -v) for v in ys) / 6
    bce = sum(math.log1p(math.exp(-v)) for v in ys) / 6  # -log σ(y·s) for y = ±1
    assert LOSSES.get("hinge").fn(BIN_OUT, BIN_Y).item() == pytest.approx(hinge, rel=1e-6)
    assert LOSSES.get("perceptron").fn(BIN_OUT, BIN_Y).item() == pytest.approx(perceptron, rel=1e-6)
    assert LOSSES.get("bce").fn(BIN_OUT, BIN_Y).item() == pytest.approx(bce, rel=1e-6)


def test_mse_regression_matches_the_mean_of_squares_and_accepts_flat_targets() -> None:
    out = torch.tensor([[1.0], [2.0], [-0.5]], requires_grad=True)  # (3, 1)
    y = torch.tensor([0.5, 2.5, 0.0])  # (3,) float targets, as a regression split holds them
    got = LOSSES.get("mse").fn(out, y)
    want = ((0.5 ** 2) + (0.5 ** 2) + (0.5 ** 2)) / 3
    assert got.item() == pytest.approx(want)
    (g,) = torch.autograd.grad(got, out)
    torch.testing.assert_close(g, (2 / 3) * (out.detach() - y[:, None]))


def test_resolve_auto_picks_by_task() -> None:
    assert resolve_loss("auto", "classification", 10) is LOSSES.get("cross_entropy")
    assert resolve_loss("auto", "regression", None) is LOSSES.get("mse")
    assert resolve_loss("mse", "classification", 5) is LOSSES.get("mse")
    for name in BINARY:
        assert resolve_loss(name, "classification", 2) is LOSSES.get(name)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_loss_with_three_classes_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^loss\.name '{name}' must be used with 2 classes\. Got 3 classes\."):
        resolve_loss(name, "classification", 3)


@pytest.mark.parametrize("name", ["cross_entropy", "bce", "hinge", "perceptron"])
def test_classification_loss_on_regression_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^loss\.name must suit a regression dataset\. Got '{name}'\. Use mse\.$"):
        resolve_loss(name, "regression", None)


def test_unknown_loss_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^loss\.name must be one of .*Did you mean 'hinge'\?$"):
        resolve_loss("hinj", "classification", 2)


def test_n_outputs() -> None:
    assert LOSSES.get("cross_entropy").n_outputs("classification", 10, 1) == 10
    assert LOSSES.get("mse").n_outputs("classification", 4, 1) == 4
    assert LOSSES.get("mse").n_outputs("regression", None, 3) == 3
    for name in BINARY:
        assert LOSSES.get(name).n_outputs("classification", 2, 1) == 1


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_predict_classes(name: str) -> None:
    out, y, _ = REFERENCE[name]
    if name in BINARY:
        want = torch.tensor([1 if float(s) > 0 else 0 for s in out[:, 0]])  # the sign of the score is the class
    else:
        want = torch.tensor([max(range(out.shape[1]), key=lambda j: float(row[j])) for row in out])
    got = predict_classes(LOSSES.get(name), out)
    assert got.dtype == torch.int64 and got.shape == (len(out),)
    assert torch.equal(got, want)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_probabilities_sum_to_one_and_agree_with_the_prediction(name: str) -> None:
    out, _, _ = REFERENCE[name]
    loss = LOSSES.get(name)
    probs = loss.probabilities(out)
    if name not in {"cross_entropy", "bce"}:
        assert probs is None  # hinge/perceptron/mse scores are not probabilities
        return
    assert probs.shape == (len(out), 2 if name == "bce" else out.shape[1])
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(len(out)))
    assert bool((probs >= 0).all())
    if name == "cross_entropy":
        e = torch.exp(out)
        torch.testing.assert_close(probs, e / e.sum(dim=1, keepdim=True))
    else:
        p1 = 1 / (1 + torch.exp(-out[:, 0]))
        torch.testing.assert_close(probs, torch.stack([1 - p1, p1], dim=1))
    assert torch.equal(probs.argmax(dim=1), predict_classes(loss, out))


@pytest.mark.parametrize(("l1", "l2"), [(0.3, 0.7), (0.25, 0.0), (0.0, 1.5)])
def test_weight_penalty_value_and_gradient_match_the_formula(l1: float, l2: float) -> None:
    w1 = torch.tensor([[0.5, -1.0], [2.0, -0.25]], requires_grad=True)
    w2 = torch.tensor([[-3.0, 0.75, 1.0]], requires_grad=True)
    got = weight_penalty([w1, w2], l1, l2)
    flat = [0.5, -1.0, 2.0, -0.25, -3.0, 0.75, 1.0]
    want = l1 * sum(abs(v) for v in flat) + l2 / 2 * sum(v * v for v in flat)
    assert got.item() == pytest.approx(want, rel=1e-6)
    g1, g2 = torch.autograd.grad(got, [w1, w2])
    for w, g in ((w1, g1), (w2, g2)):
        torch.testing.assert_close(g, l1 * torch.sign(w.detach()) + l2 * w.detach())


def test_weight_penalty_is_zero_when_off() -> None:
    w = torch.tensor([[1.0, -2.0]], requires_grad=True)
    assert weight_penalty([w], 0.0, 0.0).item() == 0.0


def _perceptron_sgd_step(w: Tensor, x: Tensor, label: int) -> Tensor:
    """One SGD step (lr 1, batch 1) on the registered perceptron loss; returns the new weights."""
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w[None])
    opt = make_optimizer(model.parameters(), OptimizerConfig(name="sgd", lr=1.0))
    loss = LOSSES.get("perceptron").fn(model(x[None]), torch.tensor([label]))  # (1, 2) → (1, 1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return model.weight.detach()[0].clone()


def test_sgd_on_the_perceptron_loss_is_the_perceptron_rule_on_a_mistake() -> None:
    w, x = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])  # w·x = -1.5: class 0 predicted
    torch.testing.assert_close(_perceptron_sgd_step(w, x, 1), w + x)  # y = +1: w += y x
    w = torch.tensor([1.0, 2.0])  # w·x = 2.5: class 1 predicted
    torch.testing.assert_close(_perceptron_sgd_step(w, x, 0), w - x)  # y = -1: w += y x


def test_sgd_on_the_perceptron_loss_leaves_a_correct_point_alone() -> None:
    x = torch.tensor([0.5, 1.0])
    w = torch.tensor([1.0, 2.0])  # w·x = 2.5 > 0, label 1: correct
    assert torch.equal(_perceptron_sgd_step(w, x, 1), w)
    w = torch.tensor([1.0, -2.0])  # w·x = -1.5 < 0, label 0: correct
    assert torch.equal(_perceptron_sgd_step(w, x, 0), w)


def test_sgd_on_the_perceptron_loss_reproduces_rosenblatts_algorithm_from_zero() -> None:
    # Classic perceptron, written out: start at w = 0, update w += y x whenever y·(w·x) <= 0.
    xs = torch.tensor([[2.0, 1.0], [-1.0, -3.0], [1.0, -1.0], [-2.0, 2.0], [3.0, 1.0], [-1.0, 1.0]])
    labels = [1, 0, 1, 0, 1, 0]
    w_ref = torch.zeros(2)
    w_sgd = torch.zeros(2)
    for _ in range(3):
        for x, label in zip(xs, labels):
            y = 1.0 if label == 1 else -1.0
            if y * float(w_ref @ x) <= 0:
                w_ref = w_ref + y * x
            w_sgd = _perceptron_sgd_step(w_sgd, x, label)
            torch.testing.assert_close(w_sgd, w_ref)
    assert w_ref.abs().sum() > 0


# --- loss.from_logits=false: a model that ends in a softmax / sigmoid -------------------------------------------

def _grad_of(fn: Callable[[Tensor], Tensor], out: Tensor) -> tuple[Tensor, Tensor]:
    out = out.clone().requires_grad_(True)
    value = fn(out)
    value.backward()
    return value.detach(), out.grad


def test_cross_entropy_on_probabilities_equals_cross_entropy_on_their_logits() -> None:
    ce = LOSSES.get("cross_entropy")
    on_p = on_probabilities(ce)
    v_logits, g_logits = _grad_of(lambda z: ce.fn(z, MULTI_Y), MULTI_OUT)
    v_probs, g_probs = _grad_of(lambda z: on_p.fn(z.softmax(1), MULTI_Y), MULTI_OUT)  # softmax inside the model
    torch.testing.assert_close(v_probs, v_logits)
    torch.testing.assert_close(g_probs, g_logits)  # the same learning signal reaches the layer before the softmax
    probs = MULTI_OUT.softmax(1)
    assert torch.equal(on_p.probabilities(probs), probs) and torch.equal(on_p.predict(probs), ce.predict(MULTI_OUT))
    # a probability of exactly 0 is clamped to PROB_EPS: a finite loss (Keras clips the same way)
    assert math.isfinite(on_p.fn(torch.tensor([[1.0, 0.0]]), torch.tensor([1])).item())


def test_bce_on_a_probability_equals_bce_on_its_logit_and_predicts_above_one_half() -> None:
    bce, y = LOSSES.get("bce"), torch.tensor([1, 0, 1, 0, 0, 1])
    on_p = on_probabilities(bce)
    v_logit, g_logit = _grad_of(lambda z: bce.fn(z, y), BIN_OUT)
    v_prob, g_prob = _grad_of(lambda z: on_p.fn(torch.sigmoid(z), y), BIN_OUT)
    torch.testing.assert_close(v_prob, v_logit)
    torch.testing.assert_close(g_prob, g_logit)
    p = torch.sigmoid(BIN_OUT)
    assert torch.equal(on_p.predict(p), bce.predict(BIN_OUT))  # p > 0.5 exactly where the logit > 0
    torch.testing.assert_close(on_p.probabilities(p), bce.probabilities(BIN_OUT))


def test_class_weights_apply_to_probabilities_too() -> None:
    ce = LOSSES.get("cross_entropy")
    w = [1.0, 3.0, 0.5]
    plain = weighted(ce, w, MULTI_Y, 3, torch.device("cpu"))
    on_p = weighted(on_probabilities(ce), w, MULTI_Y, 3, torch.device("cpu"))
    torch.testing.assert_close(on_p.fn(MULTI_OUT.softmax(1), MULTI_Y), plain.fn(MULTI_OUT, MULTI_Y))
    assert on_p.from_logits is False


@pytest.mark.parametrize("name", ["mse", "hinge", "perceptron"])
def test_from_logits_false_is_refused_for_losses_without_probabilities(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^loss\.from_logits must be true for loss '{name}'\. Got False\. Only "):
        on_probabilities(LOSSES.get(name))


@pytest.mark.parametrize("given, sets", [
    (torch.nn.CrossEntropyLoss(), {"loss.name": "cross_entropy", "loss.from_logits": True}),
    (torch.nn.CrossEntropyLoss, {"loss.name": "cross_entropy", "loss.from_logits": True}),
    (torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 4.0])),
     {"loss.name": "cross_entropy", "loss.from_logits": True, "loss.class_weights": [1.0, 4.0]}),
    (torch.nn.CrossEntropyLoss(label_smoothing=0.1),
     {"loss.name": "cross_entropy", "loss.from_logits": True, "loss.label_smoothing": 0.1}),
    (torch.nn.NLLLoss(), {"loss.name": "cross_entropy", "loss.from_logits": True}),
    (torch.nn.MSELoss(), {"loss.name": "mse", "loss.from_logits": True}),
    (torch.nn.BCEWithLogitsLoss(), {"loss.name": "bce", "loss.from_logits": True}),
    (torch.nn.BCELoss(), {"loss.name": "bce", "loss.from_logits": False}),
    (torch.nn.functional.cross_entropy, {"loss.name": "cross_entropy", "loss.from_logits": True}),
    (torch.nn.functional.mse_loss, {"loss.name": "mse", "loss.from_logits": True}),
    ("cross_entropy", None), (None, None),
])
def test_a_torch_loss_becomes_ours(given, sets):
    from trainlab.train.losses import from_torch

    assert from_torch(given) == sets


def test_nll_on_a_log_softmax_model_is_our_cross_entropy_on_it():
    """PyTorch's tutorials end a model in LogSoftmax and train it with NLLLoss: trainlab's cross_entropy on those
    outputs is the same loss, value and gradient (log_softmax of log-probabilities changes nothing)."""
    from trainlab.train.losses import LOSSES

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (32,), generator=g)
    out = torch.log_softmax(logits, dim=1)
    theirs = torch.nn.NLLLoss()(out, y)
    ours = LOSSES.get("cross_entropy").fn(out, y)
    assert torch.allclose(theirs, ours, atol=1e-6)
    g1, = torch.autograd.grad(theirs, logits, retain_graph=True)
    g2, = torch.autograd.grad(ours, logits)
    assert torch.allclose(g1, g2, atol=1e-6)


@pytest.mark.parametrize("given, said", [
    (torch.nn.MSELoss(reduction="sum"), r"without reduction\. Got reduction='sum'\."),
    (torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0])), r"without pos_weight\. Got pos_weight=\[3\.0\]\."),
    (torch.nn.HuberLoss(), r"^loss must be one of trainlab's losses \(auto, .*\) or the torch loss of one "
                           r"\(nn\.CrossEntropyLoss, .*\)\. Got HuberLoss\. Use one of those"),
    (lambda out, y: out.sum(), r"Got <lambda>\."),
])
def test_a_torch_loss_trainlab_has_no_equivalent_for_is_one_line(given, said):
    from trainlab.errors import ConfigError
    from trainlab.train.losses import from_torch

    with pytest.raises(ConfigError, match=said) as err:
        from_torch(given)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec, names, n, weights", [
    ({1: 3.0}, None, 3, [1.0, 3.0, 1.0]),  # Keras' class_weight: ids; a class left out weighs 1
    ({"1": 3.0, 0: 0.5}, None, 2, [0.5, 3.0]),  # a key read back from YAML as text
    ({"pos": 3.0, "neg": 0.5}, ["neg", "pos"], 2, [0.5, 3.0]),  # scikit-learn's: the labels as the data gives them
    ({5: 2.0}, ["0", "1", "5"], 3, [1.0, 1.0, 2.0]),  # label 5 is the third class, not id 5
    ({2: 2.0}, ["T-shirt", "Trouser", "Pullover"], 3, [1.0, 1.0, 2.0]),  # named classes still take ids
])
def test_a_class_weight_dict_becomes_one_weight_per_class(spec, names, n, weights):
    from trainlab.train.losses import weights_by_class

    assert weights_by_class(spec, names, n) == weights


@pytest.mark.parametrize("spec, said", [
    ({"cat": 1.0}, r"^loss\.class_weights must be keyed by the data's classes: ids 0 to 1 or the names 'neg', 'pos'\. "
                   r"Got 'cat': 1\.0\. Key each weight by one of those\.$"),
    ({7: 1.0}, r"Got 7: 1\.0\."), ({"pos": -1.0}, r"^loss\.class_weights must be weights >= 0\. Got 'pos': -1\.0\."),
])
def test_a_class_weight_dict_with_an_unknown_class_or_a_negative_weight_is_one_line(spec, said):
    from trainlab.errors import ConfigError
    from trainlab.train.losses import weights_by_class

    with pytest.raises(ConfigError, match=said):
        weights_by_class(spec, ["neg", "pos"], 2)


def _smoothed_by_hand(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Cross-entropy against the smoothed target (1 - ε)·onehot + ε/C, written out."""
    c = logits.shape[1]
    target = torch.nn.functional.one_hot(y, c).float() * (1 - eps) + eps / c  # (N, C)
    return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.4])
def test_smoothed_cross_entropy_value_and_gradient_match_the_smoothed_target_written_out(eps: float) -> None:
    from trainlab.train.losses import smoothed

    g = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 6, generator=g, requires_grad=True)
    y = torch.randint(0, 6, (40,), generator=g)
    loss = smoothed(resolve_loss("cross_entropy", "classification", 6), eps)
    ours, theirs = loss.fn(logits, y), _smoothed_by_hand(logits, y, eps)
    assert loss.label_smoothing == eps
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert not torch.allclose(ours, LOSSES.get("cross_entropy").fn(logits, y))
    g1, = torch.autograd.grad(ours, logits)
    g2, = torch.autograd.grad(_smoothed_by_hand(logits, y, eps), logits)
    assert torch.allclose(g1, g2, atol=1e-6)
    # on probabilities (loss.from_logits=false, a model ending in a softmax) it is the same loss
    on_p = smoothed(on_probabilities(resolve_loss("cross_entropy", "classification", 6)), eps)
    assert torch.allclose(on_p.fn(logits.softmax(1), y), theirs, atol=1e-5)


def test_smoothed_cross_entropy_with_class_weights_is_torchs() -> None:
    from trainlab.train.losses import smoothed

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(30, 3, generator=g)
    y = torch.randint(0, 3, (30,), generator=g)
    w = [1.0, 3.0, 0.5]
    loss = weighted(smoothed(resolve_loss("cross_entropy", "classification", 3), 0.2), w, y, 3, torch.device("cpu"))
    want = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=0.2)(logits, y)
    assert torch.allclose(loss.fn(logits, y), want, atol=1e-6)
    probs = weighted(smoothed(on_probabilities(resolve_loss("cross_entropy", "classification", 3)), 0.2), w, y, 3,
                     torch.device("cpu"))
    assert torch.allclose(probs.fn(logits.softmax(1), y), want, atol=1e-5)


def test_smoothed_bce_moves_each_label_eps_over_2_towards_the_other_class() -> None:
    from trainlab.train.losses import smoothed

    g = torch.Generator().manual_seed(3)
    out = torch.randn(25, 1, generator=g)
    y = torch.randint(0, 2, (25,), generator=g)
    soft = y.float() * 0.8 + 0.1  # ε = 0.2: 1 → 0.9, 0 → 0.1
    want = -(soft * torch.log(torch.sigmoid(out[:, 0])) + (1 - soft) * torch.log(1 - torch.sigmoid(out[:, 0]))).mean()
    assert torch.allclose(smoothed(LOSSES.get("bce"), 0.2).fn(out, y), want, atol=1e-6)
    on_p = smoothed(on_probabilities(LOSSES.get("bce")), 0.2)
    assert torch.allclose(on_p.fn(torch.sigmoid(out), y), want, atol=1e-5)


@pytest.mark.parametrize("name", ["mse", "hinge", "perceptron"])
def test_label_smoothing_on_a_loss_without_class_targets_is_one_line(name: str) -> None:
    from trainlab.train.losses import smoothed

    with pytest.raises(ConfigError, match=rf"^loss\.label_smoothing must be 0 for loss '{name}'\. Got 0\.1\. "
                                          r"Smoothing softens class labels: use it with cross_entropy or bce"):
        smoothed(LOSSES.get(name), 0.1)
    assert smoothed(LOSSES.get(name), 0.0) is LOSSES.get(name)
