"""Fault-injection operators: each turns a healthy run of a base task into a faulty one, names the root cause it
injects (a trainlab rule id) and says how the script checks, by its own measurements, that the fault really
took effect. A run whose check fails is reported and left out, never relabelled.

Measurements a check reads (all computed by the benchmark, none by trainlab's verdict): ``val_score`` and
``train_score`` (accuracy, or R² for regression, of the final model via ``Run.predict``), ``train_loss`` (its
cross-entropy / MSE on the training split), ``constant_loss`` (the best constant predictor's), ``target`` (what a
healthy run must reach: 80 % of the way from chance to a k-NN's validation score on the clean data), ``knn_val``
(a k-NN's validation score on the data as the run got it), ``rows_equal``, ``grad_ratio``, ``softmax_rows``,
``val_loss_fell_last`` and ``nan`` (the run stopped on NaN/Inf).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from tasks import Task, UserSpec

Check = Callable[[dict[str, Any]], "str | None"]  # None: the fault took effect; else why not


@dataclass(frozen=True)
class Fault:
    name: str
    label: str  # the root cause by construction, as a trainlab rule id
    what: str
    applies: Callable[[Task], bool]
    options: Callable[[Task, dict[str, Any]], dict[str, Any]] = lambda task, o: o
    user: Callable[[Task, UserSpec], UserSpec] | None = None  # how it changes a user module (None: unchanged)
    data: Callable[[Task, torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]] | None = None
    check: Check = lambda m: None
    to_user: bool = False  # the fault needs a user module even on a built-in-model task (softmax in the model)


def bad(m: dict[str, Any]) -> str | None:
    """Every faulty run must be measurably bad: below the validation target a healthy run of the task reaches."""
    if m["nan"] or m["val_score"] < m["target"]:
        return None
    return f"val score {m['val_score']:.3f} reached the healthy target {m['target']:.3f}: the fault did no harm"


def both(*checks: Check) -> Check:
    return lambda m: next((r for c in checks if (r := c(m)) is not None), None)


def _worse_than_constant(m: dict[str, Any]) -> str | None:
    if m["nan"] or m["train_loss"] >= m["constant_loss"]:
        return None
    return (f"train loss {m['train_loss']:.3g} ended below the constant predictor's {m['constant_loss']:.3g}: "
            "the steps did not overshoot")


def _barely_moved(m: dict[str, Any]) -> str | None:
    if not m["nan"] and m["train_loss"] >= 0.8 * m["constant_loss"]:
        return None
    return (f"train loss {m['train_loss']:.3g} fell below 80 % of the constant predictor's "
            f"{m['constant_loss']:.3g}: the run did learn")


def _cannot_fit_train(m: dict[str, Any]) -> str | None:
    if not m["nan"] and m["train_score"] < m["target"]:
        return None
    return f"train score {m['train_score']:.3f} reached the target {m['target']:.3f}: the model fits its data"


def _labels_random(m: dict[str, Any]) -> str | None:
    if m["knn_skill"] <= 0.1 and m["val_skill"] <= 0.1:
        return None
    return f"k-NN skill {m['knn_skill']:.2f}, network skill {m['val_skill']:.2f}: the labels still carry signal"


def _rows_equal(m: dict[str, Any]) -> str | None:
    return None if m.get("rows_equal") else "the first layer's units differ after training: symmetry was broken"


def _vanishing(m: dict[str, Any]) -> str | None:
    r = m.get("grad_ratio")
    if r is not None and r < 1e-2:
        return None
    return f"first/last layer gradient ratio {r}: not ≥ 100× smaller"


def _softmax_out(m: dict[str, Any]) -> str | None:
    e = m.get("softmax_rows")
    return None if e is not None and e < 1e-4 else "the untrained module's output rows do not sum to 1"


def _still_falling(m: dict[str, Any]) -> str | None:
    return None if m.get("val_loss_fell_last") else "the validation loss was no longer falling at the end"


def _scale(x: torch.Tensor) -> torch.Tensor:
    return x * 255 if x.max() <= 1 and x.min() >= 0 else x * 1000 + 5000  # raw pixels; the moons ×1000+5000


def _shuffle(task: Task, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


def _mlp(task: Task) -> bool:
    return task.model_name == "mlp"


def _classif(task: Task) -> bool:
    return task.kind == "classification"


def _narrow(o: dict[str, Any]) -> dict[str, Any]:
    o = dict(o, hidden=[max(1, h // 16) for h in o.get("hidden", [])])
    if "model.channels" in o:
        o["model.channels"] = [max(1, c // 16) for c in o["model.channels"]]
    return o


ALL = lambda task: True  # noqa: E731
FAULTS: list[Fault] = [
    Fault("lr_x100", "lr_too_high", "learning rate ×100", ALL, lambda t, o: dict(o, lr=o["lr"] * 100),
          check=both(bad, _worse_than_constant)),
    Fault("batch1_high_lr", "lr_too_high", "batch size 1 with the learning rate ×10", ALL,
          lambda t, o: dict(o, batch_size=1, lr=o["lr"] * 10, epochs=min(o["epochs"], 5)),
          check=both(bad, _worse_than_constant)),
    Fault("lr_div100", "lr_too_low", "learning rate ÷100", ALL, lambda t, o: dict(o, lr=o["lr"] / 100),
          check=both(bad, _barely_moved)),
    Fault("inputs_unscaled", "inputs_not_scaled", "inputs unscaled (raw 0–255 pixels; toy sets ×1000 + 5000)", ALL,
          data=lambda t, x, y, s: (_scale(x), y), check=bad),
    Fault("softmax_before_ce", "loss_output_mismatch", "the user's module ends in nn.Softmax under cross-entropy",
          lambda t: _classif(t) and t.model_name == "mlp", to_user=True,
          user=lambda t, u: replace(u, final="softmax"), check=both(bad, _softmax_out)),
    Fault("labels_shuffled", "no_signal", "labels shuffled (100 %) across inputs", _classif,
          data=_shuffle, check=_labels_random),
    Fault("zero_init", "symmetric_init", "all weights initialised to 0", ALL,
          lambda t, o: dict(o, init="zeros"), user=lambda t, u: replace(u, zero_init=True),
          check=both(bad, _rows_equal)),
    Fault("deep_sigmoid", "vanishing_gradients", "8 sigmoid hidden layers of 32 units", _mlp,
          lambda t, o: dict(o, hidden=[32] * 8, activation="sigmoid", init="xavier"),
          user=lambda t, u: replace(u, depth=8, width=32, activation="sigmoid"), check=both(bad, _vanishing)),
    Fault("capacity_div16", "underfitting", "hidden widths (and conv channels) ÷16", ALL, lambda t, o: _narrow(o),
          user=lambda t, u: replace(u, width=max(1, u.width // 16)), check=both(bad, _cannot_fit_train)),
    Fault("dropout_0.9", "underfitting", "dropout 0.9 after every hidden layer", ALL,
          lambda t, o: dict(o, dropout=0.9), user=lambda t, u: replace(u, dropout=0.9),
          check=both(bad, _cannot_fit_train)),
    Fault("too_few_epochs", "too_early", "2 epochs", ALL, lambda t, o: dict(o, epochs=2),
          check=both(bad, _still_falling)),
]
FAULT_BY_NAME = {f.name: f for f in FAULTS}
