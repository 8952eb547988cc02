"""Per-class scores from a confusion matrix, checked against scikit-learn's own functions."""
from __future__ import annotations

import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, classification_report, confusion_matrix

from trainlab.train.metrics import (balanced_scores, class_report, confusion_counts, confusion_margins,
                                    format_report)


def _labels(seed, n, k, absent=()):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    pred = torch.where(torch.rand(n, generator=g) < 0.6, y, torch.randint(0, k, (n,), generator=g))
    for c in absent:  # a class nobody is labelled with (it may still be predicted)
        y[y == c] = (c + 1) % k
    return y, pred


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed, n, k, absent", [(0, 200, 4, ()), (1, 50, 7, (3,)), (2, 300, 2, ()), (3, 30, 10, ())])
def test_the_report_is_scikit_learns(seed, n, k, absent):
    y, pred = _labels(seed, n, k, absent)
    counts = confusion_counts(y, pred, k)
    assert counts.tolist() == confusion_matrix(y, pred, labels=list(range(k))).tolist()
    ours = class_report(counts)
    theirs = classification_report(y, pred, output_dict=True, zero_division=0)
    for row in ours["per_class"]:
        if row["class"] in theirs:
            ref = theirs[row["class"]]
            assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
                (ref["precision"], ref["recall"], ref["f1-score"], ref["support"]))
        else:  # neither labelled nor predicted: scikit-learn leaves it out, its scores are 0
            assert row["support"] == 0 and row["f1"] == 0
    for name in ("macro", "weighted"):
        ref = theirs[f"{name} avg"]
        assert (ours[name]["precision"], ours[name]["recall"], ours[name]["f1"]) == pytest.approx(
            (ref["precision"], ref["recall"], ref["f1-score"]))
    assert ours["balanced_acc"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert ours["macro_f1"] == ours["macro"]["f1"]
    # every epoch reads only the matrix's margins (3·K numbers): the same two scores
    assert balanced_scores(confusion_margins(counts)) == pytest.approx((ours["balanced_acc"], ours["macro_f1"]))


def test_always_predicting_the_majority_class_is_accurate_and_unbalanced():
    y = torch.tensor([0] * 95 + [1] * 5)
    report = class_report(confusion_counts(y, torch.zeros(100, dtype=torch.long), 2), ["ok", "fault"])
    assert report["balanced_acc"] == 0.5 and report["per_class"][1] == {
        "class": "fault", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5}
    text = format_report(report)
    assert text.splitlines()[0].split() == ["precision", "recall", "f1", "support"]
    assert text.splitlines()[2].split() == ["fault", "0.000", "0.000", "0.000", "5"]
    assert text.splitlines()[-1].split()[:2] == ["weighted", "avg"] and text.splitlines()[-1].endswith(" 100")


def test_a_run_keeps_the_test_splits_class_scores_and_evaluate_gives_the_same(make_cfg):
    from trainlab.train.inference import evaluate_run
    from trainlab.train.run import train

    result = train(make_cfg(epochs=3, **{"data.test_fraction": 0.3}), verbose=False)
    test = result.summary["test"]
    assert {"balanced_acc", "macro_f1", "per_class", "macro", "weighted", "confusion"} <= set(test)
    confusion = torch.tensor(test["confusion"])
    assert int(confusion.sum()) == test["n"] and float(confusion.trace()) / test["n"] == pytest.approx(test["test_acc"])
    assert [r["support"] for r in test["per_class"]] == confusion.sum(1).tolist()
    again = evaluate_run(result.run_dir)
    for key in ("balanced_acc", "macro_f1", "confusion", "per_class"):
        assert again[key] == test[key], key


def test_trainlab_evaluate_prints_the_per_class_table(make_cfg, capsys):
    from trainlab.cli import main
    from trainlab.train.run import train

    result = train(make_cfg(epochs=2, **{"data.test_fraction": 0.3}), verbose=False)
    assert main(["evaluate", str(result.run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "balanced acc" in lines[0] and "macro F1" in lines[0]
    assert lines[1].split() == ["precision", "recall", "f1", "support"]
    assert [ln.split()[0] for ln in lines[2:]] == ["negative", "positive", "macro", "weighted"]  # circle's classes


def test_every_epoch_scores_the_validation_split_per_class_as_scikit_learn_does(make_cfg):
    from trainlab.train.loop import evaluate
    from trainlab.train.run import prepare, train

    cfg = make_cfg(epochs=2, **{"stop.early_stopping.restore_best": False})
    result = train(cfg, verbose=False)
    last = result.history[-1]
    p = prepare(cfg)
    with torch.no_grad():
        pred = result.model(p.bundle.val.x).argmax(1)
    assert last["val_balanced_acc"] == pytest.approx(balanced_accuracy_score(p.bundle.val.y, pred))
    report = classification_report(p.bundle.val.y, pred, output_dict=True, zero_division=0)
    assert last["val_macro_f1"] == pytest.approx(report["macro avg"]["f1-score"])
    as_regression = evaluate(result.model, p.bundle.val, p.loss, 64, classification=False)
    assert "balanced_acc" not in as_regression and as_regression["acc"] is None


def test_monitoring_the_balanced_accuracy_keeps_its_best_epoch(make_cfg):
    from trainlab.train.run import train

    result = train(make_cfg(epochs=6, monitor="val_balanced_acc", **{"optimizer.lr": 0.5}), verbose=False)
    values = [h["val_balanced_acc"] for h in result.history]
    assert result.summary["best_epoch"] == values.index(max(values)) + 1
    assert result.summary["best_value"] == max(values)


@pytest.mark.parametrize("overrides, said", [
    ({"monitor": "val_macro_f1"}, r"monitor must be val_loss for a regression dataset\. Got 'val_macro_f1'\."),
    ({"stop.target.metric": "val_balanced_acc", "stop.target.value": 0.9},
     r"stop\.target\.metric must be a loss for a regression dataset\. Got 'val_balanced_acc'\."),
])
def test_class_scores_on_a_regression_are_one_line(make_cfg, overrides, said):
    from trainlab.errors import ConfigError
    from trainlab.train.run import prepare

    with pytest.raises(ConfigError, match="^" + said):
        prepare(make_cfg(**{"data.name": "plane", **overrides}))


def test_a_target_f1_must_be_a_score_in_0_1(make_cfg):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"stop\.target\.value must be a score in \(0, 1\] for "
                                          r"stop\.target\.metric='val_macro_f1'\. Got 80(\.0)?\. Use 0\.8 for 80 %"):
        make_cfg(**{"stop.target.metric": "val_macro_f1", "stop.target.value": 80})


@pytest.mark.gpu
def test_the_counts_on_a_gpu_under_deterministic_algorithms(device):
    """torch.use_deterministic_algorithms(True) makes some counting ops raise on CUDA; the scores must not."""
    y, pred = _labels(4, 500, 6)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        on_gpu = confusion_counts(y.cuda(), pred.cuda(), 6)
    finally:
        torch.use_deterministic_algorithms(was)
    assert on_gpu.cpu().tolist() == confusion_counts(y, pred, 6).tolist()
