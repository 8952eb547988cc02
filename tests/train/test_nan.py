"""NaN/Inf stops the run naming epoch, step and what came before (as data too), and keeps the last good
checkpoint — and says so only when there is one. The cause is named by the diagnosis (tests/diagnose)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainlab.errors import TrainingError, TrainlabError
from trainlab.train.callbacks import Callback
from trainlab.train.run import train


class BlowUpAt(Callback):
    """Raises the lr a billion-fold at the start of ``epoch``: the loss then diverges for real."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_begin(self, state):
        if state.epoch == self.epoch:
            for g in state.optimizer.param_groups:
                g["lr"] *= 1e9
            state.scheduler.base_lrs = [b * 1e9 for b in state.scheduler.base_lrs]


def test_divergence_stops_with_epoch_step_facts_and_the_checkpoint_kept(make_cfg):
    cfg = make_cfg(**{"data.name": "plane", "epochs": 5, "optimizer.lr": 0.01, "name": "boom"})
    with pytest.raises(TrainingError) as info:
        train(cfg, callbacks=[BlowUpAt(3)], verbose=False)
    msg = str(info.value)
    assert "at epoch 3, step" in msg and "training loss went from" in msg and "optimizer.lr" in msg
    assert "The last good checkpoint (epoch 2) is checkpoints/last.pt." in msg
    assert "\n" not in msg
    facts = info.value.facts
    assert facts["epoch"] == 3 and facts["what"] in ("loss", "gradient norm") and facts["first_loss"] > 0
    run = cfg.out_dir + "/boom"
    last = torch.load(run + "/checkpoints/last.pt", weights_only=True)
    assert last["epoch"] == 2  # the last good epoch, not the broken one
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    summary = json.loads(open(run + "/summary.json").read())
    assert summary["stop_reason"].startswith("non-finite") and summary["epochs_run"] == 2
    assert summary["stopped_by"] == "non_finite"
    assert summary["test"] is None and summary["non_finite"] == facts


def test_nan_in_the_first_epoch_does_not_promise_a_checkpoint(make_cfg):
    cfg = make_cfg(**{"data.name": "plane", "epochs": 3, "optimizer.lr": 1e6, "name": "early"})
    with pytest.raises(TrainingError, match=r"at epoch 1, step \d+ of \d+.*No epoch had finished, so no checkpoint "
                                            r"was written\.$") as info:
        train(cfg, verbose=False)
    assert "checkpoint was kept" not in str(info.value) and "last good checkpoint" not in str(info.value)
    assert not Path(cfg.out_dir, "early", "checkpoints", "last.pt").exists()


def test_nan_in_training_inputs_is_rejected_before_training(make_cfg, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(60)) + "inf,1,1\n")
    with pytest.raises(TrainlabError, match="(finite|infinite|inf)"):
        train(make_cfg(**{"data.name": "csv", "data.path": str(path), "data.target": "y"}), verbose=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_start_of_a_nan_is_the_first_update_not_the_epoch_1_mean(make_cfg):
    # a run that blew up inside epoch 1 and broke in epoch 2: its epoch-1 mean is already huge, the first
    # update was not (the diagnosis then names the learning rate, not exploding gradients)
    cfg = make_cfg(**{"data.name": "moons", "data.n_points": 600, "data.noise": 0.1, "epochs": 5,
                      "optimizer.lr": 10.0, "model.init": "he", "model.activation": "relu", "model.hidden": [32],
                      "batch_size": 32, "name": "rise"})
    with pytest.raises(TrainingError) as info:
        train(cfg, verbose=False)
    facts = info.value.facts
    assert facts["epoch"] >= 2 and facts["first_loss"] < 5 and facts["first_grad_norm"] < 1e3
    assert facts["peak_loss"] > 1e3 * facts["first_loss"]


def test_summary_records_the_first_update(make_cfg):
    # what lr_too_high compares the first epoch's mean with (a loss that rose inside epoch 1)
    result = train(make_cfg(epochs=2, name="first"), verbose=False)
    first = result.summary["first_update"]
    assert set(first) == {"loss", "grad_norm"} and 0 < result.history[0]["train_loss"] < 1.5 * first["loss"]
