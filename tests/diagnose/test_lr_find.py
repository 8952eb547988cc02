"""The learning-rate remedies quote the LR finder's suggestion when the run has one (``lr_find.json``), for the same
optimizer and batch size, and only when it moves the lr the way the finding asks."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.diagnose.test_rules import CONFIG, finding, rows, run
from trainlab.diagnose.verdict import diagnose_run

CFG = {**CONFIG, "batch_size": 32}
CREEP = [0.700, 0.699, 0.698, 0.697, 0.696, 0.695]  # lr_too_low at lr 0.1 (tests/diagnose/test_rules.py)
RISE = [0.7, 0.9, 1.2, 1.5]  # lr_too_high at lr 0.1


def found(suggestion, optimizer="sgd", batch_size=32, suggestions=None):
    return {"suggestion": suggestion, "suggestions": suggestions or [suggestion * 0.8, suggestion, suggestion * 1.2],
            "spread": 1.5, "optimizer": optimizer, "batch_size": batch_size}


def test_lr_too_low_sets_the_finders_suggestion():
    d = run(rows(CREEP, train_acc=[0.5] * 6, val_acc=[0.5] * 6), config=CFG, lr_find=found(0.83))
    f = finding(d, "lr_too_low")
    assert f.sets == {"optimizer.lr": 0.83}
    assert "set optimizer.lr to 0.83, the LR finder's suggestion (seeds: 0.66, 0.83, 1; spread 1.5x" in f.remedy


def test_lr_too_high_and_nan_from_a_high_lr_set_the_finders_suggestion():
    f = finding(run(rows(RISE), config=CFG, lr_find=found(0.0123)), "lr_too_high")
    assert f.sets == {"optimizer.lr": 0.012} and "LR finder's suggestion" in f.remedy  # 2 digits, as printed
    facts = {"what": "loss", "value": "nan", "epoch": 1, "step": 14, "steps_per_epoch": 20, "first_loss": 0.7,
             "peak_loss": 9.0, "last_loss": 9.0, "first_grad_norm": 3.6, "max_grad_norm": 50.0, "lr": 0.1}
    nan = finding(run(rows([0.7]), summary={"non_finite": facts}, config=CFG, lr_find=found(0.02)), "non_finite")
    assert nan.evidence["cause_id"] == "lr_too_high" and nan.sets == {"optimizer.lr": 0.02}


def test_without_a_finder_or_for_another_optimizer_or_batch_the_remedy_is_ten_times():
    for lr_find in (None, found(0.02, optimizer="adam"), found(0.02, batch_size=256)):
        f = finding(run(rows(RISE), config=CFG, lr_find=lr_find), "lr_too_high")
        assert f.sets == {"optimizer.lr": pytest.approx(0.01)} and f.remedy == "lower optimizer.lr to 0.01 (now 0.1)"


def test_a_finder_pointing_the_other_way_is_quoted_not_followed():
    f = finding(run(rows(RISE), config=CFG, lr_find=found(0.5)), "lr_too_high")
    assert f.sets == {"optimizer.lr": pytest.approx(0.01)}
    assert "the LR finder suggested 0.5, which is not lower" in f.remedy


def test_diagnose_run_reads_lr_find_json(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows(RISE)))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CFG))
    (tmp_path / "lr_find.json").write_text(json.dumps(found(0.03)))
    d = diagnose_run(tmp_path)
    assert finding(d, "lr_too_high").sets == {"optimizer.lr": 0.03}
    saved = json.loads((tmp_path / "diagnosis.json").read_text())
    assert any(f["sets"] == {"optimizer.lr": 0.03} for f in saved["findings"])
