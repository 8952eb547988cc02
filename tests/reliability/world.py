"""What the cases act on, made once per process: two small finished runs (a toy MLP and an image MLP on a fake
MNIST), a finished search, and a fresh folder per case holding copies of whatever the case damages."""
from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import write_fake_mnist
from tests.reliability.harness import cli

# Every command that could train gets these, so a case that falls short trains a tiny net for a moment
# instead of the default Fashion-MNIST recipe.
TINY = ["--set", "data.name=circle", "--set", "data.n_points=200", "--set", "epochs=2", "--set", "model.hidden=[8]",
        "--set", "batch_size=16", "--set", "threads=1", "--set", "tensorboard=false"]
SPACE = {"optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}}


@dataclass
class World:
    root: Path
    mnist: Path  # the folder holding fashion-mnist/ (for --data-dir)
    space: Path  # a good search space file

    def run(self, name: str) -> Path:
        return self.root / "runs" / name

    @property
    def search(self) -> Path:
        return self.root / "runs" / "search-s"


_world: World | None = None
_root: Path | None = None
_counter = itertools.count()


def set_root(root: Path) -> None:
    """Where the world and the case folders go (pytest's tmp; the benchmark's temp folder)."""
    global _root, _world
    _root, _world = Path(root), None


def root() -> Path:
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="trainlab-reliability-"))
    return _root


def world() -> World:
    """The shared runs, built on first use (~3 s): runs/toy, runs/img and runs/search-s."""
    global _world
    if _world is not None:
        return _world
    base = root() / "world"
    base.mkdir(parents=True, exist_ok=True)
    mnist = write_fake_mnist(base / "data" / "fashion-mnist", n_train=300, n_test=60).parent
    space = base / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    runs = base / "runs"
    for name, extra in (("toy", TINY), ("img", ["--set", "data.name=fashion-mnist", "--data-dir", str(mnist),
                                                 "--set", "data.download=false", "--set", "model.hidden=[16]",
                                                 "--set", "epochs=1", "--set", "batch_size=32", "--set", "threads=1",
                                                 "--set", "tensorboard=false"])):
        o = cli(["train", *extra, "--set", f"out_dir={runs}", "--name", name, "--quiet"], base)
        assert o.code == 0, f"the world's {name} run failed: {o.err[-2000:]}"
    o = cli(["search", *TINY, "--set", f"out_dir={runs}", "--space", space, "--trials", "2", "--epochs", "1",
             "--name", "s", "--quiet"], base)
    assert o.code == 0, f"the world's search failed: {o.err[-2000:]}"
    _world = World(base, mnist, space)
    return _world


def case_dir(label: str) -> Path:
    """A new empty folder for one case."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
    d = root() / "cases" / f"{next(_counter):04d}-{safe}"
    d.mkdir(parents=True)
    return d


def copy_run(d: Path, name: str) -> Path:
    """A copy of the world's run (or search-s) under ``d/runs/``, for a case that damages it."""
    src = world().root / "runs" / name
    dst = d / "runs" / name
    shutil.copytree(src, dst, copy_function=shutil.copy2)
    return dst
