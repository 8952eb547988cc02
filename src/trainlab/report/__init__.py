"""Seeing what happened in a run: pictures, the HTML report, live curves, and comparing runs."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainlab.report.compare import compare_runs
from trainlab.report.html import write_report
from trainlab.report.live import LiveCurves

if TYPE_CHECKING:
    from trainlab.train.run import Prepared

__all__ = ["write_report", "compare_runs", "LiveCurves", "report_callbacks"]


def report_callbacks(p: "Prepared", run_dir: Path, *, final: bool = True) -> list[LiveCurves]:
    """The callbacks every run gets for its report (a ``setup`` for ``trainlab.train.run.train``).

    ``final=False`` leaves the last curves.png to ``write_report`` (which adds the test result)."""
    return [LiveCurves(run_dir, final=final)]
