"""trainlab on a CUDA GPU: the `gpu` tests, then W1 and W2 against a plain loop (and skorch / Lightning when
installed), every figure from this one run, as ratios.

W1: the classic Fashion-MNIST recipe (784-256-10 MLP, SGD lr 0.1, batch 256, 10 epochs), each program as a whole
    process (imports, CUDA start, data, training, validation, test; trainlab also its checkpoints, verdict and
    report), ``--repeats`` times interleaved, medians; plus trainlab's own training-loop seconds (summary.json).
W2: the CIFAR-10 tutorial's CNN (seed 001's MyNN) on CIFAR-shaped random tensors (50,000 × 3×32×32), batch 64,
    SGD lr 0.01, 3 epochs: training samples per second of each loop, in its own process.

Targets (issue 16): W1 whole process ≤ 0.6× the plain loop's and ≥ 3× skorch's; W1's training loop ≤ 0.5 s;
W2 ≥ 1.5× the plain loop's samples/s and ≥ 3× Lightning's. Needs Fashion-MNIST where trainlab finds it
($TRAINLAB_DATA/fashion-mnist/*.gz, or /usr/share/datasets). ≤ 5 minutes on one H200.

    python benchmarks/gpu.py [--repeats 2] [--skip-tests] [--quick]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
# Only for checking this script's plumbing on a machine without a GPU (tiny sizes, no targets):
DEVICE = os.environ.get("TRAINLAB_BENCH_DEVICE", "cuda")


# --- the programs compared (each runs as ``python benchmarks/gpu.py --child NAME``) ------------------------------


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


def child_plain_w1() -> dict:
    """The plain tensor loop on cuda: data on the GPU, index-slice batches, validation each epoch, test once."""
    import torch
    from torch import nn

    dev = torch.device(DEVICE)
    x, y, xv, yv, xt, yt = _fashion_tensors(dev)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(dev)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    t0 = time.perf_counter()
    for _ in range(10):
        net.train()
        perm = torch.randperm(len(x), device=dev)
        for i in range(0, len(x), 256):
            idx = perm[i:i + 256]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            float(nn.functional.cross_entropy(net(xv), yv))
    loop = time.perf_counter() - t0
    with torch.no_grad():
        acc = float((net(xt).argmax(1) == yt).float().mean())
    return {"loop_s": loop, "test_acc": acc}


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


def child_trainlab_w2() -> dict:
    import torch

    import trainlab as tl

    x, y = _cifar_shaped(W2_N)
    xv, yv = _cifar_shaped(1000)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        run = tl.fit(_my_nn(), (x, y), val=(xv, yv), epochs=W2_EPOCHS, batch_size=W2_BATCH, optimizer="sgd",
                     lr=0.01, device=DEVICE, out_dir=out, report=False, verbose=False, tensorboard=False)
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


def child_floor() -> dict:
    """What every program here pays before its first step: Python, ``import torch`` and a CUDA context."""
    import torch

    torch.zeros(1, device=DEVICE)
    _sync()
    return {"loop_s": 0.0, "test_acc": float("nan")}


CHILDREN = {"floor": child_floor, "plain-w1": child_plain_w1, "skorch-w1": child_skorch_w1, "plain-w2": child_plain_w2,
            "trainlab-w2": child_trainlab_w2, "lightning-w2": child_lightning_w2}


# --- the driver -----------------------------------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


def whole_process(cmd: list[str], timeout: float = 150) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=timeout)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return wall, out.stdout


def child(name: str) -> tuple[float, dict]:
    wall, out = whole_process([sys.executable, str(HERE), "--child", name])
    return wall, json.loads(out.strip().splitlines()[-1])


def trainlab_w1(out_dir: str, report: bool, extra: tuple[str, ...] = ()) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "trainlab.cli", "train", "--set", f"device={DEVICE}", "--set", f"out_dir={out_dir}"]
    cmd += [arg for kv in extra for arg in ("--set", kv)]
    wall, out = whole_process(cmd + ([] if report else ["--no-report"]))
    run = sorted(Path(out_dir).iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    summary = json.loads((run / "summary.json").read_text())
    epochs = [json.loads(line)["epoch_time"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    return wall, {"loop_s": sum(epochs), "first_epoch_s": epochs[0], "later_epoch_s": med(epochs[1:]), "test_acc": summary["test"]["test_acc"], "steps": summary["steps"],
                  "report": (run / "report.html").exists()}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--child", choices=sorted(CHILDREN))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(CHILDREN[a.child]()))
        return 0
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU; torch sees none here.", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "none (plumbing check only)"
    print(f"GPU: {gpu} · torch {torch.__version__} · {os.cpu_count()} CPU cores")
    checks: list[tuple[str, bool]] = []
    if not a.skip_tests:
        t0 = time.perf_counter()
        tests = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                "tests/train/test_graphs.py", "tests/test_devices.py"],
                               capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
        tail = tests.stdout.strip().splitlines()
        print("\n".join(tail[-60:] if tests.returncode else tail[-1:]), f"({time.perf_counter() - t0:.0f} s)")
        checks.append(("all gpu tests pass", tests.returncode == 0))

    rows: dict[str, list[tuple[float, dict]]] = {"trainlab train": [], "trainlab train --no-report": [],
                                                 "plain loop": []}
    if installed("skorch"):
        rows["skorch"] = []
    runs = {"trainlab train": lambda tmp: trainlab_w1(tmp, report=True),
            "trainlab train --no-report": lambda tmp: trainlab_w1(tmp, report=False),
            "plain loop": lambda tmp: child("plain-w1"), "skorch": lambda tmp: child("skorch-w1")}
    with tempfile.TemporaryDirectory() as tmp:
        attempt("warm-up", lambda: trainlab_w1(tmp, report=False))  # fills the dataset cache and the OS file cache
        for _ in range(a.repeats):
            for name in rows:
                got = attempt(name, lambda: runs[name](tmp))
                if got is not None:
                    rows[name].append(got)
        eager = attempt("speed.graphs=false", lambda: trainlab_w1(tmp, report=False, extra=["speed.graphs=false"]))
        floor = attempt("floor", lambda: child("floor"))
    rows = {k: v for k, v in rows.items() if v}
    if "plain loop" in rows and "trainlab train" in rows:
        plain = med([w for w, _ in rows["plain loop"]])
        print(f"\nW1 classic Fashion-MNIST MLP, whole process, median of {a.repeats}:")
        for name, rs in rows.items():
            wall, loop = med([w for w, _ in rs]), med([r["loop_s"] for _, r in rs])
            acc = med([r["test_acc"] for _, r in rs])
            print(f"  {name:28s} {wall:6.2f} s  ×{wall / plain:.2f} of the plain loop   loop {loop:5.2f} s   "
                  f"test acc {acc:.4f}")
        if eager is not None:
            print(f"  {'trainlab, speed.graphs=false':28s} {eager[0]:6.2f} s  (once)            loop "
                  f"{eager[1]['loop_s']:5.2f} s   test acc {eager[1]['test_acc']:.4f}")
        ours = med([w for w, _ in rows["trainlab train"]])
        ours_loop = med([r["loop_s"] for _, r in rows["trainlab train"]])
        first = rows["trainlab train"][0][1]
        print(f"  trainlab steps: {first['steps']}; epoch 1 (with the capture) {first['first_epoch_s']:.3f} s, "
              f"later epochs {first['later_epoch_s']:.3f} s each (training + validation)")
        if floor is not None:
            print(f"  floor: python + import torch + a CUDA context, nothing else: {floor[0]:.2f} s")
        checks.append(("W1 whole process ≤ 0.6× the plain loop", ours <= 0.6 * plain))
        if "skorch" in rows:
            checks.append(("W1 ≥ 3× skorch", med([w for w, _ in rows["skorch"]]) >= 3 * ours))
        checks.append(("W1 training loop ≤ 0.5 s", ours_loop <= 0.5))

    w2 = {name: got[1] for name, kid in (("trainlab", "trainlab-w2"), ("plain loop", "plain-w2"),
                                         ("Lightning", "lightning-w2"))
          if (name != "Lightning" or installed("lightning") or installed("pytorch_lightning"))
          and (got := attempt(name, lambda kid=kid: child(kid))) is not None}
    if "trainlab" in w2 and "plain loop" in w2:
        print(f"\nW2 MyNN on CIFAR-shaped tensors, batch {W2_BATCH}, {W2_EPOCHS} epochs, training samples/s:")
        for name, r in w2.items():
            print(f"  {name:12s} {r['samples_per_s']:9.0f}   "
                  f"×{r['samples_per_s'] / w2['plain loop']['samples_per_s']:.2f} of the plain loop")
        print(f"  trainlab steps: {w2['trainlab']['steps']}")
        ours2 = w2["trainlab"]["samples_per_s"]
        checks.append(("W2 ≥ 1.5× the plain loop", ours2 >= 1.5 * w2["plain loop"]["samples_per_s"]))
        if "Lightning" in w2:
            checks.append(("W2 ≥ 3× Lightning", ours2 >= 3 * w2["Lightning"]["samples_per_s"]))
    print()
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
