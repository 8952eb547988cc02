"""The report as ``trainlab train`` makes it (``trainlab.workflow.run``): drawn from the data the run held in
memory, curves.png ending as the report's picture (or, interrupted, with the stop reason), and matplotlib left
unimported when there is no report."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.report.test_plots import assert_png, toy_cfg
from trainlab.report import html as report_html
from trainlab.report.plots import plot_curves
from trainlab.train.callbacks import Callback
from trainlab.workflow import run


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_uses_the_data_the_run_trained_on_and_its_curves_png_is_final(tmp_path, monkeypatch):
    def no_reload(*args, **kwargs):
        raise AssertionError("the report read the dataset again")

    monkeypatch.setattr(report_html, "load_data", no_reload)
    outcome = run(toy_cfg(tmp_path), verbose=False)
    page = outcome.report.read_text()
    assert 'id="confusion"' in page and 'id="boundary"' in page  # validation pictures without a reload
    curves = outcome.run_dir / "curves.png"
    again = plot_curves(outcome.run_dir, path=tmp_path / "again.png")
    assert again["test"] is not None and digest(curves) == digest(again["path"])  # the report's, test point in
    assert_png(curves, min_wh=(900, 350))


class Interrupt(Callback):
    def on_epoch_end(self, state, metrics):
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt


def test_an_interrupted_run_still_gets_its_final_curves(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(toy_cfg(tmp_path), callbacks=[Interrupt()], verbose=False)
    [run_dir] = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    again = plot_curves(run_dir, path=tmp_path / "again.png")
    assert again["stop_reason"] == summary["stop_reason"] and again["epochs"]
    assert digest(run_dir / "curves.png") == digest(again["path"])
    assert not (run_dir / "report.html").exists()


def test_training_without_a_report_does_not_import_matplotlib():
    code = "import sys, trainlab.cli, trainlab.workflow; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
