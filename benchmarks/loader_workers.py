"""A Dataset with a random transform (read afresh every epoch) through ``tl.fit`` with ``workers=0`` and ``workers=N``,
against a plain ``DataLoader`` loop with the same workers, in one process, runs interleaved, medians.

The dataset: Fashion-MNIST-shaped 28×28 uint8 images (generated), each read as torchvision's
``RandomCrop(28, padding=2)`` + ``RandomHorizontalFlip`` + ``Normalize`` would (written in torch here: no
torchvision); the model: the classic 784-256-10 MLP, SGD lr 0.1, batch 256. Per-example reading is the epoch's
cost, so ``speed.workers`` should scale it with the cores; trainlab adds its bookkeeping on top of the plain loop.
trainlab keeps its workers up for the whole run; the plain loop starts them every epoch, as a tutorial's does
(``--start-method spawn`` shows what that costs where spawn is the default: macOS, Windows).

``--deterministic``: the same images read without the random crop and flip but through a 5×5 blur (a decoder's
kind of cost, the same example on every read): tl.fit reads such a dataset once into memory, by its workers
where reading it here would take long; the plain loop reads it every epoch. ``--wait-ms``: each read also waits
that long, as for a file on a network disk (the workers then wait side by side, even on few cores).

    python benchmarks/loader_workers.py [--n 12000] [--epochs 2] [--workers 2] [--repeats 3]
                                        [--start-method fork|spawn|forkserver] [--deterministic]
                                        [--wait-ms 0]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import trainlab as tl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from programs import classic_net  # noqa: E402


class Augmented(Dataset):
    """uint8 images read with a random 2-px-padded crop, a random flip and a normalisation, one example a read."""

    def __init__(self, n: int, seed: int = 0, wait_ms: float = 0.0) -> None:
        self.wait = wait_ms / 1000
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
        self.y = torch.randint(0, 10, (n,), generator=g)
        self.targets = self.y  # as torchvision's datasets: the labels without reading every image

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.wait:
            time.sleep(self.wait)
        img = nn.functional.pad(self.x[i].float().div_(255.0), (2, 2, 2, 2))
        top, left = torch.randint(0, 5, (2,)).tolist()
        img = img[top:top + 28, left:left + 28]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        return (img - 0.2860) / 0.3530, int(self.y[i])


class Decoded(Augmented):
    """The same images, the same example on every read: padded, blurred 5×5 and normalised."""

    kernel = torch.full((1, 1, 5, 5), 1 / 25)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.wait:
            time.sleep(self.wait)
        img = nn.functional.pad(self.x[i].float().div_(255.0), (2, 2, 2, 2))[None, None]
        return (nn.functional.conv2d(img, self.kernel)[0, 0] - 0.2860) / 0.3530, int(self.y[i])


def plain(ds: Dataset, epochs: int, workers: int) -> float:
    """The hand-written loop a tutorial would write: DataLoader(shuffle, num_workers), SGD, the same MLP."""
    torch.manual_seed(0)
    net = classic_net(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = DataLoader(ds, batch_size=256, shuffle=True, num_workers=workers)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    return time.perf_counter() - t0


def ours(ds: Dataset, epochs: int, workers: int, out: str) -> float:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    run = tl.fit(classic_net(0), ds, val=0.1, epochs=epochs, batch_size=256, lr=0.1, workers=workers, out_dir=out,
                 verbose=False, report=False, tensorboard=False)
    assert isinstance(ds, Decoded) or run.summary["streamed"]["workers"] == workers
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), default=None,
                    help="how DataLoader workers start (default: this platform's)")
    ap.add_argument("--deterministic", action="store_true", help="a dataset read once (see above)")
    ap.add_argument("--wait-ms", type=float, default=0.0, help="milliseconds each read waits (see above)")
    a = ap.parse_args()
    if a.start_method:
        import multiprocessing

        multiprocessing.set_start_method(a.start_method, force=True)
    ds = (Decoded if a.deterministic else Augmented)(a.n, wait_ms=a.wait_ms)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeats):
            for w in (0, a.workers):
                times.setdefault(f"plain loop, {w} workers", []).append(plain(ds, a.epochs, w))
                times.setdefault(f"tl.fit, workers={w}", []).append(ours(ds, a.epochs, w, tmp))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["tl.fit, workers=0"]
    import multiprocessing

    print(f"{a.n} {'deterministic' if a.deterministic else 'augmented'} examples{f' ({a.wait_ms:g} ms wait each)' if a.wait_ms else ''}, {a.epochs} epochs, workers started by {multiprocessing.get_start_method()}, "
          f"median of {a.repeats}:")
    for k, v in med.items():
        print(f"  {k:26s} {v:6.2f} s   {base / v:5.2f}× tl.fit with workers=0")
    for w in (0, a.workers):
        print(f"  tl.fit / plain loop with {w} workers: {med[f'tl.fit, workers={w}'] / med[f'plain loop, {w} workers']:.2f}×")
    return 0


if __name__ == "__main__":  # the guard spawned workers need: they import this file
    sys.exit(main())
