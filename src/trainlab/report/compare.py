"""``trainlab compare runs/a runs/b ...``: learning curves of several runs overlaid, and a table of their
hyperparameters (those that differ, plus the usual suspects) and final metrics — one page, one PNG.

This is how a course compares learning rates, batch sizes, optimizers or depths: same axes, one colour
per run, validation solid and training dashed.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from trainlab import files
from trainlab.errors import ConfigError
from trainlab.report.html import CSS, data_uri, flat_config, format_value, your_module
from trainlab.report.plots import read_metrics, save_png
from trainlab.train.run import read_run_config

ALWAYS_SHOWN = ["model.name", "optimizer.name", "optimizer.lr", "batch_size"]
# "epochs" (the most a run may take) stands beside "epochs run" among the results, not twice in the table.
NOT_HYPERPARAMETERS = {"name", "out_dir", "tensorboard", "device", "threads", "data.dir", "data.download", "epochs"}
# Test metrics are the final report's numbers: shown apart, under a label, never beside what runs are chosen on.
TEST_COLUMNS = ("test loss", "test acc")
TEST_LABEL = "Test split — for the final report only; do not choose between runs on these"
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
COMPARE_CSS = ("main{max-width:1500px}table.grid th,table.grid td{padding:3px 6px}"
               "table.grid td:first-child{white-space:nowrap;font-weight:600}table.grid th{vertical-align:bottom}"
               "table.grid .test{background:#f3f3f3;color:#555;border-left:2px solid #999}")
e = html.escape


@dataclass
class RunRecord:
    """One run as compared: its label, flattened config, metrics per epoch and summary."""

    label: str
    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def load_runs(run_dirs: Sequence[str | Path]) -> list[RunRecord]:
    """Read each run directory (CheckpointError, one line, for a missing or foreign one)."""
    if not run_dirs:
        raise ConfigError("runs must be at least one run directory. Got none. "
                          "Pass them as in: trainlab compare runs/a runs/b.")
    records = []
    for d in map(Path, run_dirs):
        cfg = read_run_config(d)
        history = read_metrics(d)
        summary = files.read_json(d / "summary.json", missing={})
        records.append(RunRecord(d.name, d, flat_config(cfg), history, summary))
    for r, label in zip(records, _labels([r.run_dir for r in records])):
        r.label = label
    return records


def _labels(dirs: Sequence[Path]) -> list[str]:
    """Run names; where names repeat (runs/a vs old/runs/a), the shortest path suffixes that differ."""
    parts = [d.resolve().parts for d in dirs]
    labels: list[str] = []
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} ({i + 1})" for i, label in enumerate(labels)]  # the same run given twice


def hyperparameter_keys(records: Sequence[RunRecord]) -> list[str]:
    """The always-shown keys plus every config key whose value differs between the runs, in config order."""
    keys = list(dict.fromkeys(k for r in records for k in r.config))
    differ = {k for k in keys if len({json.dumps(r.config.get(k)) for r in records}) > 1} - NOT_HYPERPARAMETERS
    return [k for k in keys if k in differ or k in ALWAYS_SHOWN]


def _final(r: RunRecord) -> dict[str, Any]:
    s, test = r.summary, r.summary.get("test") or {}
    best = s.get("best_val") or {}
    return {"epochs run": len(r.history), "max epochs": r.config.get("epochs"), "best epoch": s.get("best_epoch"),
            "best val loss": best.get("val_loss"), "best val acc": best.get("val_acc"),
            "wall time (s)": s.get("wall_time"), "stopped": s.get("stop_reason"),
            "test loss": test.get("test_loss"), "test acc": test.get("test_acc")}


def comparison_table(records: Sequence[RunRecord]) -> tuple[list[str], list[list[Any]]]:
    """(columns, one row per run): run label, hyperparameters, validation results, then the test metrics
    (``TEST_COLUMNS``, last, apart); None where not recorded."""
    keys = hyperparameter_keys(records)
    finals = [_final(r) for r in records]
    metric_cols = [c for c in finals[0] if any(f[c] is not None for f in finals)]
    rows = [[r.label, *(_setting(r, k) for k in keys), *(f[c] for c in metric_cols)] for r, f in zip(records, finals)]
    return ["run", *keys, *metric_cols], rows


def _setting(r: RunRecord, key: str) -> Any:
    """``key``'s value in the run's config; a run of the user's own nn.Module shows its class as the model."""
    module = your_module(r.summary) if key == "model.name" else None
    return module or r.config.get(key)


def plot_comparison(records: Sequence[RunRecord], path: str | Path) -> dict[str, Any]:
    """Loss (and accuracy) per epoch of every run on shared axes; returns the plotted series per run label."""
    has_acc = any(h.get("val_acc") is not None for r in records for h in r.history)
    panels = ["loss"] + (["acc"] if has_acc else [])
    fig = Figure(figsize=(6 * len(panels) + 1.5, 4.6), layout="constrained")
    axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    series: dict[str, dict[str, list[Any]]] = {}
    for i, r in enumerate(records):
        color = COLORS[i % len(COLORS)]
        style = "-" if i < len(COLORS) else "-."  # more runs than colours: a second line style
        epochs = [h["epoch"] for h in r.history]
        series[r.label] = {"epochs": epochs}
        for ax, key in zip(axes, panels):
            for split, ls, lw, alpha in (("val", style, 1.8, 1.0), ("train", "--", 1.0, 0.6)):
                ys = [h.get(f"{split}_{key}") for h in r.history]
                series[r.label][f"{split}_{key}"] = ys
                if all(y is None for y in ys):
                    continue
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], color=color, ls=ls, lw=lw,
                        alpha=alpha, marker="o" if len(epochs) <= 20 and split == "val" else None, ms=3,
                        label=r.label if split == "val" else None)
    for ax, key in zip(axes, panels):
        name = "loss" if key == "loss" else "accuracy"
        ax.set_title(f"{name.capitalize()}: validation (solid) and train (dashed)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="outside right center")
    return {"runs": series, "path": save_png(fig, path)}


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Write ``out_dir/compare.png`` and ``out_dir/compare.html`` for the runs; returns the HTML path."""
    records = load_runs(run_dirs)
    out_dir = Path(out_dir)
    existed = out_dir.exists()
    try:
        return _write_comparison(records, out_dir)
    except files.StorageError:
        if not existed:
            files.remove_empty_tree(out_dir)  # a full or read-only disk leaves no empty folder behind
        raise


def _write_comparison(records: list[Any], out_dir: Path) -> Path:
    with files.storage_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_comparison(records, out_dir / "compare.png")
    columns, rows = comparison_table(records)
    n_test = sum(c in TEST_COLUMNS for c in columns)
    test_cls = lambda c: ' class="test"' if c in TEST_COLUMNS else ""  # noqa: E731
    group = (f'<tr><th colspan="{len(columns) - n_test}"></th><th colspan="{n_test}" class="test">{e(TEST_LABEL)}</th>'
             "</tr>" if n_test else "")
    head = group + "<tr>" + "".join(f"<th{test_cls(c)}>{e(c)}</th>" for c in columns) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td{test_cls(c)}>{e(format_value(v))}</td>" for c, v in zip(columns, row))
                   + "</tr>" for row in rows)
    runs = ", ".join(r.label for r in records)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e("trainlab compare · " + runs)}'
            f'</title><style>{CSS}{COMPARE_CSS}</style></head><body><main>\n<h1>Comparing {len(records)} runs</h1>'
            f'<p class="what">{e(runs)}</p>\n'
            f'<section id="curves"><h2>Learning curves</h2><figure><img src="{data_uri(plot["path"])}" '
            f'alt="Learning curves of the compared runs"></figure></section>\n'
            f'<section id="table"><h2>Hyperparameters and results</h2><p>Hyperparameters that differ between the '
            f'runs, plus model, optimizer, lr and batch size; then the validation results and, apart, the test metrics.</p><div style="overflow-x:auto">'
            f'<table class="grid">{head}{body}</table></div></section>\n</main></body></html>\n')
    return files.write_text(out_dir / "compare.html", page)
