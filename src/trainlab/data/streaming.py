"""Datasets too large to hold as tensors: read batch by batch through a ``DataLoader`` instead.

``bundle_from_data`` materialises a map-style ``Dataset`` into tensors when it fits in memory; when it
does not, its splits become :class:`DatasetSplit` objects — the dataset plus the indices of the examples —
and the training loop draws its batches from ``DataLoader(Subset(dataset, indices))``. The shuffling uses
the same ``torch.randperm(n, generator)`` as the tensor path, so both paths see the same batches.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from trainlab.data.base import Split


class DatasetSplit:
    """A split kept as (dataset, indices); ``encode`` maps a batch of raw targets to class ids / floats."""

    def __init__(self, dataset: Dataset, indices: torch.Tensor, encode: Callable[[Any], torch.Tensor],
                 example_shape: tuple[int, ...], target_shape: tuple[int, ...] = ()) -> None:
        self.dataset, self.indices, self.encode = dataset, indices, encode
        self.example_shape = example_shape
        self.target_shape = target_shape  # () for labels / one target, (T,) for several

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x float32 (B, ...), y) batches; shuffled with ``generator`` when one is given, else in order.

        The permutation is drawn here, once per pass, exactly as the tensor path draws it (RandomSampler
        would draw a second one per epoch and desynchronise the two paths)."""
        order = torch.randperm(len(self), generator=generator).tolist() if generator is not None else None
        loader = DataLoader(Subset(self.dataset, self.indices.tolist()), batch_size=batch_size, sampler=order,
                            collate_fn=self._collate)
        yield from loader

    def _collate(self, items: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        # a Dataset may hand out tensors on a GPU: batches are built on the CPU and moved by the loop, as in memory
        xs = torch.stack([torch.as_tensor(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=torch.float32)
                          .reshape(self.example_shape) for x, _ in items])
        return xs, self.encode([_scalar(y) for _, y in items])

    def head(self, n: int) -> Split:
        """The first ``n`` examples as tensors (probe batches, pictures)."""
        x, y = next(iter(self.batches(min(n, len(self)))))
        return Split(x, y)


def read_targets(dataset: Dataset, n: int) -> np.ndarray:
    """All raw targets of a map-style dataset: its ``targets`` attribute when it has one (torchvision style),
    else one pass over the examples."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == n:
        return np.asarray(targets.tolist() if isinstance(targets, torch.Tensor) else targets)
    return np.asarray([_scalar(dataset[i][1]) for i in range(n)])


def _scalar(y: Any) -> Any:
    if isinstance(y, torch.Tensor):
        return y.item() if y.numel() == 1 else y.tolist()
    return y
