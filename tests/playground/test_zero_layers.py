"""0 hidden layers (the course's perceptron figure) works everywhere: a link, removing the last layer, copy config,
save as run — and trains to the test loss the engine reaches with ``trainlab train --set model.hidden=[]``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml

from trainlab.config import validate_config


def _wait_stopped(session, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        h = session.nets.get("a")
        if h is not None and h.trainer.stopped:
            return
        time.sleep(0.05)
    raise AssertionError("training did not stop at maxEpochs")


def _least_squares_loss(train, test) -> float:
    """TF's test loss 0.5·mean (out − y)² of the closed-form linear fit on the training points."""
    x = torch.cat([train.xy, torch.ones(len(train.xy), 1)], 1).double()
    w = torch.linalg.lstsq(x, train.label.double().view(-1, 1)).solution
    xt = torch.cat([test.xy, torch.ones(len(test.xy), 1)], 1).double()
    return 0.5 * (xt @ w - test.label.double().view(-1, 1)).square().mean().item()


def test_a_link_with_no_hidden_layer_trains_like_trainlab_train_with_hidden_empty(session, tmp_path):
    from trainlab.cli import main

    session.post({"type": "init", "query": "?dataset=plane&networkShape=&noise=30&learningRate=0.01&batchSize=30"
                                            "&maxEpochs=100"})
    state = session.out.until("state")
    assert state["state"]["networkShape"] == [] and state["nets"]["a"]["hidden"] == []
    assert not [m for m in session.out.log if m["type"] == "message" and m["level"] == "error"]
    session.post({"type": "play"})
    _wait_stopped(session)
    t = session.nets["a"].trainer
    ours = t.history[t.epochs, 1].item()  # TF's test loss after 100 epochs
    session.post({"type": "save_run", "name": "zero"})
    run_dir = Path(session.out.until("saved", timeout=30)["path"])
    assert validate_config(yaml.safe_load((run_dir / "config.yaml").read_text())).model.hidden == []
    # the engine on the same points (the run's train.csv / test.csv), trained from scratch with no hidden layer
    assert main(["train", "--config", str(run_dir / "config.yaml"), "--set", "model.hidden=[]", "--set", "name=engine",
                 "--set", f"out_dir={tmp_path / 'runs'}", "--set", "epochs=100", "--no-report", "--quiet"]) == 0
    engine = json.loads((tmp_path / "runs" / "engine" / "summary.json").read_text())["test"]["test_loss"] / 2  # mse
    best = _least_squares_loss(session.train_pts, session.test_pts)
    # A linear model has one optimum: both must reach the least-squares test loss. They differ only on the way
    # there: the engine fits 90 % of the training points (10 % are its validation split), standardises the
    # inputs and reports its best-validation epoch; for 3 parameters on ~600 points the expected excess test
    # loss is ~p/n ≈ 0.5 %, constant-lr SGD jitter a few % more (measured: 0.8 % and 3.7 % above it).
    assert ours == pytest.approx(best, rel=0.05)
    assert engine == pytest.approx(best, rel=0.05)
    assert ours == pytest.approx(engine, rel=0.08)


def test_removing_the_last_hidden_layer_then_copy_config_and_save_run(session, tmp_path):
    from trainlab.train.inference import evaluate_run

    session.post({"type": "init", "query": "?networkShape=3"})
    session.out.until("state")
    session.post({"type": "set", "changes": {"networkShape": ""}})  # the page's "−" on the only layer
    state = session.out.until("state")
    assert state["state"]["networkShape"] == [] and state["nets"]["a"]["hidden"] == []
    for _ in range(5):
        session.post({"type": "step"})
    session.post({"type": "frame", "force": True})
    frame = session.out.frame(5)["nets"]["a"]
    assert frame["epoch"] == 5 and frame["thumbs"] == [] and len(frame["weights"]) == 1  # the head only
    session.post({"type": "copy_config"})
    cfg = validate_config(yaml.safe_load(session.out.until("config")["yaml"]))
    assert cfg.model.hidden == [] and cfg.model.activations is None
    session.post({"type": "save_run", "name": "zero-saved"})
    run_dir = Path(session.out.until("saved", timeout=30)["path"])
    t = session.nets["a"].trainer
    assert evaluate_run(run_dir)["test_acc"] == pytest.approx(t.history[t.epochs, 3].item(), abs=1e-6)
    assert not [m for m in session.out.log if m["type"] == "message" and m["level"] == "error"]
