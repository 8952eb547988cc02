"""Writes examples/notebooks/*.ipynb from the cell sources below (run after editing them).

The notebooks are documentation *and* tests: tests/test_notebooks.py executes them with nbclient.
``TRAINLAB_NOTEBOOK_EPOCHS`` shortens every run there.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent.parent / "examples" / "notebooks"

FIRST = [
    ("md", "# Your first network with trainlab\n\nThe classic Fashion-MNIST recipe: a 784-256-10 MLP trained with "
           "SGD, then the same network with Adam, and with dropout. `fit` draws the learning curves live, under "
           "the cell, as it trains."),
    ("code", "import os\nimport trainlab as tl\n\n"
             "EPOCHS = int(os.environ.get('TRAINLAB_NOTEBOOK_EPOCHS', 10))  # CI runs a shorter version\n"
             "LIMIT = int(os.environ.get('TRAINLAB_NOTEBOOK_LIMIT', 0)) or None  # fewer training images in CI"),
    ("md", "## 1. The classic recipe\nFlatten → Linear(784, 256) → ReLU → Linear(256, 10), weights N(0, 0.01), "
           "SGD lr 0.1, batch 256. The test set stays sealed until `evaluate()`."),
    ("code", "sgd = tl.fit(data='fashion-mnist', epochs=EPOCHS, limit=LIMIT, name='first-sgd', report=False)\n"
             "sgd.evaluate()"),
    ("md", "`run.history` holds one row per epoch; `run.diagnosis` says whether the run over- or underfits, "
           "with the evidence."),
    ("code", "print(sgd.diagnosis.verdict)\nfor f in sgd.diagnosis.findings:\n    print('-', f.title, '—', f.message)\n"
             "sgd.history[-1]"),
    ("md", "## 2. Adam instead of SGD, and 3. dropout"),
    ("code", "adam = tl.fit(data='fashion-mnist', epochs=EPOCHS, limit=LIMIT, optimizer='adam', lr=1e-3, "
             "name='first-adam', report=False)\n"
             "drop = tl.fit(data='fashion-mnist', epochs=EPOCHS, limit=LIMIT, optimizer='adam', lr=1e-3, dropout=0.3, "
             "name='first-dropout', report=False)"),
    ("md", "## Compare the curves"),
    ("code", "from trainlab.report import compare_runs\n"
             "page = compare_runs([sgd.run_dir, adam.run_dir, drop.run_dir], 'runs/compare-first')\n"
             "from IPython.display import Image\nImage(filename=str(page.with_suffix('.png')))"),
    ("code", "for name, run in [('sgd', sgd), ('adam', adam), ('dropout', drop)]:\n"
             "    h = run.history[-1]\n"
             "    print(f\"{name:8s} train loss {h['train_loss']:.3f}  val loss {h['val_loss']:.3f}  val acc {h['val_acc']:.3f}\")"),
]

CUSTOM = [
    ("md", "# Your own CNN class on CIFAR-10\n\nThe tutorial's network — three 5×5 convolutions with max-pooling, "
           "then Linear(1024, 64) → Linear(64, 10) — written as a plain `nn.Module` and trained by trainlab. "
           "When the real CIFAR-10 files are not on this machine, the notebook says so and writes a small "
           "generated set in the same format, so every cell still runs."),
    ("code", "import os, tempfile\nimport numpy as np\nimport torch\nfrom torch import nn\nimport trainlab as tl\n"
             "from trainlab.data.images import describe_images\n\n"
             "EPOCHS = int(os.environ.get('TRAINLAB_NOTEBOOK_EPOCHS', 10))"),
    ("code", "class TutorialCNN(nn.Module):\n"
             "    def __init__(self):\n        super().__init__()\n"
             "        self.features = nn.Sequential(\n"
             "            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),\n"
             "            nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),\n"
             "            nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2))\n"
             "        self.head = nn.Sequential(nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, 10))\n\n"
             "    def forward(self, x):  # (B, 3, 32, 32) -> (B, 10)\n        return self.head(self.features(x))"),
    ("code", "from trainlab.config import DataConfig\n"
             "found = describe_images('cifar10', DataConfig(name='cifar10', download=False))\n"
             "if found['available']:\n    data_dir = None\n    print('using CIFAR-10 from', found['location'])\nelse:\n"
             "    from trainlab.data.cifar import write_cifar_batch, write_cifar_meta, CIFAR10_CLASSES\n"
             "    data_dir = tempfile.mkdtemp()\n    root = os.path.join(data_dir, 'cifar10', 'cifar-10-batches-py')\n"
             "    os.makedirs(root)\n    rng = np.random.default_rng(0)\n"
             "    def fake(n):  # class k = a bright square at a class-specific place on noise\n"
             "        labels = rng.integers(0, 10, n)\n"
             "        images = rng.integers(0, 80, (n, 3, 32, 32), dtype=np.uint8)\n"
             "        for i, k in enumerate(labels):\n            r, c = 3 * (k // 4) * 3, 3 * (k % 4) * 2\n"
             "            images[i, k % 3, r:r + 8, c:c + 8] = 250\n        return images, labels\n"
             "    for b in range(1, 6):\n        write_cifar_batch(os.path.join(root, f'data_batch_{b}'), *fake(200))\n"
             "    write_cifar_batch(os.path.join(root, 'test_batch'), *fake(200))\n"
             "    write_cifar_meta(os.path.join(root, 'batches.meta'), CIFAR10_CLASSES)\n"
             "    print('CIFAR-10 is not on this machine: using a small generated set in the same format at', root)"),
    ("code", "torch.manual_seed(0)\nrun = tl.fit(TutorialCNN(), 'cifar10', data_dir=data_dir, optimizer='momentum', "
             "lr=0.01, momentum=0.9, batch_size=64, epochs=EPOCHS, report=False, name='custom-cnn')\n"
             "run.diagnosis.verdict"),
    ("md", "The per-layer gradient norms were collected with hooks on *your* module's layers:"),
    ("code", "import json\nlast = json.loads((run.run_dir / 'layers.jsonl').read_text().splitlines()[-1])\n"
             "last['grad_norm']"),
    ("md", "The test split is opened once, for the best checkpoint; `tl.load` gives the trained module back."),
    ("code", "print(run.evaluate())\nmodel = tl.load(run.run_dir, model=TutorialCNN())\nmodel"),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    HERE.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(FIRST), HERE / "first_network.ipynb")
    nbformat.write(build(CUSTOM), HERE / "custom_cnn.ipynb")
    print("wrote", *sorted(p.name for p in HERE.glob("*.ipynb")))
