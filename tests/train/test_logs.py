"""The TensorBoard logger opens its event file at the first write (not before the first training step), and
still leaves the same events: a purge marker from the history length at train begin, then the scalars."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from trainlab.train.logs import TensorBoardLogger

tb = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _events(tb_dir):
    acc = tb.EventAccumulator(str(tb_dir))
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
