"""Seeing what happened in a run: pictures, the HTML report, live curves, and comparing runs.

The names below are imported on first use: ``trainlab.report.plots`` (matplotlib, no torch) is what the picture
workers of ``trainlab.report.painter`` load, and loading it must not pull in the HTML report or torch.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.report.compare import compare_runs
    from trainlab.report.html import write_report
    from trainlab.report.live import LiveCurves
    from trainlab.report.painter import Painter
    from trainlab.train.callbacks import Callback
    from trainlab.train.run import Prepared

__all__ = ["write_report", "compare_runs", "LiveCurves", "report_callbacks"]


# Each name and the module it is imported from on first use.
_LAZY = {"write_report": "trainlab.report.html", "compare_runs": "trainlab.report.compare",
         "LiveCurves": "trainlab.report.live"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainlab.report' has no attribute {name!r}")


def report_callbacks(p: "Prepared", run_dir: Path, *, final: bool = True,
                     painter: "Painter | None" = None) -> list["Callback"]:
    """The callbacks every run gets for its report (a ``setup`` for ``trainlab.train.run.train``).

    ``final=False`` leaves the last curves.png to ``write_report`` (which adds the test result); ``painter``
    draws the pictures (in this process when None), the per-layer ones from the moment training ends."""
    from trainlab.report.live import DrawAhead, LiveCurves
    from trainlab.report.painter import Painter

    painter = painter or Painter()
    return [LiveCurves(run_dir, final=final, painter=painter), DrawAhead(run_dir, painter)]
