"""Picture workers: a worker draws the same picture this process would, never imports torch, and a dead worker or a
failing drawing costs no picture and hides no error."""
from __future__ import annotations

import importlib.machinery
import json
import subprocess
import sys
import types
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from trainlab.errors import CheckpointError
from trainlab.report import painter as painter_mod
from trainlab.report.live import LiveCurves
from trainlab.report.painter import Job, Painter, WorkerPainter, main_module_is_trainlab, start_painter
from tests.report.test_plots import TOY, assert_png

HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "train_acc": 0.5 + e / 20, "val_acc": 0.45 + e / 20}
           for e in range(1, 6)]
SUMMARY = {"monitor": "val_loss", "best_epoch": 5, "stop_reason": "max_epochs"}

needs_forkserver = pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")


@pytest.fixture
def workers():
    p = WorkerPainter(workers=1)
    yield p
    p.close()


@needs_forkserver
def test_a_worker_draws_what_this_process_draws(workers, tmp_path):
    here = Painter().draw("plot_curves", tmp_path / "here", history=HISTORY, summary=SUMMARY,
                          path=tmp_path / "here.png").result()
    job = workers.draw("plot_curves", tmp_path / "there", history=HISTORY, summary=SUMMARY, path=tmp_path / "there.png")
    there = job.result()
    assert job.future is not None  # it went to the worker
    assert job.seconds > 0
    assert {k: v for k, v in there.items() if k != "path"} == {k: v for k, v in here.items() if k != "path"}
    assert there["val_loss"] == [row["val_loss"] for row in HISTORY]
    assert_png(tmp_path / "there.png")


@needs_forkserver
def test_workers_never_import_torch(workers, tmp_path):
    workers.draw("plot_curves", tmp_path, history=HISTORY, summary=SUMMARY).result()  # a worker that has drawn
    assert workers.pool is not None
    loaded = workers.pool.submit(eval, "sorted(m for m in __import__('sys').modules if m.split('.')[0] in "
                                       "('torch', 'matplotlib'))").result(timeout=60)
    assert "matplotlib" in loaded and "torch" not in loaded


def test_the_fork_server_ends_without_the_interpreters_teardown():
    """paint_worker, the fork server's preload, makes the server's exit immediate (os._exit at the first exit
    handler): no later handler and no teardown runs while the server holds the training process's output open."""
    code = ("import atexit; atexit.register(lambda: print('teardown ran', flush=True))\n"
            "import trainlab.report.paint_worker\n"
            "raise SystemExit(3)  # the server's way out when the training process is gone\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "teardown ran" not in r.stdout


@needs_forkserver
def test_a_drawing_that_fails_in_a_worker_raises_its_own_error_at_result(workers, tmp_path):
    with pytest.raises(CheckpointError) as here:
        Painter().draw("plot_curves", tmp_path / "no-such-run").result()
    job = workers.draw("plot_curves", tmp_path / "no-such-run")
    with pytest.raises(CheckpointError) as there:
        job.result()
    assert job.future is not None and str(there.value) == str(here.value)


@needs_forkserver
def test_a_dead_worker_costs_no_picture(workers, tmp_path):
    assert workers.pool is not None
    with pytest.raises(BrokenProcessPool):
        workers.pool.submit(__import__("os")._exit, 3).result(timeout=60)  # the worker dies mid-job
    job = workers.draw("plot_curves", tmp_path, history=HISTORY, summary=SUMMARY)
    assert job.result()["epochs"] == [1, 2, 3, 4, 5]
    assert_png(tmp_path / "curves.png")


@needs_forkserver
def test_a_picture_drawn_ahead_is_the_one_a_later_draw_gets(workers, tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in HISTORY))
    workers.draw_ahead("plot_curves", tmp_path)
    ahead = workers.ahead[("plot_curves", tmp_path)]
    # a call with other arguments, or unhashable ones (arrays), is drawn afresh and leaves it waiting
    other = workers.draw("plot_curves", tmp_path, path=tmp_path / "other.png")
    confusion = workers.draw("plot_confusion", np.array([0, 1]), np.array([0, 0]), ["a", "b"], tmp_path / "c.png")
    assert other is not ahead and confusion.result()["accuracy"] == 0.5
    job = workers.draw("plot_curves", tmp_path)
    assert job is ahead and not workers.ahead and job.future is not None
    assert job.result()["epochs"] == [1, 2, 3, 4, 5] and other.result()["epochs"] == [1, 2, 3, 4, 5]
    assert workers.draw("plot_curves", tmp_path) is not ahead  # taken once
    workers.draw_ahead("plot_curves", tmp_path)
    workers.close()  # a picture nobody asked for is let go
    assert not workers.ahead


def test_this_process_draws_nothing_ahead(tmp_path):
    Painter().draw_ahead("plot_curves", tmp_path)  # no metrics.jsonl here: drawing it would fail
    assert not (tmp_path / "curves.png").exists()


def test_a_job_whose_worker_died_is_drawn_here(tmp_path):
    future: Future = Future()
    future.set_exception(BrokenProcessPool("a worker was killed"))
    job = Job("plot_curves", (tmp_path,), {"history": HISTORY, "summary": SUMMARY}, future)
    assert job.done()
    assert job.result()["best_epoch"] == 5
    assert job.seconds > 0  # measured here, where it was drawn
    assert_png(tmp_path / "curves.png")


def test_in_process_errors_wait_for_result(tmp_path):
    job = Painter().draw("plot_curves", tmp_path / "missing")  # no raise yet: a worker's job would not raise here
    assert job.done()
    with pytest.raises(CheckpointError, match="metrics.jsonl"):
        job.result()


def _main(monkeypatch, spec_name: str | None = None, file: str | None = None) -> bool:
    fake = types.ModuleType("__main__")
    fake.__spec__ = importlib.machinery.ModuleSpec(spec_name, None) if spec_name else None
    if file:
        fake.__file__ = file
    monkeypatch.setitem(sys.modules, "__main__", fake)
    return main_module_is_trainlab()


def test_workers_only_for_trainlabs_own_entry_points(monkeypatch):
    assert _main(monkeypatch, spec_name="trainlab.cli")
    assert _main(monkeypatch, spec_name="trainlab.__main__")
    assert _main(monkeypatch, file="/usr/local/bin/trainlab")
    # a user's script (run as a file or with -m) would be imported again by each worker: no workers for it
    assert not _main(monkeypatch, file="/home/me/train_it.py")
    assert not _main(monkeypatch, spec_name="mypkg.train")
    assert not _main(monkeypatch)


def test_start_painter_draws_here_where_workers_would_not_be_safe(monkeypatch):
    assert type(start_painter()) is Painter  # pytest's main module is not trainlab
    monkeypatch.setattr(painter_mod, "main_module_is_trainlab", lambda: True)
    assert type(start_painter(workers=0)) is Painter
    monkeypatch.setattr(painter_mod.os, "cpu_count", lambda: 1)
    assert type(start_painter()) is Painter


class _Unfinished(Painter):
    """Hands out jobs that stay unfinished until ``finish()``."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.instant = False  # True: jobs are finished when handed out

    def draw(self, name, /, *args, **kwargs):
        job = Job(name, args, kwargs, Future())
        self.jobs.append(job)
        if self.instant:
            self.finish()
        return job

    def finish(self) -> None:
        for job in self.jobs:
            if not job.future.done():
                job.future.set_result(({"epochs": []}, 0.01))


def test_live_curves_skip_a_redraw_while_the_last_one_is_still_being_drawn(tmp_path):
    state = types.SimpleNamespace(cfg=types.SimpleNamespace(monitor="val_loss", epochs=9), history=[], stop_reason=None)
    p = _Unfinished()
    live = LiveCurves(tmp_path, min_interval=0.0, painter=p)
    live.on_train_begin(state)
    for epoch in (1, 2, 3):
        state.history.append(HISTORY[epoch - 1])
        live.on_epoch_end(state, {"epoch": epoch})
    assert len(p.jobs) == 1  # epochs 2 and 3 found epoch 1's picture unfinished
    p.finish()
    state.history.append(HISTORY[3])
    live.on_epoch_end(state, {"epoch": 4})
    assert len(p.jobs) == 2 and live.draw_seconds == 0.01
    assert p.jobs[1].kwargs["history"][-1]["epoch"] == 4
    p.finish()
    p.instant = True
    state.stop_reason = "max_epochs"
    live.on_train_end(state)  # the final picture is drawn and collected before anything else draws curves.png
    assert len(p.jobs) == 3 and live.job is None and p.jobs[2].kwargs["summary"]["stop_reason"] == "max_epochs"


def test_live_curves_draw_nothing_the_final_picture_would_replace_before_a_watcher_looks_again(tmp_path):
    # 10 epochs of 0.4 s (the classic MLP on 2 cores): past MIN_WAIT after epoch 8, but the run ends 0.8 s later
    state = types.SimpleNamespace(cfg=types.SimpleNamespace(monitor="val_loss", epochs=10), history=[], stop_reason=None)
    now = [0.0]
    p = _Unfinished()
    p.instant = True
    live = LiveCurves(tmp_path, painter=p, clock=lambda: now[0])
    live.on_train_begin(state)
    for epoch in range(1, 11):
        now[0] = 0.4 * epoch
        state.history.append({**HISTORY[0], "epoch": epoch})
        live.on_epoch_end(state, {"epoch": epoch})
    assert p.jobs == []  # was one drawing at epoch 8, beside the loop, replaced 0.8 s later
    # 30 epochs at the same pace: drawings every MIN_WAIT seconds, none in the last MIN_WAIT seconds
    state.cfg.epochs, state.history, now[0] = 30, [], 0.0
    live = LiveCurves(tmp_path, painter=p, clock=lambda: now[0])
    live.on_train_begin(state)
    drawn_at = []
    for epoch in range(1, 31):
        now[0] = 0.4 * epoch
        state.history.append({**HISTORY[0], "epoch": epoch})
        before = len(p.jobs)
        live.on_epoch_end(state, {"epoch": epoch})
        drawn_at += [epoch] * (len(p.jobs) - before)
    assert drawn_at == [8, 16]  # at 3.2 s and 6.4 s; at epoch 24 (9.6 s) the run had 2.4 s < MIN_WAIT left


@needs_forkserver
def test_trainlab_train_draws_its_report_with_workers(tmp_path):
    sets = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in {**TOY, "out_dir": tmp_path}.items()]
    code = ("import sys, runpy, collections; from trainlab.report import painter; made = []; real = painter.WorkerPainter\n"
            "sent, ahead = collections.Counter(), []\n"
            "class Counted(real):\n"
            "    def __init__(self, *a, **k):\n"
            "        made.append(1); super().__init__(*a, **k); submit = self.pool.submit\n"
            "        self.pool.submit = lambda fn, name, *r: (sent.update([name]), submit(fn, name, *r))[1]\n"
            "    def draw_ahead(self, name, *args): ahead.append(name); super().draw_ahead(name, *args)\n"
            "painter.WorkerPainter = Counted\n"
            "sys.argv = ['trainlab', 'train'] + sys.argv[1:]\n"
            "import atexit; atexit.register(lambda: print('worker painters:', len(made), 'ahead:', sorted(ahead), "
            "'sent:', sorted(sent.items())))\n"
            "runpy.run_module('trainlab.cli', run_name='__main__', alter_sys=True)\n")
    r = subprocess.run([sys.executable, "-c", code, *[a for s in sets for a in ("--set", s)], "--quiet"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "worker painters: 1" in r.stdout
    # the per-layer pictures started when training ended, and the report collected them instead of drawing again
    assert "ahead: ['plot_activation_histograms', 'plot_grad_norms']" in r.stdout
    assert "('plot_activation_histograms', 1)" in r.stdout and "('plot_grad_norms', 1)" in r.stdout
    (report,) = tmp_path.glob("**/report.html")
    run_dir = report.parent
    assert_png(run_dir / "curves.png")
    assert report.read_text().count('<img src="data:image/png;base64,') >= 2  # curves, boundary at least


class _Beside(Painter):
    """A painter whose pictures are drawn by other processes on this machine's cores (as a WorkerPainter's)."""

    beside = True

    def __init__(self) -> None:
        self.ahead: list[str] = []

    def draw_ahead(self, name, /, *args):
        self.ahead.append(name)


def test_the_end_of_a_run_takes_one_thread_beside_picture_workers_and_gives_it_back(tmp_path):
    from types import SimpleNamespace

    import torch

    from trainlab.report.live import DrawAhead, one_thread_beside

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with one_thread_beside(_Beside()):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with one_thread_beside(Painter()):  # drawn in this process: nothing to make room for
            assert torch.get_num_threads() == 2
        with one_thread_beside(None):  # the default painter, as workflow passes it for tl.fit
            assert torch.get_num_threads() == 2
        state = SimpleNamespace(history=[{"epoch": 1}])
        DrawAhead(tmp_path, Painter()).on_train_end(state)
        assert torch.get_num_threads() == 2
        beside = _Beside()
        DrawAhead(tmp_path, beside).on_train_end(state)  # the test that follows runs beside the ahead pictures
        assert torch.get_num_threads() == 1 and sorted(beside.ahead) == ["plot_activation_histograms",
                                                                          "plot_grad_norms"]
    finally:
        torch.set_num_threads(before)
