"""Runnable classic experiments: each lesson turns a claim of the course into measured numbers and a figure.

    trainlab lesson list
    trainlab lesson run optimizers [--out lessons/optimizers] [--seed 0]
    trainlab lesson run all                 # every lesson + lessons/index.html linking them
"""
from __future__ import annotations

import html
import importlib
from pathlib import Path

from trainlab.lessons.base import LESSONS, Lesson, LessonContext, LessonOutput, lesson, run_lesson

# One module per lesson; importing registers it. The order is the course's order.
_MODULES = ("optimizers", "optimizers_real", "symmetric_init", "init_histograms", "init_real", "vanishing_gradients",
            "batchnorm", "polynomial", "weight_decay", "shallow_vs_deep", "learning_rate", "batch_size", "overfitting",
            "imbalance", "capacity", "epochs", "search", "kfold", "mnist1d")
for _m in _MODULES:
    importlib.import_module(f"trainlab.lessons.{_m}")

__all__ = ["LESSONS", "Lesson", "LessonContext", "LessonOutput", "lesson", "run_lesson", "run_all"]


def run_all(out: str | Path = "lessons", seed: int = 0, quick: bool = False) -> Path:
    """Run every lesson into ``out/<name>`` and write ``out/index.html`` linking them; returns its path."""
    out = Path(out)
    items = []
    for name, entry in LESSONS.items():
        md, result = run_lesson(name, out / name, seed, quick)
        fig = f'<img src="{name}/{result.figures[0].name}" width="360">' if result.figures else ""
        items.append(f'<li><h2><a href="{name}/lesson.md">{html.escape(entry.title)}</a></h2>'
                     f'<p><i>{html.escape(entry.claim)}</i></p><p>{html.escape(result.conclusion)}</p>{fig}</li>')
    page = ("<!doctype html><meta charset='utf-8'><title>trainlab lessons</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}li{margin-bottom:2em}</style>"
            f"<h1>trainlab lessons</h1><ol>{''.join(items)}</ol>")
    (out / "index.html").write_text(page)
    return out / "index.html"
