"""A whole run as a user gets it from ``trainlab train``: train (or resume) with per-layer statistics and
live curves, then the verdict and the HTML report. The CLI and the Python API both call this."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from trainlab.config import TrainConfig
from trainlab.data import DataBundle
from trainlab.diagnose import diagnostic_callbacks
from trainlab.diagnose.verdict import Diagnosis, diagnose_run
from trainlab.errors import TrainingError
from trainlab.train.callbacks import Callback
from trainlab.train import distributed
from trainlab.train.run import Prepared, RunResult, read_run_config, resume, train

if TYPE_CHECKING:
    from trainlab.report.painter import Painter


@dataclass
class Outcome:
    """A finished run with its verdict and report (``report`` is None when reporting was off)."""

    result: RunResult | None
    run_dir: Path
    diagnosis: Diagnosis
    report: Path | None


def _setup(report: bool, run_dirs: list[Path], painter: "Painter | None"):
    def setup(p: Prepared, run_dir: Path) -> list[Callback]:
        run_dirs.append(run_dir)
        if not report:
            return [*diagnostic_callbacks(p, run_dir)]
        # trainlab.report (matplotlib: ~0.3 s to import) only when drawing; the live curves leave their final
        # picture to write_report, which draws it with the test result a moment later
        from trainlab.report import report_callbacks

        return [*diagnostic_callbacks(p, run_dir), *report_callbacks(p, run_dir, final=False, painter=painter)]

    return setup


def _finish(run_dir: Path, report: bool, model: nn.Module | None, bundle: DataBundle | None,
            painter: "Painter | None" = None, val_outputs: torch.Tensor | None = None) -> tuple[Diagnosis, Path | None]:
    diagnosis = diagnose_run(run_dir)
    if not report:
        return diagnosis, None
    from trainlab.report import write_report
    from trainlab.report.live import one_thread_beside

    with one_thread_beside(painter):
        return diagnosis, write_report(run_dir, model=model, bundle=bundle, painter=painter, val_outputs=val_outputs)


def _final_curves(run_dir: Path) -> None:
    """The final curves.png of a run that gets no report (interrupted, or failed in a callback)."""
    from trainlab.report.plots import plot_curves

    with contextlib.suppress(Exception):  # the picture is a courtesy; the run's own error is the one to see
        plot_curves(run_dir)


def with_cause(message: str, diagnosis: Diagnosis) -> str:
    """The NaN/Inf message with the diagnosed cause and its remedy appended, on the same line (from the
    non_finite finding's evidence: facts as data, never re-read from the message)."""
    f = next((f for f in diagnosis.findings if f.rule == "non_finite"), None)
    if f is None or f.evidence.get("cause_id") in (None, "unknown"):
        return message
    return f"{message} Likely cause: {f.evidence['cause']}. Try: {f.remedy}."


def run(cfg: TrainConfig | None = None, *, resume_dir: str | Path | None = None,
        overrides: dict[str, Any] | None = None, callbacks: Sequence[Callback] = (), report: bool = True,
        verbose: bool = True, bar: bool | None = None, console: Any = None, bundle: DataBundle | None = None,
        model: nn.Module | None = None, painter: "Painter | None" = None) -> Outcome:
    """Train ``cfg`` (or continue ``resume_dir``), diagnose the run and write its report.

    ``painter`` draws the live curves and the report's pictures (in this process when None; ``trainlab train``
    passes a ``trainlab.report.painter.WorkerPainter``).

    A run that stops on NaN/Inf still gets its diagnosis and report; the TrainingError is then re-raised
    with the diagnosis attached as ``err.outcome``.
    """
    def device() -> str:  # a resumed run's device is in its config.yaml, read only for a distributed run
        return cfg.device if cfg is not None else (overrides or {}).get("device") or read_run_config(resume_dir).device

    with distributed.session(device) as ranks:  # joins torchrun's process group when it started this process

        if not ranks.main:  # another rank of a distributed run: trains beside rank 0, which writes everything
            return _other_rank(cfg, resume_dir, overrides, callbacks, bundle, model)
        return _run(cfg, resume_dir, overrides, callbacks, report, verbose, bar, console, bundle, model, painter)


def _other_rank(cfg: TrainConfig | None, resume_dir: str | Path | None, overrides: dict[str, Any] | None,
                callbacks: Sequence[Callback], bundle: DataBundle | None, model: nn.Module | None) -> Outcome:
    kwargs = dict(callbacks=callbacks, verbose=False, bundle=bundle, model=model)
    result = (resume(resume_dir, overrides=overrides, **kwargs) if resume_dir is not None
              else train(cfg, **kwargs))  # type: ignore[arg-type]
    return Outcome(result, result.run_dir, None, None)  # type: ignore[arg-type]  # rank 0 holds the verdict


def _run(cfg: TrainConfig | None, resume_dir: str | Path | None, overrides: dict[str, Any] | None,
         callbacks: Sequence[Callback], report: bool, verbose: bool, bar: bool | None, console: Any,
         bundle: DataBundle | None, model: nn.Module | None, painter: "Painter | None") -> Outcome:
    run_dirs: list[Path] = []
    kwargs = dict(callbacks=callbacks, setup=_setup(report, run_dirs, painter), verbose=verbose, bar=bar,
                  console=console, bundle=bundle, model=model)
    try:
        if resume_dir is not None:
            result = resume(resume_dir, overrides=overrides, **kwargs)
        else:
            assert cfg is not None
            result = train(cfg, **kwargs)
    except TrainingError as exc:
        if exc.run_dir is not None:

            diagnosis, page = _finish(Path(exc.run_dir), report, model, bundle, painter)
            exc.outcome = Outcome(None, Path(exc.run_dir), diagnosis, page)  # type: ignore[attr-defined]
            exc.args = (with_cause(str(exc), diagnosis),)
        raise
    except BaseException:
        if report and run_dirs:
            _final_curves(run_dirs[-1])
        raise
    # The data the run trained on, already in memory: the report's validation split without reading and
    # splitting the dataset again (0.2 s from the decoded cache for Fashion-MNIST, ~1 s without it).
    diagnosis, page = _finish(result.run_dir, report, model, result.prepared.bundle, painter, result.best_val_outputs)
    return Outcome(result, result.run_dir, diagnosis, page)
