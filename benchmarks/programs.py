"""The W1 / W2 programs the benchmarks compare trainlab with, each run as a whole process:

    python benchmarks/programs.py NAME          (prints one JSON line: its loop seconds, test accuracy, ...)

W1 is the classic Fashion-MNIST recipe (784-256-10 MLP, N(0, 0.01) init, SGD lr 0.1, batch 256, 10 epochs);
W2 the CIFAR-10 tutorial's CNN (seed 001's MyNN) on CIFAR-shaped random tensors, batch 64, SGD lr 0.01, 3 epochs.
``TRAINLAB_BENCH_DEVICE`` picks the device (cuda by default; cpu for benchmarks/classic_mlp.py and for
checking the plumbing on a machine without a GPU, with ``TRAINLAB_BENCH_W2_N`` small).
"""
from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

DEVICE = os.environ.get("TRAINLAB_BENCH_DEVICE", "cuda")
ROOT = Path(__file__).resolve().parent.parent


def byte_compile_trainlab() -> None:
    """Write the .pyc files of trainlab's own modules, as ``pip install`` does for an installed package (torch,
    skorch and every other contender here have theirs). An editable install gets them only when Python may
    write bytecode, and the project's machines set PYTHONDONTWRITEBYTECODE=1: every `trainlab train` (and each
    picture worker) then compiled trainlab's sources again, ~0.15 s of each measured process."""
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "trainlab"), quiet=1)
    print("(trainlab's modules byte-compiled first, as an installed package's are)")


def _fashion_dir() -> Path:
    for root in (os.environ.get("TRAINLAB_DATA"), str(Path.home() / ".cache/trainlab"), "/usr/share/datasets"):
        if root and (Path(root) / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists():
            return Path(root) / "fashion-mnist"
    raise SystemExit("Fashion-MNIST not found: set TRAINLAB_DATA to a folder holding fashion-mnist/*.gz")


def _read_idx(path: Path):
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_tensors(device):
    """What a plain user writes: decode the gz files, scale to [0, 1], hold out 6,000 for validation."""
    import torch

    d = _fashion_dir()
    x = torch.from_numpy(_read_idx(d / "train-images-idx3-ubyte.gz").copy()).to(device).float().div_(255)
    y = torch.from_numpy(_read_idx(d / "train-labels-idx1-ubyte.gz").copy()).to(device).long()
    xt = torch.from_numpy(_read_idx(d / "t10k-images-idx3-ubyte.gz").copy()).to(device).float().div_(255)
    yt = torch.from_numpy(_read_idx(d / "t10k-labels-idx1-ubyte.gz").copy()).to(device).long()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(device)
    return x[perm[6000:]], y[perm[6000:]], x[perm[:6000]], y[perm[:6000]], xt, yt


def classic_net(seed: int):
    """Flatten → Linear(784, 256) → ReLU → Linear(256, 10), weights N(0, 0.01), biases 0 (the W1 recipe)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01, generator=g)
            nn.init.zeros_(m.bias)
    return net


def plain_loop(x, y, xv, yv, xt, yt, seed: int, epochs: int, device=None) -> float:
    """The plain tensor loop: data where they are, index-slice batches, validation each epoch; test accuracy."""
    import torch
    from torch import nn

    device = device or x.device
    net = classic_net(seed).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator(device=device).manual_seed(seed)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g, device=device)
        for i in range(0, len(x), 256):
            idx = perm[i:i + 256]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            float(nn.functional.cross_entropy(net(xv), yv))
    with torch.no_grad():
        return float((net(xt).argmax(1) == yt).float().mean())


def child_plain_w1() -> dict:
    """The plain tensor loop on cuda: data on the GPU, index-slice batches, validation each epoch, test once."""
    import torch

    dev = torch.device(DEVICE)
    x, y, xv, yv, xt, yt = _fashion_tensors(dev)
    t0 = time.perf_counter()
    acc = plain_loop(x, y, xv, yv, xt, yt, seed=0, epochs=10, device=dev)
    loop = time.perf_counter() - t0
    return {"loop_s": loop, "test_acc": acc}


def child_tutorial_w1() -> dict:
    """The tutorial's loop (d2l train_ch3 with torchvision's FashionMNIST + ToTensor): a map-style Dataset that
    makes a PIL image of each example and converts it, a DataLoader with 4 workers, test accuracy every epoch."""
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    class PerSample(Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = images, labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            img = Image.fromarray(self.images[i], mode="L")
            x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1)
            return x.contiguous().float().div(255), int(self.labels[i])

    d = _fashion_dir()
    train = PerSample(_read_idx(d / "train-images-idx3-ubyte.gz"), _read_idx(d / "train-labels-idx1-ubyte.gz"))
    test = PerSample(_read_idx(d / "t10k-images-idx3-ubyte.gz"), _read_idx(d / "t10k-labels-idx1-ubyte.gz"))
    warnings.filterwarnings("ignore", message=".*worker processes in total.*")  # 4 workers is the tutorial's choice
    torch.manual_seed(0)  # the DataLoader's shuffle
    dev = torch.device(DEVICE)
    net = classic_net(0).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    t0 = time.perf_counter()
    for _ in range(10):
        net.train()
        for x, y in DataLoader(train, batch_size=256, shuffle=True, num_workers=4):
            x, y = x.to(dev), y.to(dev)
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in DataLoader(test, batch_size=256, num_workers=4):
                correct += int((net(x.to(dev)).argmax(1) == y.to(dev)).sum())
    return {"loop_s": time.perf_counter() - t0, "test_acc": correct / len(test)}


def child_skorch_w1() -> dict:
    import numpy as np
    import torch
    from skorch import NeuralNetClassifier
    from skorch.dataset import ValidSplit
    from torch import nn

    d = _fashion_dir()
    x = (_read_idx(d / "train-images-idx3-ubyte.gz").reshape(-1, 784) / 255).astype(np.float32)
    y = _read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = (_read_idx(d / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 255).astype(np.float32)
    yt = _read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    torch.manual_seed(0)
    net = NeuralNetClassifier(nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
                              criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=0.1, batch_size=256,
                              max_epochs=10, train_split=ValidSplit(10), device=DEVICE, verbose=0)
    t0 = time.perf_counter()
    net.fit(x, y)
    loop = time.perf_counter() - t0
    return {"loop_s": loop, "test_acc": float((net.predict(xt) == yt).mean())}


def _my_nn():
    from torch import nn

    class MyNN(nn.Module):  # the CIFAR-10 tutorial's network, as seed 001 writes it
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            import torch

            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    return MyNN()


def _cifar_shaped(n: int):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


W2_N, W2_EPOCHS, W2_BATCH = int(os.environ.get("TRAINLAB_BENCH_W2_N", 50_000)), 3, 64


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def child_plain_w2() -> dict:
    import torch
    from torch import nn

    dev = torch.device(DEVICE)
    x, y = (t.to(dev) for t in _cifar_shaped(W2_N))
    torch.manual_seed(0)
    net = _my_nn().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    _sync()
    t0 = time.perf_counter()
    for _ in range(W2_EPOCHS):
        perm = torch.randperm(len(x), device=dev)
        for i in range(0, len(x), W2_BATCH):
            idx = perm[i:i + W2_BATCH]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync()
    return {"samples_per_s": W2_N * W2_EPOCHS / (time.perf_counter() - t0)}


def child_trainlab_w2(precision: str = "fp32") -> dict:
    import torch

    import trainlab as tl

    x, y = _cifar_shaped(W2_N)
    xv, yv = _cifar_shaped(1000)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        run = tl.fit(_my_nn(), (x, y), val=(xv, yv), epochs=W2_EPOCHS, batch_size=W2_BATCH, optimizer="sgd",
                     lr=0.01, device=DEVICE, out_dir=out, report=False, verbose=False, tensorboard=False,
                     precision=precision)
    loop = sum(h["epoch_time"] for h in run.history)  # includes the 1,000-example validation each epoch
    return {"samples_per_s": W2_N * W2_EPOCHS / loop, "steps": run.summary["steps"]}


def child_lightning_w2() -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _my_nn()

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x, y = _cifar_shaped(W2_N)
    torch.manual_seed(0)
    trainer = pl.Trainer(max_epochs=W2_EPOCHS, accelerator="gpu" if DEVICE == "cuda" else "cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=W2_BATCH, shuffle=True)
    t0 = time.perf_counter()
    trainer.fit(Module(), loader)
    return {"samples_per_s": W2_N * W2_EPOCHS / (time.perf_counter() - t0)}


def child_import() -> dict:
    """Python and ``import torch``, nothing else: the floor without CUDA."""
    import torch

    return {"loop_s": 0.0, "test_acc": float("nan"), "torch": torch.__version__}


def child_floor() -> dict:
    """What every program here pays before its first step: Python, ``import torch`` and a CUDA context."""
    import torch

    torch.zeros(1, device=DEVICE)
    _sync()
    return {"loop_s": 0.0, "test_acc": float("nan")}


CHILDREN = {"import": child_import, "floor": child_floor, "plain-w1": child_plain_w1, "tutorial-w1": child_tutorial_w1, "skorch-w1": child_skorch_w1, "plain-w2": child_plain_w2,
            "trainlab-w2": child_trainlab_w2,
            "trainlab-w2-bf16": lambda: child_trainlab_w2("bf16"), "lightning-w2": child_lightning_w2}


def env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


def whole_process(cmd: list[str], timeout: float = 600, extra_env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**env(), **(extra_env or {})}, cwd=ROOT,
                         timeout=timeout)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return wall, out.stdout


def run_child(name: str) -> tuple[float, dict]:
    """(whole-process seconds, the program's JSON line) of ``python benchmarks/programs.py NAME``."""
    wall, out = whole_process([sys.executable, __file__, name], timeout=600)
    return wall, json.loads(out.strip().splitlines()[-1])


def trainlab_w1(out_dir: str, report: bool, extra: tuple[str, ...] = (),
                extra_env: dict | None = None) -> tuple[float, dict]:
    """`trainlab train` (the default config is W1) as a whole process; its loop seconds from metrics.jsonl."""
    cmd = [sys.executable, "-m", "trainlab.cli", "train", "--set", f"device={DEVICE}", "--set", f"out_dir={out_dir}"]
    cmd += [arg for kv in extra for arg in ("--set", kv)]
    wall, out = whole_process(cmd + ([] if report else ["--no-report"]), extra_env=extra_env)
    run = sorted(Path(out_dir).iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    summary = json.loads((run / "summary.json").read_text())
    epochs = [json.loads(line)["epoch_time"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    return wall, {"loop_s": sum(epochs), "first_epoch_s": epochs[0], "later_epoch_s": med(epochs[1:]),
                  "test_acc": summary["test"]["test_acc"], "steps": summary["steps"]}


def attempt(name: str, fn):
    """Run one measurement; a failure is printed with its output and the rest of the benchmark goes on."""
    try:
        return fn()
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as exc:
        print(f"  {name}: FAILED — {exc}")
        return None


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def med(values: list[float]) -> float:
    return statistics.median(values)

if __name__ == "__main__":
    print(json.dumps(CHILDREN[sys.argv[1]]()))
