"""Shared fixtures: small generated datasets and a config factory writing into a temp directory."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.config import resolve_config
from trainlab.data.idx import write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# the tests that train on the real Fashion-MNIST files skip, naming the package, where they are not installed
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                   reason="apt-get install dataset-fashion-mnist")


def pytest_configure(config) -> None:
    """Under ``pytest -n N`` (pyproject's addopts), each worker keeps to its own share of the cores, as on a machine
    that small: runs choose their torch threads from it and the processes they start inherit it, so N workers on
    N cores never run 2N compute threads that wait on each other."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker is None or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = cores[int(worker.removeprefix("gw")) % count::count]
    if share:
        os.sched_setaffinity(0, share)
        torch.set_num_threads(len(share))


@pytest.fixture(scope="session")
def _decoded_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trainlab-cache")


@pytest.fixture(autouse=True)
def _no_real_cache(monkeypatch, _decoded_cache):
    """Tests never write ~/.cache/trainlab/decoded: decoded datasets go to one temp folder for the session
    (shared, so each real dataset is decoded once per test run). Tests of the cache pass their own root."""
    import trainlab.data.images as images
    from trainlab.data.cache import cached_decode

    home_cache = Path.home() / ".cache" / "trainlab"

    def to_temp(source, decode, cache_root, *args, **kwargs):
        root = _decoded_cache if cache_root is not None and Path(cache_root) == home_cache else cache_root
        return cached_decode(source, decode, root, *args, **kwargs)

    monkeypatch.setattr(images, "cached_decode", to_temp)


@pytest.fixture
def device() -> torch.device:
    """The CUDA device for tests marked ``gpu``; skips cleanly where torch sees no GPU (CI has none)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: torch.cuda.is_available() is False here")
    return torch.device("cuda")


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg(**{"optimizer.lr": 0.1})`` → a TrainConfig on a small toy set, writing under tmp_path."""

    def make(**overrides):
        base = {"out_dir": str(tmp_path / "runs"), "tensorboard": False, "data.name": "circle",
                "data.n_points": 300, "model.hidden": [8], "model.activation": "tanh", "model.init": "xavier",
                "optimizer.lr": 0.1, "batch_size": 16, "epochs": 3}
        base.update(overrides)
        return resolve_config(overrides=base)

    return make


def write_fake_mnist(root: Path, n_train: int = 600, n_test: int = 100, seed: int = 0) -> Path:
    """A learnable MNIST-format dataset: class k is a bright 4x4 square at a class-specific position."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            r, c = 2 + 6 * (k // 4), 2 + 6 * (k % 4)
            images[i, r:r + 4, c:c + 4] = 250
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    return write_fake_mnist(tmp_path / "data" / "fashion-mnist")


def train_until_checkpoint(cwd: Path, args: list[str], run: str):
    """``python -m trainlab train *args`` started in ``cwd`` (this checkout's trainlab, one thread a process),
    returned as a running Popen (text stdout/stderr pipes) once ``runs/<run>/checkpoints/last.pt`` exists — or it
    has ended, or 120 s have passed — and the environment it runs in."""
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1")
    job = subprocess.Popen([sys.executable, "-m", "trainlab", "train", *args], cwd=cwd, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last, deadline = cwd / "runs" / run / "checkpoints" / "last.pt", time.monotonic() + 120
    while not last.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return job, env


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a reaped child does not; a zombie still does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
