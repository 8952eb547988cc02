"""The TensorBoard logger opens its event file at the first write (not before the first training step), and
still leaves the same events: a purge marker from the history length at train begin, then the scalars; with
logging.every_n_steps the training loss of every Nth update, with logging.histograms weights and gradients."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from trainlab.train.callbacks import Callback
from trainlab.train.logs import TensorBoardLogger
from trainlab.train.run import train

tb = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _events(tb_dir):
    acc = tb.EventAccumulator(str(tb_dir), size_guidance={tb.SCALARS: 0, tb.HISTOGRAMS: 0})  # 0: keep every event

    acc.Reload()
    return acc


def _epochs(logger, state, losses):
    for epoch, loss in losses:
        logger.on_epoch_end(state, {"epoch": epoch, "train_loss": loss, "val_loss": loss * 2, "val_acc": None})


def test_event_file_is_opened_at_the_first_epoch_end_with_the_purge_step_of_train_begin(tmp_path):
    crashed = TensorBoardLogger(tmp_path)  # wrote epochs 1-4, but its last checkpoint holds epoch 2
    crashed.on_train_begin(SimpleNamespace(history=[]))
    _epochs(crashed, None, [(1, 2.0), (2, 1.5), (3, 9.0), (4, 9.0)])
    crashed.on_train_end(None)

    state = SimpleNamespace(history=[{"epoch": 1}, {"epoch": 2}])  # resumed from that checkpoint
    logger = TensorBoardLogger(tmp_path)
    logger.on_train_begin(state)
    assert logger.writer is None  # nothing imported or opened before the first training step
    state.history.append({"epoch": 3})  # the loop appends before calling on_epoch_end
    _epochs(logger, state, [(3, 0.5), (4, 0.25)])
    logger.on_train_end(state)
    acc = _events(tmp_path / "tb")
    # purge_step 3 (from the history at train begin, not at the first write) hid the crashed run's 3 and 4.
    assert [(e.step, e.value) for e in acc.Scalars("loss/val")] == [(1, 4.0), (2, 3.0), (3, 1.0), (4, 0.5)]
    assert "accuracy/val" not in acc.Tags()["scalars"]  # None values are skipped


def test_a_run_that_stops_before_its_first_epoch_still_leaves_its_event_file(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.on_train_begin(SimpleNamespace(history=[]))
    logger.on_train_end(SimpleNamespace(history=[]))
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1


def _step_epoch(logger, state, epoch, losses):
    state.step_losses = torch.tensor(losses)
    state.history.append({"epoch": epoch})
    logger.on_epoch_end(state, {"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_loss": 1.0})


def test_every_nth_update_is_logged_with_the_update_count_and_a_resume_purges_only_later_updates(tmp_path):
    # 4 updates an epoch, every 3rd update logged: updates 3, 6, 9, 12 are the 3rd of epoch 1, the 2nd of epoch 2,
    # the 1st and 4th of epoch 3 — read from the epoch's buffer once at its end
    crashed = TensorBoardLogger(tmp_path, every_n_steps=3)
    state = SimpleNamespace(history=[], steps_per_epoch=4)
    crashed.on_train_begin(state)
    for epoch in (1, 2, 3):
        _step_epoch(crashed, state, epoch, [10 * epoch + i for i in range(1, 5)])
    crashed.on_train_end(state)
    acc = _events(tmp_path / "tb" / "steps")
    assert [(e.step, e.value) for e in acc.Scalars("loss/train_step")] == [(3, 13), (6, 22), (9, 31), (12, 34)]
    assert "loss/train_step" not in _events(tmp_path / "tb").Tags()["scalars"]  # its own file: epochs ≠ updates

    resumed = TensorBoardLogger(tmp_path, every_n_steps=3)  # from a checkpoint of epoch 1: updates 1-4
    state = SimpleNamespace(history=[{"epoch": 1}], steps_per_epoch=4)
    resumed.on_train_begin(state)
    _step_epoch(resumed, state, 2, [-1.0, -2.0, -3.0, -4.0])
    resumed.on_train_end(state)
    acc = _events(tmp_path / "tb" / "steps")
    assert [(e.step, e.value) for e in acc.Scalars("loss/train_step")] == [(3, 13), (6, -2.0)]  # 9, 12 purged


def test_a_real_run_logs_its_update_losses_and_weight_and_gradient_histograms(make_cfg):
    class Record(Callback):
        def __init__(self):
            self.losses = []

        def on_batch_end(self, state, step, loss):
            self.losses.append(float(loss.detach()))

    rec = Record()
    cfg = make_cfg(**{"tensorboard": True, "logging.every_n_steps": 5, "logging.histograms": True, "epochs": 2})
    result = train(cfg, callbacks=[rec], verbose=False)
    steps = _events(result.run_dir / "tb" / "steps").Scalars("loss/train_step")
    assert [e.step for e in steps] == list(range(5, len(rec.losses) + 1, 5))
    assert [e.value for e in steps] == pytest.approx([rec.losses[e.step - 1] for e in steps])
    hist = _events(result.run_dir / "tb").Tags()["histograms"]
    assert {"weights/layers.0.linear.weight", "gradients/layers.0.linear.weight", "weights/head.bias"} <= set(hist)
    assert [e.step for e in _events(result.run_dir / "tb").Histograms("weights/head.weight")] == [1, 2]


def test_tensorboard_is_imported_without_its_remote_filesystems_which_stay_importable_after(tmp_path):
    # A fresh interpreter: the suite's own process may have imported tensorboard (and fsspec) already.
    code = f"""
import sys
import torch
from trainlab.train.logs import REMOTE_FILESYSTEMS, _summary_writer
w = _summary_writer(__import__("pathlib").Path({str(tmp_path)!r}), 1)
w.add_scalar("loss/train", 0.5, 1)
w.close()
print(sorted(name for name in REMOTE_FILESYSTEMS if name in sys.modules))
import fsspec  # put back: the process can still import it
print(fsspec.__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "fsspec"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss/train")] == [(1, 0.5)]


def test_epoch_lines_without_a_progress_bar_are_printed_without_rich():
    code = """
import sys
from types import SimpleNamespace
from trainlab.train.logs import ConsoleLogger
log = ConsoleLogger()  # stdout is a pipe here: no bar
state = SimpleNamespace(cfg=SimpleNamespace(epochs=10))
log.on_epoch_begin(state)
log.on_epoch_end(state, {"epoch": 3, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.6, "val_acc": None,
                         "lr": 0.1, "epoch_time": 0.25})
log.on_train_end(state)
print("rich" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["epoch  3/10  train loss 0.5000 acc 0.8000 | val loss 0.6000 | lr 0.1 | 0.25s",
                                "False"]


def test_a_resume_in_the_same_second_still_purges_when_the_writer_count_passes_a_power_of_ten(tmp_path, monkeypatch):
    """Event files of one second and process sort by their writer count as text (…99 after …101): a resume right
    after the crash waits for the next second, so TensorBoard reads its purge after the crashed file's steps."""
    from tensorboard.summary.writer import event_file_writer

    monkeypatch.setattr(event_file_writer._global_uid, "_value", 98)  # crashed: 98 (tb), 99 (tb/steps); resumed: 10x
    crashed = TensorBoardLogger(tmp_path, every_n_steps=1)
    state = SimpleNamespace(history=[], steps_per_epoch=2)
    crashed.on_train_begin(state)
    for epoch in (1, 2):
        _step_epoch(crashed, state, epoch, [float(epoch), float(epoch)])
    crashed.on_train_end(state)
    resumed = TensorBoardLogger(tmp_path, every_n_steps=1)
    state = SimpleNamespace(history=[{"epoch": 1}], steps_per_epoch=2)
    resumed.on_train_begin(state)
    _step_epoch(resumed, state, 2, [-1.0, -1.0])
    resumed.on_train_end(state)
    assert [(e.step, e.value) for e in _events(tmp_path / "tb").Scalars("loss/val")] == [(1, 1.0), (2, 1.0)]
    assert [(e.step, e.value) for e in _events(tmp_path / "tb" / "steps").Scalars("loss/train_step")] == [
        (1, 1.0), (2, 1.0), (3, -1.0), (4, -1.0)]
    names = sorted(p.name for p in (tmp_path / "tb").glob("events.out.tfevents.*"))
    assert names[-1].endswith(".100")  # the resumed file, read last


def test_a_classifiers_balanced_accuracy_and_macro_f1_reach_tensorboard(make_cfg):
    from trainlab.train.run import train

    result = train(make_cfg(epochs=2, tensorboard=True), verbose=False)
    acc = _events(result.run_dir / "tb")
    for tag, key in (("balanced_accuracy/val", "val_balanced_acc"), ("macro_f1/val", "val_macro_f1")):
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([h[key] for h in result.history]), tag
