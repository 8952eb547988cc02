"""`trainlab lesson list / run all`: every registered lesson, and an index page linking each one."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

import trainlab.lessons
from trainlab.cli import main
from trainlab.lessons import LESSONS
from tests.conftest import FASHION_DIR

COURSE = ["optimizers", "optimizers-real", "symmetric-init", "init-histograms", "init-real", "vanishing-gradients",
          "batchnorm", "polynomial", "weight-decay", "shallow-vs-deep", "learning-rate", "batch-size", "overfitting",
          "imbalance", "capacity", "epochs", "search", "kfold", "mnist1d"]


def test_list_names_every_lesson_in_course_order(capsys):
    assert main(["lesson", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == COURSE == LESSONS.names()


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists() or not importlib.util.find_spec("mnist1d"),
                    reason="the Lessons II need Fashion-MNIST (apt-get install dataset-fashion-mnist) and mnist1d")
def test_run_all_quick_writes_an_index_linking_every_lesson(tmp_path, capsys, monkeypatch, lesson_run):
    # Each lesson's run is the session's (tests/lessons/conftest.py): run_all asks for exactly what the lesson
    # tests ran — seed 0, --quick — into out/<name>, and gets that run's files and output there.
    asked = []

    def shared_run(name, out, seed, quick):
        asked.append((name, Path(out), seed, quick))
        md, result = lesson_run(name)
        shutil.copytree(md.parent, out)
        return Path(out) / md.name, result

    monkeypatch.setattr(trainlab.lessons, "run_lesson", shared_run)
    assert main(["lesson", "run", "all", "--quick", "--out", str(tmp_path)]) == 0
    assert asked == [(name, tmp_path / name, 0, True) for name in COURSE]
    page = (tmp_path / "index.html").read_text()
    assert re.findall(r'href="([^"]+)/lesson.md"', page) == COURSE
    for name in COURSE:
        assert (tmp_path / name / "lesson.md").read_text().startswith("# ")
        assert (tmp_path / name / "results.json").exists()
        assert any((tmp_path / name).glob("*.png"))


def test_unknown_lesson_is_one_line(capsys):
    assert main(["lesson", "run", "optimisers"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Did you mean 'optimizers'" in err
