"""Each lesson runs once per test session: its tests and ``lesson run all``'s index test share that run.

``lesson_run(name)`` is ``run_lesson(name, <a session folder>, seed=0, quick=True)`` — what every lesson test and
``trainlab lesson run all --quick`` ask for — run the first time it is asked and kept. Every test under
tests/lessons is one xdist group, so under ``pytest -n`` they share one worker and each lesson still runs once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import trainlab.lessons  # noqa: F401  (registers every lesson)
from trainlab.lessons.base import run_lesson

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("lessons"))


@pytest.fixture(scope="session")
def lesson_run(tmp_path_factory) -> Callable[[str], tuple[Path, Any]]:
    """``lesson_run(name)`` → (its lesson.md, its LessonOutput); the lesson's files lie beside lesson.md."""
    done: dict[str, tuple[Path, Any]] = {}

    def run(name: str) -> tuple[Path, Any]:
        if name not in done:
            done[name] = run_lesson(name, tmp_path_factory.mktemp(name), seed=0, quick=True)
        return done[name]

    return run
