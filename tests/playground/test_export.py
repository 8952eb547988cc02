"""From the playground to the CLI: "copy config" gives a config ``trainlab train`` accepts, and "save as run"
a ``runs/<name>/`` that ``trainlab evaluate / predict / report`` read, scored on the playground's own test points."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from trainlab.config import validate_config
from trainlab.playground import data as pdata
from trainlab.train.checkpoint import load_checkpoint


def test_copy_config_and_save_run_are_read_by_the_cli(session, tmp_path):
    from trainlab.report import write_report
    from trainlab.train.inference import evaluate_run, predict_run
    from trainlab.train.run import read_run_config

    session.post({"type": "init", "query": "?xSquared=true&networkShape=6"})
    session.out.until("state")
    for _ in range(60):
        session.post({"type": "step"})
    session.post({"type": "copy_config"})
    text = session.out.until("config")["yaml"]
    cfg = validate_config(yaml.safe_load(text))
    assert cfg.model.hidden == [6] and cfg.data.name == "circle" and cfg.optimizer.lr == 0.03
    assert cfg.data.features == ["x1", "x2", "x1_sq"]  # the toy set itself, with the network's inputs
    session.post({"type": "save_run", "name": "pg-test"})
    run_dir = tmp_path / "runs" / "pg-test"
    assert session.out.until("saved")["path"] == str(run_dir)
    holder = session.nets["a"]
    result = evaluate_run(run_dir)
    assert result["test_acc"] > 0.9
    # the engine's model, on the engine's standardised inputs, computes the playground's classes exactly
    rows = predict_run(run_dir, [run_dir / "train.csv", run_dir / "test.csv"])
    feats = pdata.features(torch.cat([session.train_pts.xy, session.test_pts.xy]), holder.feats)
    with torch.no_grad():
        ours = (holder.trainer.net.module(feats)[:, 0] > 0).long().tolist()
    assert [r["class_id"] for r in rows] == ours
    # the run's CSVs hold the raw points; data.features computes the inputs, so predict takes x1, x2 rows
    assert (run_dir / "train.csv").read_text().splitlines()[0] == "x1,x2,label"
    assert read_run_config(run_dir).data.features == ["x1", "x2", "x1_sq"]
    assert read_run_config(run_dir).device == "cpu"  # where the playground trained it, not "auto" (a GPU)
    assert write_report(run_dir).is_file()
    # written by the engine's run writer (train.run.write_run): the files and fields a training run leaves
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["playground"]["net"] == "a" and summary["epochs_run"] == holder.trainer.epochs == 60
    assert summary["best_epoch"] == 60 and summary["monitor"] == "val_loss" and "source" in summary
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 61  # header + one row per epoch
    assert "networkShape=6" in load_checkpoint(run_dir / "checkpoints" / "best.pt")["playground"]["query"]



def test_copied_config_keeps_the_playgrounds_schedule_constants(session):
    # was only the schedule's name: trainlab train then stepped every 10 epochs by 0.1, the playground every
    # quarter of max epochs by 0.5
    session.post({"type": "init", "query": "?dataset=circle&schedule=step&maxEpochs=200"})
    session.out.until("state")
    session.post({"type": "copy_config"})
    cfg = validate_config(yaml.safe_load(session.out.until("config")["yaml"]))
    assert (cfg.schedule.name, cfg.schedule.step_epochs, cfg.schedule.gamma, cfg.epochs) == ("step", 50, 0.5, 200)
    session.post({"type": "init", "query": "?dataset=circle&schedule=warmup&maxEpochs=200"})
    session.out.until("state")
    session.post({"type": "copy_config"})
    cfg = validate_config(yaml.safe_load(session.out.until("config")["yaml"]))
    assert (cfg.schedule.name, cfg.schedule.warmup_epochs) == ("warmup", 10.0)  # a 20th of the run, as played


def test_copied_config_trains_a_network_with_the_playgrounds_inputs(session):
    from trainlab.data import apply_features
    from trainlab.train.run import prepare

    session.post({"type": "init", "query": "?dataset=xor&xSquared=true&sinX=true&networkShape=5,3&noise=10"})
    session.out.until("state")
    session.post({"type": "copy_config"})
    cfg = validate_config(yaml.safe_load(session.out.until("config")["yaml"]))
    assert cfg.data.name == "xor" and cfg.data.features == ["x1", "x2", "x1_sq", "sin_x1"]
    p = prepare(cfg)  # the engine's data loading, model build and fit check, as trainlab train runs them
    assert p.bundle.input_shape == (4,)
    ours = session.nets["a"].trainer.net.module.state_dict()
    assert {k: v.shape for k, v in p.model.state_dict().items()} == {k: v.shape for k, v in ours.items()}
    assert ours["layers.0.linear.weight"].shape == (5, 4)  # the playground network's 4 inputs
    # and the engine computes those inputs as the playground does: x1, x2, x1², sin x1 of the same points
    x = p.bundle.train.x
    assert torch.equal(x, apply_features(x[:, :2].contiguous(), cfg.data.features))
    assert torch.equal(pdata.features(x[:, :2].contiguous(), ["x", "y", "xSquared", "sinX"]), x)
    # TF's fixed order and init: biases 0.1, weights U(±0.5)
    assert cfg.shuffle is False and (cfg.model.init, cfg.model.init_bound, cfg.model.init_bias) == ("uniform", 0.5, 0.1)
    biases = [v for k, v in p.model.state_dict().items() if k.endswith("bias")]
    assert biases and all(torch.all(b == 0.1) for b in biases)


@pytest.mark.parametrize("query, loss_factor", [
    ("?xSquared=true&networkShape=6", None),  # TF's tanh + square loss → the engine's bce: accuracy only
    ("?networkShape=4,2&batchnorm=true&dropout=0.1&optimizer=adam&learningRate=0.01", None),
    ("?dataset=spiral&classes=3&networkShape=8,8&activation=relu&learningRate=0.1&percTrainData=70", 1.0),
    ("?dataset=plane&networkShape=3&percTrainData=30", 2.0),  # mse = 2 · TF's 0.5·(out − y)²
])
def test_saved_run_is_evaluated_on_the_playgrounds_test_points(session, tmp_path, query, loss_factor):
    from trainlab.train.inference import evaluate_run
    from trainlab.train.run import read_run_config

    session.post({"type": "init", "query": query})
    session.out.until("state")
    for _ in range(30):
        session.post({"type": "step"})
    session.post({"type": "save_run", "name": "pg-eval"})
    run_dir = Path(session.out.until("saved")["path"])
    t = session.nets["a"].trainer  # the session thread is idle now: every message before "saved" is handled
    train_loss, test_loss, train_acc, test_acc = t.history[t.epochs, :4].tolist()
    cfg = read_run_config(run_dir)
    assert Path(cfg.data.path).name == "train.csv" and Path(cfg.data.test_path).name == "test.csv"
    test_rows = (run_dir / "test.csv").read_text().splitlines()
    assert len(test_rows) - 1 == len(session.test_pts) == len(t.xt)  # the playground's test points, all of them
    result = evaluate_run(run_dir)
    assert result["n"] == len(session.test_pts)
    if t.classification:
        assert result["test_acc"] == pytest.approx(test_acc, abs=1e-6)  # the same points, the same predictions
    else:
        assert result["test_acc"] is None
    if loss_factor is not None:
        assert result["test_loss"] == pytest.approx(loss_factor * test_loss, rel=1e-4)


def test_mixed_per_layer_activations_are_copied_and_saved(session, tmp_path):
    from trainlab.train.inference import evaluate_run
    from trainlab.train.run import read_run_config

    session.post({"type": "init", "query": "?networkShape=6,4&activations=relu,tanh&learningRate=0.1"})
    session.out.until("state")
    assert session.nets["a"].trainer.net.spec.activations == ("relu", "tanh")
    for _ in range(30):
        session.post({"type": "step"})
    session.post({"type": "copy_config"})
    text = session.out.until("config")["yaml"]
    assert "per-layer activations" not in text  # nothing left to note: the config says it
    cfg = validate_config(yaml.safe_load(text))
    assert cfg.model.hidden == [6, 4] and cfg.model.activations == ["relu", "tanh"]
    session.post({"type": "save_run", "name": "pg-mixed"})
    run_dir = Path(session.out.until("saved")["path"])
    t = session.nets["a"].trainer
    test_acc = t.history[t.epochs].tolist()[3]
    assert test_acc > 0.8  # a trained network, so that matching it below means something
    assert read_run_config(run_dir).model.activations == ["relu", "tanh"]
    result = evaluate_run(run_dir)
    assert result["n"] == len(session.test_pts)
    assert result["test_acc"] == pytest.approx(test_acc, abs=1e-6)  # the same points, the same predictions
