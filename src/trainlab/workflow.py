"""A whole run as a user gets it from ``trainlab train``: train (or resume) with per-layer statistics and
live curves, then the verdict and the HTML report. The CLI and the Python API both call this."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from trainlab.config import TrainConfig
from trainlab.data import DataBundle
from trainlab.diagnose import diagnostic_callbacks
from trainlab.diagnose.verdict import Diagnosis, diagnose_run
from trainlab.errors import TrainingError
from trainlab.report import report_callbacks, write_report
from trainlab.train.callbacks import Callback
from trainlab.train.run import Prepared, RunResult, resume, train


@dataclass
class Outcome:
    """A finished run with its verdict and report (``report`` is None when reporting was off)."""

    result: RunResult | None
    run_dir: Path
    diagnosis: Diagnosis
    report: Path | None


def _setup(report: bool):
    def setup(p: Prepared, run_dir: Path) -> list[Callback]:
        return [*diagnostic_callbacks(p, run_dir), *(report_callbacks(p, run_dir) if report else [])]

    return setup


def _finish(run_dir: Path, report: bool, model: nn.Module | None, bundle: DataBundle | None
            ) -> tuple[Diagnosis, Path | None]:
    diagnosis = diagnose_run(run_dir)
    return diagnosis, (write_report(run_dir, model=model, bundle=bundle) if report else None)


def run(cfg: TrainConfig | None = None, *, resume_dir: str | Path | None = None,
        overrides: dict[str, Any] | None = None, callbacks: Sequence[Callback] = (), report: bool = True,
        verbose: bool = True, bar: bool | None = None, console: Any = None, bundle: DataBundle | None = None,
        model: nn.Module | None = None) -> Outcome:
    """Train ``cfg`` (or continue ``resume_dir``), diagnose the run and write its report.

    A run that stops on NaN/Inf still gets its diagnosis and report; the TrainingError is then re-raised
    with the diagnosis attached as ``err.outcome``.
    """
    kwargs = dict(callbacks=callbacks, setup=_setup(report), verbose=verbose, bar=bar, console=console,
                  bundle=bundle, model=model)
    try:
        if resume_dir is not None:
            result = resume(resume_dir, overrides=overrides, **kwargs)
        else:
            assert cfg is not None
            result = train(cfg, **kwargs)
    except TrainingError as exc:
        if exc.run_dir is not None:
            diagnosis, page = _finish(Path(exc.run_dir), report, model, bundle)
            exc.outcome = Outcome(None, Path(exc.run_dir), diagnosis, page)  # type: ignore[attr-defined]
        raise
    diagnosis, page = _finish(result.run_dir, report, model, result.prepared.bundle if bundle is not None else None)
    return Outcome(result, result.run_dir, diagnosis, page)
