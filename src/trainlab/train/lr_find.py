"""The learning-rate range test (Smith 2017, "Cyclical learning rates"): raise the lr exponentially from
``min_lr`` to ``max_lr`` over minibatches of the training split, watch the smoothed loss, suggest an lr.

Each seed sweeps its own copy of the model (built-in models are built with that seed; a user module is
deep-copied as given and the seed only changes the minibatch order), so the caller's model and the global
RNG are left as they were. The suggestion rule is :func:`suggest`; why that one is in its docstring.
"""
from __future__ import annotations

import copy
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from trainlab import files
from trainlab.config import TrainConfig, replace
from trainlab.data import DataBundle, Split, load_data
from trainlab.errors import ConfigError
from trainlab.train.loop import batches, finish_update, gradients
from trainlab.train.losses import weight_penalty
from trainlab.train import precision
from trainlab.train.optim import make_optimizer
from trainlab.train.run import Prepared, on_device, prepare, threads_and_rng

# Exponential smoothing of the per-step loss, with fastai's bias correction. 0.9 (a window of ~10 steps)
# rather than fastai/Lightning's 0.98 (~50 steps): over a 100-step sweep 0.98 lags the raw loss by half the
# sweep and drags every landmark (minimum, steepest descent) to a larger lr.
SMOOTHING = 0.9
# Stop when the smoothed loss exceeds this multiple of its minimum: the lr has passed the point where the
# updates overshoot, and what follows (growth to NaN) says nothing more.
DIVERGE = 4.0
# The suggestion is this fraction of the lr at the smoothed-loss minimum: at the minimum the steps are
# already as large as still helps on average; a tenth of it is the usual margin (fastai's "min/10",
# Smith's "an order of magnitude below where the loss climbs").
FRACTION = 0.1
# A sweep whose smoothed loss never fell below its start by more than 4 standard deviations of its own noise
# (measured on the first tenth of the sweep, where nothing is learned), and at least 2 %, learned nothing in its
# steps (spiral in 100 steps of 16): its minimum is a point of noise, so there is no suggestion. A fixed 10 %
# was tried first: it also silenced the classic recipe, whose loss falls only 2.30 -> ~2.1 before it blows up.
NOISE_SIGMAS = 4.0
MIN_DROP = 0.02
FILE = "lr_find.json"


@dataclass
class SeedSweep:
    """One seed's sweep: the lr of every step, its raw and smoothed loss, and that seed's suggestion."""

    seed: int
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    stop_reason: str


@dataclass
class LRFindResult:
    """The sweeps of every seed, the suggestion (median over seeds) and their spread (max / min).

    ``lrs``, ``losses`` and ``smoothed`` are the first seed's curve (the config's own seed)."""

    suggestion: float | None
    seeds: list[int]
    suggestions: list[float | None]
    spread: float | None
    sweeps: list[SeedSweep]
    min_lr: float
    max_lr: float
    steps: int
    optimizer: str
    batch_size: int
    rule: str = f"{FRACTION:g} x the lr at the smoothed-loss minimum (smoothing {SMOOTHING:g}), median over seeds"
    path: Path | None = field(default=None, repr=False)

    @property
    def lrs(self) -> list[float]:
        return self.sweeps[0].lrs

    @property
    def losses(self) -> list[float]:
        return self.sweeps[0].losses

    @property
    def smoothed(self) -> list[float]:
        return self.sweeps[0].smoothed

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        out.update(lrs=self.lrs, losses=self.losses, smoothed=self.smoothed)
        return files.json_safe(out)

    def summary_line(self) -> str:
        """``suggested lr 0.012 (seeds: 0.010, 0.012, 0.015; spread 1.5x)``."""
        if self.suggestion is None:
            return (f"no lr suggested: the smoothed loss never fell between {self.min_lr:g} and {self.max_lr:g} "
                    f"({self.optimizer}, batch {self.batch_size}). Widen --min-lr/--max-lr or check the data")
        each = ", ".join("none" if s is None else f"{s:.2g}" for s in self.suggestions)
        spread = f"; spread {self.spread:.1f}x" if self.spread is not None and len(self.seeds) > 1 else ""
        return f"suggested lr {self.suggestion:.2g} (seeds: {each}{spread}) for {self.optimizer}, batch {self.batch_size}"

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/lr_find.json``; returns its path."""
        path = Path(run_dir) / FILE
        files.write_json(path, self.to_dict(), indent=1)
        self.path = path
        return path


def read_lr_find(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/lr_find.json`` as plain data, or None when there is none (or it is unreadable)."""
    try:
        return files.read_json(Path(run_dir) / FILE)
    except (OSError, files.DamagedFileError):
        return None


def check_range(min_lr: float, max_lr: float, steps: int, seeds: Sequence[int]) -> None:
    """The sweep's own arguments, all problems in one ConfigError (house form, one line each)."""
    problems = []
    if not (isinstance(min_lr, (int, float)) and math.isfinite(min_lr) and min_lr > 0):
        problems.append(f"min_lr must be > 0 (the sweep is exponential). Got {min_lr}. Use e.g. --min-lr 1e-7.")
    elif not (isinstance(max_lr, (int, float)) and math.isfinite(max_lr) and max_lr > min_lr):
        problems.append(f"max_lr must be > min_lr ({min_lr:g}). Got {max_lr}. Use e.g. --max-lr 10.")
    if not isinstance(steps, int) or steps < 10:
        problems.append(f"steps must be an integer >= 10 (a shorter sweep cannot be smoothed). Got {steps}. "
                        "Use e.g. --steps 100.")
    if len(seeds) < 1:
        problems.append("seeds must name at least one seed. Got none. Use e.g. --seeds 3.")
    if problems:
        raise ConfigError("\n".join(problems))


def smooth(losses: Sequence[float], beta: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average: ``avg_i = β avg_(i-1) + (1-β) loss_i``, divided by 1-β^(i+1)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest(lrs: Sequence[float], losses: Sequence[float], beta: float = SMOOTHING) -> float | None:
    """``FRACTION`` × the lr where the smoothed loss is lowest; None when it never fell clearly below its start.

    Why this rule: ``python benchmarks/lr_find_stability.py --seeds 7`` reads four rules off the same sweeps
    (1e-7 .. 10, 100 steps; 7 seeds; toy nets with he/xavier init; 2026-12-04). Spread = max / min over seeds:

    ==================  =========  ==========  ======  ===========  ============  =====================
    rule                moons sgd  moons adam  spiral  circle mom.  fashion mlp   geo-mean / worst
    ==================  =========  ==========  ======  ===========  ============  =====================
    min/10, beta 0.9    5.3x       9.3x        4.4x    2.5x         1.5x          3.8x / 9.3x (3 none)
    min/10, beta 0.98   7.7x       5.3x        6.4x    2.5x         3.1x          4.6x / 7.7x (4 none)
    fastai valley       16.3x      2.5x        9.3x    5.3x         3.1x          5.8x / 16.3x
    Lightning steepest  8.9e6x     2.6e5x      72x     4.5e5x       1.5x          1.0e4x
    ==================  =========  ==========  ======  ===========  ============  =====================

    Steepest descent jumps to the flat start of the curve (1e-6) on some seeds; the minimum moves least on the
    classic recipe (0.061-0.089; it trains well at 0.1). On the toy sets the per-seed suggestions still differ by
    2.5-9x: their curves are flat and noisy near the minimum. What is suggested is the median of 3 seeds. On moons
    (SGD) the seeds suggest 0.024-0.13; trained 20 epochs (3 seeds) lr 0.03 / 0.1 / 0.3 / 1 / 3 reach val acc
    0.88 / 0.97 / 0.96 / 0.96 / 0.50, so the suggestions sit on the safe side of the good band.
    """
    smoothed = smooth(losses, beta)
    # the start: the first tenth of the sweep, at lrs far too small to learn anything. Its level is their mean, not
    # the first batch's loss (±50 % with 32 examples); the minimum is sought after it (a lucky first batch is not a
    # minimum: on moons it suggested 1e-8)
    k = max(len(losses) // 10, 2)
    if len(losses) <= k:
        return None
    start = statistics.fmean(smoothed[:k])
    noise = statistics.stdev(losses[:k]) * math.sqrt((1 - beta) / (1 + beta))  # std of the average of noise
    i = min(range(k, len(smoothed)), key=smoothed.__getitem__)
    if start - smoothed[i] < max(NOISE_SIGMAS * noise, MIN_DROP * start):
        return None
    return FRACTION * lrs[i]


def sweep_one(p: Prepared, seed: int, *, min_lr: float, max_lr: float, steps: int) -> SeedSweep:
    """One range test on ``p`` (its model is trained in place: pass a copy)."""
    cfg, model, device = p.cfg, p.model, p.device
    opt = make_optimizer(model.parameters(), replace(cfg, **{"optimizer.lr": min_lr}).optimizer)
    params = [q for q in model.parameters() if q.requires_grad]
    penalized = [q for q in params if q.ndim > 1] if (cfg.loss.l1 or cfg.loss.l2) else []
    train = on_device(p.bundle.train, device)
    shuffle = torch.Generator().manual_seed(seed)
    ratio = (max_lr / min_lr) ** (1 / (steps - 1))
    scaler = precision.make_scaler(cfg.speed.precision, device)

    def stream():
        while True:  # epochs over the training split, reshuffled, until the sweep ends
            order = torch.randperm(len(train), generator=shuffle).to(device) if isinstance(train, Split) else None
            yield from batches(train, cfg.batch_size, device, order=order, generator=shuffle, drop_last=cfg.drop_last)

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg = 0.0
    stop = f"reached max_lr {max_lr:g}"
    model.train()
    data = stream()
    for i in range(steps):
        lr = min_lr * ratio ** i
        for group in opt.param_groups:
            group["lr"] = lr
        xb, yb = next(data)
        # the run's own update, in its precision and passes (fp16: an overflowing one is skipped; its loss still
        # counts at its lr)
        penalty = (lambda: weight_penalty(penalized, cfg.loss.l1, cfg.loss.l2)) if penalized else None
        loss, _ = gradients(model, p.loss, xb, yb, opt, precision_name=cfg.speed.precision, device=device,
                            scaler=scaler, micro_batch=cfg.speed.micro_batch, penalty=penalty)
        finish_update(opt, params, cfg.grad_clip, scaler)
        value = float(loss.detach())  # one host read a step: 100 of them are nothing next to the steps themselves
        if not math.isfinite(value):
            stop = f"loss became {value} at lr {lr:.3g}"
            break
        lrs.append(lr)
        losses.append(value)
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smoothed.append(avg / (1 - SMOOTHING ** len(losses)))  # as smooth(losses), one step at a time
        if smoothed[-1] > DIVERGE * min(smoothed):
            stop = f"smoothed loss above {DIVERGE:g}x its minimum at lr {lr:.3g}"
            break
    return SeedSweep(seed, lrs, losses, smoothed, suggest(lrs, losses), stop)


def spread_of(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return max(found) / min(found) if found else None


def median_of(values: Sequence[float | None]) -> float | None:
    found = sorted(v for v in values if v is not None)
    if not found:
        return None
    mid = len(found) // 2
    return found[mid] if len(found) % 2 else math.sqrt(found[mid - 1] * found[mid])  # geometric: lrs are log-scale


def find_lr(cfg: TrainConfig, *, bundle: DataBundle | None = None, model: nn.Module | None = None,
            seeds: Sequence[int] | None = None, min_lr: float = 1e-7, max_lr: float = 10.0,
            steps: int = 100) -> LRFindResult:
    """The range test of ``cfg`` (its data, model, optimizer, batch size, loss) over ``seeds`` (default: the
    config's seed and the next two). ``model``: a user module, copied for each seed, never changed."""
    seeds = list(seeds) if seeds is not None else [cfg.seed, cfg.seed + 1, cfg.seed + 2]
    check_range(min_lr, max_lr, steps, seeds)
    bundle = bundle if bundle is not None else load_data(cfg.data, cfg.seed)  # one split, the config's
    sweeps = []
    for seed in seeds:
        p = prepare(replace(cfg, seed=seed), bundle, copy.deepcopy(model) if model is not None else None)
        with threads_and_rng(p.threads, seed, p.device):
            sweeps.append(sweep_one(p, seed, min_lr=min_lr, max_lr=max_lr, steps=steps))
    found = [s.suggestion for s in sweeps]
    return LRFindResult(median_of(found), seeds, found, spread_of(found), sweeps, min_lr, max_lr, steps,
                        cfg.optimizer.name, cfg.batch_size)
