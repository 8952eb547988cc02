"""Disjoint random subsets of Fashion-MNIST's training file for the lessons that train on a few hundred images.

The lessons draw their training and held-out (validation) examples from the 60 000 training images only;
the official test file is opened only by a lesson that says so (``test_set``), once.
"""
from __future__ import annotations

import torch

from trainlab.config import DataConfig
from trainlab.data.images import load_images

Pair = tuple[torch.Tensor, torch.Tensor]


def fashion_subsets(sizes: dict[str, int], seed: int) -> dict[str, Pair]:
    """``{"train": 300, "val": 1000}`` → disjoint random subsets of the training images, x (n, 1, 28, 28) in
    [0, 1] and y (n,), drawn with a generator seeded with ``seed``."""
    raw = load_images("fashion-mnist", DataConfig(download=False), progress=False)
    order = torch.randperm(len(raw.train), generator=torch.Generator().manual_seed(seed))
    out, start = {}, 0
    for name, n in sizes.items():
        idx = order[start:start + n]
        out[name] = (raw.train.x[idx], raw.train.y[idx])
        start += n
    return out


def test_set() -> Pair:
    """The official 10 000 test images (read from disk here: call it once, for the chosen model)."""
    raw = load_images("fashion-mnist", DataConfig(download=False), progress=False)
    test = raw.test()
    return test.x, test.y
