"""Pre-flight causes on real small runs: each row of issue 15's table that a fact before the first update
explains gets its cause as the verdict, and a healthy run gets none of them (the facts come from
train/preflight.py, the judgement from the pre-flight rules in diagnose/rules.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.errors import ConfigError
from trainlab.diagnose.rules import PREFLIGHT_RULES
from trainlab.train.preflight import preflight_facts

PREFLIGHT = {r.__name__ for r in PREFLIGHT_RULES}


def moons(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * torch.pi
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.stack([torch.where(upper, t.cos(), 1 - t.cos()), torch.where(upper, t.sin(), 0.5 - t.sin())], 1)
    return x + 0.1 * torch.randn(n, 2, generator=g), upper.long()


def mlp(*tail: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2), *tail)


def fit(model, data, tmp_path, **kw):
    opts = dict(epochs=8, batch_size=32, lr=0.1, out_dir=str(tmp_path), verbose=False, report=False,
                tensorboard=False)
    return tl.fit(model, data, **{**opts, **kw})


def test_healthy_run_has_no_preflight_finding(tmp_path):
    run = fit(mlp(), moons(), tmp_path)
    assert not PREFLIGHT & set(run.diagnosis.rules())
    assert run.summary["preflight"]["inputs"]["std_max"] < 2


def test_softmax_before_cross_entropy_is_the_verdict(tmp_path):
    run = fit(mlp(nn.Softmax(dim=1)), moons(), tmp_path)  # was: good_fit
    assert run.diagnosis.verdict == "loss_output_mismatch"
    f = run.diagnosis.findings[0]
    assert "softmax again" in f.message and f.remedy.startswith("remove the final softmax")
    assert f.sets == {"loss.from_logits": False}  # the config change trainlab fix can try on your module


def test_a_softmax_module_with_from_logits_false_trains_as_its_logits_would(tmp_path):
    logits = fit(mlp(), moons(), tmp_path / "a")
    probs = fit(mlp(nn.Softmax(dim=1)), moons(), tmp_path / "b", from_logits=False)
    assert "loss_output_mismatch" not in probs.diagnosis.rules()
    # the same seed, weights and batches: log of the module's softmax is the log-softmax cross-entropy takes
    for a, b in zip(logits.history, probs.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4) and b["val_acc"] == a["val_acc"]
    p = probs.predict(moons(50, seed=3)[0], proba=True)
    assert p.shape == (50, 2) and abs(float(p.sum(1).max()) - 1) < 1e-5  # the module's own probabilities


def test_fix_of_a_softmax_module_sets_from_logits_false(tmp_path):
    run = fit(mlp(nn.Softmax(dim=1)), moons(), tmp_path, epochs=8)
    fixed = run.fix(verbose=False, report=False)
    assert fixed.rule == "loss_output_mismatch" and fixed.sets == {"loss.from_logits": False}
    assert "loss_output_mismatch" not in fixed.run.diagnosis.rules()
    assert fixed.after["val_loss"] < fixed.before["val_loss"]


def test_from_logits_false_on_a_model_of_raw_scores_is_a_mismatch_too(tmp_path):
    run = fit(mlp(), moons(), tmp_path, from_logits=False)
    f = run.diagnosis.findings[0]
    assert run.diagnosis.verdict == "loss_output_mismatch" and f.sets == {"loss.from_logits": True}
    assert f.message.startswith("loss.from_logits=false reads the model's outputs as probabilities, but")


def test_relu_as_the_last_layer_of_a_classifier(tmp_path):

    run = fit(mlp(nn.ReLU()), moons(), tmp_path)
    assert run.diagnosis.verdict == "loss_output_mismatch" and "ReLU" in run.diagnosis.findings[0].message


def test_unscaled_inputs_are_the_cause_not_their_symptoms(tmp_path):
    x, y = moons()
    try:  # was: exploding_gradients, dead_units (or a NaN)
        run = fit(mlp(), (x * 1000 + 5000, y), tmp_path)
        diagnosis = run.diagnosis
    except tl.TrainingError as err:
        diagnosis = err.outcome.diagnosis
    assert diagnosis.verdict == "inputs_not_scaled"
    assert "data.normalize=true" in diagnosis.findings[0].remedy
    fixed = fit(mlp(), (x * 1000 + 5000, y), tmp_path, normalize=True)
    assert "inputs_not_scaled" not in fixed.diagnosis.rules()


def test_zero_init_is_symmetric(tmp_path):
    model = mlp()
    nn.init.zeros_(model[0].weight)
    nn.init.zeros_(model[2].weight)
    run = fit(model, moons(), tmp_path)
    assert run.diagnosis.verdict == "symmetric_init"
    assert run.diagnosis.findings[0].evidence["layers"] == ["0", "2"]


def test_a_class_without_examples_is_counted_and_named():
    from trainlab.data.base import Split
    from trainlab.diagnose import diagnose

    x, y = moons()  # labels 0 and 1 only, for a 3-class head
    facts = preflight_facts(nn.Linear(2, 3), Split(x, y), "cross_entropy", "classification", 3, torch.device("cpu"))
    assert facts["class_counts"][2] == 0 and sum(facts["class_counts"]) == len(y)
    d = diagnose([], [], {"preflight": facts}, {}, n_classes=3)
    assert d.verdict == "empty_class" and "class 2 of 3 has no training example" in d.findings[0].message


def test_saturated_share_before_the_first_update_is_measured_per_tanh_and_sigmoid_layer():
    from trainlab.data import Split

    x, y = moons()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight.mul_(20)  # most tanh inputs far out in the flat tails
        h = model[1](model[0](x[:256]))
        s = model[3](model[2](h))
    facts = preflight_facts(model, Split(x, y), "cross_entropy", "classification", 2, torch.device("cpu"))
    assert set(facts["saturated_at_init"]) == {"1", "3"}  # no ReLU layer, no Linear one
    tanh = float((h.abs() > 0.9).float().mean())  # tanh slope 1 - t² < 10 % of its maximum
    assert tanh > 0.5 and facts["saturated_at_init"]["1"] == pytest.approx(tanh, abs=0.02)
    assert facts["saturated_at_init"]["3"] == pytest.approx(float(((s < 0.1) | (s > 0.9)).float().mean()), abs=0.02)


@pytest.mark.parametrize("last, loss, fires", [(nn.Sigmoid(), "bce", True), (nn.Identity(), "bce", False)])
def test_sigmoid_before_bce(tmp_path, last, loss, fires):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), last)
    run = fit(model, moons(), tmp_path, loss=loss)
    assert ("loss_output_mismatch" in run.diagnosis.rules()) == fires


def test_shuffled_labels_have_no_signal_and_no_capacity_remedy(tmp_path):
    x, y = moons()
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    run = fit(mlp(), (x, shuffled), tmp_path, epochs=10)  # was: dead_units, underfitting
    assert run.diagnosis.verdict == "no_signal" and "underfitting" not in run.diagnosis.rules()
    assert run.summary["preflight"]["knn_acc"] < 0.55
    clean = fit(mlp(), (x, y), tmp_path, epochs=10)
    assert clean.summary["preflight"]["knn_acc"] > 0.95 and "no_signal" not in clean.diagnosis.rules()


# --- labels, leakage, the target type, the lr range (issue 15, "What to build" 1) --------------------------------

def test_heavy_imbalance_is_named_with_the_counts_and_a_balanced_judgement(tmp_path):
    x, y = moons(2000)
    keep = (y == 0) | (torch.arange(len(y)) % 30 == 0)  # ~30:1 — the small class's recall was 0.2–0.5 at 30:1
    run = fit(mlp(), (x[keep], y[keep]), tmp_path)
    f = next(f for f in run.diagnosis.findings if f.rule == "class_imbalance")
    assert f.evidence["largest_class"] == 0 and f.evidence["ratio"] >= 20 and "confusion matrix" in f.remedy
    assert f.sets == {"loss.class_weights": "balanced"} and "good_fit" not in run.diagnosis.rules()
    assert "class_imbalance" not in fit(mlp(), moons(), tmp_path).diagnosis.rules()
    xv, yv = moons(400, seed=1)  # balanced: the small class's recall shows what accuracy hides
    recall = {}
    for weights in (None, "balanced"):
        r = fit(mlp(), (x[keep], y[keep]), tmp_path, val=(xv, yv), class_weights=weights)
        recall[weights] = float((r.predict(xv)[yv == 1] == 1).float().mean())
        assert ("class_imbalance" in r.diagnosis.rules()) == (weights is None)  # the fix applied: no finding
        if weights is None:  # the balanced accuracy on the balanced validation split shows the missed class
            g = next(f for f in r.diagnosis.findings if f.rule == "class_imbalance")
            last = [h["val_balanced_acc"] for h in r.history[-3:]]
            assert g.evidence["val_balanced_acc_end"] == pytest.approx(sum(last) / 3)
            assert g.evidence["val_balanced_acc_end"] < 0.8  # the small class is mostly missed
            assert "its balanced accuracy (the mean of the per-class recalls) ended at" in g.message
    assert recall["balanced"] > recall[None] + 0.2


def test_balanced_class_weights_are_n_over_c_times_each_count():
    from trainlab.train.losses import LOSSES, weighted

    y = torch.tensor([0, 0, 0, 1])  # counts 3 and 1: weights 4 / (2·3) and 4 / (2·1)
    loss = weighted(LOSSES.get("cross_entropy"), "balanced", y, 2, torch.device("cpu"))
    out = torch.randn(4, 2)
    w = torch.tensor([4 / 6, 2.0])
    assert torch.allclose(loss.fn(out, y), nn.functional.cross_entropy(out, y, weight=w))
    with pytest.raises(ConfigError, match=r"^loss\.class_weights must be 2 weights >= 0, one per class\. Got \[1\.0\]"):
        weighted(LOSSES.get("cross_entropy"), [1.0], y, 2, torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"^loss\.class_weights must be left unset for loss 'mse'"):
        weighted(LOSSES.get("mse"), "balanced", y, 2, torch.device("cpu"))


def test_validation_and_test_examples_copied_from_training_are_leakage(tmp_path):
    x, y = moons()
    val = (torch.cat([x[:30], x[500:570]]), torch.cat([y[:30], y[500:570]]))  # 30 of 100 copied from training
    run = fit(mlp(), (x[:500], y[:500]), tmp_path, val=val, test=(x[:20], y[:20]))
    f = next(f for f in run.diagnosis.findings if f.rule == "leakage")
    assert run.summary["preflight"]["shared_with_val"]["n"] == 30
    assert run.summary["test"]["shared_with_train"]["n"] == 20
    assert "30 of 100 validation examples are exact copies" in f.message and "20 of 20 test examples" in f.message
    clean = fit(mlp(), (x[:500], y[:500]), tmp_path, val=(x[500:], y[500:]))
    assert clean.summary["preflight"]["shared_with_val"]["n"] == 0 and "leakage" not in clean.diagnosis.rules()


def test_row_hashes_match_equal_rows_only():
    from trainlab.train.preflight import row_hashes

    x = torch.randn(50, 7)  # an odd width: the int32 path
    x[10] = x[3]
    h = row_hashes(x)
    assert h[10] == h[3] and len(set(h.tolist())) == 49
    assert torch.equal(row_hashes(x[[3, 10]]), h[[3, 10]])  # a row's hash does not depend on its neighbours
    img = torch.rand(20, 1, 4, 4)
    assert torch.equal(row_hashes(img)[5:6], row_hashes(img[5:6].clone()))


def test_one_hot_or_class_index_targets_under_mse_look_like_classification(tmp_path):
    x, y = moons()
    onehot = nn.functional.one_hot(y, 2).float()  # (N, 2) floats
    auto = fit(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)), (x, onehot), tmp_path)
    assert auto.summary["labels"] and "targets_look_like_classes" not in auto.diagnosis.rules()  # read as classes
    run = fit(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)), (x, onehot), tmp_path, task="regression")
    f = next(f for f in run.diagnosis.findings if f.rule == "targets_look_like_classes")
    assert "one-hot" in f.message and f.sets == {"data.task": "classification"}
    fixed = run.fix(report=False)  # the remedy's task wins over the task fit was given: a classifier now
    assert fixed.run.summary["best_val"]["val_acc"] is not None and fixed.improved is None
    assert fixed.judgement.startswith("not judged: one run is a regression (val loss")
    labels = (y * 3).float()  # classes 0 and 3 as numbers, forced to a regression
    run = fit(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)), (x, labels), tmp_path, task="regression")
    f = next(f for f in run.diagnosis.findings if f.rule == "targets_look_like_classes")
    assert "only 2 distinct values" in f.message and f.sets == {"data.task": "classification"}
    smooth = fit(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)), (x, x[:, 0] * 2.5), tmp_path)
    assert "targets_look_like_classes" not in smooth.diagnosis.rules()


@pytest.mark.parametrize("optimizer, lr, fires", [("adam", 0.1, True), ("adam", 1e-3, False), ("sgd", 10.0, True),
                                                  ("sgd", 3.0, False), ("sgd", 1e-7, True), ("momentum", 1.0, True)])
def test_a_learning_rate_far_outside_its_optimizers_range_is_a_warning(tmp_path, optimizer, lr, fires):
    from trainlab.diagnose import diagnose

    d = diagnose([], [], {}, {"optimizer": {"name": optimizer, "lr": lr}})
    assert ("lr_unusual" in d.rules()) == fires
    if fires:
        f = d.findings[0]
        assert f.severity == "warning" and f"usual range for {optimizer}" in f.message and f.sets["optimizer.lr"] < 1
