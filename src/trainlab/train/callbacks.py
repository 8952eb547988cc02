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
    # Which rule stopped the run, as data (the reason above is prose for people): "epochs", "early_stopping",
    # "convergence", "target", "pruned", "non_finite", "out_of_memory" or "interrupted"; None while it runs.
    stopped_by: str | None = None
    step_losses: torch.Tensor | None = None  # (steps_per_epoch,) losses of the current epoch's updates
    step: int = 0  # the update of the epoch being taken (0-based)
    layer_grad_norms: dict[str, float] = field(default_factory=dict)  # last epoch, RMS over its updates
    # The last epoch's validation outputs (N, K) as its evaluation computed them (train.loop.evaluate), None where
    # they were not kept (a streamed or very large validation split)
    val_outputs: torch.Tensor | None = None
    # The first epoch's updates, read once at its end (train.loop.first_epoch_curve): the first update's loss and
    # gradient norm (the untrained model's) and the loss at a few checkpoints through the epoch.
    first_epoch: dict[str, Any] | None = None
    graph: Any = None  # trainlab.train.graphs.CapturedStep once the step is recorded (CUDA only)
    # A distributed run (train.distributed): the DistributedDataParallel wrapper the updates run through (the
    # checkpoints, evaluation and callbacks see ``model`` itself), and this process's rank among the others
    ddp: Any = None
    ranks: Any = None
    compiled: Any = None  # the torch.compile wrapper of ``model`` the updates run through (as ddp's: only they)

    graph_off: str | None = None  # why the steps run eagerly (decided at the first epoch)
    scaler: Any = None  # an fp16 run's torch.amp.GradScaler (train.precision); None otherwise
    # ema.decay: the averaged weights (train.ema.WeightAverage), which validation and the checkpoints use; None: off
    ema: Any = None

    def request_stop(self, reason: str, rule: str | None = None) -> None:
        """Stop after this epoch; the first reason given wins. ``rule``: the stopping rule's id (``stopped_by``)."""
        if self.stop_reason is None:
            self.stop_reason, self.stopped_by = reason, rule


class Callback:
    """Override the hooks you need; the loop calls them in this order:

    ``on_train_begin`` → per epoch: ``on_epoch_begin`` → per update: ``on_batch_begin(step)``,
    ``on_batch_end(step, loss)`` → ``on_epoch_end(metrics)`` → ``on_train_end``. Also ``on_progress(step,
    running_loss)`` every few updates, if defined. The per-update hooks are called only for callbacks that
    override them, so the fast path pays nothing for them; ``loss`` there is a tensor (read it with
    ``float(loss)`` only when needed: every read waits for the device). Call ``state.request_stop(reason)``
    to end training after the current epoch."""

    name: str = "callback"

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_begin(self, state: TrainState, step: int) -> None: ...

    def on_batch_end(self, state: TrainState, step: int, loss: torch.Tensor) -> None: ...

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def overrides(cb: Callback, hook: str) -> bool:
    """Whether ``cb`` defines its own ``hook`` (per-update hooks are skipped for callbacks that do not)."""
    return getattr(type(cb), hook, None) is not getattr(Callback, hook)
