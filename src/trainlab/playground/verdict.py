"""The live over/underfitting verdict: trainlab's diagnosis rules on the playground's history so far.

The test set plays the validation set's part (the playground has no third split), so the rules' "validation
loss" reads as "test loss" on the page. Long histories are thinned to at most ``MAX_ROWS`` evenly spaced
epochs: the rules look at trends, the minimum and the last few rows, which thinning keeps.
"""
from __future__ import annotations

from typing import Any

from trainlab.diagnose import diagnose
from trainlab.playground.net import Trainer

__all__ = ["live_verdict", "MAX_ROWS", "MIN_EPOCHS"]

MAX_ROWS = 300
MIN_EPOCHS = 10  # fewer epochs say nothing about fit


def history_rows(t: Trainer) -> list[dict[str, Any]]:
    """The trainer's epochs 1..E as the engine's metrics rows (test → val), thinned to ≤ MAX_ROWS."""
    stride = max(1, -(-t.epochs // MAX_ROWS))
    epochs = list(range(t.epochs, 0, -stride))[::-1]  # always keeps the latest epoch
    values = t.history[epochs].tolist() if epochs else []
    lr = t.optimizer.param_groups[0]["lr"]
    rows = []
    for e, (tr, te, tr_acc, te_acc) in zip(epochs, values):
        acc = t.classification
        rows.append({"epoch": e, "train_loss": tr, "val_loss": te, "train_acc": tr_acc if acc else None,
                     "val_acc": te_acc if acc else None, "lr": lr})
    return rows


def live_verdict(t: Trainer) -> dict[str, Any] | None:
    """``{"verdict", "title", "severity", "text"}`` of the headline finding, or None before MIN_EPOCHS."""
    if t.epochs < MIN_EPOCHS:
        return None
    s, spec = t.settings, t.net.spec
    config = {"epochs": t.epochs, "optimizer": {"name": s.optimizer, "lr": s.lr},
              "model": {"name": "mlp", "hidden": list(spec.hidden), "activation": spec.activations[0] if spec.activations
                        else "linear", "dropout": spec.dropout, "init": "uniform", "init_bound": 0.5},
              "loss": {"l1": s.reg_rate if s.regularization == "L1" else 0.0,
                       "l2": s.reg_rate if s.regularization == "L2" else 0.0}}
    summary = {"stop_reason": "playground: training" if t.stopped is None else t.stopped, "monitor": "val_loss"}
    d = diagnose(history_rows(t), [], summary, config, n_classes=spec.n_outputs if spec.n_outputs > 1 else 2)
    if not d.findings:
        return {"verdict": d.verdict, "title": "No verdict yet", "severity": "info", "text": ""}
    f = d.findings[0]
    text = f"{f.message}. Try: {f.remedy}".replace("validation", "test")
    return {"verdict": f.rule, "title": f.title, "severity": f.severity, "text": text}
