"""The callback protocol: the loop calls these hooks; stop rules, checkpoints and loggers are callbacks.

A callback sees the :class:`TrainState` (model, optimizer, history, ...) and may ask the loop to stop
with ``state.request_stop(reason)``. Callbacks that keep state across epochs (a patience counter, the
best value) return it from ``state_dict`` so that ``--resume`` continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainlab.config import TrainConfig


@dataclass
class TrainState:
    """Everything a callback may look at. ``history`` holds one metrics dict per finished epoch."""

    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # trainlab.train.optim.StepScheduler
    steps_per_epoch: int
    epoch: int = 0  # the epoch being run (1-based); after it ends, the last finished one
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    step_losses: torch.Tensor | None = None  # (steps_per_epoch,) losses of the current epoch's updates
    layer_grad_norms: dict[str, float] = field(default_factory=dict)  # last epoch, RMS over its updates

    def request_stop(self, reason: str) -> None:
        """Stop after this epoch; the first reason given wins."""
        if self.stop_reason is None:
            self.stop_reason = reason


class Callback:
    """Override the hooks you need. ``on_batch_end`` is called only by callbacks that override it,
    so the fast path pays nothing for it."""

    name: str = "callback"

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState, step: int, loss: torch.Tensor) -> None: ...

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def overrides_batch_end(cb: Callback) -> bool:
    return type(cb).on_batch_end is not Callback.on_batch_end
