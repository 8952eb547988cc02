"""Who draws a run's pictures: this process (:class:`Painter`), or worker processes beside it (:class:`WorkerPainter`).

After the last epoch of ``trainlab train`` the report's pictures took ~0.6 s and importing matplotlib ~0.3 s, one
after the other on the command's critical path, and each live redraw of curves.png ~0.15 s inside the loop (the
classic MLP on the project's 2-core CPU machine). A WorkerPainter, started first thing in the command, runs a
fork server that imports ``trainlab.report.plots`` (matplotlib and numpy, no torch) on the other core while this
process imports torch. Pictures are then drawn by two workers forked from it: the live curves while the loop runs,
and the report's pictures side by side while this process predicts the validation split. Measured numbers are in
``benchmarks/report_cost.py``.

A job names a function of ``trainlab.report.plots`` and passes it numbers (numpy arrays, lists, paths), never torch
tensors, so a worker never imports torch. Where a worker dies (killed, out of memory) the job is drawn here
instead; an error raised by the drawing itself is raised here by ``Job.result`` as it would be in this process.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

# The fork server's only import: sets up a worker's process, then loads the plots (see paint_worker.py).
SERVER_PRELOAD = ["trainlab.report.paint_worker"]


def draw(name: str, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, float]:
    """Run ``trainlab.report.plots.<name>(*args, **kwargs)``; returns (its result, seconds it took)."""
    from trainlab.report import plots

    start = time.perf_counter()
    return getattr(plots, name)(*args, **kwargs), time.perf_counter() - start


class Job:
    """A picture on its way. ``result()`` waits for it and returns what the plot function returned;
    ``seconds`` is how long the drawing took where it ran (set once it is done)."""

    def __init__(self, name: str, args: tuple, kwargs: dict[str, Any], future: Future | None = None) -> None:
        self.name, self.args, self.kwargs = name, args, kwargs
        self.future = future
        self.seconds = 0.0
        self._outcome: tuple[Any, BaseException | None] | None = None
        if future is None:  # drawn here, now; an error waits for result() as a worker's would
            self._run_here()

    def _run_here(self) -> None:
        try:
            value, self.seconds = draw(self.name, self.args, self.kwargs)
            self._outcome = (value, None)
        except Exception as exc:  # noqa: BLE001  (re-raised by result())
            self._outcome = (None, exc)

    def done(self) -> bool:
        return self._outcome is not None or (self.future is not None and self.future.done())

    def result(self) -> Any:
        if self._outcome is None:
            assert self.future is not None
            try:
                value, self.seconds = self.future.result()
                self._outcome = (value, None)
            except BrokenProcessPool:  # the worker died (not the drawing failing): draw it here instead
                self._run_here()
            except Exception as exc:  # noqa: BLE001
                self._outcome = (None, exc)
        value, error = self._outcome
        if error is not None:
            raise error
        return value


class Painter:
    """Draws each picture in this process when asked (the default everywhere but ``trainlab train``)."""

    # True where the pictures are drawn by other processes on this machine's cores, beside this one
    beside = False

    def draw(self, name: str, /, *args: Any, **kwargs: Any) -> Job:
        """Draw ``trainlab.report.plots.<name>(*args, **kwargs)``: a Job whose ``result()`` is its return value."""
        return Job(name, args, kwargs)

    def draw_ahead(self, name: str, /, *args: Any) -> None:
        """A picture whose inputs are final before anyone asks for it: a later ``draw`` of the same call gets it.

        This process draws nothing ahead (the picture would cost the same later, and nothing might ask for it)."""

    def close(self) -> None:
        """Wait for every picture asked for and let the workers go."""


def _worker_ignores_ctrl_c() -> None:
    # Ctrl-C reaches the whole process group: the training process reports it once, workers just end with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class WorkerPainter(Painter):
    """Draws pictures in ``workers`` processes forked from a server that has the plots imported."""

    beside = True

    def __init__(self, workers: int = 2) -> None:
        import multiprocessing
        from multiprocessing import forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(SERVER_PRELOAD)
        forkserver.ensure_running()  # starts importing now, while this process goes on to import torch
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(workers, mp_context=ctx,
                                                                    initializer=_worker_ignores_ctrl_c)
        self.ahead: dict[tuple, Job] = {}  # (name, *args) → a picture started by draw_ahead, not yet asked for

    def draw_ahead(self, name: str, /, *args: Any) -> None:
        """Start drawing now, in a worker: after the last epoch the per-layer pictures are drawn while this process
        tests the best checkpoint, instead of after it (``trainlab.report.live.DrawAhead``)."""
        self.ahead[(name, *args)] = self.draw(name, *args)

    def draw(self, name: str, /, *args: Any, **kwargs: Any) -> Job:
        job = self._take_ahead(name, args) if self.ahead and not kwargs else None
        if job is not None:
            return job
        if self.pool is None:
            return Job(name, args, kwargs)
        try:
            return Job(name, args, kwargs, self.pool.submit(draw, name, args, kwargs))
        except (BrokenProcessPool, RuntimeError):  # a dead pool, or one shut down: draw here
            return Job(name, args, kwargs)

    def _take_ahead(self, name: str, args: tuple) -> Job | None:
        try:
            return self.ahead.pop((name, *args), None)
        except TypeError:  # an unhashable argument (an array): never drawn ahead
            return None

    def close(self) -> None:
        self.ahead.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def main_module_is_trainlab() -> bool:
    """Whether this program is the ``trainlab`` command (``trainlab …``, ``python -m trainlab[.cli] …``).

    A fork server's workers import the program's main module again, as every multiprocessing start method but fork
    does: harmless for trainlab's own entry points, but a user's script without an ``if __name__ == "__main__"``
    guard would train a second time in each worker."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name in ("trainlab.cli", "trainlab.__main__")
    return Path(getattr(main, "__file__", None) or "").stem in ("trainlab", "trainlab-script")  # the console script


def start_painter(workers: int = 2) -> Painter:
    """A WorkerPainter for the ``trainlab`` command where this platform has a fork server and 2 cores or more;
    else a Painter (this process draws)."""
    import multiprocessing

    if (workers < 1 or (os.cpu_count() or 1) < 2 or "forkserver" not in multiprocessing.get_all_start_methods()
            or not main_module_is_trainlab()):
        return Painter()
    try:
        return WorkerPainter(workers)
    except (OSError, ValueError) as exc:  # no fork server here after all (a sandbox without its socket)
        print(f"note: pictures are drawn in this process ({exc})", file=sys.stderr)
        return Painter()
