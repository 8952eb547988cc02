"""Loggers as callbacks: metrics.jsonl + metrics.csv, TensorBoard event files, and the console.

The files are rewritten from the full history when a run is resumed, so they always hold exactly one
row per finished epoch, whatever happened in between.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from trainlab import files
from trainlab.errors import OutputClosed, drop_stdout
from trainlab.train.callbacks import Callback, TrainState

COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time", "grad_norm"]


class MetricsFiles(Callback):
    """Appends one row per epoch to ``metrics.jsonl`` and ``metrics.csv`` in the run directory."""

    name = "metrics_files"

    def __init__(self, run_dir: Path) -> None:
        self.jsonl, self.csv = run_dir / "metrics.jsonl", run_dir / "metrics.csv"

    def on_train_begin(self, state: TrainState) -> None:
        # rewritten whole (a resume drops rows a crash left after the last checkpoint): never half-written
        files.write_text(self.jsonl, "".join(json.dumps(row) + "\n" for row in state.history))

        def write_csv(f: Any) -> None:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(state.history)

        files.write_atomic(self.csv, write_csv)

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerow(metrics)


class TensorBoardLogger(Callback):
    """Scalars per epoch under ``tb/``: loss/{train,val}, accuracy/{train,val}, lr, grad_norm, time; with
    ``every_n_steps`` also loss/train_step every Nth update under ``tb/steps`` (x axis: updates), with
    ``histograms`` each layer's weights and last gradient (weights/<name>, gradients/<name>) per epoch."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, every_n_steps: int | None = None, histograms: bool = False) -> None:
        self.dir = run_dir / "tb"
        self.writer: Any = None
        self.step_writer: Any = None
        self.purge_step = self.purge_update = 1
        self.every_n_steps, self.histograms = every_n_steps, histograms

    def on_train_begin(self, state: TrainState) -> None:
        # purge_step drops events a crashed run wrote after its last checkpoint. The per-update scalars count
        # updates, not epochs, so they live in their own event file (tb/steps) with their own purge point.
        self.purge_step = len(state.history) + 1
        if self.every_n_steps:
            self.purge_update = len(state.history) * state.steps_per_epoch + 1


    def _open(self) -> Any:
        if self.writer is None:
            self.writer = _summary_writer(self.dir, self.purge_step)
        return self.writer

    def _open_steps(self) -> Any:
        if self.step_writer is None:
            self.step_writer = _summary_writer(self.dir / "steps", self.purge_update)
        return self.step_writer

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        w, e = self._open(), metrics["epoch"]
        for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("accuracy/train", "train_acc"),
                         ("accuracy/val", "val_acc"), ("balanced_accuracy/val", "val_balanced_acc"),
                         ("macro_f1/val", "val_macro_f1"), ("lr", "lr"), ("grad_norm", "grad_norm"),
                         ("epoch_time", "epoch_time")):
            if metrics.get(key) is not None:
                w.add_scalar(tag, metrics[key], e)
        if self.histograms:
            for name, p in state.model.named_parameters():
                w.add_histogram(f"weights/{name}", p.detach(), e)
                if p.grad is not None:
                    w.add_histogram(f"gradients/{name}", p.grad.detach(), e)
        w.flush()
        if self.every_n_steps and state.step_losses is not None:
            self._log_steps(state, e)

    def _log_steps(self, state: TrainState, epoch: int) -> None:
        # The epoch's per-update losses, read in one host transfer now: the updates never waited for the host.
        # Update u (1-based, counted over the run) is logged when u % N == 0: N=100 logs updates 100, 200, …
        n, done = self.every_n_steps, (epoch - 1) * state.steps_per_epoch
        first = (-done - 1) % n  # this epoch's first update to log, 0-based within the epoch
        w = self._open_steps()
        for i, v in zip(range(first, state.steps_per_epoch, n), state.step_losses[first::n].tolist()):
            w.add_scalar("loss/train_step", v, done + i + 1)
        w.flush()

    def on_train_end(self, state: TrainState) -> None:
        self._open().close()  # a run stopped before its first epoch still leaves its event file, as before
        if self.step_writer is not None:
            self.step_writer.close()


# What tensorboard's file layer imports, if it can, to write event files to s3:// and other remote URLs.
REMOTE_FILESYSTEMS = ("boto3", "botocore", "fsspec")


def _summary_writer(folder: Path, purge_step: int) -> Any:
    # Opened at the first write rather than at train begin: importing torch.utils.tensorboard costs
    # ~0.15 s, which then no longer delays the first training step. The event file holds the same events.
    _after_older_event_files(folder)
    return _summary_writer_class()(str(folder), purge_step=purge_step)


def _after_older_event_files(folder: Path) -> None:
    """Wait for the next second where an event file of this second is in ``folder`` already (a resume right after
    a crash, in the same process): TensorBoard reads a folder's event files in the order of their names,
    ``events.out.tfevents.<second>.<host>.<pid>.<n>``, and within one second and process the writer counter ``<n>``
    sorts as text (10 before 9), so the resumed file could be read first and its purge of the crashed run's
    later steps be lost."""
    now = time.time()
    if any(folder.glob(f"events.out.tfevents.{int(now):010d}.*")):
        time.sleep(1.01 - now % 1)


def _summary_writer_class() -> Any:
    """torch's SummaryWriter, imported without tensorboard's remote-filesystem support where tensorboard is imported
    only now.

    tensorboard's file layer imports boto3 when it is installed (AWS tooling brings it), to write to s3:// paths,
    and fsspec (which torch requires), for other URLs: 0.10 s and 0.07 s of an import that otherwise takes ~0.05 s
    on the project's 2-core machine (fsspec scans every installed package's entry points). A run's event files are
    local (``<run>/tb``), so both are hidden for that one import (an import of a None entry fails) and put back as
    they were; tensorboard then writes through the local filesystem, as it did before."""
    if "tensorboard.compat.tensorflow_stub" in sys.modules:  # already imported, with whatever support it found
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter
    hidden = [name for name in REMOTE_FILESYSTEMS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from torch.utils.tensorboard import SummaryWriter
    finally:
        for name in hidden:
            del sys.modules[name]
    return SummaryWriter


def format_epoch(
m: dict[str, Any], epochs: int) -> str:
    """``epoch  3/10  train loss 0.4123 acc 0.8512 | val loss 0.4410 acc 0.8433 | lr 0.1 | 0.61s``"""
    width = len(str(epochs))
    acc = lambda v: f" acc {v:.4f}" if v is not None else ""  # noqa: E731
    return (f"epoch {m['epoch']:>{width}}/{epochs}  train loss {m['train_loss']:.4f}{acc(m['train_acc'])} | "
            f"val loss {m['val_loss']:.4f}{acc(m['val_acc'])} | lr {m['lr']:.3g} | {m['epoch_time']:.2f}s")


class ConsoleLogger(Callback):
    """A progress bar per epoch (when attached to a terminal) and one line per finished epoch."""

    name = "console"

    def __init__(self, console: Any = None, bar: bool | None = None, notes: Sequence[str] = ()) -> None:
        self.notes = list(notes)  # lines said once before the first epoch (a precision this CPU emulates)
        self.bar = sys.stdout.isatty() if bar is None else bar
        if console is None and self.bar:
            from rich.console import Console

            console = Console(stderr=False, highlight=False)
        # None: no bar to share the terminal with, so the lines are printed as they are (rich, 0.03 s to import
        # and set up, is then never imported: output piped to a file or a benchmark)
        self.console = console
        self.progress = None
        self.task = None

    def on_train_begin(self, state: TrainState) -> None:
        for line in self.notes:
            self._say(line)

    def on_epoch_begin(self, state: TrainState) -> None:
        if not self.bar:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(f"epoch {state.epoch}/{state.cfg.epochs}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                                 TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.steps_per_epoch, loss="…")

    def on_progress(self, state: TrainState, step: int, running_loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"{running_loss:.4f}")

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self._close_bar()
        self._say(format_epoch(metrics, state.cfg.epochs))

    def _say(self, line: str) -> None:
        try:
            if self.console is None:
                print(line, flush=True)
            else:
                self.console.print(line, soft_wrap=True)
        except BrokenPipeError:
            drop_stdout()
            raise OutputClosed from None

    def on_train_end(self, state: TrainState) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
