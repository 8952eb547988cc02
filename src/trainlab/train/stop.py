"""Stop rules, combinable: the loop always stops after ``epochs`` (:class:`EpochLimit`'s reason); these may stop
it earlier.

Each rule is a callback that reads the epoch's metrics and calls ``state.request_stop(reason)``.
The reason string is what ``summary.json`` records as ``stop_reason``.
"""
from __future__ import annotations

from typing import Any

from trainlab.config import TrainConfig
from trainlab.monitor import better, lower_is_better
from trainlab.train.callbacks import Callback, TrainState


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs."""

    name = "early_stopping"

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.monitor)
        if better(self.monitor, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, metrics["epoch"], 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            best = f"best {self.best:.4g} at epoch {self.best_epoch}" if self.best is not None else "no valid value"
            state.request_stop(f"early_stopping: {self.monitor} did not improve for {self.patience} epochs ({best})",
                               self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


class Convergence(Callback):
    """Stop when the training loss changes by less than ``tol`` for ``patience`` epochs in a row."""

    name = "convergence"

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.last: float | None = None
        self.calm = 0

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        loss = metrics["train_loss"]
        if self.last is not None and abs(loss - self.last) < self.tol:
            self.calm += 1
        else:
            self.calm = 0
        self.last = loss
        if self.calm >= self.patience:
            state.request_stop(f"convergence: |Δ train_loss| < {self.tol:g} for {self.patience} epochs", self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"last": self.last, "calm": self.calm}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last, self.calm = state["last"], state["calm"]


class TargetMetric(Callback):
    """Stop once ``metric`` reaches ``value`` (≥ for accuracies, ≤ for losses)."""

    name = "target"

    def __init__(self, metric: str, value: float) -> None:
        self.metric, self.value = metric, value

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        got = metrics.get(self.metric)
        if got is None:
            return
        reached = got <= self.value if lower_is_better(self.metric) else got >= self.value
        if reached:
            state.request_stop(f"target: {self.metric} {got:.4g} reached {self.value:g}", self.name)


class EpochLimit(Callback):
    """Stop once ``epochs`` epochs have run. The loop's own range ends there with this rule's reason; a loop with
    no fixed range (the playground's, which trains until a rule or the user stops it) calls it as a rule."""

    name = "epochs"

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    @property
    def reason(self) -> str:
        return f"epochs: reached {self.epochs}"

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        if metrics["epoch"] >= self.epochs:
            state.request_stop(self.reason, self.name)


def stop_rules(cfg: TrainConfig) -> list[Callback]:
    """The stop-rule callbacks that ``cfg.stop`` switches on."""
    rules: list[Callback] = []
    es, conv, target = cfg.stop.early_stopping, cfg.stop.convergence, cfg.stop.target
    if es.patience is not None:
        rules.append(EarlyStopping(cfg.monitor, es.patience, es.min_delta))
    if conv.tol is not None:
        rules.append(Convergence(conv.tol, conv.patience))
    if target.value is not None:
        rules.append(TargetMetric(target.metric, target.value))
    return rules
