"""The classic Fashion-MNIST MLP recipe: trainlab vs the tutorial's per-sample DataLoader loop.

Recipe: Flatten → Linear(784,256) → ReLU → Linear(256,10), N(0, 0.01) init, SGD lr 0.1, batch 256,
10 epochs, cross-entropy. trainlab runs it end to end (`trainlab.train.run.train` on the default
config: data loading, validation each epoch, checkpoints, metrics files, the final test) ``--runs``
times with seeds 0.. and reports mean ± std; the reference runs once, in the same process, written the
way the tutorial does it: a map-style Dataset that turns each image into a tensor, a DataLoader with 4
workers, test accuracy at the end. Measured on this project's 2-core CPU machine (see the closing notes
of the engine issue): trainlab ≈ 6–7 s, the reference ≈ 90–100 s, at the same accuracy (≈ 0.85).

    python benchmarks/classic_mlp.py [--runs 3] [--skip-reference]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from trainlab.config import resolve_config
from trainlab.data.images import SYSTEM_DIR
from trainlab.data.idx import read_idx
from trainlab.train.run import train


class PerSampleFashion(Dataset):
    """The tutorial's Dataset: one uint8 image at a time, converted to a float tensor in __getitem__."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0)  # like ToTensor()
        return x, int(self.labels[i])


def reference(seed: int = 0) -> tuple[float, float]:
    """The tutorial loop; returns (wall seconds, test accuracy)."""
    t0 = time.perf_counter()
    d = SYSTEM_DIR / "fashion-mnist"
    train_ds = PerSampleFashion(read_idx(d / "train-images-idx3-ubyte.gz").numpy(),
                                read_idx(d / "train-labels-idx1-ubyte.gz").numpy())
    test_ds = PerSampleFashion(read_idx(d / "t10k-images-idx3-ubyte.gz").numpy(),
                               read_idx(d / "t10k-labels-idx1-ubyte.gz").numpy())
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    train_iter = DataLoader(train_ds, batch_size=256, shuffle=True, num_workers=4)
    test_iter = DataLoader(test_ds, batch_size=256, shuffle=False, num_workers=4)
    for _ in range(10):
        net.train()
        for x, y in train_iter:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_iter:
            correct += int((net(x).argmax(1) == y).sum())
    return time.perf_counter() - t0, correct / len(test_ds)


def trainlab_run(seed: int, out: str) -> tuple[float, float]:
    """The default `trainlab train`, end to end; returns (wall seconds, test accuracy)."""
    cfg = resolve_config(overrides={"seed": seed, "out_dir": out, "tensorboard": True})
    t0 = time.perf_counter()
    result = train(cfg, verbose=False)
    return time.perf_counter() - t0, result.summary["test"]["test_acc"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true")
    a = ap.parse_args()
    if not (SYSTEM_DIR / "fashion-mnist").is_dir():
        print("needs Fashion-MNIST: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as out:
        ours = [trainlab_run(seed, out) for seed in range(a.runs)]
    times, accs = [t for t, _ in ours], [acc for _, acc in ours]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    print(f"trainlab : {statistics.mean(times):6.2f} ± {sd(times):.2f} s   test acc {statistics.mean(accs):.4f} "
          f"± {sd(accs):.4f}   ({a.runs} runs, seeds 0..{a.runs - 1})")
    if a.skip_reference:
        return 0
    torch.set_num_threads(threads)
    ref_time, ref_acc = reference()
    print(f"reference: {ref_time:6.2f} s          test acc {ref_acc:.4f}   (per-sample Dataset, DataLoader, 4 workers)")
    print(f"speed-up : {ref_time / statistics.mean(times):.1f}x   accuracy difference: "
          f"{(statistics.mean(accs) - ref_acc) * 100:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
