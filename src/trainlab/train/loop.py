"""The training loop, top to bottom. Data are tensors on the device; a batch is an index slice.

Per step the loop only launches tensor ops: the loss, the gradient norm and the number of correct
predictions are written into per-epoch tensors, and Python reads them back (one ``.tolist()``) every
``CHECK_EVERY`` steps — for the progress bar and to catch a NaN/Inf — and once at the epoch's end.
"""
from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from trainlab.data.base import Split
from trainlab.data.streaming import DatasetSplit, trained_examples
from trainlab.errors import ConfigError, OutOfMemory, TrainingError
from trainlab.train import distributed, graphs, optim, precision
from trainlab.train.callbacks import Callback, TrainState, overrides
from trainlab.train.losses import Loss, mixed, predict_classes, weight_penalty
from trainlab.train.metrics import balanced_scores, confusion_counts, confusion_margins
from trainlab.train.stop import EpochLimit

CHECK_EVERY = 25  # steps between host reads: frequent enough for a live bar, rare enough to be free
CURVE_POINTS = 10  # first-epoch loss checkpoints: enough to see a loss that climbs inside epoch 1
KEEP_OUTPUTS = 1 << 24  # validation outputs kept per epoch, at most (64 MB of float32): 6,000 x 10 for Fashion-MNIST


@dataclass
class LoopData:
    """What one epoch needs: tensors already on the training device, or (for data too large to hold)
    DatasetSplits whose batches are moved there as they are read."""

    train: Split | DatasetSplit
    val: Split | DatasetSplit
    loss: Loss
    classification: bool
    shuffle: torch.Generator  # CPU generator: the permutation is drawn on the CPU, then moved
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    # data.augment.mixup / cutmix: (xb, yb) → (mixed xb, (B, 2) label pairs, the first one's weight) (data/mixing.py)
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, float]] | None = None
    device: torch.device = torch.device("cpu")
    reshuffle: bool = True  # False: every epoch walks the training split in its stored order


def batches(split: Split | DatasetSplit, batch_size: int, device: torch.device,
            order: torch.Tensor | None = None, generator: torch.Generator | None = None, drop_last: bool = False
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches on ``device``: index slices of tensors (in ``order`` when given), or DataLoader batches
    of a DatasetSplit (shuffled by ``generator`` — the same permutation ``order`` would be); ``drop_last``: without
    the last batch if it is smaller (the examples of the permutation's end are then left out of this pass)."""
    if isinstance(split, Split):
        for start in range(0, trained_examples(len(split), batch_size, drop_last), batch_size):
            if order is None:
                yield split.x[start:start + batch_size], split.y[start:start + batch_size]  # views
            else:  # (B, ...) gathers, no per-sample Python; index_select takes half the time of x[idx] on a CPU
                idx = order[start:start + batch_size]
                yield split.x.index_select(0, idx), split.y.index_select(0, idx)
    else:
        for xb, yb in split.batches(batch_size, generator, drop_last=drop_last):
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split | DatasetSplit, loss: Loss, batch_size: int, classification: bool,
             device: torch.device | None = None, keep_outputs: bool = False, confusion: bool = False
             ) -> dict[str, Any]:
    """Mean loss and (for classification) accuracy, balanced accuracy and macro F1 (``train.metrics``) of ``model``
    on ``split``, in eval mode: one host read at the end.

    ``keep_outputs``: also return the model's outputs, (N, K) float, as "outputs" — for an in-memory split of up
    to ``KEEP_OUTPUTS`` numbers (None otherwise): the report's validation pictures then need no second pass.
    ``confusion`` (classification): also the (K, K) counts of true (rows) against predicted classes, a list."""
    was_training = model.training
    model.eval()
    device = device or (split.x.device if isinstance(split, Split) else torch.device("cpu"))
    total = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    kept: list[torch.Tensor] | None = [] if keep_outputs and isinstance(split, Split) else None
    counts: torch.Tensor | None = None
    for xb, yb in batches(split, batch_size, device):
        out = model(xb)
        total += loss.fn(out, yb) * len(xb)
        if classification:
            pred = predict_classes(loss, out)
            correct += (pred == yb).sum()
            part = confusion_counts(yb, pred, max(out.shape[1], 2))  # one score: 2 classes
            counts = part if counts is None else counts + part
        if kept is not None:  # the whole split's outputs would be out.numel() / len(xb) * len(split) numbers
            if out.numel() * len(split) > KEEP_OUTPUTS * len(xb):
                kept = None
            else:
                kept.append(out.float())
    model.train(was_training)
    n = max(len(split), 1)
    # the one host read: sums, and a classifier's confusion margins (3·K numbers) or, asked for, its whole matrix
    table = None if counts is None else counts.flatten() if confusion else confusion_margins(counts).flatten()
    parts = [total.view(1), correct.to(total.dtype).view(1)] + ([table.to(total.dtype)] if table is not None else [])
    values = torch.cat(parts).tolist()
    result = {"loss": values[0] / n, "acc": values[1] / n if classification else None}
    if keep_outputs:
        result["outputs"] = torch.cat(kept) if kept else None
    if classification:
        k = 0 if counts is None else len(counts)
        rest = values[2:]
        matrix = [[int(v) for v in rest[r * k:(r + 1) * k]] for r in range(k)] if confusion else None
        margins = confusion_margins(torch.tensor(matrix)) if matrix else [rest[i * k:(i + 1) * k] for i in range(3)]
        balanced, f1 = balanced_scores(margins) if k else (None, None)
        result.update(balanced_acc=balanced, macro_f1=f1)
        if confusion:
            result["confusion"] = matrix or []
    return result


def batched_mean_loss(loss: Loss, out: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """The mean loss ``evaluate`` logs for these outputs: each batch's loss weighted by its size. With class
    weights a batch's loss is a weighted mean over its own examples, so this differs (slightly) from one loss
    over the whole split."""
    total = sum(float(loss.fn(out[i:i + batch_size], y[i:i + batch_size])) * len(y[i:i + batch_size])
                for i in range(0, len(y), batch_size))
    return total / max(len(y), 1)


@torch.inference_mode()
def batched_outputs(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device,
                    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``model``'s outputs for the rows of ``x`` in eval mode, ``batch_size`` rows per pass on ``device``, gathered on
    the CPU: memory bounded by one batch whatever the number of rows (Keras' ``predict(x, batch_size)``).
    ``forward``: how to call the model (default ``model(xb)``)."""
    call = forward or nn.Module.__call__
    was = model.training
    model.eval()
    try:  # no rows: one pass of the empty batch, for the outputs' shape
        outs = [call(model, x[s:s + batch_size].to(device)).cpu() for s in range(0, max(len(x), 1), batch_size)]
    finally:
        model.train(was)
    return torch.cat(outs)


@contextlib.contextmanager
def memory_for(device: torch.device, doing: str, n: int, batch_size: int, fix: str) -> Iterator[None]:
    """Memory that runs out inside a pass over ``n`` examples outside training (scoring the test set, evaluate,
    predict) becomes one OutOfMemory line: where, ``doing`` ("predicting 50000 examples"), in batches of how many,
    and ``fix`` with ``{smaller}`` (half the batch that ran) filled in; other errors pass."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        ran = max(min(batch_size, n), 1)  # a batch size above n ran as one batch of n
        smaller = ran // 2
        facts = {"phase": doing, "device": str(device), "batch_size": ran, "error": _torch_words(exc),
                 "sets": {"batch_size": smaller} if smaller else {}}
        then = fix.replace("{smaller}", str(smaller)) if smaller else "Use a smaller model"
        raise OutOfMemory(f"{_where(device)} ran out of memory {doing} in batches of {ran} ({facts['error']}). "
                          f"{then}.", facts=facts) from None


def _where(device: torch.device) -> str:
    return {"cuda": "the GPU", "mps": "the Apple GPU", "cpu": "the machine"}.get(device.type, f"device {device}")


def _penalty_params(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.ndim > 1 and p.requires_grad]  # weights, not biases


def train_epoch(state: TrainState, data: LoopData, callbacks: Sequence[Callback]) -> dict[str, Any]:
    """One pass over the shuffled training split; returns train loss/acc and the mean gradient norm.

    On a CUDA GPU the full batches replay one recorded step (``graphs.CapturedStep``) where that is safe;
    otherwise, and for an epoch's last smaller batch, each step is launched op by op."""
    cfg, model = state.cfg, state.model
    bs, steps, drop = cfg.batch_size, state.steps_per_epoch, cfg.drop_last
    everyone = len(data.train)
    n = trained_examples(everyone, bs, drop)  # examples this epoch trains on
    device = data.device
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    penalized = _penalty_params(model) if (cfg.loss.l1 or cfg.loss.l2) else []
    begin_cbs = [cb for cb in callbacks if overrides(cb, "on_batch_begin")]
    step_cbs = [cb for cb in callbacks if overrides(cb, "on_batch_end")]
    progress_cbs = [cb for cb in callbacks if hasattr(cb, "on_progress")]

    ranks = state.ranks
    if state.graph is None and state.graph_off is None:
        state.graph_off = ("a distributed (DDP) run: its updates wait for the other processes"
                           if ranks is not None and ranks.active else graphs.why_not(state, data, bool(begin_cbs or step_cbs)))
        if state.graph_off is None:
            state.graph = graphs.CapturedStep(state, data, params, penalized, steps)
    captured: graphs.CapturedStep | None = state.graph
    if captured is not None:
        losses, gnorms, correct, grad_sq = captured.losses, captured.gnorms, captured.correct, captured.grad_sq
    else:
        losses = torch.zeros(steps, device=device)  # (S,) mean loss of each update
        gnorms = torch.zeros(steps, device=device)  # (S,) global gradient norm before clipping
        grad_sq = torch.zeros(len(params), device=device)  # (P,) Σ over updates of each parameter's ‖g‖²
        correct = torch.zeros(steps, dtype=torch.int64, device=device)
    sizes = torch.full((steps,), float(bs), device=device)
    sizes[-1] = n - bs * (steps - 1)
    state.step_losses = losses
    # (S,) an fp16 run's updates skipped for overflowing gradients (their gnorms entry is 0); None: none can be
    skipped = torch.zeros(steps, dtype=torch.bool, device=device) if state.scaler is not None else None
    buffers = (losses, gnorms, correct, grad_sq, skipped)

    model.train()
    state.step = 0
    order: torch.Tensor | None = None
    scales: list[float] | None = None
    if isinstance(data.train, Split):
        order = torch.randperm(everyone, generator=data.shuffle).to(device) if data.reshuffle else None
        if ranks is None or not ranks.active:
            stream = batches(data.train, bs, device, order=order, drop_last=drop)
        else:  # every rank draws the same permutation (one seed) and takes its part of each global batch
            whole = order if order is not None else torch.arange(n, device=device)
            parts = [distributed.shard(whole[s:s + bs], ranks) for s in range(0, n, bs)]
            scales = [f for _, f in parts]
            sizes = torch.tensor([float(len(p)) for p, _ in parts], device=device)  # this rank's examples per update
            stream = ((data.train.x[p], data.train.y[p]) for p, _ in parts)
    else:
        stream = batches(data.train, bs, device, generator=data.shuffle if data.reshuffle else None, drop_last=drop)
    first_eager = 0
    if captured is not None:
        try:
            captured.begin_epoch(order)
        except Exception as exc:  # noqa: BLE001 — a module capture cannot record (host reads, dynamic shapes): eager
            state.graph, captured = None, None
            state.graph_off = f"capture failed: {str(exc).strip().splitlines()[0][:200]}"
        else:
            first_eager = captured.full_steps
            tail = (order[first_eager * bs:n] if order is not None  # at most one smaller batch is left
                    else torch.arange(first_eager * bs, n, device=device))
            stream = iter([(data.train.x[tail], data.train.y[tail])] if len(tail) else [])
    checked = 0
    for step in range(first_eager):  # captured steps: one graph launch each
        state.step = step
        captured.sync_lr()  # before every replay: the eager tail step of the last epoch moved the schedule too
        captured.replay()
        state.scheduler.step()
        if state.ema is not None:
            state.ema.update()
        checked = _after_step(state, step, steps, losses, gnorms, sizes, checked, progress_cbs)
    for step, (xb, yb) in enumerate(stream, start=first_eager):
        state.step = step
        for cb in begin_cbs:
            cb.on_batch_begin(state, step)
        loss = _eager_step(state, data, params, penalized, xb, yb, step, buffers,
                           scales[step] if scales is not None else 1.0)
        if state.ema is not None:
            state.ema.update()
        for cb in step_cbs:
            cb.on_batch_end(state, step, loss)
        checked = _after_step(state, step, steps, losses, gnorms, sizes, checked, progress_cbs)

    applied = steps if skipped is None else steps - int(skipped.sum())  # fp16: one more host read an epoch
    if applied == 0:
        assert state.scaler is not None
        raise TrainingError(f"the float16 gradients overflowed at every update of epoch {state.epoch}, so none "
                            f"was applied (loss scale now {state.scaler.get_scale():g}). Train with "
                            "speed.precision=bf16 (float32's range) or fp32.",
                            facts={"what": "float16 gradients", "value": "inf", "epoch": state.epoch, "step": None,
                                   "precision": "fp16", "loss_scale": state.scaler.get_scale()})
    sums = torch.stack([(losses * sizes).sum(), correct.sum().to(losses.dtype), gnorms.sum() / applied])
    if ranks is not None and ranks.active:  # the epoch's totals over every rank's examples: one all-reduce
        sums = distributed.sum_over_ranks(sums, ranks) / torch.tensor([1.0, 1.0, ranks.world], device=device)
    loss_sum, acc_sum, gsum = sums.tolist()
    if state.epoch == 1 and state.first_epoch is None:  # a resumed run keeps the curve of its own epoch 1
        state.first_epoch = first_epoch_curve(losses, gnorms, skipped)
    state.layer_grad_norms = layer_norms([n for n, _ in named], grad_sq, applied)
    metrics = {"train_loss": loss_sum / n, "train_acc": acc_sum / n if data.classification else None,
               "grad_norm": gsum}
    if skipped is not None:
        metrics["skipped_updates"] = steps - applied
    return metrics


def first_epoch_curve(losses: torch.Tensor, gnorms: torch.Tensor, skipped: torch.Tensor | None = None
                      ) -> dict[str, Any]:
    """The first epoch's updates as data, from its on-device buffers in one host read: the first update's loss
    and gradient norm (the untrained model's) and the mean loss of each of up to ``CURVE_POINTS`` equal runs
    of consecutive updates — a loss that blew up inside epoch 1 shows here while the epoch's mean hides it.
    ``skipped``: an fp16 run's updates skipped for overflow; the gradient norm is then the first applied one's."""
    steps = len(losses)
    k = min(CURVE_POINTS, steps)
    chunks = losses[:k * (steps // k)].view(k, -1).mean(1)  # (k,) ; the remainder (< k updates) is left out
    first_g = gnorms[:1] if skipped is None else gnorms[(~skipped).int().argmax()].view(1)
    values = torch.cat([losses[:1], first_g, chunks]).tolist()
    return {"first_loss": values[0], "first_grad_norm": values[1], "loss_curve": values[2:], "steps": steps}


def _eager_step(state: TrainState, data: LoopData, params: list[nn.Parameter], penalized: list[nn.Parameter],
                xb: torch.Tensor, yb: torch.Tensor, step: int, buffers: tuple[torch.Tensor, ...],
                scale: float = 1.0) -> torch.Tensor:
    """One update launched op by op; writes its loss, gradient norm and hits into the epoch's buffers.
    ``scale``: a distributed run's factor for this rank's share of the global batch (train.distributed.shard)."""
    cfg, opt, scaler = state.cfg, state.optimizer, state.scaler
    losses, gnorms, correct, grad_sq, skipped = buffers
    if data.augment is not None:
        xb = data.augment(xb)
    objective = data.loss
    if data.mix is not None:
        xb, yb, lam = data.mix(xb, yb)  # yb: (B, 2) label pairs
        objective = mixed(data.loss, lam)
    l1, l2 = cfg.loss.l1, cfg.loss.l2
    loss, hits = gradients(_stepping(state), objective, xb, yb, opt, precision_name=cfg.speed.precision,
                           device=data.device, scaler=scaler, micro_batch=cfg.speed.micro_batch, scale=scale,
                           penalty=(lambda: weight_penalty(penalized, l1, l2)) if penalized else None,
                           no_sync=state.ddp.no_sync if state.ddp is not None else None, hits=data.classification)
    param_norms, gnorm, applied = finish_update(opt, params, cfg.grad_clip, scaler)
    if not applied:  # fp16: skipped, the scale was too large
        skipped[step] = True
        gnorm, param_norms = gnorm.new_zeros(()), param_norms.new_zeros(param_norms.shape)
    state.scheduler.step()
    with torch.no_grad():
        losses[step] = loss
        gnorms[step] = gnorm
        grad_sq += param_norms.square()
        if hits is not None:
            correct[step] = hits
    return loss


def gradients(forward: Callable[[torch.Tensor], torch.Tensor], loss: Loss, xb: torch.Tensor, yb: torch.Tensor,
              opt: torch.optim.Optimizer, *, precision_name: str, device: torch.device,
              scaler: torch.amp.GradScaler | None, micro_batch: int | None = None, scale: float = 1.0,
              penalty: Callable[[], torch.Tensor] | None = None, no_sync: Callable[[], Any] | None = None,
              hits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Zero the gradients, then fill them with those of the batch's mean loss (times ``scale``, plus ``penalty()``):
    in one forward and backward pass, or, with ``micro_batch`` below the batch's size, in passes of at most that
    many examples whose losses are weighted by their share of the batch, so their gradients add up to the whole
    batch's (gradient accumulation: a batch too big for memory makes the same update). ``no_sync``: DDP's, so the
    gradients are exchanged once, after the last pass. Returns (the batch's mean loss, detached; with ``hits``, its
    correct predictions, else None), as tensors: nothing is read back to the host."""
    opt.zero_grad(set_to_none=True)
    n = len(xb)
    size = micro_batch if micro_batch is not None and micro_batch < n else max(n, 1)
    weigh = loss.example_weight if size < n else None
    whole = weigh(yb).sum() if weigh is not None else None  # the batch's total weight (class weights)
    mean: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    for i in range(0, max(n, 1), size):
        x, y = xb[i:i + size], yb[i:i + size]
        last = i + size >= n
        with precision.autocast(precision_name, device):  # nothing for fp32 (train/precision.py)
            out = forward(x)
            # A rank whose part of a short last batch is empty still joins the gradient all-reduce, with zeros.
            part = loss.fn(out, y) if len(x) else out.sum() * 0
        share = 1.0 if size >= n else (weigh(y).sum() / whole if whole is not None else len(x) / n)
        factor = share * scale
        total = part * factor if isinstance(factor, torch.Tensor) or factor != 1.0 else part
        if last and penalty is not None:
            total = total + penalty()
        with no_sync() if no_sync is not None and not last else contextlib.nullcontext():
            if scaler is None:
                total.backward()
            else:  # fp16: the loss scaled up for the backward pass (train/precision.py)
                scaler.scale(total).backward()
        piece = part.detach() if size >= n else part.detach() * share  # detached: no graph, no no_grad() needed
        mean = piece if mean is None else mean + piece
        if hits:
            right = (predict_classes(loss, out.detach()) == (loss.labels(y) if loss.labels else y)).sum()
            correct = right if correct is None else correct + right
    assert mean is not None
    return mean, correct


def _stepping(state: TrainState) -> nn.Module:
    """The module an update's forward pass runs through: DDP's wrapper, the user's torch.compile one, or the model
    (``is None``, not ``or``: a compiled module's truth value asks the module it wraps for a len())."""
    return next((m for m in (state.ddp, state.compiled) if m is not None), state.model)


def finish_update(opt: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float | None,
                  scaler: torch.amp.GradScaler | None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The update from the gradients in ``.grad``: their norms, clipping and the step. Returns (per-parameter gradient
    norms (P,), the global norm, whether the update was applied — always, but for an fp16 step whose gradients
    overflowed)."""
    if scaler is not None:  # fp16: the gradients back to their size
        scaler.unscale_(opt)
    # Per-parameter norms give both the global norm (for clipping, NaN checks, the metric) and the
    # per-layer norms that show vanishing/exploding gradients, for the cost of one stack.
    param_norms = torch.stack(torch._foreach_norm([graphs.grad_or_zero(p) for p in params]))  # (P,)
    gnorm = param_norms.norm()
    if grad_clip is not None:
        nn.utils.clip_grads_with_norm_(params, grad_clip, gnorm)
    if scaler is None:
        optim.step(opt)  # opt.step() without importing torch._dynamo (train/optim.py)
        return param_norms, gnorm, True
    return param_norms, gnorm, precision.step_unless_overflow(opt, scaler, gnorm)


def _after_step(state: TrainState, step: int, steps: int, losses: torch.Tensor, gnorms: torch.Tensor,
                sizes: torch.Tensor, checked: int, progress_cbs: list[Callback]) -> int:
    """Every CHECK_EVERY updates (and at the last): one host read for NaN/Inf and the progress bar."""
    if (step + 1) % CHECK_EVERY and step + 1 != steps:
        return checked
    _check_finite(state, losses, gnorms, checked, step + 1)
    if progress_cbs:
        seen = sizes[:step + 1]
        running = float((losses[:step + 1] * seen).sum() / seen.sum())
        for cb in progress_cbs:
            cb.on_progress(state, step + 1, running)
    return step + 1


def layer_norms(names: list[str], grad_sq: torch.Tensor, steps: int) -> dict[str, float]:
    """Per layer (module), the root-mean-square over the epoch's updates of its gradient norm."""
    per_layer: dict[str, float] = {}
    for name, sq in zip(names, grad_sq.tolist()):
        layer = name.rsplit(".", 1)[0] if "." in name else name
        per_layer[layer] = per_layer.get(layer, 0.0) + sq
    return {k: math.sqrt(v / steps) for k, v in per_layer.items()}


def _check_finite(state: TrainState, losses: torch.Tensor, gnorms: torch.Tensor, lo: int, hi: int) -> None:
    """Raise TrainingError naming the first update in [lo, hi) whose loss or gradient is NaN/Inf."""
    bad = ~(torch.isfinite(losses[lo:hi]) & torch.isfinite(gnorms[lo:hi]))
    if not bool(bad.any()):
        return
    step = lo + int(bad.nonzero()[0, 0])
    what, value = first_non_finite({"loss": float(losses[step]), "gradient norm": float(gnorms[step])})
    facts = non_finite_facts(state, what, value, losses[:step].tolist(), gnorms[:step].tolist(), step + 1)
    raise TrainingError(describe_non_finite(facts), facts=facts)


def first_non_finite(values: dict[str, float]) -> tuple[str, float] | None:
    """The first ``(name, value)`` of ``values`` (in their order) that is NaN or ±Inf; None when all are finite."""
    return next(((name, v) for name, v in values.items() if not math.isfinite(v)), None)


def non_finite_facts(state: TrainState, what: str, value: float, losses: list[float], gnorms: list[float],
                     step: int | None) -> dict[str, Any]:
    """What the run looked like before a NaN/Inf, as data: the diagnosis names the cause from these
    (``diagnose.rules.nan_cause``). ``losses``/``gnorms``: this epoch's updates before the bad one."""
    start = state.first_epoch if state.epoch > 1 else None  # in epoch 1, ``losses`` begin at its first update
    head_l = [start["first_loss"], *start["loss_curve"]] if start else []
    head_g = [start["first_grad_norm"]] if start else []
    prior_l = [v for v in head_l + [h["train_loss"] for h in state.history] + losses if math.isfinite(v)]
    prior_g = [v for v in head_g + [h["grad_norm"] for h in state.history] + gnorms if math.isfinite(v)]
    if state.scaler is not None:  # fp16: an update skipped for overflow left a 0 in ``gnorms``, not a norm
        prior_g = [v for v in prior_g if v > 0]
    return {"what": what, "value": str(value), "epoch": state.epoch, "step": step,
            "steps_per_epoch": state.steps_per_epoch if step is not None else None,
            "first_loss": prior_l[0] if prior_l else None, "peak_loss": max(prior_l, default=None),
            "last_loss": prior_l[-1] if prior_l else None,
            "first_grad_norm": prior_g[0] if prior_g else None, "max_grad_norm": max(prior_g, default=None),
            "lr": state.cfg.optimizer.lr, "precision": state.cfg.speed.precision}


def describe_non_finite(f: dict[str, Any]) -> str:
    """One line: what became NaN/Inf where, and the loss and gradient-norm levels before it."""
    where = f"{f['what']} became {f['value']} at epoch {f['epoch']}"
    if f["step"] is not None:
        where += f", step {f['step']} of {f['steps_per_epoch']}"
    if f["first_loss"] is None:
        return f"{where}: no update before it was finite."
    return (f"{where}. Before it the training loss went from {f['first_loss']:.3g} at the start to at most "
            f"{f['peak_loss']:.3g}, the gradient norm from {f['first_grad_norm']:.3g} to at most {f['max_grad_norm']:.3g} "
            f"(optimizer.lr {f['lr']:g}).")


def run_epochs(state: TrainState, data: LoopData, callbacks: Sequence[Callback], start_epoch: int = 1) -> None:
    """Epochs ``start_epoch..cfg.epochs``, calling the callbacks, until a stop rule asks to stop."""
    cfg = state.cfg
    for cb in callbacks:
        cb.on_train_begin(state)
    for epoch in range(start_epoch, cfg.epochs + 1):
        state.epoch = epoch
        for cb in callbacks:
            cb.on_epoch_begin(state)
        t0 = time.perf_counter()
        metrics: dict[str, Any] = {"epoch": epoch}
        with _memory_named(state, data, "training"):
            metrics.update(train_epoch(state, data, callbacks))
        with _memory_named(state, data, "validation"):
            judged = state.ema.model if state.ema is not None else state.model  # ema.decay: the averaged weights
            val = evaluate(judged, data.val, data.loss, cfg.eval_batch_size, data.classification, data.device,
                           keep_outputs=True)
        state.val_outputs = val.pop("outputs")
        metrics.update(val_loss=val["loss"], val_acc=val["acc"], lr=state.optimizer.param_groups[0]["lr"],
                       epoch_time=time.perf_counter() - t0)
        if data.classification:  # the classes weighed equally: what accuracy hides on imbalanced labels
            metrics.update(val_balanced_acc=val["balanced_acc"], val_macro_f1=val["macro_f1"])
        if not math.isfinite(metrics["val_loss"]):
            facts = non_finite_facts(state, "val_loss", metrics["val_loss"], [metrics["train_loss"]],
                                     [metrics["grad_norm"]], None)
            raise TrainingError(describe_non_finite(facts) + " The training updates were all finite.", facts=facts)
        state.history.append(metrics)
        # a schedule that follows the monitored metric (plateau) sets the next epoch's lr, before the checkpoint
        state.scheduler.epoch_end(cfg.monitor, metrics.get(cfg.monitor))
        for cb in callbacks:
            cb.on_epoch_end(state, metrics)
        if state.stop_reason is not None:
            break
    limit = EpochLimit(cfg.epochs)
    state.request_stop(limit.reason, limit.name)  # a rule's earlier reason wins


@contextlib.contextmanager
def _memory_named(state: TrainState, data: LoopData, phase: str) -> Iterator[None]:
    """Memory that runs out inside becomes :func:`out_of_memory`'s one-line error for ``phase``; others pass."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise out_of_memory(state, data, exc, phase) from None


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the device's memory ran out: torch's OutOfMemoryError (a GPU), a CPU allocation torch's
    allocator could not get, or Python's MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
                  if isinstance(k, type))
    if kinds and isinstance(exc, kinds):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "DefaultCPUAllocator" in text
                                              or "can't allocate memory" in text)


def _torch_words(exc: BaseException) -> str:
    """The first words of torch's memory error: what it tried to allocate (not its advice on allocator settings)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    m = re.match(r".*?(?:allocate|allocating) [\d.,]+ ?[KMGT]?i?B", text)
    return (m.group(0) if m else text)[:200]


def out_of_memory(state: TrainState, data: LoopData, exc: BaseException, phase: str) -> OutOfMemory:
    """The one-line error for a step (``phase`` "training") or a validation pass ("validation") that ran out of
    memory, with its facts (summary.json's "out_of_memory", which the verdict's out_of_memory rule reads) and the
    setting that needs less: half the examples per pass (speed.micro_batch), or half the evaluation batch."""
    cfg, device = state.cfg, data.device
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the failed step's blocks, for the checkpoint and report written next
    where = _where(device)
    facts: dict[str, Any] = {"phase": phase, "device": str(device), "epoch": state.epoch, "batch_size": cfg.batch_size,
                             "micro_batch": cfg.speed.micro_batch, "eval_batch_size": cfg.eval_batch_size,
                             "error": _torch_words(exc)}
    if phase == "training":
        facts.update(step=state.step + 1, steps_per_epoch=state.steps_per_epoch)
        per_pass = min(cfg.speed.micro_batch or cfg.batch_size, cfg.batch_size)
        world = state.ranks.world if state.ranks is not None and state.ranks.active else 1
        smaller = _fewer_per_pass(state.model, len(data.train), cfg, world, per_pass // 2)
        facts["sets"] = {"speed.micro_batch": smaller} if smaller else {}
        when = (f"in epoch {state.epoch}, update {state.step + 1} of {state.steps_per_epoch}, on passes of {per_pass} "
                "examples")
        fix = (f"Set speed.micro_batch={smaller}: the same updates, each in passes of at most {smaller} examples, "
               "or use a smaller model" if smaller else "Use a smaller model")
    else:
        ran = max(min(cfg.eval_batch_size, len(data.val)), 1)
        smaller = ran // 2  # an eval_batch_size above the split's size ran as one batch of the split
        facts["sets"] = {"eval_batch_size": smaller} if smaller else {}
        when = f"validating epoch {state.epoch} in batches of {ran}"
        fix = f"Set eval_batch_size={smaller}" if smaller else "Use a smaller model"
    return OutOfMemory(f"{where} ran out of memory {when} ({facts['error']}). {fix}.", facts=facts)


def _fewer_per_pass(model: nn.Module, n: int, cfg: Any, world: int, start: int) -> int | None:
    """The largest speed.micro_batch at most ``start`` that BatchNorm layers can take (no pass of one example)."""
    from trainlab.train.run import check_batchnorm_batches

    for size in range(start, 0, -1):
        try:
            check_batchnorm_batches(model, n, cfg.batch_size, world, cfg.drop_last, micro_batch=size)
        except ConfigError:
            continue
        return size
    return None
