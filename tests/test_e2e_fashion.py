"""End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist): the classic recipe's accuracy."""
from __future__ import annotations

import json

import pytest

from tests.conftest import FASHION_DIR
from trainlab.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                                  reason="apt-get install dataset-fashion-mnist")]


def test_default_recipe_reaches_classic_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["train", "--name", "classic", "--set", "tensorboard=false"]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x.startswith("epoch")]
    assert len(lines) == 10 and "val loss" in lines[0] and "lr 0.1" in lines[0]
    summary = json.loads((tmp_path / "runs/classic/summary.json").read_text())
    assert summary["data"] == {"train": 54000, "val": 6000, "test": 10000}
    assert 0.83 <= summary["test"]["test_acc"] <= 0.88, summary["test"]
    assert main(["evaluate", "runs/classic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(summary["test"]["test_acc"])
