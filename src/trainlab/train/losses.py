"""Losses by name, each knowing which task it serves, how many outputs it needs and how to predict.

Binary losses (bce, hinge, perceptron) use one output unit: a score whose sign is the class.
The perceptron loss max(0, -y·s) has gradient -y·x on a mistake and 0 otherwise, so SGD with lr 1 and
batch size 1 on it *is* Rosenblatt's perceptron rule; hinge max(0, 1 - y·s) adds a margin.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError, Verbatim, problem
from trainlab.registry import LOSSES

Tensor = torch.Tensor


@dataclass(frozen=True)
class Loss:
    """A named loss: ``fn(out, y)`` → mean loss; ``predict(out)`` → class ids or values."""

    name: str
    tasks: tuple[str, ...]
    binary: bool  # needs exactly 2 classes and 1 output unit
    fn: Callable[[Tensor, Tensor], Tensor]
    predict: Callable[[Tensor], Tensor]
    from_logits: bool = True  # False: the model's outputs are already probabilities (see on_probabilities)
    # Each example's weight in the mean ``fn`` takes (class weights: weight[y]); None: all equal. A batch's mean
    # loss is then the mean of its parts' means weighted by their examples' total weight (train.loop.gradients).
    example_weight: Callable[[Tensor], Tensor] | None = None
    label_smoothing: float = 0.0  # ε of ``smoothed``: each target is (1 - ε)·its class + ε spread over all classes
    # The class ids a prediction is right against, from the targets ``fn`` takes; None: the targets themselves
    # (``mixed``: the dominant label of each (B, 2) pair)
    labels: Callable[[Tensor], Tensor] | None = None

    def n_outputs(self, task: str, n_classes: int | None, n_targets: int) -> int:
        if task == "regression":
            return n_targets
        return 1 if self.binary else int(n_classes or 0)

    def probabilities(self, out: Tensor) -> Tensor | None:
        """Class probabilities (N, C) for classification losses that define them, else None."""
        if self.name == "cross_entropy":
            return out.softmax(dim=1) if self.from_logits else out
        if self.name == "bce":
            p1 = torch.sigmoid(out[:, 0]) if self.from_logits else out[:, 0]
            return torch.stack([1 - p1, p1], dim=1)
        return None


def _signed(y: Tensor) -> Tensor:
    return y.to(torch.float32).mul(2).sub(1)  # class 0/1 → -1/+1


def _mse(out: Tensor, y: Tensor) -> Tensor:
    if y.dtype == torch.int64:  # classification with MSE: regress the one-hot vector, as early texts do
        return F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype))
    return F.mse_loss(out, y.view_as(out))


def _mse_predict(out: Tensor) -> Tensor:
    return out  # regression value; classification callers take argmax (see Loss.predict_classes)


def _sign_predict(out: Tensor) -> Tensor:
    return (out[:, 0] > 0).long()


LOSSES.add("auto", None, "cross_entropy for classification, mse for regression")
LOSSES.add("cross_entropy", Loss("cross_entropy", ("classification",), False, F.cross_entropy,
                                 lambda out: out.argmax(dim=1)), "softmax + negative log-likelihood")
LOSSES.add("mse", Loss("mse", ("regression", "classification"), False, _mse, _mse_predict),
           "mean squared error (one-hot targets for classification)")
LOSSES.add("bce", Loss("bce", ("classification",), True,
                       lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype)),
                       _sign_predict), "binary cross-entropy on one logit (2 classes)")
LOSSES.add("hinge", Loss("hinge", ("classification",), True,
                         lambda out, y: (1 - _signed(y) * out[:, 0]).clamp_min(0).mean(),
                         _sign_predict), "max(0, 1 - y·s), a margin perceptron / linear SVM (2 classes)")
LOSSES.add("perceptron", Loss("perceptron", ("classification",), True,
                              lambda out, y: (-_signed(y) * out[:, 0]).clamp_min(0).mean(),
                              _sign_predict), "max(0, -y·s): SGD on it is the perceptron rule (2 classes)")


def resolve_loss(name: str, task: str, n_classes: int | None) -> Loss:
    """The loss for ``name`` ('auto' picks by task), checked against the task: ConfigError otherwise."""
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    loss = LOSSES.get(name)
    if task not in loss.tasks:
        raise ConfigError(f"loss.name must suit a {task} dataset. Got {name!r}. "
                          f"Use {'mse' if task == 'regression' else 'cross_entropy'}.")
    if loss.binary and n_classes != 2:
        raise ConfigError(f"loss.name {name!r} must be used with 2 classes. Got {n_classes} classes. "
                          "Use cross_entropy for more classes.")
    return loss


# Probabilities are clamped to [PROB_EPS, 1 - PROB_EPS] before their log: a model's softmax can round a class to
# exactly 0 in float32, and log 0 would make the loss infinite (Keras clips at its epsilon, 1e-7, the same way).
PROB_EPS = 1e-7


def _nll_of_probabilities(out: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    return F.nll_loss(out.clamp_min(PROB_EPS).log(), y, weight=weight)


def _bce_of_probabilities(out: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy(out[:, 0].clamp(PROB_EPS, 1 - PROB_EPS), y.to(out.dtype))


def on_probabilities(loss: Loss) -> Loss:
    """``loss`` for a model whose outputs are already probabilities (``loss.from_logits=false``, Keras's
    ``from_logits=False``): cross-entropy takes their log instead of a log-softmax, bce uses the probability as
    is and predicts class 1 above 0.5. The same learning as logits into the usual loss, for a model that ends in
    a softmax or sigmoid (a user module written for inference)."""
    if loss.name == "cross_entropy":
        return replace(loss, fn=_nll_of_probabilities, from_logits=False)
    if loss.name == "bce":
        return replace(loss, fn=_bce_of_probabilities, predict=lambda out: (out[:, 0] > 0.5).long(), from_logits=False)
    raise ConfigError(problem("loss.from_logits", f"true for loss {loss.name!r}", False,
                              "Only cross_entropy and bce take probabilities; use one of them, or leave it true"))


def smoothed(loss: Loss, eps: float) -> Loss:
    """``loss`` towards smoothed targets (``loss.label_smoothing``, torch's and Keras' label_smoothing): for
    cross-entropy each example's target is (1 - ε)·its one-hot class + ε/C on every class, for bce the label is
    y·(1 - ε) + ε/2. On logits or probabilities alike (``on_probabilities`` first); ε = 0 gives ``loss`` as is."""
    if not eps:
        return loss
    if loss.name == "cross_entropy":
        if loss.from_logits:
            def fn(out: Tensor, y: Tensor) -> Tensor:
                return F.cross_entropy(out, y, label_smoothing=eps)
        else:
            def fn(out: Tensor, y: Tensor) -> Tensor:  # log p through log-softmax is log p: the same loss
                return F.cross_entropy(out.clamp_min(PROB_EPS).log(), y, label_smoothing=eps)
    elif loss.name == "bce":
        def fn(out: Tensor, y: Tensor) -> Tensor:
            soft = y.to(out.dtype) * (1 - eps) + eps / 2  # (N,)
            if loss.from_logits:
                return F.binary_cross_entropy_with_logits(out[:, 0], soft)
            return F.binary_cross_entropy(out[:, 0].clamp(PROB_EPS, 1 - PROB_EPS), soft)
    else:
        raise ConfigError(problem("loss.label_smoothing", f"0 for loss {loss.name!r}", eps,
                                  "Smoothing softens class labels: use it with cross_entropy or bce, or set it to 0"))
    return replace(loss, fn=fn, label_smoothing=eps)


def mixed(loss: Loss, lam: float) -> Loss:
    """``loss`` on a mixed batch (data.augment.mixup / cutmix): targets are (B, 2) label pairs and the loss is
    λ·loss(first) + (1 - λ)·loss(second), the cross-entropy towards the mixed one-hot target (linear in it); the
    accuracy counts the first, dominant label (λ ≥ 1/2). With class weights each label's loss is normalised by its
    own total weight, so the micro-batches of ``speed.micro_batch`` (weighted by their mixed weight) add up to the
    whole batch's loss only approximately; unweighted, exactly."""
    weigh = loss.example_weight

    def fn(out: Tensor, pair: Tensor) -> Tensor:
        return loss.fn(out, pair[:, 0]) * lam + loss.fn(out, pair[:, 1]) * (1 - lam)

    return replace(loss, fn=fn, labels=lambda pair: pair[:, 0],
                   example_weight=(lambda pair: weigh(pair[:, 0]) * lam + weigh(pair[:, 1]) * (1 - lam))
                   if weigh is not None else None)


def loss_for(name: str, from_logits: bool = True, label_smoothing: float = 0.0) -> Loss:
    """The registered loss ``name`` (a saved run's), on probabilities when ``from_logits`` is False, towards
    smoothed labels when ``label_smoothing`` > 0."""
    loss = LOSSES.get(name)
    return smoothed(loss if from_logits else on_probabilities(loss), label_smoothing)


def weighted(loss: Loss, spec: str | list[float] | None, y: Tensor | None, n_classes: int | None,
             device: torch.device) -> Loss:
    """``loss`` with per-class weights (``loss.class_weights``) held on ``device``: "balanced" gives class k the
    weight n / (C · n_k) from the training labels ``y`` (0 for a class without examples), a list gives them as is."""
    if spec is None:
        return loss
    if loss.name != "cross_entropy":
        raise ConfigError(f"loss.class_weights must be left unset for loss {loss.name!r}. Got {spec!r}. "
                          "Use loss.name=cross_entropy (classification), or remove loss.class_weights.")
    c = int(n_classes or 0)
    if spec == "balanced":
        if y is None:
            raise ConfigError("loss.class_weights must be a list for streamed data, whose labels are read only while "
                              "training. Got 'balanced'. Give one weight per class, e.g. [1.0, 5.0].")
        counts = torch.bincount(y.long().flatten().cpu(), minlength=c).double()
        w = torch.where(counts > 0, counts.sum() / (c * counts.clamp_min(1)), torch.zeros(()))
    else:
        if len(spec) != c or any(v < 0 for v in spec):
            raise ConfigError(f"loss.class_weights must be {c} weights >= 0, one per class. Got {spec!r}. "
                              "List one weight per class, or use 'balanced'.")
        w = torch.tensor(spec, dtype=torch.float64)
    weight = w.float().to(device)  # (C,) moved once: no copy per step, and a CUDA graph can capture the step

    eps = loss.label_smoothing

    def fn(out: Tensor, target: Tensor) -> Tensor:
        if not loss.from_logits:
            if eps:
                return F.cross_entropy(out.clamp_min(PROB_EPS).log(), target, weight=weight, label_smoothing=eps)
            return _nll_of_probabilities(out, target, weight)
        return F.cross_entropy(out, target, weight=weight, label_smoothing=eps)

    return replace(loss, fn=fn, example_weight=lambda target: weight[target])


def weights_by_class(spec: dict, class_names: list[str] | None, n_classes: int | None) -> list[float]:
    """A ``{class: weight}`` dict (Keras' and scikit-learn's class_weight) as loss.class_weights' list, one weight
    per class in order: a key is a class's name (its label as the data gives it) or, where no class has that name,
    its id 0..C-1; a class left out weighs 1."""
    n = int(n_classes or 0)
    names = [str(c) for c in (class_names or range(n))]
    out = [1.0] * n
    for key, w in spec.items():
        if str(key) in names:
            i = names.index(str(key))
        elif isinstance(key, int) and 0 <= key < n or isinstance(key, str) and key.isdigit() and int(key) < n:
            i = int(key)
        else:
            shown_names = ", ".join(repr(x) for x in names[:10]) + (", ..." if n > 10 else "")
            raise ConfigError(problem("loss.class_weights", f"keyed by the data's classes: ids 0 to {n - 1} or the "
                                      f"names {shown_names}", Verbatim(f"{key!r}: {w!r}"),
                                      "Key each weight by one of those"))
        if w < 0:
            raise ConfigError(problem("loss.class_weights", "weights >= 0", Verbatim(f"{key!r}: {w!r}"),
                                      "Give each class a weight of 0 or more"))
        out[i] = float(w)
    return out


# torch's losses that are one of ours: (name, from_logits). NLLLoss takes log-probabilities (a model ending in
# LogSoftmax, as PyTorch's tutorials build them): cross-entropy on those is the same loss, since log_softmax of
# log-probabilities changes nothing; BCELoss takes probabilities (a model ending in a sigmoid).
TORCH_LOSSES: dict[Any, tuple[str, bool]] = {
    nn.CrossEntropyLoss: ("cross_entropy", True), nn.NLLLoss: ("cross_entropy", True), nn.MSELoss: ("mse", True),
    nn.BCEWithLogitsLoss: ("bce", True), nn.BCELoss: ("bce", False),
    F.cross_entropy: ("cross_entropy", True), F.nll_loss: ("cross_entropy", True), F.mse_loss: ("mse", True),
    F.binary_cross_entropy_with_logits: ("bce", True), F.binary_cross_entropy: ("bce", False)}
# each loss module's settings that trainlab does not have, at the value that means "off"
_OFF = {"reduction": "mean", "ignore_index": -100, "pos_weight": None}


def from_torch(loss: Any) -> dict[str, Any] | None:
    """Config overrides for a torch loss passed as ``loss=`` (skorch's criterion, a Lightning module's
    ``nn.CrossEntropyLoss()``): its name and from_logits, a CrossEntropyLoss's / NLLLoss's ``weight`` as
    loss.class_weights and a CrossEntropyLoss's ``label_smoothing`` as loss.label_smoothing. None: not a torch
    loss (a name, say); ConfigError: one trainlab has no equivalent for."""
    key = loss if isinstance(loss, type) or not isinstance(loss, nn.Module) else type(loss)
    known = next((v for k, v in TORCH_LOSSES.items() if k is key), None)
    is_module = isinstance(key, type) and issubclass(key, nn.Module)
    if known is None:
        if is_module or callable(loss) and not isinstance(loss, str):
            what = key.__name__ if isinstance(key, type) else getattr(loss, "__name__", type(loss).__name__)
            raise ConfigError(problem("loss", f"one of trainlab's losses ({', '.join(LOSSES.names())}) or the torch "
                                      "loss of one (nn.CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss, BCELoss, "
                                      "or their torch.nn.functional forms)", Verbatim(what),
                                      "Use one of those: the verdict reads a run's loss by its name"))
        return None
    name, from_logits = known
    out: dict[str, Any] = {"loss.name": name, "loss.from_logits": from_logits}
    if isinstance(loss, nn.Module):
        on = [k for k, off in _OFF.items() if hasattr(loss, k) and _value(getattr(loss, k)) != off]
        if getattr(loss, "weight", None) is not None and name != "cross_entropy":
            on.append("weight")
        if on:
            got = Verbatim(", ".join(f"{k}={_value(getattr(loss, k))!r}" for k in on))
            hint = " (class weights: loss.class_weights)" if "weight" in on else ""
            raise ConfigError(problem("loss", f"a {key.__name__} without {', '.join(on)}", got,
                                      f"Build it without {' and '.join(on)}, which trainlab's {name} does not have{hint}"))
        if getattr(loss, "label_smoothing", 0.0):  # CrossEntropyLoss(label_smoothing=0.1): the same smoothing
            out["loss.label_smoothing"] = float(loss.label_smoothing)
        if getattr(loss, "weight", None) is not None:
            out["loss.class_weights"] = [float(w) for w in loss.weight.flatten()]
    return out


def _value(v: Any) -> Any:
    return None if v is None else v.tolist() if isinstance(v, Tensor) else v


def predict_classes(loss: Loss, out: Tensor) -> Tensor:
    """Class ids (N,) from model outputs for any classification loss."""
    pred = loss.predict(out)
    return pred.argmax(dim=1) if pred.ndim == 2 else pred


def weight_penalty(params: list[nn.Parameter], l1: float, l2: float) -> Tensor:
    """λ1·Σ|w| + λ2/2·Σw² over the given weights (callers pass weights, not biases)."""
    total = torch.zeros((), device=params[0].device)
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in params)
    if l2:
        total = total + (l2 / 2) * sum(p.pow(2).sum() for p in params)
    return total
