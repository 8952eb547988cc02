"""The example notebooks run top to bottom in a real Jupyter kernel (short epochs via the environment)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import FASHION_DIR

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"


def _run(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ["TRAINLAB_NOTEBOOK_EPOCHS"] = "2"
    os.environ["TRAINLAB_NOTEBOOK_LIMIT"] = "6000"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _outputs(nb) -> str:
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="needs dataset-fashion-mnist")
def test_first_network_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    nb = _run("first_network.ipynb", tmp_path)
    text = _outputs(nb)
    assert "test_acc" in text and "val acc" in text
    assert (tmp_path / "runs" / "compare-first" / "compare.png").exists()
    fit_cell = next(c for c in nb.cells if c.cell_type == "code" and "sgd = tl.fit" in c.source)
    kinds = [k for o in fit_cell.outputs for k in o.get("data", {})]
    assert "image/png" in kinds, "fit should draw its live learning curves under the cell"
    assert any("<progress" in str(o.get("data", {}).get("text/html", "")) for o in fit_cell.outputs)


def test_custom_cnn_notebook_on_generated_cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no real CIFAR-10 in the cache: the notebook generates its own
    nb = _run("custom_cnn.ipynb", tmp_path)
    text = _outputs(nb)
    assert "generated set in the same format" in text or "using CIFAR-10 from" in text
    assert "'features.0'" in text and "'head.1'" in text  # grad norms of the user's own layers
    assert "TutorialCNN(" in text
