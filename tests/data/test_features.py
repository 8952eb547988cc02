"""Input features of 2-D points (data.features): each computed two ways, names checked against the registry,
refused for data that are not 2-D points, applied by the toy and CSV loaders, and again by predict."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.config import DataConfig, resolve_config
from trainlab.data import apply_features, load_data
from trainlab.data.features import feature_label
from trainlab.errors import ConfigError, DataError
from trainlab.registry import FEATURES

NAMES = ["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"]
# by hand, per point (a, b): the value and its gradient (d/da, d/db)
BY_HAND = {
    "x1": (lambda a, b: a, lambda a, b: (1.0, 0.0)),
    "x2": (lambda a, b: b, lambda a, b: (0.0, 1.0)),
    "x1_sq": (lambda a, b: a * a, lambda a, b: (2 * a, 0.0)),
    "x2_sq": (lambda a, b: b * b, lambda a, b: (0.0, 2 * b)),
    "x1_x2": (lambda a, b: a * b, lambda a, b: (b, a)),
    "sin_x1": (lambda a, b: math.sin(a), lambda a, b: (math.cos(a), 0.0)),
    "sin_x2": (lambda a, b: math.sin(b), lambda a, b: (0.0, math.cos(b))),
}


def test_registry_names_and_labels():
    assert FEATURES.names() == NAMES  # TF Playground's seven inputs, in its order
    assert [feature_label(n) for n in NAMES] == ["x1", "x2", "x1²", "x2²", "x1·x2", "sin x1", "sin x2"]


@pytest.mark.parametrize("name", NAMES)
def test_each_feature_computed_two_ways_values_and_gradients(name):
    pts = [(1.5, -2.0), (-0.3, 0.7), (4.0, 5.5), (0.0, -6.0)]
    x = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    out = apply_features(x, [name])  # (N, 1)
    assert out.shape == (4, 1) and out.dtype == torch.float64
    value, grad = BY_HAND[name]
    assert out[:, 0].tolist() == pytest.approx([value(a, b) for a, b in pts], rel=1e-12, abs=1e-12)
    out.sum().backward()
    assert x.grad.flatten().tolist() == pytest.approx([g for a, b in pts for g in grad(a, b)], rel=1e-12, abs=1e-12)


def test_apply_features_keeps_the_order_given():
    x = torch.tensor([[2.0, 3.0]])
    assert apply_features(x, ["x1_x2", "x1", "x2_sq"]).tolist() == [[6.0, 2.0, 9.0]]
    with pytest.raises(DataError, match=r"data.features must be applied to 2-D points, shape \(N, 2\). Got \(1, 3\)"):
        apply_features(torch.zeros(1, 3), ["x1"])
    with pytest.raises(ConfigError, match=r"data.features must be one of x1, .*Got 'sinx1'. Did you mean 'sin_x1'\?"):
        apply_features(x, ["sinx1"])


def test_config_checks_every_name_with_did_you_mean():
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides=["data.name=circle", "data.features=[x1, x1_sqr, sinx2]"])
    lines = str(err.value).splitlines()
    assert lines == [
        "data.features[1] must be one of x1, x2, x1_sq, x2_sq, x1_x2, sin_x1, sin_x2. Got 'x1_sqr'. Did you mean 'x1_sq'?",
        "data.features[2] must be one of x1, x2, x1_sq, x2_sq, x1_x2, sin_x1, sin_x2. Got 'sinx2'. Did you mean 'sin_x2'?",
    ]
    with pytest.raises(ConfigError, match=r"data.features must be a non-empty list of feature names, or null. Got \["):
        resolve_config(overrides=["data.name=circle", "data.features=[]"])
    with pytest.raises(ConfigError, match=r"data.features must name each feature once. Got \['x1'\] more than once"):
        resolve_config(overrides=["data.name=circle", "data.features=[x1, x2, x1]"])
    # a comma-separated string (as --set passes it without brackets) is the same list
    assert resolve_config(overrides=["data.name=xor", "data.features=x1,x1_x2"]).data.features == ["x1", "x1_x2"]
    assert resolve_config(overrides=["data.name=xor"]).data.features is None


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "cifar10"])
def test_refused_for_datasets_that_are_not_2d_points(name):
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides=[f"data.name={name}", "data.features=[x1, x1_sq]"])
    assert str(err.value) == (
        "data.features must be left out unless data.name is a 2-D set (a toy set such as circle, or csv with 2 "
        f"feature columns). Got data.features=['x1', 'x1_sq'] with data.name='{name}'. Remove data.features, or "
        "pick a 2-D dataset.")


def test_toy_loader_applies_features_before_normalisation():
    names = ["x1", "x2", "x1_sq", "x2_sq", "sin_x1"]
    plain = load_data(DataConfig(name="circle", n_points=200), seed=3)
    feats = load_data(DataConfig(name="circle", n_points=200, features=names), seed=3)
    assert feats.input_shape == (5,) and feats.train.x.shape == (len(plain.train), 5)
    assert feats.feature_names == names and plain.feature_names == ["x1", "x2"]
    assert torch.equal(feats.train.x, apply_features(plain.train.x, names))  # same points, same split
    assert torch.equal(feats.train.y, plain.train.y)
    assert feats.stats["features"] == {"columns": ["x1", "x2"], "names": names}
    assert torch.equal(feats.test.open().x, apply_features(plain.test.open().x, names))
    normed = load_data(DataConfig(name="circle", n_points=200, features=["x1_sq", "x2_sq"], normalize=True), seed=3)
    assert len(normed.stats["normalize"]["mean"]) == 2  # standardised: the features, not the raw points
    assert normed.train.x.mean(0).abs().max() < 1e-5
    assert normed.train.x.std(0).sub(1).abs().max() < 0.01


def _points_csv(path, n=120, header="a,b,label", seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-5, 5, (n, 2))
    rows = [f"{x:.4f},{y:.4f},{int(x * x + y * y < 9)}" for x, y in xy]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path, torch.tensor(np.round(xy, 4), dtype=torch.float32)


def test_csv_loader_applies_features_to_both_files(tmp_path):
    train_csv, _ = _points_csv(tmp_path / "tr.csv")
    test_csv, test_xy = _points_csv(tmp_path / "te.csv", n=30, header="b,label,a", seed=1)
    # the test file's columns are in another order: they are matched by name, then featurised as a (x1), b (x2)
    rows = test_csv.read_text().splitlines()
    test_csv.write_text("b,label,a\n" + "\n".join(f"{r.split(',')[1]},{r.split(',')[2]},{r.split(',')[0]}"
                                                  for r in rows[1:]) + "\n")
    cfg = DataConfig(name="csv", path=str(train_csv), test_path=str(test_csv), target="label",
                     features=["x1_sq", "x2_sq", "x1_x2"])
    b = load_data(cfg, seed=0)
    assert b.input_shape == (3,) and b.feature_names == ["x1_sq", "x2_sq", "x1_x2"]
    assert b.stats["features"] == {"columns": ["a", "b"], "names": ["x1_sq", "x2_sq", "x1_x2"]}
    from trainlab.data import Standardizer
    std = Standardizer.from_state(b.stats["normalize"])  # CSV inputs are standardised: after the features
    assert torch.allclose(std.inverse(b.test.open().x), apply_features(test_xy, cfg.features), atol=1e-3)


def test_csv_with_other_than_two_feature_columns_is_refused_at_load(tmp_path):
    p = tmp_path / "three.csv"
    p.write_text("a,b,c,label\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(30)))
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="csv", path=str(p), target="label", features=["x1", "x1_sq"]), seed=0)
    assert str(err.value) == ("data.features must be used with a CSV of exactly 2 feature columns (x1, x2) besides "
                              "data.target. Got '3 in three.csv: a, b, c'. Remove data.features, or keep two input "
                              "columns.")


def test_toy_run_has_input_shape_f_and_predict_applies_the_same_features(make_cfg, tmp_path):
    from trainlab.train.inference import load_run, predict_run
    from trainlab.train.run import train

    names = ["x1", "x2", "x1_sq", "x2_sq"]
    result = train(make_cfg(**{"data.features": names, "model.hidden": [3]}), verbose=False)
    run = load_run(result.run_dir)
    assert run.info["input_shape"] == [4] and run.cfg.data.features == names
    assert run.model.state_dict()["layers.0.linear.weight"].shape == (3, 4)  # a 4-input MLP
    raw = torch.tensor([[0.0, 0.0], [4.5, 0.5], [-1.0, 2.0], [0.3, -4.0]])
    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n" + "".join(f"{a},{b}\n" for a, b in raw.tolist()))
    rows = predict_run(result.run_dir, [points])
    with torch.no_grad():
        probs = torch.softmax(run.model(apply_features(raw, names)), 1)  # by hand: the features, then the model
    assert [r["class_id"] for r in rows] == probs.argmax(1).tolist()
    assert [r["probability"] for r in rows] == pytest.approx(probs.max(1).values.tolist(), abs=1e-6)


def test_csv_run_predict_reads_the_raw_columns(make_cfg, tmp_path):
    from trainlab.train.inference import load_run, predict_run
    from trainlab.train.run import train
    from trainlab.data import Standardizer

    train_csv, _ = _points_csv(tmp_path / "pts.csv", n=200)
    cfg = make_cfg(**{"data.name": "csv", "data.path": str(train_csv), "data.target": "label",
                      "data.features": ["x1_sq", "x2_sq"], "epochs": 2})
    result = train(cfg, verbose=False)
    new = tmp_path / "new.csv"
    new.write_text("b,a\n1.0,2.0\n-4,0.5\n")  # the training file's columns by name, any order
    rows = predict_run(result.run_dir, [new])
    run = load_run(result.run_dir)
    x = Standardizer.from_state(run.info["stats"]["normalize"])(apply_features(torch.tensor([[2.0, 1.0], [0.5, -4.0]]),
                                                                               ["x1_sq", "x2_sq"]))
    with torch.no_grad():
        expected = run.loss.probabilities(run.model(x)).argmax(1).tolist()
    assert [r["class_id"] for r in rows] == expected
    bad = tmp_path / "bad.csv"
    bad.write_text("x1_sq,x2_sq\n4,1\n")
    with pytest.raises(DataError, match="must have the feature column 'a' the model was trained on"):
        predict_run(result.run_dir, [bad])


def test_cli_trains_a_four_input_mlp(tmp_path, monkeypatch, capsys):
    from trainlab.cli import main
    from trainlab.train.inference import load_run

    monkeypatch.chdir(tmp_path)
    argv = ["train", "--set", "data.name=circle", "--set", "data.features=[x1,x2,x1_sq,x2_sq]", "--set", "epochs=2",
            "--set", "data.n_points=200", "--set", "batch_size=16", "--set", "tensorboard=false", "--quiet",
            "--name", "feat"]
    assert main(argv) == 0
    assert load_run(tmp_path / "runs" / "feat").model.state_dict()["layers.0.linear.weight"].shape[1] == 4
    assert main(["train", "--set", "data.features=[x1,x1_sq]", "--quiet"]) == 2  # fashion-mnist: refused, nothing run
    assert "data.features must be left out unless data.name is a 2-D set" in capsys.readouterr().err
