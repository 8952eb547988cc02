"""Stop rules: each callback's stop decision equals the rule computed by hand over a metric sequence."""
from __future__ import annotations

import io
import random
from typing import Any

import pytest
import torch

from trainlab.config import resolve_config
from trainlab.train.callbacks import Callback, TrainState
from trainlab.train.loop import first_non_finite
from trainlab.train.stop import Convergence, EarlyStopping, EpochLimit, TargetMetric, better, stop_rules

CFG = resolve_config(overrides={})


def _state() -> TrainState:
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return TrainState(cfg=CFG, model=model, optimizer=opt, scheduler=sched, steps_per_epoch=1)


def _stop_epoch(cb: Callback, key: str, values: list[Any], first_epoch: int = 1,
                state: TrainState | None = None) -> int | None:
    """Feed one metric per epoch; the epoch after which the rule asked to stop, or None."""
    state = state or _state()
    for epoch, value in enumerate(values, start=first_epoch):
        state.epoch = epoch
        cb.on_epoch_end(state, {"epoch": epoch, key: value})
        if state.stop_reason is not None:
            return epoch
    return None


def _reference_early_stop(values: list[float], patience: int, min_delta: float, lower: bool) -> int | None:
    """Early stopping written out: count epochs since the last improvement larger than min_delta."""
    best, since = None, 0
    for epoch, v in enumerate(values, start=1):
        improved = best is None or (v < best - min_delta if lower else v > best + min_delta)
        if improved:
            best, since = v, 0
        else:
            since += 1
            if since == patience:
                return epoch
    return None


# --- better() ---------------------------------------------------------------------------------------


def test_better_is_lower_for_losses_and_higher_for_accuracies() -> None:
    assert better("val_loss", 0.4, 0.5) and not better("val_loss", 0.6, 0.5)
    assert better("train_loss", 0.4, 0.5)
    assert better("val_acc", 0.9, 0.8) and not better("val_acc", 0.7, 0.8)
    assert not better("val_loss", 0.5, 0.5) and not better("val_acc", 0.8, 0.8)  # a tie is no improvement


def test_better_min_delta_is_strict() -> None:
    # binary-exact numbers, so "exactly min_delta" is exact
    assert not better("val_loss", 0.25, 0.5, min_delta=0.25)  # exactly min_delta does not count
    assert better("val_loss", 0.24, 0.5, min_delta=0.25)
    assert not better("val_acc", 0.75, 0.5, min_delta=0.25)
    assert better("val_acc", 0.76, 0.5, min_delta=0.25)


def test_better_first_value_and_missing_or_nan_values() -> None:
    assert better("val_loss", 123.0, None)  # anything beats nothing
    assert better("val_acc", 0.0, None)
    assert not better("val_loss", float("nan"), None)
    assert not better("val_loss", float("nan"), 0.5)
    assert not better("val_acc", None, 0.5)


# --- EarlyStopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "patience", "min_delta", "want"), [
    ([1.0, 0.8, 0.9, 0.85, 0.7], 2, 0.0, 4),
    ([1.0, 0.8, 0.9, 0.7, 0.75, 0.71], 2, 0.0, 6),  # the wait resets at 0.7
    ([1.0, 0.8, 0.9, 0.7, 0.75, 0.71], 3, 0.0, None),
    ([1.0, 0.9, 0.87, 0.86, 0.8], 2, 0.05, 4),  # 0.87 and 0.86 beat 0.9 by < 0.05: they do not count
    ([1.0, 0.9, 0.87, 0.86, 0.8], 2, 0.0, None),
    ([0.5, 0.5, 0.5], 1, 0.0, 2),  # a tie is not an improvement
])
def test_early_stopping_on_a_loss(values: list[float], patience: int, min_delta: float, want: int | None) -> None:
    assert _stop_epoch(EarlyStopping("val_loss", patience, min_delta), "val_loss", values) == want
    assert _reference_early_stop(values, patience, min_delta, lower=True) == want


def test_early_stopping_on_accuracy_looks_for_increases() -> None:
    accs = [0.5, 0.6, 0.55, 0.58, 0.61, 0.6, 0.6]
    assert _stop_epoch(EarlyStopping("val_acc", 2), "val_acc", accs) == 4
    # the same numbers read as a loss improve at a different time: direction matters
    assert _stop_epoch(EarlyStopping("val_loss", 2), "val_loss", accs) == 3


@pytest.mark.parametrize("seed", range(20))
def test_early_stopping_matches_the_reference_on_random_sequences(seed: int) -> None:
    rng = random.Random(seed)
    monitor = rng.choice(["val_loss", "val_acc"])
    values = [round(rng.uniform(0, 1), 2) for _ in range(rng.randint(1, 30))]
    patience, min_delta = rng.randint(1, 5), rng.choice([0.0, 0.01, 0.1])
    got = _stop_epoch(EarlyStopping(monitor, patience, min_delta), monitor, values)
    assert got == _reference_early_stop(values, patience, min_delta, lower=monitor == "val_loss")


def test_early_stopping_reason_names_the_best_epoch() -> None:
    state = _state()
    _stop_epoch(EarlyStopping("val_loss", 2), "val_loss", [1.0, 0.5, 0.6, 0.7], state=state)
    assert state.stop_reason == "early_stopping: val_loss did not improve for 2 epochs (best 0.5 at epoch 2)"


def test_early_stopping_state_dict_roundtrip_gives_the_same_decisions() -> None:
    values = [1.0, 0.8, 0.85, 0.9, 0.79, 0.81, 0.82, 0.83, 0.7]
    want = _stop_epoch(EarlyStopping("val_loss", 3), "val_loss", values)
    assert want == 8
    for cut in range(1, 8):
        first = EarlyStopping("val_loss", 3)
        assert _stop_epoch(first, "val_loss", values[:cut]) is None
        buf = io.BytesIO()
        torch.save(first.state_dict(), buf)  # as a checkpoint stores it
        buf.seek(0)
        resumed = EarlyStopping("val_loss", 3)
        resumed.load_state_dict(torch.load(buf, weights_only=True))
        assert (resumed.best, resumed.best_epoch, resumed.wait) == (first.best, first.best_epoch, first.wait)
        assert _stop_epoch(resumed, "val_loss", values[cut:], first_epoch=cut + 1) == want, cut
        if cut >= 5:  # after the best (0.79 at epoch 5), a rule restarted without its state forgets it
            assert _stop_epoch(EarlyStopping("val_loss", 3), "val_loss", values[cut:], first_epoch=cut + 1) is None


# --- Convergence ------------------------------------------------------------------------------------


def _reference_convergence(losses: list[float], tol: float, patience: int) -> int | None:
    calm = 0
    for epoch in range(2, len(losses) + 1):
        calm = calm + 1 if abs(losses[epoch - 1] - losses[epoch - 2]) < tol else 0
        if calm >= patience:
            return epoch
    return None


@pytest.mark.parametrize(("losses", "tol", "patience", "want"), [
    ([1.0, 0.5, 0.495, 0.49, 0.3], 0.01, 2, 4),
    ([1.0, 0.5, 0.495, 0.3, 0.299, 0.298], 0.01, 2, 6),  # the jump to 0.3 resets the count
    ([1.0, 0.5, 0.495, 0.49, 0.3], 0.01, 3, None),
    ([1.0, 0.99], 0.02, 1, 2),
    ([1.0, 0.5], 0.5, 1, None),  # |Δ| = tol exactly: it must be strictly below tol
])
def test_convergence(losses: list[float], tol: float, patience: int, want: int | None) -> None:
    got = _stop_epoch(Convergence(tol, patience), "train_loss", losses)
    assert got == want == _reference_convergence(losses, tol, patience)


def test_convergence_state_dict_roundtrip_and_reason() -> None:
    losses = [1.0, 0.5, 0.495, 0.49, 0.488]
    first = Convergence(0.01, 3)
    assert _stop_epoch(first, "train_loss", losses[:3]) is None
    resumed = Convergence(0.01, 3)
    resumed.load_state_dict(dict(first.state_dict()))
    state = _state()
    assert _stop_epoch(resumed, "train_loss", losses[3:], first_epoch=4, state=state) == 5
    assert state.stop_reason == "convergence: |Δ train_loss| < 0.01 for 3 epochs"


# --- TargetMetric -----------------------------------------------------------------------------------


def test_target_accuracy_stops_at_or_above_the_value() -> None:
    assert _stop_epoch(TargetMetric("val_acc", 0.9), "val_acc", [0.5, 0.89, 0.9, 0.95]) == 3
    assert _stop_epoch(TargetMetric("val_acc", 0.9), "val_acc", [0.5, 0.95]) == 2
    assert _stop_epoch(TargetMetric("train_acc", 0.9), "train_acc", [0.5, 0.89]) is None


def test_target_loss_stops_at_or_below_the_value() -> None:
    assert _stop_epoch(TargetMetric("val_loss", 0.3), "val_loss", [0.5, 0.31, 0.3, 0.1]) == 3
    assert _stop_epoch(TargetMetric("train_loss", 0.3), "train_loss", [0.5, 0.2]) == 2
    assert _stop_epoch(TargetMetric("val_loss", 0.3), "val_loss", [0.5, 0.9, 0.31]) is None


def test_target_ignores_a_missing_metric_and_gives_a_reason() -> None:
    assert _stop_epoch(TargetMetric("val_acc", 0.5), "val_acc", [None, None]) is None
    state = _state()
    _stop_epoch(TargetMetric("val_acc", 0.9), "val_acc", [0.95], state=state)
    assert state.stop_reason == "target: val_acc 0.95 reached 0.9"


def test_first_stop_reason_wins() -> None:
    state = _state()
    rules = [TargetMetric("val_loss", 1.0), EarlyStopping("val_loss", 1)]
    for epoch, v in enumerate([0.5, 0.6], start=1):
        for cb in rules:
            cb.on_epoch_end(state, {"epoch": epoch, "val_loss": v})
    assert state.stop_reason is not None and state.stop_reason.startswith("target: val_loss 0.5")


# --- stop_rules(cfg) --------------------------------------------------------------------------------


def test_epoch_limit_stops_at_its_epoch_with_the_loops_reason() -> None:
    limit = EpochLimit(3)
    assert _stop_epoch(limit, "train_loss", [1.0] * 10) == 3
    state = _state()
    limit.on_epoch_end(state, {"epoch": 5})  # a limit already passed stops too
    assert (state.stop_reason, state.stopped_by) == ("epochs: reached 3", "epochs")


def test_first_non_finite_names_the_first_nan_or_inf_in_order() -> None:
    assert first_non_finite({"loss": 1.0, "gradient norm": 2.0}) is None
    assert first_non_finite({"loss": 1.0, "gradient norm": float("inf")}) == ("gradient norm", float("inf"))
    name, value = first_non_finite({"loss": float("nan"), "gradient norm": float("inf")})
    assert name == "loss" and value != value


def test_stop_rules_default_config_has_none() -> None:
    assert stop_rules(CFG) == []


def test_stop_rules_follow_the_config() -> None:
    cfg = resolve_config(overrides={"monitor": "val_acc", "stop.early_stopping.patience": 4,
                                    "stop.early_stopping.min_delta": 0.01, "stop.convergence.tol": 1e-3,
                                    "stop.convergence.patience": 2, "stop.target.metric": "train_loss",
                                    "stop.target.value": 0.05})
    es, conv, target = stop_rules(cfg)
    assert isinstance(es, EarlyStopping) and (es.monitor, es.patience, es.min_delta) == ("val_acc", 4, 0.01)
    assert isinstance(conv, Convergence) and (conv.tol, conv.patience) == (1e-3, 2)
    assert isinstance(target, TargetMetric) and (target.metric, target.value) == ("train_loss", 0.05)
    assert [r.name for r in (es, conv, target)] == ["early_stopping", "convergence", "target"]


@pytest.mark.parametrize(("overrides", "kinds"), [
    ({"stop.early_stopping.patience": 2}, [EarlyStopping]),
    ({"stop.convergence.tol": 0.1}, [Convergence]),
    ({"stop.target.value": 0.9}, [TargetMetric]),
    ({"stop.early_stopping.patience": 2, "stop.target.value": 0.9}, [EarlyStopping, TargetMetric]),
])
def test_stop_rules_switch_on_one_by_one(overrides: dict[str, Any], kinds: list[type]) -> None:
    rules = stop_rules(resolve_config(overrides=overrides))
    assert [type(r) for r in rules] == kinds
    es = [r for r in rules if isinstance(r, EarlyStopping)]
    if es:
        assert es[0].monitor == "val_loss"  # the default monitor


def test_stop_rules_callbacks_stop_a_fake_run() -> None:
    cfg = resolve_config(overrides={"stop.early_stopping.patience": 1, "stop.target.metric": "val_acc",
                                    "stop.target.value": 0.99})
    state = _state()
    rules = stop_rules(cfg)
    history = [{"epoch": 1, "val_loss": 0.5, "val_acc": 0.7, "train_loss": 0.6},
               {"epoch": 2, "val_loss": 0.4, "val_acc": 0.8, "train_loss": 0.5},
               {"epoch": 3, "val_loss": 0.45, "val_acc": 0.81, "train_loss": 0.4}]
    stopped = None
    for metrics in history:
        for cb in rules:
            cb.on_epoch_end(state, metrics)
        if state.stop_reason:
            stopped = metrics["epoch"]
            break
    assert stopped == 3 and state.stop_reason.startswith("early_stopping: val_loss")
    assert rules[0].best == 0.4 and rules[0].best_epoch == 2
