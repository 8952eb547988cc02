"""Optimizers and schedules by name, checked against torch's own optimizers and schedulers.

Each schedule is a ``StepScheduler`` over a pure function of the step; its lr sequence must equal the one
torch's dedicated scheduler (StepLR, CosineAnnealingLR, OneCycleLR) produces when stepped as often.
"""
from __future__ import annotations

import copy
import io
import math
from typing import Callable

import pytest
import torch
from torch.optim import lr_scheduler as tls

from trainlab.config import OptimizerConfig, ScheduleConfig
from trainlab.registry import OPTIMIZERS, SCHEDULES
from trainlab.train.optim import StepScheduler, cosine_between, make_optimizer, make_scheduler

# A learning rate per optimizer at which 50 steps on the quadratic below are stable and clearly useful.
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1, "adamw": 0.1}
TORCH_CLASS = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
               "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW}

SCALES = torch.tensor([1.0, 2.0, 0.5, 1.5])  # an axis-aligned bowl of unequal curvature
TARGET = torch.tensor([1.0, -2.0, 0.5, 3.0])


def _quadratic(w: torch.Tensor) -> torch.Tensor:
    return (SCALES * (w - TARGET) ** 2).sum()


def test_every_optimizer_is_covered_here() -> None:
    assert set(OPTIMIZERS.names()) == set(LR) == set(TORCH_CLASS)


@pytest.mark.parametrize("name", sorted(LR))
def test_optimizer_builds_from_a_default_config_with_its_values(name: str) -> None:
    cfg = OptimizerConfig(name=name)
    w = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer([w], cfg)
    assert type(opt) is TORCH_CLASS[name]
    group = opt.param_groups[0]
    assert group["lr"] == cfg.lr
    # the config's weight decay (0 by default), not the torch class's own default (AdamW's is 0.01)
    assert group["weight_decay"] == cfg.weight_decay == 0.0
    if isinstance(opt, torch.optim.SGD):
        assert group["momentum"] == (0.0 if name == "sgd" else 0.9)  # 0.9 is OptimizerConfig's default
        assert group["nesterov"] is (name == "nesterov")
    if name in {"adam", "adamw"}:
        assert tuple(group["betas"]) == cfg.betas and group["eps"] == cfg.eps
    if name == "rmsprop":
        assert group["alpha"] == cfg.alpha and group["eps"] == cfg.eps
    if name == "adagrad":
        assert group["eps"] == cfg.eps


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_updates_all_tensors_at_once_with_the_one_at_a_time_updates_bit_for_bit(name: str) -> None:
    cfg = OptimizerConfig(name=name, lr=LR[name], weight_decay=0.01)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    twin = copy.deepcopy(net)
    ours = make_optimizer(net.parameters(), cfg)
    assert ours.defaults["foreach"] is True
    settings = {k: v for k, v in ours.defaults.items() if k != "decoupled_weight_decay"}  # AdamW's, not a keyword
    theirs = TORCH_CLASS[name](twin.parameters(), **{**settings, "foreach": False})  # torch's CPU default path
    x, y = torch.randn(16, 3), torch.randn(16, 2)
    for _ in range(20):
        for model, opt in ((net, ours), (twin, theirs)):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters()))


def test_optimizer_hyperparameters_come_from_the_config() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    g = make_optimizer([w], OptimizerConfig(name="nesterov", lr=0.03, momentum=0.7, weight_decay=1e-3)).param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == (0.03, 0.7, True, 1e-3)
    g = make_optimizer([w], OptimizerConfig(name="adam", betas=(0.8, 0.9), eps=1e-6)).param_groups[0]
    assert (tuple(g["betas"]), g["eps"]) == ((0.8, 0.9), 1e-6)
    g = make_optimizer([w], OptimizerConfig(name="rmsprop", alpha=0.9)).param_groups[0]
    assert g["alpha"] == 0.9


@pytest.mark.parametrize("name", sorted(LR))
def test_optimizer_reduces_a_quadratic(name: str) -> None:
    w = torch.nn.Parameter(torch.zeros(4))
    opt = make_optimizer([w], OptimizerConfig(name=name, lr=LR[name]))
    initial = _quadratic(w).item()
    for _ in range(50):
        opt.zero_grad()
        _quadratic(w).backward()
        opt.step()
    final = _quadratic(w).item()
    assert math.isfinite(final) and final < initial / 2, (name, initial, final)


def test_adamw_decay_is_decoupled_and_adam_decay_is_in_the_gradient() -> None:
    lr, wd, eps = 0.1, 0.5, 1e-8
    p0 = torch.tensor([4.0, -0.5])
    pw = torch.nn.Parameter(p0.clone())
    pa = torch.nn.Parameter(p0.clone())
    adamw = make_optimizer([pw], OptimizerConfig(name="adamw", lr=lr, weight_decay=wd, eps=eps))
    adam = make_optimizer([pa], OptimizerConfig(name="adam", lr=lr, weight_decay=wd, eps=eps))
    for p, opt in ((pw, adamw), (pa, adam)):
        p.grad = torch.zeros_like(p)  # zero loss gradient: only weight decay acts
        opt.step()
    # AdamW: p ← p − lr·wd·p, and Adam's own step on a zero gradient is zero.
    torch.testing.assert_close(pw.detach(), p0 - lr * wd * p0)
    # Adam: g = wd·p enters the moments; the first bias-corrected step is lr·g/(|g| + eps) ≈ lr·sign(p).
    g = wd * p0
    torch.testing.assert_close(pa.detach(), p0 - lr * g / (g.abs() + eps))
    assert not torch.allclose(pw.detach(), pa.detach())


def test_adamw_without_decay_leaves_a_zero_gradient_parameter_alone() -> None:
    p = torch.nn.Parameter(torch.tensor([4.0, -0.5]))
    opt = make_optimizer([p], OptimizerConfig(name="adamw", lr=0.1))
    p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([4.0, -0.5]))


# --- schedules ------------------------------------------------------------------------------------


def _lrs(make: Callable[[torch.optim.Optimizer], tls.LRScheduler], steps: int, lr: float = 0.1) -> list[float]:
    """The lr used by each of ``steps`` updates when the scheduler is stepped after every update."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _ours(cfg: ScheduleConfig, per_epoch: int, epochs: int, lr: float = 0.1, steps: int | None = None) -> list[float]:
    return _lrs(lambda o: make_scheduler(o, cfg, per_epoch, epochs), steps or per_epoch * epochs, lr)


def test_every_schedule_is_covered_here() -> None:
    assert set(SCHEDULES.names()) == {"constant", "step", "cosine", "onecycle", "warmup", "plateau"}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("patience", "gamma", "min_lr", "monitor"), [(1, 0.5, 0.0, "val_loss"), (3, 0.1, 0.0, "val_loss"),
                                                                        (2, 0.5, 0.02, "val_loss"), (2, 0.3, 0.0, "val_acc")])
def test_plateau_schedule_matches_torch_reduce_lr_on_plateau(seed: int, patience: int, gamma: float, min_lr: float,
                                                             monitor: str) -> None:
    # torch counts one epoch more (it cuts when the bad epochs exceed its patience) and, by default, needs a relative
    # improvement of 1e-4: with patience-1 and threshold 0 both follow Keras' rule, the one trainlab states
    g = torch.Generator().manual_seed(seed)
    values = (torch.rand(40, generator=g) + torch.linspace(1, 0, 40) * (1 if monitor == "val_loss" else -1)).tolist()
    values[7] = float("nan")  # never an improvement
    w = torch.nn.Parameter(torch.zeros(1))
    opt, ref = torch.optim.SGD([w], lr=0.1), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = make_scheduler(opt, ScheduleConfig(name="plateau", patience=patience, gamma=gamma, min_lr=min_lr), 3, 40)
    theirs = tls.ReduceLROnPlateau(ref, mode="min" if monitor == "val_loss" else "max", factor=gamma,
                                   patience=patience - 1, threshold=0.0, min_lr=min_lr, eps=0.0)
    got, want = [], []
    for v in values:
        for _ in range(3):
            ours.step()  # the steps of an epoch leave a plateau's lr alone
        ours.epoch_end(monitor, v)
        theirs.step(v)
        got.append(opt.param_groups[0]["lr"])
        want.append(ref.param_groups[0]["lr"])
    assert got == pytest.approx(want, rel=1e-9)
    assert got[-1] < 0.1  # it did cut


def test_a_plateau_schedule_keeps_its_count_in_its_state() -> None:
    w = torch.nn.Parameter(torch.zeros(1))
    make = lambda: make_scheduler(torch.optim.SGD([w], lr=0.1), ScheduleConfig(name="plateau", patience=2), 1, 9)
    whole, first = make(), make()
    values = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85]  # a cut after the 4th epoch, one epoch without a better value after
    for v in values[:3]:
        whole.epoch_end("val_loss", v)
        first.epoch_end("val_loss", v)
    second = make()
    second.load_state_dict(first.state_dict())
    for v in values[3:]:
        whole.epoch_end("val_loss", v)
        second.epoch_end("val_loss", v)
    assert whole.get_last_lr() == second.get_last_lr() == [pytest.approx(0.01)]  # one cut by the default gamma 0.1
    assert whole.state_dict() == second.state_dict()


SHAPES = [(3, 10), (7, 13), (1, 5), (50, 2)]  # (steps_per_epoch, epochs)


@pytest.mark.parametrize(("per_epoch", "epochs"), SHAPES)
def test_constant_schedule_keeps_the_base_lr(per_epoch: int, epochs: int) -> None:
    assert _ours(ScheduleConfig(name="constant"), per_epoch, epochs, lr=0.05) == [0.05] * (per_epoch * epochs)


@pytest.mark.parametrize(("per_epoch", "epochs"), SHAPES)
@pytest.mark.parametrize(("step_epochs", "gamma"), [(2, 0.5), (1, 0.1), (3, 0.9)])
def test_step_schedule_matches_torch_steplr(per_epoch: int, epochs: int, step_epochs: int, gamma: float) -> None:
    total = per_epoch * epochs
    ours = _ours(ScheduleConfig(name="step", step_epochs=step_epochs, gamma=gamma), per_epoch, epochs)
    theirs = _lrs(lambda o: tls.StepLR(o, step_size=step_epochs * per_epoch, gamma=gamma), total)
    assert ours == pytest.approx(theirs, rel=1e-6)
    if epochs > step_epochs:
        assert ours[-1] < ours[0]  # it did decay


@pytest.mark.parametrize(("per_epoch", "epochs"), SHAPES)
@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_schedule_matches_torch_cosine_annealing(per_epoch: int, epochs: int, min_lr: float) -> None:
    total = per_epoch * epochs
    cfg = ScheduleConfig(name="cosine", min_lr=min_lr)
    # total + 1 values: the lr after the last update is min_lr for both
    ours = _ours(cfg, per_epoch, epochs, steps=total + 1)
    theirs = _lrs(lambda o: tls.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), total + 1)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12)
    assert ours[-1] == pytest.approx(min_lr, abs=1e-12)


@pytest.mark.parametrize(("per_epoch", "epochs"), SHAPES + [(10, 10), (9, 11)])
def test_onecycle_schedule_matches_torch_onecycle(per_epoch: int, epochs: int) -> None:
    total = per_epoch * epochs
    ours = _ours(ScheduleConfig(name="onecycle"), per_epoch, epochs)
    # cycle_momentum=False only because plain SGD has no momentum to cycle; the lr shape is torch's default.
    theirs = _lrs(lambda o: tls.OneCycleLR(o, max_lr=0.1, total_steps=total, cycle_momentum=False), total)
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-12)
    assert ours[0] == pytest.approx(0.1 / 25)
    if total >= 10:
        assert max(ours) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("per_epoch", [1, 4, 10])
def test_warmup_rises_linearly_over_one_epoch_to_the_base_lr(per_epoch: int) -> None:
    lr, epochs = 0.2, 3
    ours = _ours(ScheduleConfig(name="constant", warmup_epochs=1), per_epoch, epochs, lr=lr)
    want = [lr * (k + 1) / per_epoch for k in range(per_epoch)] + [lr] * (per_epoch * (epochs - 1))
    assert ours == pytest.approx(want, rel=1e-12)
    # the 'warmup' schedule is the same thing with warmup_epochs defaulting to 1
    assert _ours(ScheduleConfig(name="warmup"), per_epoch, epochs, lr=lr) == pytest.approx(want, rel=1e-12)


def test_fractional_warmup_epochs() -> None:
    ours = _ours(ScheduleConfig(name="constant", warmup_epochs=0.5), 8, 2, lr=1.0)
    assert ours == pytest.approx([0.25, 0.5, 0.75, 1.0] + [1.0] * 12)


def test_warmup_then_cosine_is_the_cosine_schedule_of_the_remaining_steps() -> None:
    per_epoch, epochs, lr, min_lr = 5, 6, 0.1, 0.001
    total, warm = per_epoch * epochs, per_epoch
    ours = _ours(ScheduleConfig(name="cosine", warmup_epochs=1, min_lr=min_lr), per_epoch, epochs, lr=lr)
    assert ours[:warm] == pytest.approx([lr * (k + 1) / warm for k in range(warm)])
    theirs = _lrs(lambda o: tls.CosineAnnealingLR(o, T_max=total - warm, eta_min=min_lr), total - warm, lr)
    assert ours[warm:] == pytest.approx(theirs, rel=1e-6)


def test_cosine_between_endpoints_and_midpoint() -> None:
    assert cosine_between(2.0, 0.5, 0.0) == pytest.approx(2.0)
    assert cosine_between(2.0, 0.5, 1.0) == pytest.approx(0.5)
    assert cosine_between(2.0, 0.5, 0.5) == pytest.approx(1.25)


def _roundtrip(state: dict) -> dict:
    """Serialise as a checkpoint does (torch.save, read back with weights_only=True)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("schedule", [ScheduleConfig(name="constant", warmup_epochs=1),
                                      ScheduleConfig(name="step", step_epochs=1, gamma=0.5),
                                      ScheduleConfig(name="cosine", min_lr=0.001, warmup_epochs=0.5),
                                      ScheduleConfig(name="onecycle"),
                                      ScheduleConfig(name="warmup")], ids=lambda s: s.name)
@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
def test_resumed_scheduler_and_optimizer_reproduce_the_uninterrupted_run(schedule: ScheduleConfig,
                                                                         opt_name: str) -> None:
    per_epoch, epochs, cut = 4, 5, 7
    total = per_epoch * epochs

    def build() -> tuple[torch.nn.Parameter, torch.optim.Optimizer, StepScheduler]:
        w = torch.nn.Parameter(torch.zeros(4))
        opt = make_optimizer([w], OptimizerConfig(name=opt_name, lr=0.05))
        return w, opt, make_scheduler(opt, schedule, per_epoch, epochs)

    def run(w: torch.nn.Parameter, opt: torch.optim.Optimizer, sched: StepScheduler, steps: int) -> list[float]:
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.zero_grad()
            _quadratic(w).backward()
            opt.step()
            sched.step()
        return lrs

    w_full, opt_full, sched_full = build()
    lrs_full = run(w_full, opt_full, sched_full, total)

    w1, opt1, sched1 = build()
    lrs_first = run(w1, opt1, sched1, cut)
    saved = _roundtrip({"w": w1.detach().clone(), "optimizer": opt1.state_dict(), "scheduler": sched1.state_dict()})

    w2, opt2, sched2 = build()  # a fresh process: build first, then load, as --resume does
    with torch.no_grad():
        w2.copy_(saved["w"])
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    assert sched2.last_epoch == cut
    assert sched2.get_last_lr() == pytest.approx(sched1.get_last_lr(), rel=1e-12)
    lrs_rest = run(w2, opt2, sched2, total - cut)

    assert lrs_first + lrs_rest == pytest.approx(lrs_full, rel=1e-12)
    torch.testing.assert_close(w2.detach(), w_full.detach(), rtol=0, atol=0)


# --- torch.optim without importing torch._dynamo (train/optim.py's module doc) ---------------------------------

_NO_DYNAMO = r'''
import json, sys, torch
from trainlab.config import OptimizerConfig
from trainlab.registry import OPTIMIZERS
from trainlab.train import optim


def run(name, via):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    opt = optim.make_optimizer(net.parameters(), OptimizerConfig(name=name, lr=0.05, weight_decay=0.01))
    x, y = torch.randn(16, 5), torch.randn(16, 2)
    for _ in range(4):  # several steps: momentum buffers, Adam's moments and step counts carry over
        opt.zero_grad(set_to_none=True)
        (net(x) - y).square().mean().backward()
        via(opt)
    state = opt.state_dict()
    return [p.detach().clone() for p in net.parameters()], state


names = sorted(OPTIMIZERS.names())
ours = {n: run(n, optim.step) for n in names}
from trainlab.cli import main as cli  # a whole run: data, checks, checkpoints, verdict, report
try:
    cli(["train", "--set", "data.name=circle", "--set", "epochs=2", "--set", f"out_dir={sys.argv[1]}", "--quiet"])
except SystemExit as stop:
    assert not stop.code, stop.code
before = "torch._dynamo" in sys.modules
theirs = {n: run(n, lambda o: o.step()) for n in names}
same = {n: all(torch.equal(a, b) for a, b in zip(ours[n][0], theirs[n][0])) for n in names}
print(json.dumps({"dynamo_before": before, "dynamo_after": "torch._dynamo" in sys.modules, "same": same}))
'''


def test_a_run_and_every_optimizer_step_leave_dynamo_unimported_with_the_same_updates(tmp_path):
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NO_DYNAMO, str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # make_optimizer, zero_grad, step, state_dict and a whole `trainlab train` with its report left it unimported
    assert got["dynamo_before"] is False
    assert got["dynamo_after"] is True  # torch's own opt.step() imports it: the comparison ran both paths
    assert got["same"] and all(got["same"].values()), got["same"]


def test_once_dynamo_is_imported_the_methods_are_torchs_own_and_compile_still_skips_them():
    import torch._dynamo  # noqa: F401  (what a user's torch.compile does first)

    from trainlab.train import optim

    net = torch.nn.Linear(3, 1)
    opt = optim.make_optimizer(net.parameters(), OptimizerConfig(name="adam", lr=0.1))

    @torch.compile(backend="eager", fullgraph=False)
    def train_step(x):
        opt.zero_grad(set_to_none=True)
        net(x).square().mean().backward()
        opt.step()

    w0 = net.weight.detach().clone()
    train_step(torch.randn(4, 3))
    assert not torch.equal(net.weight, w0)
    disabled = torch.optim.Optimizer.zero_grad.__wrapped__.__dict__.get("__dynamo_disable")
    assert disabled is not None and disabled.__code__.co_name != "call"  # not optim._lazy_disabled's stand-in


def test_a_step_hook_makes_step_take_torchs_path():
    from trainlab.train import optim

    net = torch.nn.Linear(3, 1)
    opt = optim.make_optimizer(net.parameters(), OptimizerConfig(name="sgd", lr=0.1))
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    net(torch.randn(4, 3)).sum().backward()
    optim.step(opt)
    assert calls == ["pre"]


def _net_pair():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    b = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("build, name", [
    (lambda p: torch.optim.SGD(p, lr=0.05), "sgd"),
    (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, weight_decay=1e-3), "momentum"),
    (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), "nesterov"),
    (lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-4), "adam"),
    (lambda p: torch.optim.AdamW(p, lr=2e-3), "adamw"),
    (lambda p: torch.optim.Adam(p, lr=2e-3, weight_decay=0.1, decoupled_weight_decay=True), "adamw"),
    (lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-7), "rmsprop"),
    (lambda p: torch.optim.Adagrad(p, lr=0.02, eps=1e-9), "adagrad"),
])
def test_a_torch_optimizer_instance_becomes_ours_with_its_settings_and_updates_alike(build, name):
    """optimizer=torch.optim.X(...) as Lightning users write it: trainlab's optimizer built from its settings makes
    the same updates as the instance itself."""
    from trainlab.train.optim import TORCH_OPTIMIZERS, from_torch

    a, b = _net_pair()
    theirs = build(a.parameters())
    sets = from_torch(theirs)
    assert sets["optimizer.name"] == name
    cfg = OptimizerConfig(**{k.split(".", 1)[1]: v for k, v in sets.items()})
    ours = make_optimizer(b.parameters(), cfg)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for _ in range(3):
        for net, opt in ((a, theirs), (b, ours)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-7), name
    assert from_torch(type(theirs)) == {"optimizer.name": {"momentum": "sgd", "nesterov": "sgd"}.get(
        name, TORCH_OPTIMIZERS[type(theirs)])}


@pytest.mark.parametrize("build, said", [
    (lambda p: torch.optim.NAdam(p), r"^optimizer must be one of trainlab's optimizers \(sgd, .*\) or the torch class "
                                     r"of one \(torch\.optim\.SGD, .*\)\. Got torch\.optim\.NAdam\. Use one of those"),
    (lambda p: torch.optim.Adam(p, amsgrad=True), r"^optimizer must be a torch\.optim\.Adam without amsgrad\. Got "
                                                  r"amsgrad=True\. Build it without amsgrad, which trainlab's adam"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5), r"without dampening\. Got dampening=0\.5\."),
    (lambda p: torch.optim.RMSprop(p, momentum=0.9), r"a torch\.optim\.RMSprop without momentum\. Got momentum=0\.9"),
    (lambda p: torch.optim.SGD([{"params": p[:2]}, {"params": p[2:], "weight_decay": 0.1}], lr=0.1),
     r"^optimizer must be one setting for every parameter\. Got a torch\.optim\.SGD with 2 parameter groups that "
     r"differ in weight_decay\. Build it with one group"),
])
def test_a_torch_optimizer_trainlab_has_no_equivalent_for_is_one_line(build, said):
    from trainlab.errors import ConfigError
    from trainlab.train.optim import from_torch

    with pytest.raises(ConfigError, match=said) as err:
        from_torch(build(list(_net_pair()[0].parameters())))
    assert "\n" not in str(err.value)
    assert from_torch("adam") is None and from_torch(0.1) is None
