"""Cross-validation: folds partition the training split, stratified; mean ± std; files; the test split stays shut."""
from __future__ import annotations

import csv
import json
import re
import statistics

import pytest
import torch

from trainlab.data import SealedTest, load_data
from trainlab.errors import ConfigError, DataError
from trainlab.search.cv import METRICS, cross_validate, fold_bundles


def _pool_labels(bundle) -> torch.Tensor:
    return torch.cat([bundle.train.y, bundle.val.y])


def test_folds_partition_the_training_split_stratified(make_cfg):
    cfg = make_cfg()
    bundle = load_data(cfg.data, cfg.seed)
    n_pool = len(bundle.train) + len(bundle.val)
    res = cross_validate(cfg, 3, bundle=bundle)

    assert len(res.folds) == len(res.runs) == 3
    assert len({r["run_dir"] for r in res.folds}) == 3
    assert all((res.cv_dir / r.run_dir.name / "summary.json").is_file() for r in res.runs)
    assert sum(r["n_val"] for r in res.folds) == n_pool
    assert all(r["n_train"] + r["n_val"] == n_pool for r in res.folds)
    idx = torch.cat(res.val_indices)
    assert len(idx) == n_pool and torch.equal(torch.sort(idx).values, torch.arange(n_pool))  # disjoint, covering

    y = _pool_labels(bundle)
    for run, val_idx in zip(res.runs, res.val_indices):
        # the recorded indices are the examples each fold really validated on
        assert torch.equal(run.prepared.bundle.val.y, y[val_idx])
    per_fold = torch.stack([torch.bincount(y[v], minlength=2) for v in res.val_indices])  # (folds, classes)
    assert (per_fold.max(0).values - per_fold.min(0).values).max() <= 1


def test_mean_std_table_and_files(make_cfg):
    res = cross_validate(make_cfg(), 3)
    for m in ("val_loss", "val_acc", "train_loss", "best_epoch", "final_val_acc"):
        vals = [float(r[m]) for r in res.folds]
        assert res.mean[m] == pytest.approx(statistics.mean(vals))
        assert res.std[m] == pytest.approx(statistics.stdev(vals))
    assert 0 < res.std["val_loss"]  # three different folds do not give one identical loss

    last = res.to_table().splitlines()[-1]
    assert last == f"val_acc {res.mean['val_acc']:.3f} ± {res.std['val_acc']:.3f} over 3 folds"
    assert re.match(r"^val_acc \d\.\d{3} ± \d\.\d{3} over 3 folds$", last)

    saved = json.loads((res.cv_dir / "cv.json").read_text())
    assert saved["mean"] == pytest.approx(res.mean) and saved["std"] == pytest.approx(res.std)
    assert [f["val_acc"] for f in saved["folds"]] == [f["val_acc"] for f in res.folds]
    assert saved["config"]["data"]["name"] == "circle"

    with open(res.cv_dir / "cv.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == ["1", "2", "3", "mean", "std"]
    assert float(rows[1]["val_loss"]) == pytest.approx(res.folds[1]["val_loss"])
    assert float(rows[3]["val_acc"]) == pytest.approx(res.mean["val_acc"])
    assert float(rows[4]["val_acc"]) == pytest.approx(res.std["val_acc"])

    png = (res.cv_dir / "cv_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_default_cv_dir_is_under_out_dir_and_named(make_cfg, tmp_path):
    res = cross_validate(make_cfg(name="circ", epochs=1), 2)
    assert res.cv_dir == tmp_path / "runs" / "cv-circ"
    assert sorted(p.name for p in res.cv_dir.iterdir() if p.is_dir()) == ["circ-fold1", "circ-fold2"]


def test_test_split_is_never_opened(make_cfg, monkeypatch):
    cfg = make_cfg()
    bundle = load_data(cfg.data, cfg.seed)
    calls = []

    def spy(self):
        calls.append(self)
        raise AssertionError("SealedTest.open called during cross-validation")

    monkeypatch.setattr(SealedTest, "open", spy)
    res = cross_validate(cfg, 3, bundle=bundle)
    monkeypatch.undo()

    assert calls == [] and bundle.test.opened == 0
    assert all(r.summary["test"] is None for r in res.runs)
    for run in res.runs:  # structural: whatever receives a fold bundle cannot read the test split
        with pytest.raises(DataError, match="^the test set is not available during cross-validation"):
            run.prepared.bundle.test.open()


def test_fold_bundles_seal_the_test_split_and_depend_on_the_seed(make_cfg):
    cfg = make_cfg()
    bundle = load_data(cfg.data, cfg.seed)
    parts = fold_bundles(bundle, 4, seed=0)
    assert len(parts) == 4
    for fb, _ in parts:
        assert fb.test.available is False
        with pytest.raises(DataError, match="not available during cross-validation"):
            fb.test.open()
    again = fold_bundles(bundle, 4, seed=0)
    other = fold_bundles(bundle, 4, seed=1)
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(parts, again))
    assert not all(torch.equal(a, b) for (_, a), (_, b) in zip(parts, other))


def test_normalisation_is_refitted_on_each_fold_train_part(make_cfg):
    cfg = make_cfg(**{"data.normalize": True})
    bundle = load_data(cfg.data, cfg.seed)
    for fb, _ in fold_bundles(bundle, 3, seed=0):
        x = fb.train.x
        assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-5)
        assert torch.allclose(x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
        assert fb.stats["normalize"] != bundle.stats["normalize"]


@pytest.mark.parametrize("folds", [0, 1, 241, 2.5, True])
def test_bad_folds_is_one_line_config_error_and_writes_nothing(make_cfg, tmp_path, folds):
    cfg = make_cfg()
    with pytest.raises(ConfigError, match=r"^folds must be a whole number between 2 and the number of examples "
                                          r"\(240\)\. Got .+\. Use 5 or 10 folds") as info:
        cross_validate(cfg, folds)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_a_mapping_or_yaml_path_is_taken_as_the_config_and_anything_else_is_one_line(make_cfg, tmp_path):
    from trainlab.config import config_to_dict

    cfg = make_cfg(epochs=1)
    as_dict = cross_validate(config_to_dict(cfg), 2)  # was an AttributeError: 'dict' object has no attribute 'data'
    assert as_dict.mean == cross_validate(cfg, 2).mean
    with pytest.raises(ConfigError, match=r"^cfg must be a TrainConfig, the path of a YAML config file, or a dict of "
                                          r"config keys\. Got list \[1, 2\]\.") as info:
        cross_validate([1, 2], 2)
    assert "\n" not in str(info.value)


def test_same_seed_gives_identical_fold_metrics(make_cfg):
    a = cross_validate(make_cfg(), 3)
    b = cross_validate(make_cfg(), 3)
    assert a.cv_dir != b.cv_dir  # a second CV never overwrites the first
    strip = lambda rows: [{k: v for k, v in r.items() if k != "run_dir"} for r in rows]  # noqa: E731
    assert strip(a.folds) == strip(b.folds)
    assert {m: a.mean[m] for m in METRICS if m in a.mean} == b.mean


def test_the_class_scores_are_averaged_over_folds_and_a_monitored_one_is_the_headline(make_cfg):
    res = cross_validate(make_cfg(monitor="val_balanced_acc"), 3)
    for m in ("val_balanced_acc", "val_macro_f1"):
        assert res.mean[m] == pytest.approx(statistics.mean(float(r[m]) for r in res.folds))
    assert res.to_table().splitlines()[-1].startswith("val_balanced_acc ")
