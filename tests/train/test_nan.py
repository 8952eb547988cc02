"""NaN/Inf stops the run naming epoch, step and likely cause, and keeps the last good checkpoint."""
from __future__ import annotations

import json

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


def test_divergence_stops_with_epoch_step_and_cause(make_cfg):
    cfg = make_cfg(**{"data.name": "plane", "epochs": 5, "optimizer.lr": 0.01, "name": "boom"})
    with pytest.raises(TrainingError) as info:
        train(cfg, callbacks=[BlowUpAt(3)], verbose=False)
    msg = str(info.value)
    assert "at epoch 3, step" in msg and "Likely cause" in msg and "optimizer.lr" in msg
    assert "\n" not in msg
    run = cfg.out_dir + "/boom"
    last = torch.load(run + "/checkpoints/last.pt", weights_only=True)
    assert last["epoch"] == 2  # the last good epoch, not the broken one
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    summary = json.loads(open(run + "/summary.json").read())
    assert summary["stop_reason"].startswith("non-finite") and summary["epochs_run"] == 2
    assert summary["test"] is None


def test_huge_lr_from_the_start_is_reported_as_lr_or_explosion(make_cfg):
    cfg = make_cfg(**{"data.name": "plane", "epochs": 3, "optimizer.lr": 1e6})
    with pytest.raises(TrainingError, match=r"at epoch 1, step \d+ of \d+\. Likely cause: (exploding gradients|"
                                            r"learning rate too high)"):
        train(cfg, verbose=False)


def test_nan_in_training_inputs_is_rejected_before_training(make_cfg, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(60)) + "inf,1,1\n")
    with pytest.raises(TrainlabError, match="(finite|infinite|inf)"):
        train(make_cfg(**{"data.name": "csv", "data.path": str(path), "data.target": "y"}), verbose=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
