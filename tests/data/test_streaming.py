import os

import pytest
import torch
from torch.utils.data import Dataset

from trainlab.data.streaming import DatasetSplit
from tests.conftest import alive


class Numbered(Dataset):
    """Example i is the number i; each read leaves the reading process's id in ``folder``."""

    def __init__(self, n, folder):
        self.n, self.folder = n, folder

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        (self.folder / str(os.getpid())).touch()
        return torch.tensor([float(i)]), i % 2


def _split(n, folder):
    split = DatasetSplit(Numbered(n, folder), torch.arange(n), lambda ys: torch.tensor(ys), (1,))
    split.workers = 2
    return split


def _pass(split, seed, batches=None):
    got = []
    for k, (x, _) in enumerate(split.batches(8, torch.Generator().manual_seed(seed))):
        if k == batches:
            break
        got += x[:, 0].long().tolist()
    return got


def test_kept_workers_serve_every_pass_in_its_own_order_and_stop_on_leaving(tmp_path):
    split = _split(40, tmp_path)
    expected = {seed: torch.randperm(40, generator=torch.Generator().manual_seed(seed)).tolist() for seed in (1, 2, 3)}
    with split.workers_kept():
        assert _pass(split, 1, batches=1) == expected[1][:8]  # a pass left after one batch (a stop mid-epoch)
        assert _pass(split, 2) == expected[2]  # the next pass: every example once, in its own order
        assert _pass(split, 3) == expected[3]
        readers = {int(p.name) for p in tmp_path.iterdir()}
        assert os.getpid() not in readers and len(readers) == 2, readers  # the same 2 processes for 3 passes
        assert all(alive(pid) for pid in readers)
    assert not [pid for pid in readers if alive(pid)], "the workers outlived workers_kept()"
    assert _pass(split, 2) == expected[2]  # outside, a pass starts its own workers again
    assert len({int(p.name) for p in tmp_path.iterdir()}) == 4


class Batched(Numbered):
    """One that reads a batch at once (``__getitems__``, as a Hugging Face dataset does)."""

    def __getitems__(self, indices):
        (self.folder / f"batch-{len(indices)}").touch()
        return [(torch.tensor([float(i)]), i % 2) for i in indices]


def test_kept_workers_read_a_batch_at_once_where_the_dataset_can(tmp_path):
    split = DatasetSplit(Batched(24, tmp_path), torch.arange(24), lambda ys: torch.tensor(ys), (1,))
    split.workers = 2
    with split.workers_kept():
        assert _pass(split, 1) == torch.randperm(24, generator=torch.Generator().manual_seed(1)).tolist()
    assert {p.name for p in tmp_path.iterdir()} == {"batch-8"}  # 3 batches of 8, never one example at a time


def test_without_kept_workers_each_pass_starts_its_own(tmp_path):
    split = _split(16, tmp_path)
    for seed in (1, 2):
        _pass(split, seed)
    assert len({int(p.name) for p in tmp_path.iterdir()}) == 4


class Noisy(Dataset):
    """A random transform in ``__getitem__``, drawn from torch's generator of the process that reads it."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.3 * torch.randn(self.x[i].shape), int(self.y[i])


class NoisyStream(torch.utils.data.IterableDataset):
    """The same as an IterableDataset (read afresh every epoch, in the training process)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return ((x + 0.3 * torch.randn(x.shape), int(y)) for x, y in zip(self.x, self.y))


@pytest.mark.parametrize("kind, workers", [(Noisy, 2), (NoisyStream, 0)], ids=["kept-workers", "iterable"])
def test_a_run_reading_random_draws_afresh_resumes_exactly(tmp_path, kind, workers):
    from trainlab.config import resolve_config
    from trainlab.data.memory import bundle_from_data
    from trainlab.train.run import resume, train

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] > 0).long()
    base = {"out_dir": str(tmp_path), "tensorboard": False, "data.name": "memory", "model.hidden": [16],
            "model.dropout": 0.3, "optimizer.lr": 0.1, "batch_size": 16, "epochs": 4, "speed.workers": workers}
    # the transform's draws (in the workers, or here) and the dropout masks must continue where they were
    full = train(resolve_config(overrides=base), bundle=bundle_from_data(kind(x, y), val=0.25), verbose=False)
    assert full.summary["streamed"]["workers"] == workers
    half = train(resolve_config(overrides={**base, "epochs": 2}), bundle=bundle_from_data(kind(x, y), val=0.25),
                 verbose=False)
    rest = resume(half.run_dir, overrides={"epochs": 4}, verbose=False, bundle=bundle_from_data(kind(x, y), val=0.25))
    assert [h["train_loss"] for h in rest.history] == [h["train_loss"] for h in full.history]


class NumberedStream(torch.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter([(torch.tensor([float(i)]), i % 2) for i in range(self.n)])


@pytest.mark.parametrize("how", ["here", "workers", "kept workers", "iterable"])
def test_drop_last_leaves_out_a_pass_s_smaller_last_batch(tmp_path, how):
    from trainlab.data.streaming import IterableSplit

    if how == "iterable":
        split = IterableSplit(NumberedStream(30), torch.arange(30), lambda ys: torch.tensor(ys), (1,))
    else:
        split = _split(30, tmp_path)
        split.workers = 0 if how == "here" else 2
    with split.workers_kept() if how == "kept workers" else __import__("contextlib").nullcontext():
        for seed in (1, 2):
            sizes, rows = [], []
            for x, _ in split.batches(8, torch.Generator().manual_seed(seed), drop_last=True):
                sizes.append(len(x))
                rows += x[:, 0].long().tolist()
            assert sizes == [8, 8, 8] and len(set(rows)) == 24  # 30 = 3 x 8 + 6: the 6 left out
        assert [len(x) for x, _ in split.batches(8)] == [8, 8, 8, 6]  # and kept without it
