"""Each verdict rule on hand-made metrics: it fires on its condition, stays quiet on the near miss, and
its message carries the evidence numbers. Real runs showing each condition are in test_verdict.py."""
from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest

from trainlab.diagnose.rules import RULE_IDS, RULES, RunContext, Thresholds, nan_cause, overfitting, still_improving
from trainlab.diagnose.verdict import Diagnosis, diagnose, format_diagnosis

CONFIG = {"out_dir": "runs", "epochs": 10, "grad_clip": None,
          "optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 0.0},
          "model": {"name": "mlp", "hidden": [16], "activation": "tanh", "init": "xavier", "dropout": 0.0},
          "loss": {"l1": 0.0, "l2": 0.0}, "data": {"normalize": False}, "stop": {"early_stopping": {"patience": None}}}


def rows(train_loss, val_loss=None, train_acc=None, val_acc=None, grad_norm=None):
    """Metrics rows as the loop writes them; accuracies None means regression."""
    val_loss = val_loss or train_loss
    return [{"epoch": i + 1, "train_loss": train_loss[i], "val_loss": val_loss[i],
             "train_acc": train_acc[i] if train_acc else None, "val_acc": val_acc[i] if val_acc else None,
             "lr": 0.1, "epoch_time": 0.01, "grad_norm": grad_norm[i] if grad_norm else 0.5}
            for i in range(len(train_loss))]


def layer_rows(grads=None, acts=None):
    """layers.jsonl rows from per-epoch grad-norm dicts and/or activation dicts."""
    n = len(grads or acts)
    return [{"epoch": i + 1, "grad_norm": grads[i] if grads else {}, "activations": acts[i] if acts else {}}
            for i in range(n)]


def healthy_classification(n=10):
    loss = [0.7 * 0.3 ** i + 0.05 for i in range(n)]  # converged well before the end
    acc = [min(0.55 + 0.1 * i, 0.99) for i in range(n)]
    return rows(loss, [v * 1.1 for v in loss], acc, [a - 0.01 for a in acc])


def run(history, layers=(), summary=None, config=None, **kw):
    return diagnose(history, list(layers), summary or {"stop_reason": "epochs: reached 10"}, config or CONFIG, **kw)


def finding(d: Diagnosis, rule: str):
    return next(f for f in d.findings if f.rule == rule)


def test_every_rule_is_registered_once_with_its_id():
    assert RULE_IDS == ["loss_output_mismatch", "symmetric_init", "inputs_not_scaled", "empty_class", "no_signal",
                        "targets_look_like_classes", "leakage", "class_imbalance", "out_of_memory",
                        "lr_too_high", "non_finite", "exploding_gradients", "vanishing_gradients", "dead_units",
                        "saturated_units", "lr_unusual", "lr_too_low", "memorization", "overfitting", "underfitting",
                        "generalization_gap", "too_early", "good_fit", "still_improving"]
    assert len(set(RULES)) == len(RULES)


def test_thresholds_are_frozen_and_drive_the_rules():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Thresholds().vanishing_ratio = 1.0  # type: ignore[misc]
    grads = [{"layers.0.linear": 1e-4, "head": 0.1}] * 3
    assert "vanishing_gradients" in run(healthy_classification(), layer_rows(grads)).rules()
    assert "vanishing_gradients" not in run(healthy_classification(), layer_rows(grads),
                                            thresholds=Thresholds(vanishing_ratio=1e-4)).rules()


def test_healthy_history_is_a_good_fit_and_nothing_else():
    d = run(healthy_classification())
    assert d.verdict == "good_fit" and d.rules() == ["good_fit"]
    assert "0.99" in d.findings[0].message


# --- non_finite ------------------------------------------------------------------------------------

def nan_facts(**changes):
    """What the loop records before a NaN (summary.json's "non_finite"), here a momentum run at lr 0.1 whose
    gradient norm was 3.6 at the start and whose loss then rose (the issue's 'exploding gradients' misnomer)."""
    facts = {"what": "loss", "value": "nan", "epoch": 3, "step": 5, "steps_per_epoch": 14, "first_loss": 0.69,
             "peak_loss": 4.2, "last_loss": 4.2, "first_grad_norm": 3.6, "max_grad_norm": 1.2e8, "lr": 0.1}
    return facts | changes


def test_non_finite_names_where_when_and_cause_from_the_loops_facts():
    d = run(healthy_classification(2), summary={"stop_reason": "non-finite: …", "non_finite": nan_facts()})
    f = finding(d, "non_finite")
    # the cause heads the verdict (issue 15: a NaN that the lr caused is "lr too high"), the NaN itself next
    assert d.rules()[:2] == ["lr_too_high", "non_finite"] and f.severity == "error"
    assert finding(d, "lr_too_high").severity == "error" and "became nan at epoch 3, step 5" in d.findings[0].message
    expected = {"what": "loss", "value": "nan", "epoch": 3, "step": 5, "steps_per_epoch": 14,
                "cause_id": "lr_too_high", "last_finite_epoch": 2}
    assert {k: f.evidence[k] for k in expected} == expected
    assert "at epoch 3, step 5 of 14" in f.message and "rose from 0.69 to 4.2" in f.message
    assert f.remedy == "lower optimizer.lr to 0.01 (now 0.1)"


@pytest.mark.parametrize("changes, cause", [
    ({}, "lr_too_high"),  # the loss rose from gradients of normal size: the lr, even though the norm ended huge
    ({"peak_loss": 0.69, "last_loss": 0.5, "max_grad_norm": 4e3}, "lr_too_high"),  # norm grew 1000×
    ({"peak_loss": 0.69, "last_loss": 0.69, "max_grad_norm": 3.6}, "lr_too_high"),  # broke before improving at all
    ({"first_grad_norm": 5e4, "max_grad_norm": 5e4}, "exploding_gradients"),  # huge from the start
    ({"first_loss": None, "peak_loss": None, "last_loss": None, "first_grad_norm": None, "max_grad_norm": None},
     "bad_start"),
    ({"peak_loss": 0.69, "last_loss": 0.2, "max_grad_norm": 5.0}, "overflow"),  # was learning, then a sudden NaN
    ({"what": "val_loss", "step": None, "steps_per_epoch": None}, "val_overflow"),
    # an fp16 run: what was an overflow or a bad start is float16's range (65504); the step causes stay
    ({"peak_loss": 0.69, "last_loss": 0.2, "max_grad_norm": 5.0, "precision": "fp16"}, "fp16_overflow"),
    ({"first_loss": None, "peak_loss": None, "last_loss": None, "first_grad_norm": None, "max_grad_norm": None,
      "precision": "fp16"}, "fp16_overflow"),
    ({"precision": "fp16"}, "lr_too_high"),
    ({"peak_loss": 0.69, "last_loss": 0.2, "max_grad_norm": 5.0, "precision": "bf16"}, "overflow"),
    ({"what": "float16 gradients", "value": "inf", "step": None, "precision": "fp16", "loss_scale": 1e-30},
     "fp16_overflow"),
])
def test_nan_causes_are_ordered_by_evidence(changes, cause):
    assert nan_cause(nan_facts(**changes), Thresholds())[0] == cause


def test_non_finite_validation_loss_has_no_step():
    facts = nan_facts(what="val_loss", value="inf", epoch=2, step=None, steps_per_epoch=None)
    f = finding(run(healthy_classification(1), summary={"stop_reason": "non-finite: …", "non_finite": facts}),
                "non_finite")
    assert f.evidence["what"] == "val_loss" and f.evidence["epoch"] == 2 and "step" not in f.evidence
    assert f.message.startswith("the validation loss became inf at epoch 2")
    assert f.evidence["cause"] == "the weights grew too large for the validation inputs"


def test_non_finite_in_metrics_without_an_error_is_still_found():
    h = healthy_classification(4)
    h[3]["train_loss"] = float("nan")
    assert run(h).verdict == "non_finite"


# --- gradients --------------------------------------------------------------------------------------

@pytest.mark.parametrize("norms, fires", [([0.5, 5.0, 80.0, 900.0], True),  # growth 1800× to a large norm
                                          ([0.5, 3e3, 2e3, 1e3], True),  # huge
                                          ([1e-4, 1e-3, 0.02, 0.05], False),  # 500× growth, but to a small norm
                                          ([2.0, 1.0, 0.6, 0.4], False)])
def test_exploding_gradients(norms, fires):
    d = run(rows([0.7, 0.6, 0.5, 0.45], grad_norm=norms))
    assert ("exploding_gradients" in d.rules()) == fires
    if fires:
        f = finding(d, "exploding_gradients")
        assert d.verdict == "exploding_gradients" and f.evidence["peak"] == max(norms)
        assert f"{max(norms):.3g}" in f.message and "good_fit" not in d.rules()


def test_vanishing_gradients_uses_the_median_ratio_of_first_to_last_layer():
    grads = [{"layers.0.linear": g, "layers.1.linear": 0.01, "head": 0.2} for g in (2e-5, 4e-5, 1e-5)]
    f = finding(run(healthy_classification(), layer_rows(grads)), "vanishing_gradients")
    assert f.evidence["ratio_median"] == pytest.approx(statistics.median([2e-5 / 0.2, 4e-5 / 0.2, 1e-5 / 0.2]))
    assert f.evidence["first_layer"] == "layers.0.linear" and f.evidence["last_layer"] == "head"
    assert "0.0001×" in f.message and "model.activation=relu" in f.remedy


def test_a_first_layer_without_gradient_is_vanishing_too():
    grads = [{"layers.0.linear": 0.0, "head": 0.2}] * 3
    assert "the first layer gets no gradient at all" in finding(run(healthy_classification(), layer_rows(grads)),
                                                                 "vanishing_gradients").message


def test_a_first_epoch_imbalance_that_training_repairs_is_not_vanishing():
    grads = [{"layers.0.linear": 1e-5, "head": 0.2}, {"layers.0.linear": 0.1, "head": 0.2},
             {"layers.0.linear": 0.1, "head": 0.2}]
    assert "vanishing_gradients" not in run(healthy_classification(), layer_rows(grads)).rules()


def test_gradients_that_vanish_for_the_first_epochs_of_a_net_that_underfits_are_named():
    # a deep sigmoid stack under adam: ~1e-5 for 8 epochs, then the ratio rises once the top layers have fitted
    # what they can; the median over 20 epochs (0.2) hid it and the verdict said only "underfitting"
    grads = [{"layers.0.linear": 1e-5 if e < 8 else 0.2, "head": 0.5} for e in range(20)]
    acc = [0.5, 0.55, 0.58] + [0.6] * 17  # on 2 classes: 20 % of the way from chance to perfect
    stuck = rows([0.69, 0.68, 0.67] + [0.66] * 17, train_acc=acc, val_acc=acc)
    d = run(stuck, layer_rows(grads), n_classes=2)
    assert d.rules()[:2] == ["vanishing_gradients", "underfitting"]
    f = finding(d, "vanishing_gradients")
    assert f.evidence["epochs_vanishing_at_start"] == 8 and f.evidence["epoch"] == 8
    assert f.message.startswith("for the first 8 epochs the first layer's gradient norm (layers.0.linear) was 2e-05× "
                                "the last layer's (head)")
    # the same gradients in a net that fits its data: a start that training repaired, not a cause
    assert "vanishing_gradients" not in run(healthy_classification(20), layer_rows(grads)).rules()
    # a start shorter than the window (5 epochs) is not a stretch
    short = [{"layers.0.linear": 1e-5 if e < 3 else 0.2, "head": 0.5} for e in range(20)]
    assert "vanishing_gradients" not in run(stuck, layer_rows(short), n_classes=2).rules()


# --- units ------------------------------------------------------------------------------------------

def unit(kind, dead=0.0, saturated=0.0, units=64):
    return {"kind": kind, "mean": 0.1, "std": 0.5, "dead": dead, "saturated": saturated, "units": units}


def poor_fit(n=10):
    """A run that converged well short of fitting its training set (best train accuracy 0.8: skill 0.6)."""
    loss = [0.7 * 0.5 ** i + 0.4 for i in range(n)]
    acc = [min(0.55 + 0.05 * i, 0.8) for i in range(n)]
    return rows(loss, [v * 1.1 for v in loss], acc, [a - 0.01 for a in acc])


def test_dead_relu_units_at_the_last_epoch():
    acts = [{"layers.0.act": unit("relu", dead=0.2)}, {"layers.0.act": unit("relu", dead=0.7)}]
    f = finding(run(poor_fit(), layer_rows(acts=acts)), "dead_units")
    assert f.evidence["dead"] == 0.7 and f.evidence["dead_first_epoch"] == 0.2
    assert "70% of the 64 units of layers.0.act" in f.message and "20% at epoch 1" in f.message


def test_half_dead_units_after_two_epochs_are_too_early_to_judge_but_all_dead_are_not():
    # a 2-epoch Fashion CNN, val loss falling fast, 56 % of a layer dead: was headlined dead_units ("lower the lr")
    h = rows([1.9, 1.2], [1.4, 1.0], [0.31, 0.59], [0.52, 0.65])
    half = [{"layers.0.act": unit("relu", dead=0.53)}, {"layers.0.act": unit("relu", dead=0.56)}]
    d = run(h, layer_rows(acts=half), n_classes=10)
    assert d.verdict == "too_early" and "dead_units" not in d.rules()
    gone = [{"layers.0.act": unit("relu", dead=0.95)}, {"layers.0.act": unit("relu", dead=0.97)}]
    assert run(h, layer_rows(acts=gone), n_classes=10).verdict == "dead_units"


def test_dead_units_in_a_net_that_fits_its_training_set_are_no_finding():

    # the benchmark's healthy adam runs on spiral: 50-60 % dead at validation accuracy 1.0
    acts = [{"layers.0.act": unit("relu", dead=0.5)}, {"layers.0.act": unit("relu", dead=0.6)}]
    assert "dead_units" not in run(healthy_classification(), layer_rows(acts=acts)).rules()


@pytest.mark.parametrize("last", [unit("relu", dead=0.3), unit("leaky_relu", dead=0.9)])
def test_few_dead_units_or_leaky_units_are_not_dead(last):
    assert "dead_units" not in run(healthy_classification(), layer_rows(acts=[{"a": last}])).rules()


def test_saturated_from_the_start_is_flagged_but_saturation_grown_by_training_is_not():
    start = [{"layers.0.act": unit("tanh", saturated=0.8)}, {"layers.0.act": unit("tanh", saturated=0.75)}]
    f = finding(run(healthy_classification(), layer_rows(acts=start)), "saturated_units")
    assert "75% of the outputs of layers.0.act (tanh)" in f.message and "80% were after epoch 1" in f.message
    grown = [{"layers.0.act": unit("sigmoid", saturated=0.1)}, {"layers.0.act": unit("sigmoid", saturated=0.9)}]
    assert "saturated_units" not in run(healthy_classification(), layer_rows(acts=grown)).rules()


def adam(lr):
    return {**CONFIG, "optimizer": {"name": "adam", "lr": lr, "weight_decay": 0.0}}


def at_init(saturated):
    return {"stop_reason": "epochs: reached 10", "preflight": {"saturated_at_init": {"layers.0.act": saturated}}}


def test_units_the_first_steps_saturated_at_an_lr_beyond_the_usual_range_name_the_lr():
    # adam lr 0.5 on circle: a tanh layer 16 % saturated at init, 84 % after epoch 1, 94 % at the end; it fits anyway
    # and was headlined saturated_units with "set data.normalize=true"
    acts = [{"layers.0.act": unit("tanh", saturated=0.84)}, {"layers.0.act": unit("tanh", saturated=0.94)}]
    d = run(healthy_classification(), layer_rows(acts=acts), summary=at_init(0.16), config=adam(0.5))
    f = finding(d, "lr_too_high")
    assert d.verdict == "lr_too_high" and f.severity == "warning" and f.sets == {"optimizer.lr": 0.05}
    assert ("84% of the outputs of layers.0.act are saturated after epoch 1 against 16% before the first update"
            in f.message)
    assert f.evidence["saturated_at_init"] == 0.16 and f.evidence["saturated_at_end"] == 0.94
    s = finding(d, "saturated_units")
    assert "(against 16% before the first update)" in s.message and s.sets == {"optimizer.lr": 0.05}
    # saturated before any update: the input scale made it, whatever the lr
    d = run(healthy_classification(), layer_rows(acts=acts), summary=at_init(0.7), config=adam(0.5))
    assert "lr_too_high" not in d.rules() and finding(d, "saturated_units").sets == {"data.normalize": True}
    # at adam's usual lr the same saturation is no lr finding: the steps were not too large
    d = run(healthy_classification(), layer_rows(acts=acts), summary=at_init(0.16), config=adam(0.001))
    assert "lr_too_high" not in d.rules() and finding(d, "saturated_units").sets == {"data.normalize": True}
    # a run from before the pre-flight measured it: as before
    d = run(healthy_classification(), layer_rows(acts=acts), config=adam(0.5))
    assert "lr_too_high" not in d.rules() and finding(d, "saturated_units").sets == {"data.normalize": True}


# --- learning rate ----------------------------------------------------------------------------------

def test_rising_training_loss_means_lr_too_high():
    f = finding(run(rows([0.7, 0.9, 1.2, 1.5])), "lr_too_high")
    assert f.evidence["peak"] == 1.5 and "rose from 0.7 at epoch 1 to 1.5 at epoch 4" in f.message
    assert "optimizer.lr to 0.01" in f.remedy


def test_large_oscillation_means_lr_too_high_but_jitter_near_zero_does_not():
    swing = [1.0, 0.5, 0.3, 0.2, 0.35, 0.15, 0.4, 0.12, 0.38, 0.14]
    f = finding(run(rows(swing)), "lr_too_high")
    assert f.evidence["jump"] > 0.25 and f.evidence["direction_changes"] >= 1 / 3
    converged = [1.0, 0.1, 0.01, 0.002, 0.004, 0.001, 0.003, 0.001]
    smooth = [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.19]
    assert "lr_too_high" not in run(rows(converged)).rules() + run(rows(smooth)).rules()


def test_loss_creeping_down_barely_means_lr_too_low():
    creep = [0.700, 0.699, 0.698, 0.697, 0.696, 0.695]
    d = run(rows(creep, train_acc=[0.5] * 6, val_acc=[0.5] * 6))
    f = finding(d, "lr_too_low")
    assert d.verdict == "lr_too_low" and f.evidence["change"] == pytest.approx(0.005 / 0.7)
    assert "0.7%" in f.message and "optimizer.lr to 1" in f.remedy


@pytest.mark.parametrize("loss, acc", [([0.300, 0.301, 0.299, 0.300, 0.298, 0.299], [0.6] * 6),  # a plateau
                                       ([0.050, 0.049, 0.048, 0.047, 0.046, 0.045], [0.99] * 6)])  # learned already
def test_flat_loss_on_a_plateau_or_after_learning_is_not_lr_too_low(loss, acc):
    assert "lr_too_low" not in run(rows(loss, train_acc=acc, val_acc=acc)).rules()


# --- fit --------------------------------------------------------------------------------------------

TRAIN = [0.6, 0.4, 0.3, 0.2, 0.12, 0.08, 0.05]
VAL = [0.6, 0.4, 0.3, 0.32, 0.36, 0.4, 0.45]


def test_overfitting_reports_the_rise_the_fall_and_the_gap():
    d = run(rows(TRAIN, VAL))
    f = finding(d, "overfitting")
    assert d.verdict == "overfitting" and f.evidence["best_epoch"] == 3
    assert f.message == ("validation loss rose from 0.3 at epoch 3 to 0.45 at epoch 7 while training loss fell from "
                         "0.3 to 0.05; the gap grew from 0 to 0.4")
    assert f.remedy.startswith("stop at epoch 3: set stop.early_stopping.patience=")


def test_overfitting_with_early_stopping_on_suggests_regularisation():
    config = CONFIG | {"stop": {"early_stopping": {"patience": 5}}}
    assert "model.dropout=0.3" in overfitting(RunContext(rows(TRAIN, VAL), [], {}, config)).remedy


@pytest.mark.parametrize("train", [[0.6, 0.4, 0.3, 0.35, 0.4, 0.45, 0.5],  # both rise: instability
                                   [0.7, 0.69, 0.68, 0.675, 0.67, 0.665, 0.66]])  # falls 3 %: not memorising
def test_rising_validation_loss_alone_is_not_overfitting(train):
    assert "overfitting" not in run(rows(train, VAL)).rules()


def test_underfitting_compares_train_accuracy_with_chance():
    acc = [0.5, 0.6, 0.65, 0.68, 0.68]
    h = rows([0.69, 0.66, 0.64, 0.63, 0.63], train_acc=acc, val_acc=[a - 0.05 for a in acc])
    f = finding(run(h, n_classes=2), "underfitting")
    assert f.evidence["skill"] == pytest.approx(0.36) and "peaked at 0.68 with chance at 0.50" in f.message
    assert "model.hidden=[64]" in f.remedy
    assert "underfitting" not in run(h, n_classes=10).rules()  # 0.68 on 10 classes is 64 % of the way


def test_underfitting_remedy_lowers_regularisation_when_set():
    h = rows([0.69, 0.68, 0.68, 0.68], train_acc=[0.55] * 4, val_acc=[0.5] * 4)
    config = CONFIG | {"model": CONFIG["model"] | {"dropout": 0.5}}
    assert "model.dropout=0" in finding(run(h, config=config), "underfitting").remedy


def test_underfitting_of_a_narrow_cnn_widens_its_channels_and_head():
    # was "train longer or raise optimizer.lr": on a CNN of 1 channel per block the diagnosis benchmark's fix runs
    # (adam lr ×3) came out worse in 3 of 3 runs
    h = rows([2.2, 2.0, 1.95, 1.94, 1.94], train_acc=[0.2, 0.25, 0.27, 0.28, 0.28], val_acc=[0.2, 0.25, 0.26, 0.27, 0.27])
    config = CONFIG | {"model": CONFIG["model"] | {"name": "cnn", "channels": [1, 1], "hidden": [2]}}
    f = finding(run(h, config=config, n_classes=10), "underfitting")
    assert f.sets == {"model.channels": [16, 16], "model.hidden": [32]}
    assert f.remedy == ("give the model capacity: model.channels=[16, 16] and model.hidden=[32] (now "
                        "model.channels=[1, 1], model.hidden=[2])")
    wide = CONFIG | {"model": CONFIG["model"] | {"name": "cnn", "channels": [32, 64], "hidden": [256]}}
    assert "model.channels" not in finding(run(h, config=wide, n_classes=10), "underfitting").sets


def test_regression_underfits_when_the_loss_flattens_high():
    flat = [1.0, 0.8, 0.7, 0.68, 0.675, 0.672, 0.671]
    f = finding(run(rows(flat, [v * 1.02 for v in flat])), "underfitting")
    assert f.evidence["remaining"] == pytest.approx((0.675 + 0.672 + 0.671) / 3)
    assert "underfitting" not in run(rows([1.0, 0.3, 0.1, 0.05, 0.03, 0.02, 0.015])).rules()


def test_still_improving_fits_a_line_through_the_last_epochs():
    val = [1.0, 0.8, 0.6, 0.5, 0.42, 0.36, 0.31]
    f = still_improving(RunContext(rows(val, val), [], {"stop_reason": "epochs: reached 7", "run": "r"}, CONFIG))
    slope = np.polyfit(np.arange(3, 8), val[-5:], 1)[0]  # the same drop, computed another way
    assert f is not None and f.evidence["fitted_drop"] == pytest.approx(-slope * 4)
    assert "epochs=20 (now 10)" in f.remedy and "--resume runs/r" in f.remedy


@pytest.mark.parametrize("val, rule", [([1.0, 0.8, 0.6, 0.5, 0.42, 0.36, 0.31], "early_stopping"),
                                       ([1.0, 0.05, 0.004, 0.0035, 0.0031, 0.0028, 0.0025], "epochs")])
def test_not_still_improving_when_stopped_early_or_when_the_gain_is_negligible(val, rule):
    # the stopping rule is read as data (summary["stopped_by"]); the prose reason says "epochs" to show it is not read
    summary = {"stop_reason": "epochs: reached 7", "stopped_by": rule}
    assert "still_improving" not in run(rows(val, val), summary=summary).rules()


# --- verdict ---------------------------------------------------------------------------------------

def test_headline_is_the_most_severe_then_the_cause_before_the_symptom():
    grads = [{"layers.0.linear": 1e-6, "head": 0.1}] * 4
    flat = rows([0.7, 0.69, 0.7, 0.69], train_acc=[0.5] * 4, val_acc=[0.5] * 4)
    d = run(flat, layer_rows(grads))
    assert d.verdict == "vanishing_gradients" and "underfitting" in d.rules()
    d = run(rows([0.7, 0.69, 0.7, 0.69], grad_norm=[5e3] * 4, train_acc=[0.5] * 4, val_acc=[0.5] * 4),
            layer_rows(grads))
    assert d.verdict == "exploding_gradients" and d.rules()[0] == "exploding_gradients"


def test_no_epochs_is_too_early_not_a_good_fit():
    d = run([])
    assert d.verdict == "too_early" and d.findings == [] and d.to_dict() == {"verdict": "too_early", "findings": []}


# --- too early / ended above chance (issue 15's table) ----------------------------------------------------

@pytest.mark.parametrize("val_loss, val_acc", [
    ([0.55, 0.36], [0.81, 0.88]),  # 2 epochs, val acc 0.88 and rising: was "good_fit", no findings
    ([1.4, 1.2, 1.05], [0.40, 0.47, 0.52]),  # 3 epochs at val acc 0.52, still falling: was "keep this setup"
    ([2.28], [0.13]),  # 1 epoch of a CIFAR CNN at 13 %
])
def test_short_runs_are_too_early_never_a_good_fit(val_loss, val_acc):
    n = len(val_loss)
    h = rows([v * 1.05 for v in val_loss], val_loss, [a - 0.02 for a in val_acc], val_acc)
    d = run(h, summary={"stop_reason": f"epochs: reached {n}", "run": "r"}, config={**CONFIG, "epochs": n},
            n_classes=10)
    assert d.verdict == "too_early" and d.rules() == ["too_early"]  # not good_fit, not "underfitting" yet
    f = finding(d, "too_early")
    assert f"{n} epoch" in f.message and "too few to judge" in f.message
    assert f.remedy.startswith(f"train longer: set epochs={max(10, 4 * n)} (now {n})")


def test_a_run_of_enough_epochs_that_converged_is_not_too_early():
    flat = rows([0.9, 0.35, 0.3, 0.298], [0.95, 0.4, 0.33, 0.329], [0.7, 0.9, 0.92, 0.92], [0.7, 0.88, 0.9, 0.9])
    assert run(flat).rules() == ["good_fit"]  # 4 epochs, flat at the end: judged
    assert run(healthy_classification(4)).rules() == ["too_early"]  # 4 epochs, still falling 36 % per epoch
    assert "too_early" not in run(healthy_classification(10)).rules()


def test_cross_entropy_ending_well_above_guessing_is_lr_too_high():
    """Linear softmax, SGD lr 3 on Fashion-MNIST: the loss ended at 2.9× ln 10 — was good_fit + still improving."""
    loss = [9.19, 8.1, 7.4, 6.9, 6.7]
    h = rows(loss, [v * 1.1 for v in loss], [0.62, 0.64, 0.66, 0.67, 0.68], [0.6, 0.62, 0.64, 0.65, 0.66])
    d = run(h, n_classes=10)
    assert d.verdict == "lr_too_high" and "good_fit" not in d.rules()
    f = finding(d, "lr_too_high")
    assert "× the 2.3 of guessing every one of the 10 classes" in f.message
    assert f.remedy == "lower optimizer.lr to 0.01 (now 0.1)"
    assert "lr_too_high" not in run(healthy_classification(), n_classes=10).rules()


def test_format_diagnosis_prints_the_verdict_then_one_line_per_finding():
    text = format_diagnosis(run(rows(TRAIN, VAL)))
    lines = text.splitlines()
    assert lines[0] == "verdict: overfitting"
    assert lines[1].startswith("⚠ Overfitting — validation loss rose from 0.3 at epoch 3")
    assert ". Try: stop at epoch 3" in lines[1]


def test_a_remedy_that_spells_its_change_out_is_not_followed_by_it_again():
    from trainlab.diagnose.rules import Finding

    spelled = Finding("still_improving", "info", "Still improving", "validation loss fell", {},
                      "continue this run: trainlab train --resume runs/r --set epochs=20", sets={"epochs": 20})
    terse = dataclasses.replace(spelled, remedy="train longer")
    lines = format_diagnosis(Diagnosis("still_improving", [spelled, terse])).splitlines()
    assert lines[1].endswith("--resume runs/r --set epochs=20") and "→" not in lines[1]
    assert lines[2].endswith("Try: train longer → --set epochs=20")
    from trainlab.api import fit_call  # tl.fit's verdict: the Python spelling still follows a command-line remedy

    assert format_diagnosis(Diagnosis("x", [spelled]), fix=fit_call).splitlines()[1].endswith(
        "--set epochs=20 → tl.fit(..., epochs=20)")


def test_no_good_fit_beside_a_warning(tmp_path):
    """A 10-layer sigmoid net with N(0,1) init: whatever else is found, it is not called a good fit."""
    from trainlab.config import resolve_config
    from trainlab.diagnose.verdict import diagnose_run
    from trainlab.workflow import run

    cfg = resolve_config(overrides={"out_dir": str(tmp_path), "tensorboard": False, "data.name": "circle",
                                    "data.n_points": 300, "data.normalize": True, "model.hidden": [8] * 10,
                                    "model.activation": "sigmoid", "model.init": "normal", "model.init_std": 1.0,
                                    "batch_size": 16, "epochs": 6, "threads": 1})
    out = run(cfg, report=False, verbose=False)
    d = diagnose_run(out.run_dir)
    assert any(f.severity == "warning" for f in d.findings) and "good_fit" not in d.rules()


# --- one coherent plan ------------------------------------------------------------------------------------


def test_remedies_never_pull_the_lr_both_ways():
    """lr 80 on a small ReLU net: 'Dead ReLU: lower optimizer.lr to 8' stood beside 'Underfitting: raise
    optimizer.lr to 240'. The higher-ranked lowering stays; the raise points to it."""
    acc = [0.5, 0.52, 0.5, 0.51, 0.5, 0.52]
    h = rows([0.69] * 6, [0.69] * 6, acc, acc)
    acts = [{"layers.0.act": unit("relu", dead=0.9)} for _ in range(6)]
    cfg = {**CONFIG, "optimizer": {"name": "sgd", "lr": 80.0}, "model": {**CONFIG["model"], "hidden": [64, 64, 64, 64],
                                                                         "activation": "relu"}}
    d = run(h, layer_rows(acts=acts), config=cfg)
    dead, under = finding(d, "dead_units"), finding(d, "underfitting")
    assert dead.sets == {"optimizer.lr": 8.0} and "lower optimizer.lr to 8" in dead.remedy
    assert "raise optimizer.lr" not in under.remedy and "“Dead ReLU units” above" in under.remedy
    raised = [f for f in d.findings if f.sets.get("optimizer.lr", 80.0) > 80.0]
    assert raised == []


def test_remedies_that_agree_are_all_kept():
    d = run(rows([0.5 + 0.2 * i for i in range(6)]), config={**CONFIG, "optimizer": {"name": "sgd", "lr": 1.0}})
    assert finding(d, "lr_too_high").sets == {"optimizer.lr": 0.1}


@pytest.mark.parametrize("optimizer, names", [("adam", "optimizer.name=adamw with optimizer.weight_decay=0.01"),
                                              ("sgd", "optimizer.weight_decay=1e-4")])
def test_overfitting_under_adam_names_adamw_not_coupled_weight_decay(optimizer, names):
    train = [1.0 * 0.8 ** i for i in range(20)]
    val = [1.0 * 0.8 ** i if i < 8 else 0.8 ** 8 * 1.08 ** (i - 7) for i in range(20)]
    d = run(rows(train, val), config={**CONFIG, "optimizer": {"name": optimizer, "lr": 0.01}})
    assert names in finding(d, "overfitting").remedy


def test_minibatch_noise_at_a_low_loss_is_not_oscillation():
    """A wide MLP memorising 200 images: 0.05–0.25 after 2.3 was headlined lr_too_high (oscillation)."""
    train = [2.3, 1.0, 0.5, 0.2, 0.1, 0.05, 0.2, 0.08, 0.25, 0.06, 0.22, 0.07]
    val = [2.3, 1.2, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2]
    d = run(rows(train, val))
    assert "lr_too_high" not in d.rules() and d.verdict == "overfitting"
    loud = [2.3, 1.0, 0.8, 1.4, 0.7, 1.5, 0.6, 1.6, 0.7, 1.4, 0.6, 1.5]  # the same jumps at a level that matters
    assert "lr_too_high" in run(rows(loud)).rules()


# --- the lr as the cause of its symptoms (issue 15: lr 5 / lr 80 / a NaN at an early update) ---------------------

def test_a_loss_that_blew_up_inside_epoch_1_is_lr_too_high_from_the_first_epoch_curve():
    h = rows([2.1, 2.0, 1.9], train_acc=[0.3, 0.32, 0.34], val_acc=[0.3, 0.32, 0.34])
    blown = {"first_loss": 2.3, "first_grad_norm": 1.5, "loss_curve": [2.2, 9.0, 30.0, 12.0], "steps": 40}
    calm = {**blown, "loss_curve": [2.2, 2.0, 1.8, 1.7]}
    f = finding(run(h, summary={"stop_reason": "epochs: reached 3", "first_epoch": blown}, n_classes=10),
                "lr_too_high")
    assert f.severity == "error" and "inside epoch 1 the loss rose from 2.3 at the first update to 30" in f.message
    calm_d = run(h, summary={"stop_reason": "epochs: reached 3", "first_epoch": calm}, n_classes=10)
    assert "lr_too_high" not in calm_d.rules()


def test_gradients_grown_from_a_normal_start_while_the_loss_rose_are_the_lr_not_exploding_gradients():
    rising = rows([0.69, 3.0, 40.0, 900.0], grad_norm=[0.9, 50.0, 4e3, 1e5], train_acc=[0.5] * 4, val_acc=[0.5] * 4)
    d = run(rising, n_classes=2)
    assert d.verdict == "lr_too_high" and "exploding_gradients" not in d.rules()
    assert "underfitting" not in d.rules()  # a diverged run's fit is not judged: no "give it capacity"
    huge_start = rows([0.69, 0.69, 0.69, 0.69], grad_norm=[5e3] * 4, train_acc=[0.5] * 4, val_acc=[0.5] * 4)
    assert run(huge_start).verdict == "exploding_gradients"


def test_a_remedys_sets_print_as_set_lines_that_the_cli_reads_back():
    from trainlab.config import parse_override, resolve_config
    from trainlab.diagnose.verdict import set_args

    sets = {"optimizer.lr": 1e-05, "model.hidden": [64, 64], "data.normalize": True, "loss.class_weights": "balanced",
            "stop.early_stopping.patience": 6}
    line = set_args(sets)
    assert line.startswith("--set optimizer.lr=1.0e-05 --set model.hidden=[64,64] --set data.normalize=true")
    words = line.split()
    back = dict(parse_override(w) for w in words[1::2])
    assert back == sets and resolve_config(overrides=back).optimizer.lr == 1e-05
    d = run(rows(TRAIN, VAL))
    assert format_diagnosis(d).splitlines()[1].endswith(" → --set stop.early_stopping.patience=2")


# --- cases the diagnosis benchmark (benchmarks/diagnosis) got wrong ----------------------------------------

def _outputs(lo, hi, zero_fraction, width=10):
    return {"min": lo, "max": hi, "row_sum_error": 1.0, "zero_fraction": zero_fraction, "width": width}


def test_zero_init_is_symmetric_init_not_a_relu_head():
    # all-zero untrained outputs come from the zero head, not from a final ReLU
    pf = {"loss": "cross_entropy", "task": "classification", "uniform_layers": ["layers.0.linear", "head"],
          "outputs": _outputs(0.0, 0.0, 1.0)}
    d = run(poor_fit(), summary={"stop_reason": "epochs: reached 10", "preflight": pf}, n_classes=2)
    assert d.verdict == "symmetric_init" and "loss_output_mismatch" not in d.rules()
    relu = dict(pf, uniform_layers=[], outputs=_outputs(0.0, 1.3, 0.5))  # varying outputs, half exactly 0
    assert run(poor_fit(), summary={"preflight": relu}, n_classes=2).verdict == "loss_output_mismatch"


def _first_epoch_blowup(first):
    # SGD lr 10 on Fashion-MNIST: epoch 1 mean far above ln 10, then every unit dead at ≈ ln 10
    loss = [first] + [2.303] * 7
    return rows(loss, [2.303] * 8, [0.1] * 8, [0.1] * 8)


def test_loss_that_rose_inside_the_first_epoch_is_lr_too_high():
    summary = {"stop_reason": "epochs: reached 8", "first_update": {"loss": 2.4, "grad_norm": 1.1}}
    d = run(_first_epoch_blowup(9.5), summary=summary, n_classes=10)
    f = finding(d, "lr_too_high")
    assert d.verdict == "lr_too_high" and f.evidence["first_update_loss"] == 2.4 and f.evidence["first"] == 9.5
    assert "2.4 at the first update, a mean of 9.5 over epoch 1" in f.message
    # a learning run's epoch-1 mean is below its first update's loss; and without the fact there is no claim
    assert "lr_too_high" not in run(_first_epoch_blowup(2.0), summary=summary, n_classes=10).rules()
    assert "lr_too_high" not in run(_first_epoch_blowup(9.5), n_classes=10).rules()


def test_gradients_growing_while_the_loss_rises_are_the_learning_rate_not_exploding_gradients():
    loss = [0.7, 0.9, 1.4, 2.0, 2.5]
    grads = [1.0, 10.0, 200.0, 900.0, 2000.0]
    normal_start = {"stop_reason": "epochs: reached 5", "first_update": {"loss": 0.7, "grad_norm": 1.0}}
    d = run(rows(loss, train_acc=[0.5] * 5, val_acc=[0.5] * 5, grad_norm=grads), summary=normal_start, n_classes=2)
    assert d.verdict == "lr_too_high" and "exploding_gradients" not in d.rules()
    huge_start = {"stop_reason": "epochs: reached 5", "first_update": {"loss": 0.7, "grad_norm": 5e3}}  # the init
    assert run(rows(loss, grad_norm=grads), summary=huge_start).verdict == "exploding_gradients"
    calm = [0.7, 0.5, 0.4, 0.35, 0.33]  # the same gradients under a falling loss: exploding
    assert run(rows(calm, grad_norm=grads)).verdict == "exploding_gradients"


def test_a_loss_still_creeping_down_in_an_underfitting_classifier_is_lr_too_low():
    loss = [0.69 * 0.93 ** i for i in range(10)]  # 48 % down and still falling ~7 %/epoch at the end
    acc = [0.5 + 0.02 * i for i in range(10)]  # best 0.68: skill 0.36
    d = run(rows(loss, [v * 1.02 for v in loss], acc, acc))
    assert d.verdict == "lr_too_low"
    flat = [0.69 * 0.5 + 0.69 * 0.5 * 0.3 ** i for i in range(10)]  # flattened at half: short of capacity
    assert run(rows(flat, [v * 1.02 for v in flat], acc, acc)).verdict == "underfitting"


def _fits_to(best_acc, n=10):
    loss = [0.7 * 0.6 ** i + 0.25 for i in range(n)]  # converged, flat at the end
    acc = [min(0.6 + 0.05 * i, best_acc) for i in range(n)]
    return rows(loss, [v * 1.05 for v in loss], acc, [a - 0.01 for a in acc])


def test_a_net_fitting_its_training_data_well_short_of_a_knn_vote_underfits():
    # moons with 2 hidden units: train accuracy 0.88 (skill 0.76) where 5 neighbours read 0.996 — was "good fit"
    summary = {"stop_reason": "epochs: reached 10", "preflight": {"knn_acc": 0.996}}
    d = run(_fits_to(0.88), summary=summary, n_classes=2)
    f = finding(d, "underfitting")
    assert d.verdict == "underfitting" and f.evidence["knn_acc"] == 0.996 and "accuracy 1.00" in f.message
    # a healthy run near the k-NN (train 0.94: 0.88 of its skill), or no k-NN fact: no finding
    assert "underfitting" not in run(_fits_to(0.94), summary=summary, n_classes=2).rules()
    assert "underfitting" not in run(_fits_to(0.88), n_classes=2).rules()


def test_a_loss_that_moved_under_ten_percent_falling_every_epoch_is_lr_too_low():
    # circle at lr ÷100: 6.9 % in 30 epochs, down on every one
    loss = [0.69 - 0.0016 * i for i in range(30)]
    acc = [0.6 + 0.002 * i for i in range(30)]
    assert run(rows(loss, [v * 1.02 for v in loss], acc, acc), n_classes=2).verdict == "lr_too_low"


def test_remedies_that_move_a_key_the_same_way_take_the_higher_ranked_value():
    # lr 0.001 on a slow run: 'Learning rate too low: raise optimizer.lr to 0.01' stood above 'Underfitting: ...
    # raise optimizer.lr to 0.003', two values for one key in one plan
    from trainlab.diagnose.rules import Finding
    from trainlab.diagnose.verdict import coherent

    low = Finding("lr_too_low", "warning", "Learning rate too low", "m", {}, "raise optimizer.lr to 0.01",
                  {"optimizer.lr": 0.01})
    under = Finding("underfitting", "warning", "Underfitting", "m", {}, "train longer (epochs=10, now 5) or raise "
                    "optimizer.lr to 0.003 (now 0.001)", {"epochs": 10, "optimizer.lr": 0.003})
    current = {"optimizer.lr": 0.001, "epochs": 5}.get
    kept, merged = coherent([low, under], current)
    assert kept == low and merged.sets == {"epochs": 10}  # the --set line no longer carries a second lr
    assert merged.remedy.endswith("; with optimizer.lr=0.01 from “Learning rate too low” above")
    same = Finding("underfitting", "warning", "Underfitting", "m", {}, "raise optimizer.lr to 0.01",
                   {"optimizer.lr": 0.01})
    assert coherent([low, same], current)[1] == same  # the same value: nothing to say


OVERFIT = {**CONFIG, "overfit_batches": 1}


def test_memorization_judges_a_run_on_overfit_batches_alone():
    acc = [0.3, 0.6, 0.9, 1.0, 1.0, 1.0]
    loss = [2.0, 1.2, 0.5, 0.1, 0.05, 0.03]
    d = run(rows(loss, loss, acc, acc), summary={"stop_reason": "epochs", "first_update": {"loss": 2.3},
                                                  "data": {"train": 64}}, config=OVERFIT)
    assert d.verdict == "memorization" and d.rules() == ["memorization"]  # no good fit, leakage or still improving
    f = finding(d, "memorization")
    assert f.severity == "info" and f.sets == {"overfit_batches": 0}
    assert "fit its 64 training examples (overfit_batches=1): training accuracy 1.00 at epoch 6, loss 2.3 → 0.03" \
        in f.message
    stuck = [0.1, 0.12, 0.15, 0.2, 0.25, 0.3]  # 0.98 is not memorised; neither is this
    d = run(rows([2.3] * 6, [2.3] * 6, stuck, stuck), summary={"stop_reason": "epochs", "data": {"train": 64}},
            config=OVERFIT)
    f = finding(d, "memorization")
    assert f.severity == "warning" and f.sets == {"epochs": 12}
    assert "after 6 epochs its 64 training examples (overfit_batches=1) are still not fit: training accuracy 0.30" \
        in f.message
    assert not {"underfitting", "overfitting", "too_early"} & set(d.rules())
    near = [0.5, 0.9, 0.98, 0.98, 0.98, 0.98]
    assert finding(run(rows(loss, loss, near, near), config=OVERFIT), "memorization").severity == "warning"
    # a regression: the training loss at 5 % of the first update's, or above
    assert finding(run(rows([1.0, 0.3, 0.04]), summary={"first_update": {"loss": 1.0}}, config=OVERFIT),
                   "memorization").severity == "info"
    assert finding(run(rows([1.0, 0.3, 0.06]), summary={"first_update": {"loss": 1.0}}, config=OVERFIT),
                   "memorization").severity == "warning"
    assert "memorization" not in run(rows(loss, loss, acc, acc)).rules()  # off without overfit_batches


def test_underfitting_at_or_below_chance_says_so_rather_than_a_negative_share():
    acc = [0.45, 0.47, 0.48, 0.46, 0.47, 0.48, 0.47, 0.46, 0.48, 0.47]  # two classes: chance 0.50
    loss = [0.70] * 10
    f = finding(run(rows(loss, loss, acc, acc), n_classes=2), "underfitting")
    assert "training accuracy peaked at 0.48 with chance at 0.50: no better than guessing;" in f.message
    assert "-" not in f.message.split(":")[1].split(";")[0]


# --- label smoothing: losses above a floor ----------------------------------------------------------------------

def _smoothed_config(eps, **loss):
    return CONFIG | {"loss": {"l1": 0.0, "l2": 0.0, "name": "cross_entropy", "label_smoothing": eps, **loss}}


@pytest.mark.parametrize("eps, classes, name", [(0.1, 10, "cross_entropy"), (0.3, 3, "auto"), (0.2, 2, "bce")])
def test_the_loss_floor_is_the_smoothed_loss_of_a_model_that_predicts_the_smoothed_target(eps, classes, name):
    """Two ways: the closed form, and trainlab's own smoothed loss at the best possible prediction (whose
    gradient there is zero: no lower loss exists)."""
    import torch

    from trainlab.train.losses import LOSSES, smoothed

    ctx = RunContext([], [], {}, _smoothed_config(eps, name=name), classes if name != "bce" else 2)
    y = torch.arange(classes).repeat(3)  # (3C,) every class
    if name == "bce":
        p = y.float() * (1 - eps) + eps / 2
        out = torch.log(p / (1 - p)).unsqueeze(1).requires_grad_()  # (N, 1) logits of the smoothed labels
    else:
        target = torch.nn.functional.one_hot(y, classes).float() * (1 - eps) + eps / classes
        out = target.log().requires_grad_()  # (N, C) logits whose softmax is the smoothed target
    loss = smoothed(LOSSES.get("bce" if name == "bce" else "cross_entropy"), eps).fn(out, y)
    assert ctx.loss_floor == pytest.approx(float(loss.detach()), rel=1e-5) and ctx.loss_floor > 0
    grad, = torch.autograd.grad(loss, out)
    assert float(grad.abs().max()) < 1e-6
    if (eps, classes) == (0.1, 10):
        assert ctx.loss_floor == pytest.approx(0.5003, abs=1e-4)


@pytest.mark.parametrize("config", [CONFIG, _smoothed_config(0.0), _smoothed_config(0.1, class_weights=[1.0, 2.0])])
def test_no_smoothing_or_class_weights_leave_the_floor_at_zero(config):
    assert RunContext([], [], {}, config, 10).loss_floor == 0.0


def test_a_memorising_run_under_label_smoothing_is_overfitting_measured_above_the_floor():
    """Seen on Fashion-MNIST (600 examples, 200 epochs): at ε = 0 'overfitting'; at ε = 0.1 the same net (training
    accuracy 1.00, validation 0.82) logs a training loss of 0.52 against a validation loss of 1.1, and was called a
    good fit: 0.52 is 0.02 above the floor 0.50 that smoothing sets."""
    floor = RunContext([], [], {}, _smoothed_config(0.1), 10).loss_floor
    train = [1.2, 0.9, 0.7, 0.6, 0.55, 0.53, 0.52, 0.515, 0.51]
    val = [1.25, 1.08, 1.05, 1.06, 1.07, 1.08, 1.09, 1.1, 1.1]
    acc = [0.6, 0.75, 0.85, 0.92, 0.96, 0.98, 0.99, 1.0, 1.0]
    history = rows(train, val, acc, [0.7, 0.78, 0.8, 0.81, 0.81, 0.82, 0.82, 0.82, 0.82])
    assert "overfitting" not in run(history, n_classes=10).rules()  # read as if the losses could reach 0
    d = run(history, config=_smoothed_config(0.1), n_classes=10)
    f = finding(d, "overfitting")
    assert d.verdict == "overfitting" and f.evidence["loss_floor"] == pytest.approx(floor)
    assert f"above the floor {floor:.3g} that label smoothing sets" in f.message
    assert f.evidence["train_loss_end_window"] == pytest.approx((0.52 + 0.515 + 0.51) / 3)  # the logged values


def test_a_loss_near_its_smoothing_floor_is_not_a_learning_rate_too_low():
    """At ε = 0.8 over 10 classes the floor is 2.17, 0.13 below chance's 2.30: a loss that went all the way down
    moved 6 % of its first value, which read as 'barely moving'."""
    eps = 0.8
    floor = RunContext([], [], {}, _smoothed_config(eps), 10).loss_floor
    loss = [floor + 0.13 * 0.6 ** i for i in range(10)]
    acc = [0.3 + 0.05 * i for i in range(10)]
    history = rows(loss, [v + 0.002 for v in loss], acc, acc)
    assert "lr_too_low" in run(history, n_classes=10).rules()  # the unadjusted reading
    assert "lr_too_low" not in run(history, config=_smoothed_config(eps), n_classes=10).rules()
    slow = [floor + 0.13 * (1 - 0.004 * i) for i in range(10)]  # ... while one that crawls still is one
    f = finding(run(rows(slow, slow, acc, acc), config=_smoothed_config(eps), n_classes=10), "lr_too_low")
    assert "of the way to its floor" in f.message and "label smoothing's floor 2.17" in f.message


# --- mixup / CutMix: training accuracy on mixed batches -----------------------------------------------------------

def test_a_mixed_training_accuracy_below_the_validation_one_is_not_underfitting():
    """Under CutMix (α = 1) a small net scores 0.62 on mixed training batches and 0.84 on validation. Read as the
    training accuracy alone, 0.62 is short of the k-NN vote's 0.80; the net fits at least as well as 0.84."""
    loss = [1.6 - 0.05 * i for i in range(12)]
    train_acc = [0.4 + 0.02 * i for i in range(12)]  # → 0.62
    val_acc = [0.7 + 0.013 * i for i in range(12)]  # → 0.84
    history = rows(loss, [v - 0.9 for v in loss], train_acc, val_acc)
    summary = {"stop_reason": "epochs: reached 12", "preflight": {"knn_acc": 0.80}}
    assert "underfitting" in run(history, summary=summary, n_classes=10).rules()  # without knowing of the mixing
    config = CONFIG | {"data": {"normalize": False, "augment": {"cutmix": 1.0}}}
    d = run(history, summary=summary, config=config, n_classes=10)
    assert "underfitting" not in d.rules()
    low = rows(loss, loss, [a - 0.2 for a in train_acc], [a - 0.45 for a in val_acc])  # both short: still said
    f = finding(run(low, summary=summary, config=config, n_classes=10), "underfitting")
    assert f.message.startswith("accuracy (the better of training on mixed batches and validation) peaked at 0.42")


# --- generalisation gap: high variance without a rising validation loss ------------------------------------------

def _gap_history(gap, n=12):
    loss = [1.2 * 0.8 ** i + 0.3 for i in range(n)]  # both losses level off: no rise
    train_acc = [min(0.5 + 0.05 * i, 0.97) for i in range(n)]
    return rows(loss, [v + 0.25 for v in loss], train_acc, [a - gap for a in train_acc])


def test_training_accuracy_far_above_validation_accuracy_without_a_rise_is_a_generalisation_gap():
    summary = {"stop_reason": "epochs: reached 12", "data": {"train": 300, "val": 1000}}
    d = run(_gap_history(0.2), summary=summary, n_classes=10)
    f = finding(d, "generalization_gap")
    assert d.verdict == "generalization_gap" and "good_fit" not in d.rules() and f.severity == "warning"
    assert f.evidence["gap"] == pytest.approx(0.2) and f.evidence["best_epoch"] == 12
    assert ("training accuracy 0.97 against validation accuracy 0.77 around the best epoch 12, a gap of 0.20, "
            "without a clear rise of the validation loss: the net fits its 300 training examples far better than "
            "new ones (high variance)") == f.message
    assert f.remedy.startswith("more training examples close the gap most surely") and f.sets == {}


@pytest.mark.parametrize("gap", [0.0, 0.05, 0.09])
def test_a_small_gap_stays_a_good_fit(gap):
    d = run(_gap_history(gap), n_classes=10)
    assert "generalization_gap" not in d.rules() and d.verdict == "good_fit"


def test_an_overfitting_run_names_the_gap_there_not_twice():
    acc = [0.6, 0.75, 0.85, 0.92, 0.96, 0.98, 0.99]
    d = run(rows(TRAIN, VAL, acc, [0.6, 0.7, 0.75, 0.72, 0.7, 0.68, 0.66]), n_classes=10)  # accuracy fell too
    assert d.verdict == "overfitting" and "generalization_gap" not in d.rules()


def test_a_gap_after_too_few_epochs_is_not_judged_yet():
    d = run(_gap_history(0.2, n=3), n_classes=10)
    assert "generalization_gap" not in d.rules()


def test_a_gap_beside_overfitting_with_accuracy_held_is_named_as_there_at_the_best_epoch():
    """600 Fashion images at label smoothing 0.1: the validation loss rose a little with the accuracy held
    (overfitting, info: "nothing needed for accuracy"), while training accuracy stood 12 points above validation
    already at the best epoch."""
    loss = [1.0 - 0.05 * i for i in range(16)]
    val = [1.1 - 0.05 * i if i < 6 else 0.82 + 0.03 * (i - 6) for i in range(16)]
    acc = [min(0.6 + 0.05 * i, 0.99) for i in range(16)]
    d = run(rows(loss, val, acc, [a - 0.15 for a in acc]), n_classes=10)
    assert d.rules()[:2] == ["generalization_gap", "overfitting"]
    assert finding(d, "overfitting").severity == "info"
    assert ", already there where the validation loss was lowest:" in finding(d, "generalization_gap").message
