"""Optimizers and learning-rate schedules by name (torch's optimizers, configured from the config).

Schedules are pure functions ``factor(step)`` of the optimizer step, applied by one small
:class:`StepScheduler` after every update: the lr is then a function of the step count alone, so resuming
from a checkpoint (which stores that count) reproduces it exactly, for every schedule alike. (torch's
``LambdaLR`` does the same job but costs ~200 µs a step here — 4 % of the classic recipe's run time.) The one
schedule that follows the run rather than the clock, ``plateau``, adds a multiplier the monitored metric moves
after each epoch (:class:`Plateau`), whose few numbers the checkpoint stores beside the count.

Constructing the first torch optimizer of a process imports ``torch._dynamo`` (~1.0 s on 2 CPU cores with
torch 2.13, the largest fixed cost of a run after ``import torch``, 11 % of the classic recipe's whole
process): ``Optimizer.add_param_group``, ``zero_grad`` and ``(load_)state_dict`` are wrapped in
``torch._disable_dynamo``, which imports it on first call only to tell the compiler not to trace them, and
every ``step`` runs under ``_use_grad_for_differentiable``, which imports it to place graph breaks. Before
``torch._dynamo`` is imported nothing can be tracing, so both are plain calls then. :func:`step` and
:func:`_defer_dynamo` (run at import) make them so, each behind checks that torch still has the shape they
rely on (otherwise torch's own path runs): the four methods get a lazy stand-in for the disabled function
torch caches on them, which becomes torch's own from the first call after anyone imports ``torch._dynamo``;
``step(opt)`` runs the optimizer's undecorated ``step`` under ``no_grad`` while ``torch._dynamo`` is not
imported and the optimizer has no step hooks, else ``opt.step()``. The updates are the same tensors either way
(tests/train/test_optim.py compares them).
"""
from __future__ import annotations

import functools
import math
import sys
from typing import Any, Callable, Iterable

import torch

from trainlab.config import DEFAULT_MOMENTUM, OptimizerConfig, ScheduleConfig
from trainlab.errors import ConfigError, Verbatim, problem
from trainlab.monitor import better
from trainlab.registry import OPTIMIZERS, SCHEDULES

Params = Iterable[torch.nn.Parameter]

# Adam and AdamW update all parameter tensors at once (torch's "foreach" kernels: CUDA's default already). On a CPU
# their step is then 15-20 % faster for a small model (2-64-64-2 MLP, one thread, medians of 7: Adam 515 → 442 µs,
# AdamW 613 → 485 µs) and as fast for the 784-256-10 MLP, with bit-identical updates (tests/train/test_optim.py).
# Not for SGD, Adagrad, RMSprop: there it is as fast or slower (SGD 89 → 108 µs). Not "fused": that reorders the
# arithmetic.
FOREACH = {"foreach": True}


@OPTIMIZERS.register("sgd", "plain (minibatch) stochastic gradient descent")
def _sgd(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)


@OPTIMIZERS.register("momentum", "SGD with heavy-ball momentum (optimizer.momentum, default 0.9)")
def _momentum(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=_momentum_of(c), weight_decay=c.weight_decay)


@OPTIMIZERS.register("nesterov", "SGD with Nesterov momentum")
def _nesterov(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=_momentum_of(c), nesterov=True, weight_decay=c.weight_decay)


def _momentum_of(c: OptimizerConfig) -> float:
    return DEFAULT_MOMENTUM if c.momentum is None else c.momentum


@OPTIMIZERS.register("adagrad", "per-parameter lr scaled by the sum of past squared gradients")
def _adagrad(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop", "per-parameter lr scaled by a moving average of squared gradients")
def _rmsprop(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=c.lr, alpha=c.alpha, eps=c.eps, weight_decay=c.weight_decay)


@OPTIMIZERS.register("adam", "momentum + RMSprop scaling with bias correction")
def _adam(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay, **FOREACH)


@OPTIMIZERS.register("adamw", "Adam with decoupled weight decay (optimizer.weight_decay)")
def _adamw(params: Params, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay, **FOREACH)


# torch's optimizer classes that are one of ours (an SGD with momentum is "momentum", with nesterov "nesterov")
TORCH_OPTIMIZERS = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adamw",
                    torch.optim.RMSprop: "rmsprop", torch.optim.Adagrad: "adagrad"}
# each one's settings that trainlab does not have, at the value that means "off"
_OFF = {"dampening": 0, "amsgrad": False, "maximize": False, "centered": False, "lr_decay": 0,
        "initial_accumulator_value": 0}


def from_torch(optimizer: Any) -> dict[str, Any] | None:
    """Config overrides for a torch optimizer passed as ``optimizer=`` (skorch takes the class, Lightning users
    build an instance): the class gives the name; an instance its settings too (lr, momentum, betas, eps, alpha,
    weight_decay), read from its one parameter group. trainlab builds its own optimizer from them (the instance's
    state is not taken). None: not a torch optimizer; ConfigError: one that trainlab has no equivalent for."""
    cls = optimizer if isinstance(optimizer, type) else type(optimizer)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        return None
    names = ", ".join(f"torch.optim.{k.__name__}" for k in TORCH_OPTIMIZERS)
    if cls not in TORCH_OPTIMIZERS:
        raise ConfigError(problem("optimizer", f"one of trainlab's optimizers ({', '.join(OPTIMIZERS.names())}) or "
                                  f"the torch class of one ({names})", Verbatim(f"torch.optim.{cls.__name__}"),
                                  "Use one of those, e.g. optimizer='adam'"))
    name = TORCH_OPTIMIZERS[cls]
    if isinstance(optimizer, type):
        return {"optimizer.name": name}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    g = groups[0]
    differ = sorted({k for other in groups[1:] for k in g if repr(other.get(k)) != repr(g[k])})
    if differ:
        raise ConfigError(problem("optimizer", "one setting for every parameter", Verbatim(
                                  f"a torch.optim.{cls.__name__} with {len(groups)} parameter groups that differ in "
                                  f"{', '.join(differ)}"),
                                  "Build it with one group (optimizer(model.parameters(), ...)); trainlab gives every "
                                  "weight the same lr and weight decay"))
    on = [k for k, off in _OFF.items() if k in g and g[k] != off]
    if on:
        raise ConfigError(problem("optimizer", f"a torch.optim.{cls.__name__} without {', '.join(on)}",
                                  Verbatim(", ".join(f"{k}={g[k]!r}" for k in on)),
                                  f"Build it without {' and '.join(on)}, which trainlab's {name} does not have"))
    if cls is torch.optim.RMSprop and float(g.get("momentum", 0)):
        raise ConfigError(problem("optimizer", "a torch.optim.RMSprop without momentum",
                                  Verbatim(f"momentum={g['momentum']}"),
                                  "Build it with momentum=0, which trainlab's rmsprop has"))
    out: dict[str, Any] = {"optimizer.name": name, "optimizer.lr": float(g["lr"]),
                           "optimizer.weight_decay": float(g.get("weight_decay", 0.0))}
    if cls is torch.optim.Adam and g.get("decoupled_weight_decay"):  # torch's Adam(decoupled_weight_decay=True)
        out["optimizer.name"] = "adamw"
    if cls is torch.optim.SGD and (g.get("nesterov") or float(g.get("momentum", 0))):
        out.update({"optimizer.name": "nesterov" if g.get("nesterov") else "momentum",
                    "optimizer.momentum": float(g["momentum"])})
    if "betas" in g:
        out["optimizer.betas"] = [float(b) for b in g["betas"]]
    if "eps" in g and cls is not torch.optim.SGD:
        out["optimizer.eps"] = float(g["eps"])
    if cls is torch.optim.RMSprop:
        out["optimizer.alpha"] = float(g["alpha"])
    return out


def make_optimizer(params: Params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The torch optimizer named by ``cfg.name``, with its hyperparameters from ``cfg``."""
    return OPTIMIZERS.get(cfg.name)(params, cfg)


# ------------------------------------------------------------------ torch.optim without importing torch._dynamo

_DISABLED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def _dynamo_loaded() -> bool:
    return "torch._dynamo" in sys.modules


def _lazy_disabled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What ``torch._disable_dynamo`` caches on ``fn`` at its first call, made lazy: ``fn`` itself while
    ``torch._dynamo`` is not imported; from the first call after, torch's own disabled ``fn``, cached in our place."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if not _dynamo_loaded():
            return fn(*args, **kwargs)
        real = torch._dynamo.disable(fn, True, wrapping=False)  # what torch._compile._disable_dynamo does
        setattr(fn, "__dynamo_disable", real)
        return real(*args, **kwargs)

    return call


def _defer_dynamo() -> None:
    """Give the ``torch._disable_dynamo``-wrapped Optimizer methods a lazy stand-in (see the module doc). A method
    whose wrapper does not read ``__dynamo_disable`` is left as torch has it."""
    for name in _DISABLED:
        wrapper = getattr(torch.optim.Optimizer, name, None)
        fn = getattr(wrapper, "__wrapped__", None)
        code = getattr(wrapper, "__code__", None)
        if fn is None or code is None or "__dynamo_disable" not in (*code.co_consts, *code.co_names):
            continue
        if getattr(fn, "__dynamo_disable", None) is None and not _dynamo_loaded():
            setattr(fn, "__dynamo_disable", _lazy_disabled(fn))


@functools.lru_cache(maxsize=None)
def _undecorated_step(cls: type) -> Callable[..., Any] | None:
    """``cls.step`` without torch's two wrappers (``profile_hook_step``'s hooks, ``_use_grad_for_differentiable``),
    or None when the chain is not exactly those two around a function named ``step``."""
    f, names = cls.step, []
    while hasattr(f, "__wrapped__") and len(names) < 3:
        names.append(getattr(getattr(f, "__code__", None), "co_name", None))
        f = f.__wrapped__
    if names != ["wrapper", "_use_grad"] or getattr(getattr(f, "__code__", None), "co_name", None) != "step":
        return None
    return f


def _has_step_hooks(opt: torch.optim.Optimizer) -> bool:
    glob = sys.modules["torch.optim.optimizer"]
    hooks = [getattr(opt, "_optimizer_step_pre_hooks", None), getattr(opt, "_optimizer_step_post_hooks", None),
             getattr(glob, "_global_optimizer_pre_hooks", None), getattr(glob, "_global_optimizer_post_hooks", None)]
    return any(h is None or len(h) for h in hooks)


def step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()``, without importing ``torch._dynamo`` where nothing could be compiling (module doc)."""
    raw = None if _dynamo_loaded() or opt.defaults.get("differentiable") else _undecorated_step(type(opt))
    if raw is None or _has_step_hooks(opt):
        opt.step()
        return
    with torch.no_grad():
        raw(opt)


_defer_dynamo()


# --- schedules: factor(step, total_steps, steps_per_epoch, cfg, base_lr) -> multiplier of the base lr ---


@SCHEDULES.register("constant", "the same lr throughout")
def _constant(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    return 1.0


@SCHEDULES.register("step", "multiply the lr by schedule.gamma every schedule.step_epochs epochs")
def _step(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    return c.gamma ** (step // (c.step_epochs * per_epoch))


@SCHEDULES.register("cosine", "cosine decay from lr to schedule.min_lr over the run")
def _cosine(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    return cosine_between(1.0, c.min_lr / base_lr, min(step, total) / max(total, 1))


@SCHEDULES.register("onecycle", "one cycle: lr/25 up to lr over 30 % of the run, then down to lr/2.5e5")
def _onecycle(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    # The same shape and constants as torch.optim.lr_scheduler.OneCycleLR's defaults.
    start, end, peak_at = 1 / 25, 1 / 25 / 1e4, 0.3 * total - 1
    if step <= peak_at:
        return cosine_between(start, 1.0, step / max(peak_at, 1))
    return cosine_between(1.0, end, min((step - peak_at) / max(total - 1 - peak_at, 1), 1.0))


@SCHEDULES.register("warmup", "linear warm-up over schedule.warmup_epochs (default 1), then constant")
def _warmup(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    return 1.0


@SCHEDULES.register("plateau", "multiply the lr by schedule.gamma after schedule.patience epochs without a better "
                              "monitored metric (ReduceLROnPlateau), down to schedule.min_lr")
def _plateau(step: int, total: int, per_epoch: int, c: ScheduleConfig, base_lr: float) -> float:
    return 1.0  # the monitored metric moves it between epochs: Plateau


class Plateau:
    """Keras' ``ReduceLROnPlateau`` (cooldown 0): after ``schedule.patience`` epochs in a row whose monitored value
    is no better than the best one before them, the lr is multiplied by ``schedule.gamma``, never below
    ``schedule.min_lr``, and the count starts again. Its state (best, count, cuts) goes into every checkpoint, so a
    resumed run cuts where the uninterrupted one would have."""

    def __init__(self, c: ScheduleConfig, base_lr: float) -> None:
        self.patience, self.gamma = c.patience, c.gamma
        self.floor = c.min_lr / base_lr if base_lr > 0 else 0.0
        self.best: float | None = None
        self.bad = self.cuts = 0

    @property
    def scale(self) -> float:
        """The lr's multiplier now."""
        return max(self.gamma ** self.cuts, self.floor)

    def update(self, monitor: str, value: float | None) -> None:
        """After an epoch: its value of ``monitor`` (None or NaN: no better)."""
        if better(monitor, value, self.best):
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.cuts, self.bad = self.cuts + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad": self.bad, "cuts": self.cuts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad, self.cuts = state["best"], int(state["bad"]), int(state["cuts"])


_plateau.between_epochs = Plateau  # type: ignore[attr-defined]  # what make_scheduler builds for it


def cosine_between(a: float, b: float, t: float) -> float:
    """Cosine interpolation from a (t=0) to b (t=1)."""
    return b + (a - b) / 2 * (1 + math.cos(math.pi * t))


class StepScheduler:
    """Sets each param group's lr to ``base_lr · factor(step)`` (times a plateau's multiplier); the state is the step
    count (and the plateau's)."""

    def __init__(self, optimizer: torch.optim.Optimizer, factor: Callable[[int], float],
                 between_epochs: Plateau | None = None) -> None:
        self.optimizer, self.factor = optimizer, factor
        self.between_epochs = between_epochs  # a schedule the monitored metric moves after each epoch (plateau)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0  # steps taken (torch's name for it)
        self._apply()

    def _apply(self) -> None:
        f = self.factor(self.last_epoch) * (self.between_epochs.scale if self.between_epochs is not None else 1.0)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def epoch_end(self, monitor: str, value: float | None) -> None:
        """After an epoch's validation: its value of the monitored metric, for a schedule that follows it."""
        if self.between_epochs is not None:
            self.between_epochs.update(monitor, value)
            self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs),
                **({"plateau": self.between_epochs.state_dict()} if self.between_epochs is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch, self.base_lrs = int(state["last_epoch"]), list(state["base_lrs"])
        if self.between_epochs is not None and state.get("plateau") is not None:
            self.between_epochs.load_state_dict(state["plateau"])
        self._apply()


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int,
                   epochs: int) -> StepScheduler:
    """A per-step scheduler; ``schedule.warmup_epochs`` > 0 prepends a linear warm-up to any schedule."""
    fn = SCHEDULES.get(cfg.name)
    total = steps_per_epoch * epochs
    warm_epochs = cfg.warmup_epochs or (1.0 if cfg.name == "warmup" else 0.0)
    warm = min(int(round(warm_epochs * steps_per_epoch)), total)
    base_lr = optimizer.param_groups[0]["lr"]

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return fn(step - warm, total - warm, steps_per_epoch, cfg, base_lr)

    between = getattr(fn, "between_epochs", None)
    return StepScheduler(optimizer, factor, between(cfg, base_lr) if between is not None else None)
