"""Datasets read batch by batch through a ``DataLoader`` instead of held as tensors.

``bundle_from_data`` materialises a map-style ``Dataset`` into tensors once, when it fits in memory and hands out
the same example on every read. It streams one that does not fit, and one whose examples change between reads
(a random transform in ``__getitem__``, as torchvision's ``RandomCrop``: frozen into tensors, every epoch would see
the first epoch's crops), and an ``IterableDataset`` of the latter kind (:class:`IterableSplit`). Its splits become
:class:`DatasetSplit` objects — the dataset plus the indices of the examples — and the training loop draws its
batches from ``DataLoader(Subset(dataset, indices))``. The shuffling uses the same ``torch.randperm(n, generator)``
as the tensor path, so both paths see the same batches.
``speed.workers`` reads them in that many worker processes (``DataLoader(num_workers=...)``), pinned for a GPU.
During a run (:meth:`DatasetSplit.workers_kept`) one DataLoader and its workers serve every pass over a split:
starting them again every epoch costs a fork each, and under spawn (macOS, Windows) a fresh Python that imports
torch and unpickles the dataset each.

Reading a dataset once (into tensors, or its labels) happens in this process, and where ``speed.workers`` is set
and this process would take long (:func:`worth_workers`), the rest is read by that many worker processes
(:func:`read_with_workers`): a ``__getitem__`` that decodes an image file is then as parallel before training as
during it.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import random
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from trainlab.data.base import Split


def trained_examples(n: int, batch_size: int, drop_last: bool) -> int:
    """Examples an epoch trains on: all ``n``, or with ``drop_last`` those of its full batches."""
    return n - n % batch_size if drop_last else n


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Updates an epoch makes: one per batch, the last smaller one too unless ``drop_last``."""
    return -(-trained_examples(n, batch_size, drop_last) // batch_size)


class DatasetSplit:
    """A split kept as (dataset, indices); ``encode`` maps a batch of raw targets to class ids / floats."""

    def __init__(self, dataset: Dataset, indices: torch.Tensor, encode: Callable[[Any], torch.Tensor],
                 example_shape: tuple[int, ...], target_shape: tuple[int, ...] = ()) -> None:
        self.dataset, self.indices, self.encode = dataset, indices, encode
        self.example_shape = example_shape
        self.target_shape = target_shape  # () for labels / one target, (T,) for several
        self.workers = 0  # speed.workers: DataLoader worker processes (0: read in this process)
        self.pin_memory = False  # page-locked batches, for a copy to a GPU that overlaps the step
        self._keep = False  # inside workers_kept(): worker processes serve every pass
        # (its key: batch size, workers, pinning, drop_last; the DataLoader; its pass order)
        self._kept: tuple[tuple[int, int, bool, bool], DataLoader, _PassOrder] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, workers: int | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x float32 (B, ...), y) batches; shuffled with ``generator`` when one is given, else in order; read by
        ``workers`` processes (None: ``self.workers``); ``drop_last``: without the last batch if it is smaller.

        The permutation is drawn here, once per pass, exactly as the tensor path draws it (RandomSampler
        would draw a second one per epoch and desynchronise the two paths)."""
        order = torch.randperm(len(self), generator=generator).tolist() if generator is not None else None
        workers = self.workers if workers is None else workers
        if self._keep and workers > 0:
            loader, passes = self._kept_loader(batch_size, workers, drop_last)
            # The pass's seed, drawn from torch's global generator as a DataLoader draws each new iterator's: its
            # workers reseed from it when the pass reaches them, so a random transform in them draws what a fresh
            # DataLoader's workers would every epoch, and a resumed run (whose workers start at its first epoch)
            # draws what the run it continues did.
            passes.order, passes.seed = order, int(torch.empty((), dtype=torch.int64).random_().item())
            yield from loader
            return
        loader = DataLoader(Subset(self.dataset, self.indices.tolist()), batch_size=batch_size, sampler=order,
                            collate_fn=self._collate, num_workers=workers, pin_memory=self.pin_memory,
                            drop_last=drop_last)
        yield from loader

    @contextlib.contextmanager
    def workers_kept(self) -> Iterator[None]:
        """Inside, the passes read by worker processes share one DataLoader whose workers stay up between them
        (``persistent_workers``); on leaving, they stop. Outside, each pass starts and stops its own."""
        self._keep = True
        try:
            yield
        finally:
            self._keep = False
            self._stop_workers()

    def _kept_loader(self, batch_size: int, workers: int, drop_last: bool) -> tuple[DataLoader, _PassOrder]:
        key = (batch_size, workers, self.pin_memory, drop_last)
        if self._kept is None or self._kept[0] != key:  # another batch size (an evaluation's): other workers
            self._stop_workers()
            passes = _PassOrder(len(self))
            loader = DataLoader(_Reseeded(self.dataset, self.indices.tolist()), batch_size=batch_size,
                                sampler=passes, collate_fn=self._collate, num_workers=workers,
                                pin_memory=self.pin_memory, persistent_workers=True, drop_last=drop_last,
                                generator=torch.Generator())  # its own start seed: the global generator untouched
            self._kept = (key, loader, passes)
        return self._kept[1], self._kept[2]

    def _stop_workers(self) -> None:
        if self._kept is None:
            return
        loader = self._kept[1]
        self._kept = None
        # as Lightning's teardown does: the workers stop now, not whenever the loader is collected (a suspended
        # pass over it, left by an exception, would keep them up)
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        loader._iterator = None

    def _collate(self, items: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        # a Dataset may hand out tensors on a GPU: batches are built on the CPU and moved by the loop, as in memory
        # anything else as NumPy reads it (a PIL image, nested lists, an array), copied: a PIL image's is read-only
        xs = torch.stack([(x.cpu().to(torch.float32) if isinstance(x, torch.Tensor) else
                           torch.from_numpy(np.array(x, dtype=np.float32))).reshape(self.example_shape)
                          for x, _ in items])
        return xs, self.encode([_scalar(y) for _, y in items])

    def head(self, n: int) -> Split:
        """The first ``n`` examples as tensors (probe batches, pictures)."""
        x, y = next(iter(self.batches(min(n, len(self)), workers=0)))  # one batch: no processes to start
        return Split(x, y)

    def read_once(self) -> Split:
        """Every example, read once into tensors: a validation split of a dataset whose examples change between
        reads stays the same set of examples for every epoch's score."""
        x, y = zip(*self.batches(1024))
        return Split(torch.cat(x), torch.cat(y))


class _PassOrder(Sampler[tuple[int, int]]):
    """The examples of the next pass over a kept DataLoader, in its order (None: in order), each with the pass's
    seed; both set before each pass. The main process draws the keys from it and hands them to the workers, so
    they need not start again."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.order: list[int] | None = None
        self.seed = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.seed, k) for k in (self.order if self.order is not None else range(self.n)))

    def __len__(self) -> int:
        return self.n


class _Reseeded(Dataset):
    """``dataset[indices[k]]`` for the key (seed, k). A worker that meets a new pass's seed first reseeds as a
    DataLoader worker does at its start (``random``, torch and NumPy from seed + worker id)."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices
        self.seed: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        seed, k = key
        self._reseed(seed)
        return self.dataset[self.indices[k]]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """A batch at once where the dataset reads batches at once (as Subset passes them on: a Hugging Face one)."""
        self._reseed(keys[0][0])
        many = getattr(self.dataset, "__getitems__", None)
        picked = [self.indices[k] for _, k in keys]
        return list(many(picked)) if callable(many) else [self.dataset[i] for i in picked]

    def _reseed(self, seed: int) -> None:
        if seed != self.seed:
            self.seed = seed
            info = torch.utils.data.get_worker_info()
            mine = seed + (info.id if info is not None else 0)
            random.seed(mine)
            torch.manual_seed(mine)
            np.random.seed(mine % 2**32)


class IterableSplit(DatasetSplit):
    """A split of an ``IterableDataset`` whose examples change between passes (a random transform), kept as the
    positions of its examples in the dataset's own order. Each pass reads the dataset afresh, in this process (a
    DataLoader worker would hand out every example again: each holds a copy), into tensors — it fit in memory on the
    first pass — and hands them out shuffled as the tensor path shuffles, since an IterableDataset in a steady order
    may well be sorted (one class after another) and cannot be indexed."""

    def batches(self, batch_size: int, generator: torch.Generator | None = None, workers: int | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x float32 (B, ...), y) batches of this pass's draws: in ``randperm(n, generator)`` order, else in the
        dataset's; ``drop_last``: without the last batch if it is smaller."""
        x, y = self._read_pass()
        order = torch.randperm(len(x), generator=generator) if generator is not None else None
        for i in range(0, trained_examples(len(x), batch_size, drop_last), batch_size):
            if order is None:
                yield x[i:i + batch_size], y[i:i + batch_size]
            else:  # gathers as the tensor path's (train.loop.batches): index_select, no per-example Python
                idx = order[i:i + batch_size]
                yield x.index_select(0, idx), y.index_select(0, idx)

    def _positions(self, batch_size: int) -> DataLoader:
        """This split's examples in the dataset's order, batched, read in this process."""
        return DataLoader(_Positions(self.dataset, self.indices), batch_size=batch_size, collate_fn=self._collate)

    def _read_pass(self) -> tuple[torch.Tensor, torch.Tensor]:
        chunks = list(self._positions(1024))
        if not chunks:
            return torch.empty((0, *self.example_shape)), torch.empty(0)
        x, y = zip(*chunks)
        return torch.cat(x), torch.cat(y)

    def head(self, n: int) -> Split:
        """The first ``n`` examples as tensors (probe batches, pictures): read up to them, not a whole pass."""
        x, y = next(iter(self._positions(min(n, len(self)))))
        return Split(x, y)

    @contextlib.contextmanager
    def workers_kept(self) -> Iterator[None]:
        yield  # read in this process: no workers to keep


class _Positions(torch.utils.data.IterableDataset):
    """The examples of ``dataset`` at ``positions`` (sorted), in its order; a pass ends after the last of them."""

    def __init__(self, dataset: Any, positions: torch.Tensor) -> None:
        self.dataset = dataset
        self.wanted = frozenset(positions.tolist())
        self.last = max(self.wanted, default=-1)

    def __iter__(self) -> Iterator[Any]:
        if self.last < 0:
            return
        for i, item in enumerate(self.dataset):
            if i in self.wanted:
                yield item
            if i >= self.last:
                return


def read_targets(dataset: Dataset, n: int, workers: int = 0) -> np.ndarray:
    """All raw targets of a map-style dataset: its ``targets`` attribute when it has one (torchvision style),
    else one pass over the examples (the rest of it by ``workers`` processes where that pays, see worth_workers)."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == n:
        return np.asarray(targets.tolist() if isinstance(targets, torch.Tensor) else targets)
    ys: list[Any] = []
    start = time.perf_counter()
    for i in range(n):
        ys.append(_scalar(dataset[i][1]))
        if worth_workers(i + 1, n, time.perf_counter() - start, workers):
            for _, _, more in read_with_workers(dataset, range(i + 1, n), workers, _labels):
                ys.extend(more)
            break
    return np.asarray(ys)


def _labels(index: list[int], items: list[Any]) -> tuple[int, None, list[Any]]:
    return index[0], None, [_scalar(item[1]) for item in items]


# A dataset read once is read in this process for at least SOLO_SECONDS; then the rest goes to the workers if this
# process would take WORKERS_PAY_AFTER more seconds on it (starting a worker: ~0.05 s by fork, ~2 s by spawn or
# forkserver, which start a Python that imports torch and unpickles the dataset).
SOLO_SECONDS = 0.25
WORKERS_PAY_AFTER = {"fork": 1.0}
WORKERS_PAY_AFTER_DEFAULT = 5.0
READ_BATCH = 64  # examples a worker reads and converts per message: one transfer per batch, not per example


def worth_workers(done: int, total: int, elapsed: float, workers: int) -> bool:
    """Whether the rest of a one-time read (``done`` of ``total`` examples read here in ``elapsed`` seconds) goes to
    ``workers`` processes: it would take this process long enough to pay for starting them."""
    if workers <= 0 or done >= total or elapsed < SOLO_SECONDS:
        return False
    pays_after = WORKERS_PAY_AFTER.get(multiprocessing.get_context().get_start_method(), WORKERS_PAY_AFTER_DEFAULT)
    return elapsed / done * (total - done) >= pays_after


class _Failed:
    """An exception raised in a worker, sent back as a value so that this process raises it as it was (DataLoader
    would wrap it in a many-line 'Caught ... in DataLoader worker process' message). One that does not pickle
    comes back as a RuntimeError with its type and message."""

    def __init__(self, exc: BaseException, first: int, last: int) -> None:
        try:
            self.exc: BaseException = pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001  (an exception class pickle cannot rebuild)
            self.exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        self.first, self.last = first, last


class _Converted(Dataset):
    """A batch of examples at given indices, read and turned by ``convert(indices, items)`` into one value in the
    worker that read them (stacked tensors: one transfer, where single examples would each be one)."""

    def __init__(self, dataset: Dataset, convert: Callable[[list[int], list[Any]], Any]) -> None:
        self.dataset, self.convert = dataset, convert

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitems__(self, index: list[int]) -> Any:
        try:
            many = getattr(self.dataset, "__getitems__", None)
            items = many(index) if many is not None else [self.dataset[i] for i in index]
            return self.convert(index, list(items))
        except Exception as exc:  # noqa: BLE001  (raised by the main process, see _Failed)
            return _Failed(exc, index[0], index[-1])

    def __getitem__(self, i: int) -> Any:
        return self.__getitems__([i])


def _unchanged(value: Any) -> Any:
    return value


def read_with_workers(dataset: Dataset, indices: range, workers: int,
                      convert: Callable[[list[int], list[Any]], Any]) -> Iterator[Any]:
    """``convert(batch_indices, items)`` of consecutive batches of ``indices``, in order, read by ``workers`` processes.

    An exception raised reading or converting a batch is raised here as it was, with a note naming the examples."""
    batches = [list(indices[k:k + READ_BATCH]) for k in range(0, len(indices), READ_BATCH)]
    loader = DataLoader(_Converted(dataset, convert), batch_sampler=batches, num_workers=min(workers, len(batches)),
                        collate_fn=_unchanged)
    for value in loader:
        if isinstance(value, _Failed):
            value.exc.add_note(f"(raised by a DataLoader worker reading examples {value.first}..{value.last})")
            raise value.exc
        yield value


def _scalar(y: Any) -> Any:
    if isinstance(y, torch.Tensor):
        return y.item() if y.numel() == 1 else y.tolist()
    return y
