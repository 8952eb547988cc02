"""``--resume`` continues exactly: an interrupted then resumed run has the metrics of an uninterrupted one."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.train.callbacks import Callback
from trainlab.train.run import resume, train

KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "grad_norm")


class InterruptAfter(Callback):
    """Simulates Ctrl-C right after the checkpoint of ``epoch`` was written."""

    name = "interrupt"

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, state, metrics):
        if metrics["epoch"] == self.epoch:
            raise KeyboardInterrupt


def _values(history):
    return [[h[k] for k in KEYS] for h in history]


def _interrupted_then_resumed(cfg, at):
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[InterruptAfter(at)], verbose=False)
    run_dir = Path(cfg.out_dir) / cfg.name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"].startswith("interrupted") and summary["stopped_by"] == "interrupted"
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == at
    return resume(run_dir, verbose=False)


@pytest.mark.parametrize("drop_last", [False, True])
def test_resume_equals_uninterrupted_run_with_every_random_stream(make_cfg, drop_last):
    overrides = {"epochs": 6, "model.dropout": 0.3, "optimizer.name": "adam", "optimizer.lr": 0.01,
                 "schedule.name": "cosine", "schedule.warmup_epochs": 1, "stop.early_stopping.patience": 50,
                 "drop_last": drop_last}  # drop_last: each epoch leaves out other examples, drawn as before
    full = train(make_cfg(name="full", **overrides), verbose=False)
    resumed = _interrupted_then_resumed(make_cfg(name="cut", **overrides), at=3)
    assert _values(resumed.history) == _values(full.history)
    lines = (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4, 5, 6]  # one row per epoch, no duplicates
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k])


def test_a_plateau_schedule_cuts_the_lr_where_the_metric_stalls_and_a_resumed_run_cuts_at_the_same_epochs(make_cfg):
    # patience 1 and an lr too high for the data: the validation loss stalls often, each time the lr is halved
    overrides = {"epochs": 8, "optimizer.lr": 3.0, "schedule.name": "plateau", "schedule.patience": 1,
                 "schedule.gamma": 0.5}
    full = train(make_cfg(name="full", **overrides), verbose=False)
    lrs, losses = [h["lr"] for h in full.history], [h["val_loss"] for h in full.history]
    best, expected = float("inf"), [3.0]
    for loss in losses[:-1]:  # the lr of the next epoch: halved after every epoch without a lower val_loss
        expected.append(expected[-1] if loss < best else expected[-1] / 2)
        best = min(best, loss)
    assert lrs == pytest.approx(expected) and lrs[-1] < 3.0
    resumed = _interrupted_then_resumed(make_cfg(name="cut", **overrides), at=4)
    assert _values(resumed.history) == _values(full.history)


def test_resume_with_image_augmentation(make_cfg, fake_mnist):
    overrides = {"data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent), "data.download": False,
                 "data.augment.crop_padding": 2, "data.augment.flip": True, "model.hidden": [32],
                 "model.activation": "relu", "batch_size": 64, "epochs": 4, "optimizer.name": "momentum",
                 "optimizer.lr": 0.05}
    full = train(make_cfg(name="full", **overrides), verbose=False)
    resumed = _interrupted_then_resumed(make_cfg(name="cut", **overrides), at=2)
    assert _values(resumed.history) == _values(full.history)


@pytest.mark.parametrize("mixing", [{"data.augment.cutmix": 1.0, "data.augment.flip": True},
                                    {"data.augment.mixup": 0.4, "data.augment.cutmix": 1.0}])
def test_resume_with_mixup_and_cutmix_mixes_as_the_uninterrupted_run(make_cfg, fake_mnist, mixing):
    overrides = {"data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent), "data.download": False,
                 "model.hidden": [32], "model.activation": "relu", "batch_size": 64, "epochs": 4,
                 "optimizer.name": "momentum", "optimizer.lr": 0.05, **mixing}
    full = train(make_cfg(name="full", **overrides), verbose=False)
    resumed = _interrupted_then_resumed(make_cfg(name="cut", **overrides), at=2)
    assert _values(resumed.history) == _values(full.history)
    plain = train(make_cfg(name="plain", **{k: v for k, v in overrides.items() if k not in mixing}), verbose=False)
    assert plain.history[-1]["train_loss"] != full.history[-1]["train_loss"]  # the mixing was on
    assert full.summary["steps"]["eager_because"].startswith("device cpu")


def test_resume_of_a_finished_run_asks_for_more_epochs(make_cfg):
    done = train(make_cfg(epochs=2), verbose=False)
    with pytest.raises(ConfigError, match=r"epochs must be > the 2 epochs already run.*--set epochs=12"):
        resume(done.run_dir, verbose=False)
    longer = resume(done.run_dir, overrides={"epochs": 3}, verbose=False)
    assert [h["epoch"] for h in longer.history] == [1, 2, 3]


def test_resume_rejects_changes_to_the_recipe(make_cfg):
    done = train(make_cfg(epochs=1), verbose=False)
    with pytest.raises(ConfigError, match="--set with --resume must only change"):
        resume(done.run_dir, overrides={"optimizer.lr": 0.5}, verbose=False)


def test_a_run_killed_after_its_last_checkpoint_finishes_test_and_summary_on_resume(make_cfg, fake_mnist):
    cfg = make_cfg(**{"data.name": "fashion-mnist", "data.dir": str(fake_mnist), "model.hidden": [16],
                      "batch_size": 64, "epochs": 2})
    full = train(cfg, verbose=False)
    run_dir = full.run_dir
    expected = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").unlink()  # SIGKILL between the last checkpoint and the test evaluation
    (run_dir / "checkpoints" / ".last.pt.tmp-999999").write_bytes(b"half a checkpoint")  # a dead writer's
    finished = resume(run_dir, verbose=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and summary["stop_reason"] == "epochs: reached 2"
    keys = ("test_loss", "test_acc", "epoch", "n")  # the same best checkpoint, tested once
    assert {k: summary["test"][k] for k in keys} == pytest.approx({k: expected["test"][k] for k in keys})
    assert len(finished.history) == 2
    assert not list((run_dir / "checkpoints").glob(".*.tmp-*"))
    with pytest.raises(ConfigError, match="epochs must be > the 2 epochs already run"):
        resume(run_dir, verbose=False)  # now it is finished: nothing left to do


def test_resume_names_a_damaged_log_before_rewriting_any_file(make_cfg):
    from trainlab.files import DamagedFileError

    cut = make_cfg(name="cut", epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(cut, callbacks=[InterruptAfter(2)], verbose=False)
    run_dir = Path(cut.out_dir) / "cut"
    (run_dir / "activations.json").write_text('{"first": {"epoch": 1, "lay')  # truncated by a crash
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(DamagedFileError, match=r"activations.json must be JSON written by trainlab.*Delete it"):
        resume(run_dir, verbose=False)
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()} == before


def test_resume_drops_a_partial_last_metrics_line(make_cfg):
    cut = make_cfg(name="cut", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cut, callbacks=[InterruptAfter(2)], verbose=False)
    run_dir = Path(cut.out_dir) / "cut"
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')  # killed mid-append
    resumed = resume(run_dir, verbose=False)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and len(resumed.history) == 3
