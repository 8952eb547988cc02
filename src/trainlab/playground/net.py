"""One playground network and its trainer, with TF Playground's semantics on trainlab's pieces.

The engine's: the ``mlp`` built and initialised by :func:`trainlab.models.build_model` from :func:`model_config`
(TF's init: weights U(±0.5), biases 0.1, from the network's seed); optimizers, schedules and cross-entropy from
trainlab's registries; the stop rules of :mod:`trainlab.train.stop` (early stopping from the config that
:func:`~trainlab.playground.export.to_config` gives, :class:`~trainlab.train.stop.EpochLimit` for maxEpochs), fed
one metrics dict per epoch and calling the trainer's ``request_stop``; :func:`~trainlab.train.loop.first_non_finite`.

TF Playground's own, small and named: :func:`square_loss` (0.5·(out − label)² on a tanh or linear output);
:meth:`Trainer.batches` (fixed order, an update every ``batchSize`` points, leftovers carried into the next
epoch); :meth:`Trainer.update` (the regularisation step after the gradient step, R'(w) taken before it, weights
only) with :func:`l1_step` (a weight L1 pushes across 0 dies). The page's own (the engine ends a run at a NaN,
TF draws it): :meth:`Trainer._undo_diverged_epoch` undoes an epoch that made a loss or a weight NaN/Inf, so the
user can lower the learning rate and go on.

Speed: for the plain networks TF draws the gradients are computed by hand (:mod:`.backprop`, ~3× faster
than autograd at these sizes); everything else, and the tests' reference, goes through autograd.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from trainlab.config import ModelConfig, OptimizerConfig, ScheduleConfig
from trainlab.models import build_model
from trainlab.playground.backprop import DERIVATIVES, manual_gradients
from trainlab.registry import LOSSES
from trainlab.train.callbacks import Callback
from trainlab.train.loop import first_non_finite
from trainlab.train import optim
from trainlab.train.optim import make_optimizer, make_scheduler
from trainlab.train.stop import EpochLimit, stop_rules

__all__ = ["NetSpec", "Network", "model_config", "TrainSettings", "Trainer", "DERIVATIVES", "square_loss", "l1_step",
           "targets", "TRAIN_LOSS", "TEST_LOSS", "TRAIN_ACC", "TEST_ACC", "VAL_LOSS", "VAL_ACC"]

Tensor = torch.Tensor

def square_loss(out: Tensor, y: Tensor) -> Tensor:
    """TF Playground's loss (on its tanh or linear output): mean over the points of 0.5·(out − label)²."""
    return 0.5 * (out - y).square().mean()


def l1_step(weights: list[Tensor], signs: list[Tensor], step: float, alive: list[Tensor]) -> None:
    """TF Playground's L1 step, in place: w −= step·sign(w) (``signs`` taken before the update); a weight the
    step pushes across 0 is set to 0 and dies for good (``alive``, its mask, keeps it 0 from then on)."""
    new = torch._foreach_add(weights, signs, alpha=-step)
    for w, nw, live in zip(weights, new, alive):
        live &= (w * nw) >= 0  # crossed zero: dead for good
        w.copy_(nw).mul_(live)


@dataclass(frozen=True)
class NetSpec:
    """The architecture: input feature keys, hidden sizes, one activation per hidden layer, the output kind."""

    features: tuple[str, ...]
    hidden: tuple[int, ...]
    activations: tuple[str, ...]
    output: str  # "tanh" (binary, square loss) | "linear" (regression) | "softmax" (cross-entropy)
    n_outputs: int
    dropout: float = 0.0
    batchnorm: bool = False
    init_zero: bool = False

    @property
    def fast(self) -> bool:
        """Whether the hand-written gradients apply (else autograd)."""
        return not self.batchnorm and self.dropout == 0 and all(a in DERIVATIVES for a in self.activations)


def model_config(spec: NetSpec) -> ModelConfig:
    """The engine's ``model`` section for ``spec``: an mlp with TF's init (weights U(±0.5), biases 0.1; all 0
    with ``initZero``). ``activation`` is the hidden layers' one activation ("linear" with no hidden layer)."""
    acts = list(spec.activations)
    mixed = len(set(acts)) > 1
    return ModelConfig(name="mlp", hidden=list(spec.hidden), activation=acts[0] if acts else "linear",
                       activations=acts if mixed else None, dropout=spec.dropout, batchnorm=spec.batchnorm,
                       init="zeros" if spec.init_zero else "uniform", init_bound=0.5,
                       init_bias=None if spec.init_zero else 0.1)


class Network:
    """A built and initialised network: the module plus direct handles on its linear layers."""

    def __init__(self, spec: NetSpec, seed: int) -> None:
        self.spec = spec
        # flatten → layers.<i>.{linear,norm,act,drop} → head; with no hidden layer, flatten → head only
        self.module = build_model(model_config(spec), (len(spec.features),), spec.n_outputs, seed=seed)
        self.blocks: list[nn.Module] = list(self.module.layers) if spec.hidden else []
        self.linears: list[nn.Linear] = [b.linear for b in self.blocks] + [self.module.head]
        self.weights = [lin.weight for lin in self.linears]  # what regularisation and L1 death act on
        self.params = [p for p in self.module.parameters()]

    def output(self, z: Tensor) -> Tensor:
        """The network's output from the head's scores: tanh, identity, or (softmax) the scores themselves."""
        return torch.tanh(z) if self.spec.output == "tanh" else z

    @torch.no_grad()
    def activations(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Each hidden layer's output (N, width) in eval mode, and the network output (N, n_outputs)."""
        was = self.module.training
        self.module.eval()
        outs, h = [], x
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        z = self.module.head(h)
        self.module.train(was)
        return outs, (z.softmax(1) if self.spec.output == "softmax" else self.output(z))


@dataclass(frozen=True)
class TrainSettings:
    lr: float = 0.03
    regularization: str = "none"  # none | L1 | L2
    reg_rate: float = 0.0
    batch_size: int = 10
    optimizer: str = "sgd"
    schedule: str = "constant"
    max_epochs: int = 0  # 0: no limit
    patience: int = 0  # 0: no early stopping


def schedule_config(name: str, max_epochs: int) -> ScheduleConfig:
    # The engine's defaults suit runs of tens of epochs; playground runs last hundreds to thousands.
    span = max_epochs or 400
    return ScheduleConfig(name=name, step_epochs=max(1, span // 4), gamma=0.5, patience=max(5, span // 20),
                          warmup_epochs=max(1.0, span / 20) if name == "warmup" else 0.0)


# history columns: what the page draws (train, test) and what choices read (validation, never test)
TRAIN_LOSS, TEST_LOSS, TRAIN_ACC, TEST_ACC, VAL_LOSS, VAL_ACC = range(6)


class Trainer:
    """Trains one :class:`Network` on fixed train/validation/test tensors, one TF epoch at a time.

    ``epoch()`` launches tensor ops and reads back one small tensor (the NaN/Inf check, and the stop rules'
    metrics); per-epoch losses and accuracies go into ``history``, a tensor the session reads back once per
    frame (``rows``). ``stopped`` says why training ended, if it did: the engine's stop rules call
    ``request_stop`` on the trainer as on the engine's ``TrainState``.
    ``val``: points carved from the training points and not trained on; early stopping and the live verdict
    read only them (the test points are drawn and reported, never chosen on). None: no validation split.
    """

    def __init__(self, net: Network, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                 settings: TrainSettings, val: tuple[Tensor, Tensor] | None = None) -> None:
        self.net = net
        self.x, self.y = train  # x (N, F) features; y (N, 1) float targets, or (N,) int64 class ids
        self.xt, self.yt = test
        self.xv, self.yv = val if val is not None else (train[0][:0], train[1][:0])
        self.classification = net.spec.output != "linear"
        self.epochs = 0
        self.history = torch.zeros(1024, 6)  # (E, 6): the columns TRAIN_LOSS .. VAL_ACC
        self.stopped: str | None = None  # why training ended, for the page (prose)
        self.stopped_by: str | None = None  # ... and which rule ended it, as data: epochs, early_stopping, non_finite
        self.alive: list[Tensor] | None = None  # L1: masks of the weights still alive (None: none died)
        self._rules: list[Callback] = []  # the engine's stop rules for the current settings (_stop_rules) ...
        self._rules_for: tuple[int, int] | None = None  # ... built for these (patience, max_epochs)
        self._carry_from: int | None = None  # first of the points carried from the last epoch
        self.settings = TrainSettings()
        self.optimizer: torch.optim.Optimizer | None = None
        # Everything an epoch changes in the model, and a copy of it from before the epoch: an epoch that
        # turns a loss or a weight NaN/Inf is undone, so the page never shows (nor the JSON carries) NaN.
        self._state = [*net.module.parameters(), *net.module.buffers()]
        self._backup = [t.detach().clone() for t in self._state]
        self.apply(settings, force=True)
        self.record()

    # --- settings -------------------------------------------------------------------------------------

    def apply(self, s: TrainSettings, force: bool = False) -> None:
        """Switch to settings ``s`` mid-training, as TF does: weights stay, the optimizer restarts if it changed."""
        old, self.settings = self.settings, s
        n, bs = len(self.x), min(s.batch_size, max(len(self.x), 1))
        self._plan(n, bs)
        self.steps_per_epoch = max(n // bs, 1)
        if self.stopped_by == "non_finite" and s != old:
            self.clear_stop()  # the weights are the last finite ones: a lower learning rate can go on from them
        if force or (s.optimizer, s.schedule, s.lr, s.max_epochs) != (old.optimizer, old.schedule, old.lr, old.max_epochs):
            self.optimizer = make_optimizer(self.net.params, OptimizerConfig(name=s.optimizer, lr=s.lr))
            self.scheduler = None if s.schedule == "constant" else make_scheduler(
                self.optimizer, schedule_config(s.schedule, s.max_epochs), self.steps_per_epoch,
                max(s.max_epochs, 1) if s.max_epochs else 400)
        if s.regularization == "L1" and self.alive is None:
            self.alive = [torch.ones_like(w, dtype=torch.bool) for w in self.net.weights]
        if (s.patience, s.max_epochs) != self._rules_for:  # other changes keep early stopping's best and count
            self._rules, self._rules_for = self._stop_rules(), (s.patience, s.max_epochs)
        if self.stopped_by == "epochs" and (not s.max_epochs or self.epochs < s.max_epochs):
            self.clear_stop()  # raising the limit lets training continue
        if s.max_epochs:
            EpochLimit(s.max_epochs).on_epoch_end(self, {"epoch": self.epochs})  # a limit already reached stops now

    def _stop_rules(self) -> list[Callback]:
        """The engine's stop rules for the current settings: early stopping as ``stop_rules`` builds it from
        :func:`~trainlab.playground.export.to_config`'s config (only with validation points: it reads val_loss),
        then the epoch limit ``maxEpochs``."""
        from trainlab.playground.export import to_config  # export imports this module
        s = self.settings
        # The config's epochs go unread (maxEpochs is the EpochLimit below); 1 keeps them under the engine's cap
        # of 100,000 epochs, which maxEpochs and the epochs a long session runs can pass.
        rules = stop_rules(to_config(self, epochs=1)) if s.patience and self.has_val else []
        return rules + ([EpochLimit(s.max_epochs)] if s.max_epochs else [])

    def request_stop(self, reason: str, by: str | None = None) -> None:
        """End training with ``reason`` (prose for the page) by rule ``by`` (data: ``stopped_by``), as the engine's
        ``TrainState.request_stop``: the first reason given wins until :meth:`clear_stop`."""
        if self.stopped is None:
            self.stopped, self.stopped_by = reason, by

    def clear_stop(self) -> None:
        """Go on training: no stop reason."""
        self.stopped = self.stopped_by = None

    def _plan(self, n: int, bs: int) -> None:
        self.batch_size = bs
        self._slices = [(k * bs, (k + 1) * bs) for k in range(n // bs)]
        self._tail = n - n % bs  # where the carried points start

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """TF Playground's batch plan for one epoch: it updates after point i when (i + 1) % batchSize == 0,
        counting i from 0 each epoch in the points' fixed order; the n % batchSize points after the last update
        are added to the next epoch's first update. Yields (features, targets) per update."""
        x, y = self.x, self.y
        for k, (a, b) in enumerate(self._slices):
            if k == 0 and self._carry_from is not None:
                yield torch.cat([x[self._carry_from:], x[a:b]]), torch.cat([y[self._carry_from:], y[a:b]])
            else:
                yield x[a:b], y[a:b]
        self._carry_from = self._tail if self._tail < len(x) else None

    # --- one epoch --------------------------------------------------------------------------------------

    def epoch(self) -> None:
        """One pass over the training points in their fixed order, then the losses on both sets.

        An epoch after which a loss or a weight is NaN/Inf is undone (weights back to before it, the optimizer
        restarted) and ``stopped`` says so: what is drawn and reported stays the last finite state.
        """
        with torch.no_grad():
            torch._foreach_copy_(self._backup, self._state)
        for xb, yb in self.batches():
            self.update(xb, yb)
        self.epochs += 1
        self.record()
        # One read per epoch (~25 µs at these sizes, ~1 % of an epoch): the losses and the weights' norms, which
        # are NaN/Inf when a weight is. The stop rules read the losses from the same read.
        train_loss, val_loss, *norms = torch.cat([self.history[self.epochs, [TRAIN_LOSS, VAL_LOSS]],
                                                  torch.stack(torch._foreach_norm(self.net.params))]).tolist()
        bad = first_non_finite({"training loss": train_loss, "validation loss": val_loss, "weights' norm": sum(norms)})
        if bad is not None:
            self._undo_diverged_epoch(*bad)
            return
        if self.scheduler is not None:  # plateau: the validation loss (the training loss without validation points)
            self.scheduler.epoch_end(*(("val_loss", val_loss) if self.has_val else ("train_loss", train_loss)))
        if self._rules:
            metrics = {"epoch": self.epochs, "train_loss": train_loss, "val_loss": val_loss if self.has_val else None}
            for rule in self._rules:
                rule.on_epoch_end(self, metrics)

    def _undo_diverged_epoch(self, what: str, value: float) -> None:
        """The page's NaN/Inf guard: ``what`` became ``value`` (NaN/Inf) in this epoch. Put the model back to
        before the epoch, restart the optimizer and stop, so that the user can lower the learning rate and go on
        from the last finite weights (the engine ends its run at a NaN; TF draws it)."""
        with torch.no_grad():
            torch._foreach_copy_(self._state, self._backup)
        self.epochs -= 1  # row ``epochs`` still holds the restored weights' losses
        self.clear_stop()
        self.request_stop(f"diverged: the {what} became {'NaN' if math.isnan(value) else 'infinite'} in epoch "
                          f"{self.epochs + 1}. Lower the learning rate (now {self.settings.lr:g}) to go on from epoch "
                          f"{self.epochs}, or reset", "non_finite")
        self._carry_from = None
        self.apply(self.settings, force=True)  # a fresh optimizer: momentum / Adam moments may hold NaN too

    def gradients(self, xb: Tensor, yb: Tensor) -> list[Tensor]:
        """The mean gradient of the loss over the batch for every parameter (in ``net.params`` order)."""
        if self.net.spec.fast:
            return self._manual_gradients(xb, yb)
        return self._autograd_gradients(xb, yb)

    def _autograd_gradients(self, xb: Tensor, yb: Tensor) -> list[Tensor]:
        net = self.net
        for p in net.params:
            p.grad = None
        z = net.module(xb)  # (B, n_outputs), train mode: dropout and batch statistics active
        loss = self.loss_fn(z, yb)
        loss.backward()
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in net.params]

    def loss_fn(self, z: Tensor, y: Tensor) -> Tensor:
        """The training loss from the head's scores: TF's square loss, or the engine's cross-entropy."""
        if self.net.spec.output == "softmax":
            return LOSSES.get("cross_entropy").fn(z, y)
        return square_loss(self.net.output(z), y)

    def _manual_gradients(self, xb: Tensor, yb: Tensor) -> list[Tensor]:
        return manual_gradients(self.net.linears, self.net.spec.activations, self.net.spec.output, xb, yb)

    def update(self, xb: Tensor, yb: Tensor) -> None:
        """One update in TF Playground's order: the optimizer's step on the batch's mean gradient, then the
        regularisation step on the weights (not biases) with R'(w) taken before the update."""
        s, weights = self.settings, self.net.weights
        reg = s.regularization if s.reg_rate > 0 else "none"
        grads = self.gradients(xb, yb)
        with torch.no_grad():
            if reg == "L1":
                der = torch._foreach_sign(weights)  # R'(w) of the weight before this update, as TF
            elif reg == "L2":
                der = [w.clone() for w in weights]
            lr = self.optimizer.param_groups[0]["lr"]
            if s.optimizer == "sgd":  # torch's SGD step without its per-call overhead (tests compare them)
                torch._foreach_add_(self.net.params, grads, alpha=-lr)
            else:
                for p, g in zip(self.net.params, grads):
                    p.grad = g
                optim.step(self.optimizer)  # without importing torch._dynamo (train/optim.py)
            if reg == "L2":
                torch._foreach_add_(weights, der, alpha=-lr * s.reg_rate)
            elif reg == "L1":
                l1_step(weights, der, lr * s.reg_rate, self.alive)
            elif self.alive is not None:
                torch._foreach_mul_(weights, self.alive)  # dead weights stay 0 after L1 is switched off
        if self.scheduler is not None:
            self.scheduler.step()

    # --- metrics ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(mean loss, accuracy) on a set as 0-dim tensors; accuracy 0 for regression. Eval mode."""
        if len(x) == 0:
            return torch.zeros(()), torch.zeros(())
        m = self.net.module
        need_mode = self.net.spec.batchnorm or self.net.spec.dropout > 0
        if need_mode:
            m.eval()
        z = m(x)
        if need_mode:
            m.train()
        loss = self.loss_fn(z, y)
        if not self.classification:
            return loss, torch.zeros(())
        return loss, (self.predict_classes(z) == self.class_ids(y)).float().mean()

    def predict_classes(self, z: Tensor) -> Tensor:
        return z.argmax(1) if self.net.spec.output == "softmax" else (z[:, 0] > 0).long()

    def class_ids(self, y: Tensor) -> Tensor:
        return y if y.dtype == torch.int64 else (y[:, 0] > 0).long()

    @property
    def has_val(self) -> bool:
        return len(self.xv) > 0

    def record(self) -> None:
        """Write the current losses and accuracies as history row ``epochs`` (row 0: before training)."""
        if self.epochs >= len(self.history):
            self.history = torch.cat([self.history, torch.zeros_like(self.history)])
        tr, tr_acc = self.evaluate(self.x, self.y)
        te, te_acc = self.evaluate(self.xt, self.yt)
        va, va_acc = self.evaluate(self.xv, self.yv)
        self.history[self.epochs] = torch.stack([tr, te, tr_acc, te_acc, va, va_acc])

    def rows(self, start: int) -> list[list[float]]:
        """History rows ``start..epochs`` as [epoch, train loss, test loss, train acc, test acc, validation loss,
        validation acc] (one read)."""
        rows = self.history[start:self.epochs + 1].tolist()
        return [[start + i, *r] for i, r in enumerate(rows)]

    @torch.no_grad()
    def confusion(self) -> list[list[int]]:
        """Test-set confusion matrix counts [true class][predicted class]."""
        k = max(self.net.spec.n_outputs, 2)
        if not self.classification or len(self.xt) == 0:
            return []
        pred, true = self.predict_classes(self.net.module.eval()(self.xt)), self.class_ids(self.yt)
        self.net.module.train()
        return torch.bincount(true * k + pred, minlength=k * k).view(k, k).tolist()

    def set_param(self, layer: int, kind: str, i: int, j: int, value: float) -> None:
        """Set weight [i, j] (``kind`` 'w') or bias [i] ('b') of linear layer ``layer`` (0 = first hidden)."""
        lin = self.net.linears[layer]
        with torch.no_grad():
            if kind == "w":
                lin.weight[i, j] = value
                if self.alive is not None:
                    self.alive[layer][i, j] = True  # an edited weight lives again
            elif lin.bias is not None:
                lin.bias[i] = value
        self.record()  # the current epoch's losses, after the edit


def targets(label: Tensor, output: str) -> Tensor:
    """Labels as the loss wants them: (N, 1) floats for tanh/linear outputs, (N,) class ids for softmax."""
    if output == "softmax":
        return label if label.dtype == torch.int64 else (label > 0).long()
    return label.float().view(-1, 1)

