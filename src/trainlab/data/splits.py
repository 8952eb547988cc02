"""Index splits: train/held-out carving and k folds, stratified by class when labels are given.

Everything is vectorised (a loop over *classes* at most, never over samples) and draws only from a
``torch.Generator`` seeded by the caller, so the same seed always gives the same split. Returned
index tensors are int64 and in a shuffled (deterministic) order, not sorted: a loop that forgets to
shuffle still never sees one class after another.
"""
from __future__ import annotations

from numbers import Integral

import torch

from trainlab.errors import ConfigError, problem

__all__ = ["split_indices", "kfold_indices"]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _class_ids(labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense class ids 0..K-1 per example and the member count per class."""
    if labels.ndim != 1 or len(labels) != n:
        raise ConfigError(problem("labels", f"a 1-D tensor of {n} class ids", tuple(labels.shape),
                                  "Pass one label per example, or labels=None for an unstratified split"))
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return inverse, counts


def _grouped_order(inverse: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random order of all examples grouped by class, and each example's rank inside its class."""
    order = torch.randperm(len(inverse), generator=g)
    # A stable sort by class keeps the random order inside each class.
    order = order[torch.sort(inverse[order], stable=True).indices]
    cls = inverse[order]
    counts = torch.bincount(cls)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order)) - starts[cls]
    return order, rank


def _stratified_quotas(counts: torch.Tensor, n_held: int) -> torch.Tensor:
    """Held examples per class: proportional by largest remainder (sums to ``n_held`` exactly), then
    nudged so every class with >= 2 members has at least one example on each side when that fits."""
    n = int(counts.sum())
    ideal = counts.double() * n_held / n
    quota = torch.floor(ideal).long()
    short = n_held - int(quota.sum())
    if short > 0:
        # Largest fractional parts first; the stable sort breaks ties by class order (deterministic).
        order = torch.sort(ideal - quota, descending=True, stable=True).indices
        quota[order[:short]] += 1

    big = counts >= 2
    lo, hi = big.long(), torch.where(big, counts - 1, counts)
    # Relax whichever side cannot be met (e.g. fewer held slots than classes): totals stay exact.
    if int(lo.sum()) > n_held:
        lo = torch.zeros_like(counts)
    if int(hi.sum()) < n_held:
        hi = counts.clone()
    quota = torch.minimum(torch.maximum(quota, lo), hi)
    # Clamping moved each class by at most one, so this loop runs at most a few rounds.
    while (diff := n_held - int(quota.sum())) != 0:
        step = 1 if diff > 0 else -1
        room = (quota < hi) if step > 0 else (quota > lo)
        # Give to the most under-served (take from the most over-served) classes first.
        need = (ideal - quota) * step
        need = torch.where(room, need, torch.full_like(need, -float("inf")))
        order = torch.sort(need, descending=True, stable=True).indices[: min(abs(diff), int(room.sum()))]
        quota[order] += step
    return quota


def split_indices(n: int, fraction: float, seed: int, labels: torch.Tensor | None = None,
                  exact_keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into ``(keep, held)`` int64 index tensors, disjoint and covering.

    ``held`` has ``round(n * fraction)`` items (``n - exact_keep`` when given); with ``labels`` each
    class contributes in proportion. Same ``seed`` → same split; order inside each part is shuffled.
    """
    if not 0 <= fraction <= 1:
        raise ConfigError(problem("fraction", "between 0 and 1", fraction, "Pass the share of examples to hold out"))
    if exact_keep is not None:
        if not 0 <= exact_keep <= n:
            raise ConfigError(problem("exact_keep", f"between 0 and {n}", exact_keep,
                                      "Keep at most as many examples as there are"))
        n_held = n - int(exact_keep)
    else:
        n_held = int(round(n * fraction))
    g = _generator(seed)
    if labels is None:
        perm = torch.randperm(n, generator=g)
        return perm[n_held:], perm[:n_held]

    inverse, counts = _class_ids(labels, n)
    quota = _stratified_quotas(counts, n_held)
    order, rank = _grouped_order(inverse, g)
    held_mask = rank < quota[inverse[order]]
    keep, held = order[~held_mask], order[held_mask]
    # Undo the grouping by class so neither part is sorted by label.
    keep = keep[torch.randperm(len(keep), generator=g)]
    held = held[torch.randperm(len(held), generator=g)]
    return keep, held


def kfold_indices(n: int, k: int, seed: int,
                  labels: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``k`` folds of ``range(n)`` as ``(train_idx, val_idx)``; the val parts are disjoint and cover all.

    Fold sizes differ by at most one; with ``labels`` so do each class's counts across folds.
    """
    if isinstance(k, bool) or not isinstance(k, Integral) or not 2 <= k <= n:
        raise ConfigError(problem("folds", f"a whole number between 2 and the number of examples ({n})", k,
                                  "Use 5 or 10 folds, or fewer when the data is small"))
    g = _generator(seed)
    if labels is None:
        order = torch.randperm(n, generator=g)
    else:
        inverse, _ = _class_ids(labels, n)
        order, _ = _grouped_order(inverse, g)
    # Dealing the (class-grouped) order round-robin spreads every class evenly over the folds.
    k = int(k)
    fold_of = torch.arange(n) % k
    folds = []
    for f in range(k):
        val, train = order[fold_of == f], order[fold_of != f]
        val = val[torch.randperm(len(val), generator=g)]
        train = train[torch.randperm(len(train), generator=g)]
        folds.append((train, val))
    return folds
