import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset

from trainlab.data import Split, Standardizer, split_indices
from trainlab.data import memory
from trainlab.data.memory import bundle_from_data
from trainlab.errors import ConfigError, DataError

N = 60


def _xy(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, 0] = np.arange(n)  # a row id, so tests can tell which examples landed where
    return x, np.arange(n) % 3


class PairDataset(Dataset):
    """Map-style (x, y) pairs that count how often they are read."""

    def __init__(self, x, y):
        self.x, self.y, self.calls = x, y, 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.calls += 1
        return torch.as_tensor(self.x[i]), self.y[i]


class PairStream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


def _frame(x, y, target="label"):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    df[target] = y
    return df


def _forms(x: np.ndarray, y: np.ndarray) -> dict:
    return {
        "tensors": lambda: ((torch.as_tensor(x), torch.as_tensor(y)), {}),
        "numpy": lambda: ((x, y), {}),
        "lists": lambda: ((x.tolist(), y.tolist()), {}),
        "dataframe": lambda: (_frame(x, y), {"target": "label"}),
        "dataset": lambda: (PairDataset(x, y), {}),
        "iterable": lambda: (PairStream(torch.as_tensor(x), torch.as_tensor(y)), {}),
    }


@pytest.mark.parametrize("kind", ["tensors", "numpy", "lists", "dataframe", "dataset", "iterable"])
def test_every_form_gives_the_same_bundle(kind):
    x, y = _xy()
    ref = bundle_from_data((torch.as_tensor(x), torch.as_tensor(y)), val=0.2, seed=3)
    data, kw = _forms(x, y)[kind]()
    b = bundle_from_data(data, val=0.2, seed=3, **kw)
    for got, want in ((b.train, ref.train), (b.val, ref.val)):
        assert got.x.dtype == torch.float32 and got.y.dtype == torch.int64
        assert torch.equal(got.x, want.x) and torch.equal(got.y, want.y)
    assert (b.task, b.n_classes, b.class_names, b.input_shape) == ("classification", 3, ["0", "1", "2"], (3,))
    assert b.meta == {"source": "memory", "kind": kind}
    assert b.feature_names == (["a", "b", "c"] if kind == "dataframe" else None)
    # The examples themselves: train + val together are exactly the input rows.
    ids = torch.cat([b.train.x[:, 0], b.val.x[:, 0]]).long().sort().values
    assert torch.equal(ids, torch.arange(N))


def test_text_labels_map_to_sorted_ids_and_names():
    x, _ = _xy(6)
    labels = np.array(["dog", "cat", "ant", "dog", "cat", "ant"])
    b = bundle_from_data((x, labels), val=(x[:2], labels[:2]))  # explicit val: train keeps the row order
    assert b.class_names == ["ant", "cat", "dog"] and b.n_classes == 3
    assert b.train.y.tolist() == [2, 1, 0, 2, 1, 0]
    assert [b.class_names[i] for i in b.train.y] == labels.tolist()
    obj = labels.astype(object)  # pandas-style object column
    assert torch.equal(bundle_from_data((x, obj), val=(x[:2], obj[:2])).train.y, b.train.y)


def test_integer_labels_kept_when_already_dense_else_remapped_numerically():
    x, _ = _xy(6)
    b = bundle_from_data((x, [0, 1, 2, 0, 1, 2]), val=(x[:2], [0, 1]))
    assert b.train.y.tolist() == [0, 1, 2, 0, 1, 2] and b.class_names == ["0", "1", "2"]
    b = bundle_from_data((x, [10, 2, 10, 2, 10, 2]), val=(x[:2], [10, 2]))
    assert b.class_names == ["2", "10"] and b.train.y.tolist() == [1, 0, 1, 0, 1, 0]
    assert b.val.y.tolist() == [1, 0]


@pytest.mark.parametrize("y, task, names", [
    (np.arange(40) % 4, "classification", ["0", "1", "2", "3"]),
    (np.arange(40) % 2 == 0, "classification", ["False", "True"]),
    ((np.arange(40) % 5).astype(np.float32), "classification", ["0", "1", "2", "3", "4"]),
    ((np.arange(40) % 21).astype(np.float64), "regression", None),  # 21 whole values: a quantity
    (np.linspace(-1, 1, 40), "regression", None),
    (np.array(["yes", "no"] * 20), "classification", ["no", "yes"]),
])
def test_task_inference(y, task, names):
    x, _ = _xy(40)
    b = bundle_from_data((x, y), val=0.25)
    assert b.task == task and b.class_names == names
    if task == "regression":
        assert b.n_classes is None and b.train.y.dtype == torch.float32 and b.train.y.shape == (30,)
    else:
        assert b.n_classes == len(names) and b.train.y.dtype == torch.int64


def test_multi_target_regression_keeps_columns_and_dataframe_names_target():
    x, _ = _xy(40)
    y = np.stack([x[:, 1] * 2, x[:, 2] - 1], axis=1)
    b = bundle_from_data((x, y), val=0.25)
    assert b.task == "regression" and b.train.y.shape == (30, 2) and b.n_outputs == 2
    b = bundle_from_data(_frame(x, x[:, 1] * 0.5, target="price"), target="price")
    assert b.target_names == ["price"] and b.feature_names == ["a", "b", "c"]
    assert torch.allclose(b.train.y, b.train.x[:, 1] * 0.5)


def test_forced_task():
    x, _ = _xy(40)
    b = bundle_from_data((x, np.arange(40) % 3), task="regression")
    assert b.task == "regression" and b.train.y.dtype == torch.float32
    b = bundle_from_data((x, (np.arange(40) % 30).astype(float)), task="classification")
    assert b.task == "classification" and b.n_classes == 30
    with pytest.raises(DataError, match=r"y must be whole-number class labels for task='classification'\. Got 0\.5"):
        bundle_from_data((x, np.full(40, 0.5)), task="classification")
    with pytest.raises(DataError, match=r"y must be numbers for task='regression'\. Got 'a'"):
        bundle_from_data((x, np.array(["a", "b"] * 20)), task="regression")
    with pytest.raises(ConfigError, match=r"task must be one of auto, classification, regression\. Got 'class'"):
        bundle_from_data((x, np.arange(40) % 3), task="class")


def test_input_shapes_images_kept_and_1d_made_a_column():
    b = bundle_from_data((torch.rand(20, 1, 4, 4), torch.arange(20) % 2), val=0.2)
    assert b.input_shape == (1, 4, 4) and b.train.x.shape == (16, 1, 4, 4)
    b = bundle_from_data((np.arange(20.0), np.arange(20) % 2), val=0.2)
    assert b.input_shape == (1,) and b.train.x.shape == (16, 1)
    b = bundle_from_data((torch.arange(20, dtype=torch.uint8), torch.arange(20) % 2), val=0.2)
    assert b.train.x.dtype == torch.float32 and set(b.train.x.flatten().tolist()) <= set(range(20))


def test_val_fraction_size_stratified_and_deterministic():
    x, _ = _xy(100)
    y = np.array([0] * 80 + [1] * 20)
    b = bundle_from_data((x, y), val=0.2, seed=5)
    assert len(b.val) == 20 and len(b.train) == 80
    assert int((b.val.y == 1).sum()) == 4  # 20 % of each class
    keep, held = split_indices(100, 0.2, seed=5, labels=torch.as_tensor(y))
    assert torch.equal(b.val.x[:, 0].long(), held) and torch.equal(b.train.x[:, 0].long(), keep)
    again = bundle_from_data((x, y), val=0.2, seed=5)
    other = bundle_from_data((x, y), val=0.2, seed=6)
    assert torch.equal(again.val.x, b.val.x) and not torch.equal(other.val.x, b.val.x)
    plain = bundle_from_data((x, y), val=0.2, seed=5, stratify=False)
    _, held = split_indices(100, 0.2, seed=5)
    assert torch.equal(plain.val.x[:, 0].long(), held)


def test_explicit_val_uses_the_training_class_mapping():
    x, _ = _xy(6)
    labels = np.array(["ant", "cat", "dog"] * 2)
    b = bundle_from_data((x, labels), val=(x[:2], np.array(["dog", "dog"])))
    assert b.val.y.tolist() == [2, 2] and len(b.train) == 6  # "dog" is class 2, not class 0
    with pytest.raises(DataError, match=r"val y must be one of the training classes \['ant', 'cat', 'dog'\]\. "
                                        r"Got 'emu'\. Found at row index 1"):
        bundle_from_data((x, labels), val=(x[:2], np.array(["dog", "emu"])))
    with pytest.raises(DataError, match=r"val y must be one of the training classes.*Got 3"):
        bundle_from_data((x, [0, 1, 2] * 2), val=(x[:2], [1, 3]))
    with pytest.raises(DataError, match=r"val X must be shaped \(N, 3\) like the training inputs\. Got shape \(2, 2\)"):
        bundle_from_data((x, labels), val=(x[:2, :2], labels[:2]))


def test_explicit_val_dataframe_columns_matched_by_name():
    x, y = _xy(30)
    df = _frame(x, y)
    b = bundle_from_data(df, target="label", val=df.iloc[:5][["label", "c", "a", "b"]])
    assert torch.equal(b.val.x, b.train.x[:5])
    with pytest.raises(DataError, match=r"val DataFrame columns must be a superset of the training feature columns\. Got no column 'b'\."):
        bundle_from_data(df, target="label", val=df.iloc[:5].drop(columns="b"))


def test_test_set_sealed_and_read_only_when_opened():
    x, y = _xy()
    test_ds = PairDataset(x[:9], np.array(["x", "y", "z"] * 3))
    b = bundle_from_data((x, np.array(["x", "y", "z"] * 20)), test=test_ds)
    assert b.test.opened == 0 and test_ds.calls == 0  # not even converted
    split = b.test.open()
    assert b.test.opened == 1 and test_ds.calls == 9
    assert split.y.tolist() == [0, 1, 2] * 3 and torch.equal(split.x, torch.as_tensor(x[:9], dtype=torch.float32))
    b.test.open()
    assert test_ds.calls == 9  # cached: read once


def test_test_problems_refused_before_training_and_missing_test_says_so():
    x, y = _xy()
    # Arrays: the shape and the labels are checked at once (before a run directory exists), no input is converted.
    with pytest.raises(DataError, match=r"test y must be one of the training classes.*Got 7"):
        bundle_from_data((x, y), test=(x[:4], [0, 1, 2, 7]))
    with pytest.raises(DataError, match=r"test X must be shaped \(N, 3\) like the training inputs\. Got shape \(4, 5\)"):
        bundle_from_data((x, y), test=(np.zeros((4, 5)), [0, 1, 2, 0]))
    with pytest.raises(DataError, match=r"test X must be at least one example\. Got 0 rows"):
        bundle_from_data((x, y), test=(np.zeros((0, 3)), []))
    with pytest.raises(DataError, match=r"test y must be one target per row of test X\. Got 3 targets for 4 rows"):
        bundle_from_data((x, y), test=(x[:4], [0, 1, 2]))
    holes = x[:4].copy()
    holes[2, 1] = np.nan
    for bad in (holes, torch.as_tensor(holes)):  # float inputs: their NaN/Inf too (one sum, nothing converted)
        with pytest.raises(DataError, match=r"test X must be finite\. Got NaN or Inf in 1 row, the first at row index 2"):
            bundle_from_data((x, y), test=(bad, [0, 1, 2, 0]))
    # A Dataset stays sealed (not read) until the final evaluation opens it: its problems surface there.
    test_ds = PairDataset(x[:4], np.array([0, 1, 2, 7]))
    b = bundle_from_data((x, y), test=test_ds)
    assert test_ds.calls == 0
    with pytest.raises(DataError, match=r"test y must be one of the training classes.*Got 7"):
        b.test.open()
    with pytest.raises(DataError, match=r"test must be .*Got the string 'mnist'"):
        bundle_from_data((x, y), test="mnist")  # the type is checked at once
    assert b.test.available
    b = bundle_from_data((x, y))
    assert not b.test.available
    with pytest.raises(DataError, match=r"test must be given .*no test set was given\. Pass test=\(X_test, y_test\)"):
        b.test.open()


def test_normalize_uses_training_statistics_only():
    x, y = _xy()
    x_test = x[:5] + 100.0
    raw = bundle_from_data((x, y), val=0.25, seed=1)
    b = bundle_from_data((x, y), val=0.25, seed=1, normalize=True, test=(x_test, y[:5]))
    std = Standardizer.fit(raw.train.x)
    assert b.stats["normalize"] == std.state_dict()
    assert torch.allclose(b.train.x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(b.val.x, std(raw.val.x))
    assert torch.allclose(b.test.open().x, std(torch.as_tensor(x_test, dtype=torch.float32)))
    assert raw.stats == {} and torch.equal(raw.val.x, torch.as_tensor(x, dtype=torch.float32)[raw.val.x[:, 0].long()])


def test_map_dataset_too_big_streams_and_an_iterable_one_is_refused():
    from trainlab.data.streaming import DatasetSplit

    x, y = _xy()
    ds = PairDataset(x, y)
    bundle = bundle_from_data(ds, max_bytes=1000)  # 60 samples x 20 bytes: read batch by batch instead
    assert bundle.meta["kind"] == "stream" and isinstance(bundle.train, DatasetSplit)
    assert len(bundle.train) + len(bundle.val) == 60 and bundle.n_classes == 3
    assert ds.calls <= 2 + 60  # the size probe and one pass for the labels: nothing held in memory
    xb, yb = next(iter(bundle.train.batches(8)))
    assert xb.shape == (8, *bundle.input_shape) and yb.dtype == torch.int64
    with pytest.raises(DataError, match=r"data must be at most max_bytes=100 bytes.*Got more than 5 samples"):
        bundle_from_data(PairStream(torch.as_tensor(x), torch.as_tensor(y)), max_bytes=100)


class NoisyPairs(PairDataset):
    """A random transform in __getitem__, as torchvision's RandomCrop: another x on every read."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + 0.1 * torch.randn(x.shape, dtype=x.dtype), y


class CoinFlipPairs(PairDataset):
    """RandomHorizontalFlip's kind: half the reads hand out the example unchanged."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return (-x if torch.rand(()) < 0.5 else x), y


class RarePairs(PairDataset):
    """RandomErasing(p=0.1)'s kind: 9 reads in 10 hand out the example unchanged."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return (torch.zeros_like(x) if torch.rand(()) < 0.1 else x), y


def test_a_dataset_whose_examples_change_between_reads_is_streamed_and_its_carved_val_read_once():
    from trainlab.data.streaming import DatasetSplit

    x, y = _xy()
    torch.manual_seed(0)
    for ds in (NoisyPairs(x, y), CoinFlipPairs(x, y)):
        bundle = bundle_from_data(ds, val=0.2)
        assert bundle.meta["streamed"] == memory.STREAMED_RANDOM and isinstance(bundle.train, DatasetSplit)
        assert isinstance(bundle.val, Split) and len(bundle.train) + len(bundle.val) == N  # one fixed val set
        before = ds.calls
        first = torch.cat([xb for xb, _ in bundle.train.batches(16)])
        second = torch.cat([xb for xb, _ in bundle.train.batches(16)])
        assert ds.calls - before == 2 * len(bundle.train)  # every pass reads every training example again
        assert not torch.equal(first, second)  # fresh draws, of the same examples in the same order:
        if isinstance(ds, CoinFlipPairs):
            assert torch.equal(first.abs(), second.abs())
        else:
            assert (first - second).abs().max() < 1.0

    rare = RarePairs(x, y)  # drawn for 1 read in 10: seen in one of the first examples read twice
    assert bundle_from_data(rare, val=0.2).meta["streamed"] == memory.STREAMED_RANDOM

    with pytest.raises(ConfigError, match=r"^normalize must be False for a dataset read batch by batch, as this one "
                                          r"is: its examples change between reads .* Normalise inside the Dataset"):
        bundle_from_data(NoisyPairs(x, y), normalize=True)

    same = PairDataset(x, y)  # the same example on every read: read once into tensors, as before
    bundle = bundle_from_data(same, val=0.2)
    assert isinstance(bundle.train, Split) and "streamed" not in bundle.meta
    assert same.calls <= N + 1 + 2 * memory._PROBES  # one pass, the size probe, the first examples read twice
    x[0, 1] = np.nan  # NaN where NaN was is the same example: materialised, then refused for its NaN
    with pytest.raises(DataError, match=r"must be finite.*row index 0"):
        bundle_from_data(PairDataset(x, y))


class NoisyStream(PairStream):
    """An IterableDataset with a random transform: the same examples in the same order, another x every pass."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return ((x + 0.1 * torch.randn(x.shape, dtype=x.dtype), y) for x, y in zip(self.x, self.y))


class ShuffledStream(NoisyStream):
    """One that shuffles itself every pass (so each pass hands out other x at each position): it cannot be split by
    position."""

    def __iter__(self):
        order = torch.randperm(len(self.x))
        return iter(zip(self.x[order], self.y[order]))


def test_an_iterable_dataset_whose_examples_change_is_read_afresh_every_epoch_at_its_training_positions():
    from trainlab.data.streaming import IterableSplit

    x, y = _xy()
    torch.manual_seed(0)
    ds = NoisyStream(torch.as_tensor(x), torch.as_tensor(y))
    bundle = bundle_from_data(ds, val=0.2)
    assert bundle.meta["streamed"] == memory.STREAMED_RANDOM and isinstance(bundle.train, IterableSplit)
    held = bundle.val.x[:, 0].round().long()  # row ids: the examples the one first pass put aside
    assert len(bundle.train) + len(bundle.val) == N and len(held) == 12
    # the same carve as a frozen read of the same data would make (stratified, seeded)
    frozen = bundle_from_data(PairStream(torch.as_tensor(x), torch.as_tensor(y)), val=0.2)
    assert torch.equal(held.sort().values, frozen.val.x[:, 0].round().long().sort().values)
    passes = ds.passes
    first = torch.cat([xb for xb, _ in bundle.train.batches(16)])
    second = torch.cat([xb for xb, _ in bundle.train.batches(16)])
    assert ds.passes - passes == 2  # one pass over the dataset each
    ids = first[:, 0].round().long()
    assert torch.equal(ids, second[:, 0].round().long()) and len(ids) == 48  # the training rows, in its order
    assert not set(ids.tolist()) & set(held.tolist())  # never a validation example
    assert not torch.equal(first, second)  # fresh draws
    ys = torch.cat([yb for _, yb in bundle.train.batches(16)])
    assert torch.equal(ys, torch.as_tensor(y)[ids])
    # shuffled as the tensor path shuffles (an iterable may come sorted by class): the same permutation
    mixed = torch.cat([xb for xb, _ in bundle.train.batches(16, torch.Generator().manual_seed(5))])
    assert torch.equal(mixed[:, 0].round().long(), ids[torch.randperm(48, generator=torch.Generator().manual_seed(5))])
    assert ds.passes - passes == 4

    with pytest.raises(ConfigError, match=r"^normalize must be False for a dataset read afresh every epoch"):
        bundle_from_data(NoisyStream(torch.as_tensor(x), torch.as_tensor(y)), normalize=True)
    explicit = bundle_from_data(NoisyStream(torch.as_tensor(x), torch.as_tensor(y)), val=(x[:5], y[:5]))
    assert isinstance(explicit.train, IterableSplit) and len(explicit.train) == N  # every position trains

    # a stream that shuffles itself: read once into tensors (and shuffled by the loop), as before
    shuffled = bundle_from_data(ShuffledStream(torch.as_tensor(x), torch.as_tensor(y)), val=0.2)
    assert isinstance(shuffled.train, Split) and "streamed" not in shuffled.meta
    given = bundle_from_data(ShuffledStream(torch.as_tensor(x), torch.as_tensor(y)), val=(x[:5], y[:5]))
    assert isinstance(given.train, IterableSplit) and len(given.train) == N  # nothing to carve: every pass trains
    steady = bundle_from_data(PairStream(torch.as_tensor(x), torch.as_tensor(y)), val=0.2)  # the same every pass
    assert isinstance(steady.train, Split) and "streamed" not in steady.meta
    once = bundle_from_data(OneShotStream(torch.as_tensor(x), torch.as_tensor(y)), val=0.2)  # readable once only
    assert len(once.train) + len(once.val) == N  # not one example spent on asking whether it changes


class OneShotStream(PairStream):
    """``__iter__`` hands back one generator: the stream can be read once (a socket, a generator passed along)."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.it = iter(zip(x, y))

    def __iter__(self):
        return self.it


class FlippedImages(Dataset):
    """PIL images under a random flip, as a torchvision dataset without ToTensor hands them out."""

    def __init__(self, n: int = 40):
        self.x = np.random.default_rng(0).integers(0, 256, (n, 6, 5), dtype=np.uint8)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.x[i])
        return (img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if torch.rand(()) < 0.5 else img), i % 2


def test_pil_images_under_a_random_flip_stream_as_float_batches_of_their_shape():
    torch.manual_seed(0)
    bundle = bundle_from_data(FlippedImages(), val=0.25)
    assert bundle.meta["streamed"] == memory.STREAMED_RANDOM and bundle.input_shape == (6, 5)
    xb, yb = next(iter(bundle.train.batches(8)))
    assert xb.dtype == torch.float32 and xb.shape == (8, 6, 5) and set(yb.tolist()) == {0, 1}
    assert bundle.val.x.shape == (10, 6, 5)


def test_progress_bar_shown_when_asked(monkeypatch):
    shown = []
    real = memory._progress

    advanced = []

    @contextmanager
    def spy(description, total, show):
        shown.append((total, show))
        with real(description, total, show) as advance:
            yield lambda n: (advanced.append(n), advance(n))

    monkeypatch.setattr(memory, "_progress", spy)
    x, y = _xy()
    a = bundle_from_data(PairDataset(x, y), progress=True)
    b = bundle_from_data(PairDataset(x, y), progress=False)
    assert shown == [(N, True), (N, False)] and torch.equal(a.train.x, b.train.x)
    assert sum(advanced) == 2 * N  # the bar reaches its total
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    bundle_from_data(PairDataset(x, y))
    assert shown[-1] == (N, False)


def test_pandas_is_not_imported_by_the_module():
    code = "import sys, trainlab.data.memory; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_form_errors():
    x, y = _xy()
    with pytest.raises(DataError, match=r"data must be \(X, y\) with the targets\. Got X alone \(ndarray shaped \(60, 3\)\)"):
        bundle_from_data(x)
    with pytest.raises(DataError, match=r"data must be \(X, y\) as torch tensors.*Got dict\. Convert"):
        bundle_from_data({"x": x, "y": y})
    with pytest.raises(DataError, match=r"data must be \(X, y\): the inputs and the targets\. Got a list of 3 items"):
        bundle_from_data([x, y, y])
    with pytest.raises(DataError, match=r"y must be one target per row of X\. Got 59 targets for 60 rows"):
        bundle_from_data((x, y[:-1]))
    with pytest.raises(DataError, match=r"X must be rows of equal length\. Got ragged nested lists"):
        bundle_from_data(([[1.0, 2.0], [3.0]], [0, 1]))
    with pytest.raises(DataError, match=r"X must be numeric\. Got 'a'"):
        bundle_from_data(([["a", "b"], ["c", "d"]], [0, 1]))
    with pytest.raises(DataError, match=r"target must be used only with a pandas DataFrame\. Got 'label'"):
        bundle_from_data((x, y), target="label")
    with pytest.raises(DataError, match=r"y must be at least 2 different classes\. Got \['1'\]"):
        bundle_from_data((x, np.ones(N, dtype=int)))


def test_non_finite_values_are_counted_with_the_first_row():
    x, y = _xy()
    x[[7, 20, 21], 1] = [np.nan, np.inf, np.nan]
    with pytest.raises(DataError, match=r"X must be finite\. Got NaN or Inf in 3 rows, the first at row index 7\."):
        bundle_from_data((x, y))
    x, _ = _xy()
    t = np.linspace(0, 1, N)
    t[33] = np.inf
    with pytest.raises(DataError, match=r"y must be finite\. Got NaN or Inf in 1 row, the first at row index 33\."):
        bundle_from_data((x, t))
    with pytest.raises(DataError, match=r"val X must be finite\. Got NaN or Inf in 1 row, the first at row index 0"):
        bundle_from_data((x, y), val=([[np.nan, 0, 0]], [0]))


def test_finite_values_whose_sum_overflows_are_accepted():
    x, y = _xy()
    x = x.astype(np.float32)
    x[:, 0] = 3e38  # every value finite, their float32 sum is not: the one-pass check must not refuse them
    for data in ((x, y), (torch.from_numpy(x), torch.from_numpy(y))):
        bundle = bundle_from_data(data, val=0.2)
        assert float(bundle.train.x[:, 0].min()) == pytest.approx(3e38, rel=1e-6)
    x[4, 2] = -np.inf  # and a real Inf among them is still found and named
    with pytest.raises(DataError, match=r"X must be finite\. Got NaN or Inf in 1 row, the first at row index 4"):
        bundle_from_data((torch.from_numpy(x), torch.from_numpy(y)))


def test_dataframe_errors():
    x, y = _xy()
    df = _frame(x, np.array(["p", "q", "r"] * 20))
    with pytest.raises(DataError, match=r"target must be a column of the DataFrame\. Got 'lable'\. Did you mean 'label'\?"):
        bundle_from_data(df, target="lable")
    with pytest.raises(DataError, match=r"target must be the name of the DataFrame column to predict\. Got None"):
        bundle_from_data(df)
    bad = df.copy()
    bad["b"] = bad["b"].astype(object)
    bad.loc[4, "b"] = "n/a"
    with pytest.raises(DataError, match=r"feature column 'b' must be numeric\. Got 'n/a'\. Found at row index 4"):
        bundle_from_data(bad, target="label")
    gap = df.copy()
    gap.loc[[5, 9], "c"] = None
    with pytest.raises(DataError, match=r"X must be finite\. Got NaN or Inf in 2 rows, the first at row index 5"):
        bundle_from_data(gap, target="label")
    gap = df.copy()
    gap.loc[11, "label"] = None
    with pytest.raises(DataError, match=r"y must be filled in every row\. Got a missing value at row index 11"):
        bundle_from_data(gap, target="label")


def test_dataset_errors():
    class Single(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.zeros(2)

    class Ragged(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.zeros(2 + i), 0

    with pytest.raises(DataError, match=r"data\[0\] must be an \(x, y\) pair\. Got Tensor"):
        bundle_from_data(Single())
    with pytest.raises(DataError, match=r"data\[1\] x must be shaped \(2,\) like data\[0\]\. Got shape \(3,\)"):
        bundle_from_data(Ragged())
    with pytest.raises(DataError, match=r"data must be a dataset with at least one example\. Got an empty one"):
        bundle_from_data(PairStream([], []))


def test_val_argument_errors():
    x, y = _xy(10)
    with pytest.raises(ConfigError, match=r"val must be a fraction between 0 and 1 \(exclusive\).*Got 1\.5"):
        bundle_from_data((x, y), val=1.5)
    with pytest.raises(DataError, match=r"val must be a fraction that leaves examples on both sides of 10\. Got 0\.01"):
        bundle_from_data((x, y), val=0.01)
    with pytest.raises(DataError, match=r"val must be a fraction in \(0, 1\) or .*Got NoneType"):
        bundle_from_data((x, y), val=None)


class Traced(Dataset):
    """Example i is (i, a small pattern), label i % 3; every read leaves the reading process's id in ``folder``.
    ``odd``: {index: what that read does instead} (another shape, or an exception)."""

    def __init__(self, n, folder, odd=None):
        self.n, self.folder, self.odd = n, folder, odd or {}

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        (self.folder / str(os.getpid())).touch()
        if i in self.odd:
            what = self.odd[i]
            if isinstance(what, Exception):
                raise what
            return torch.zeros(what), i % 3
        return torch.tensor([float(i), float(i % 7)]), i % 3


def _readers(folder):
    return {int(p.name) for p in folder.iterdir()}


@pytest.fixture
def eager_workers(monkeypatch):
    """Every one-time read of a dataset hands its rest to the workers after its first example (a test's dataset is
    fast, so by the real thresholds reading it here is cheaper than starting them)."""
    from trainlab.data import streaming

    monkeypatch.setattr(streaming, "SOLO_SECONDS", 0.0)
    monkeypatch.setattr(streaming, "WORKERS_PAY_AFTER", {})
    monkeypatch.setattr(streaming, "WORKERS_PAY_AFTER_DEFAULT", 0.0)


def test_a_slow_dataset_is_read_once_by_the_workers_in_its_order(tmp_path, eager_workers):
    ds = Traced(300, tmp_path)
    bundle = bundle_from_data(ds, val=0.1, workers=2)
    assert _readers(tmp_path) - {os.getpid()}, "no worker read any example"
    x = torch.cat([bundle.train.x, bundle.val.x])
    y = torch.cat([bundle.train.y, bundle.val.y])
    order = x[:, 0].long().argsort()
    assert x[order, 0].long().tolist() == list(range(300))  # every example once: none lost, none twice
    assert torch.equal(x[order, 1], torch.arange(300.) % 7) and torch.equal(y[order], torch.arange(300) % 3)
    # the same bundle as a read in this process alone
    (tmp_path / "alone").mkdir()
    alone = bundle_from_data(Traced(300, tmp_path / "alone"), val=0.1, workers=0)
    assert _readers(tmp_path / "alone") == {os.getpid()}
    assert torch.equal(alone.train.x, bundle.train.x) and torch.equal(alone.val.y, bundle.val.y)


def test_a_fast_dataset_is_read_here_even_with_workers(tmp_path):
    bundle = bundle_from_data(Traced(300, tmp_path), val=0.1, workers=2)  # milliseconds in all: not worth a worker
    assert _readers(tmp_path) == {os.getpid()} and len(bundle.train) == 270


def test_a_worker_finding_a_bad_example_says_it_in_one_line(tmp_path, eager_workers):
    with pytest.raises(DataError) as err:
        bundle_from_data(Traced(300, tmp_path, odd={200: (3,)}), workers=2)
    assert str(err.value) == ("data[200] x must be shaped (2,) like data[0]. Got shape (3,). "
                              "Resize or pad every example to one shape.")
    # the dataset's own error comes back as it was raised, not wrapped in DataLoader's worker traceback
    with pytest.raises(ValueError) as err:
        bundle_from_data(Traced(300, tmp_path, odd={250: ValueError("cannot decode image 250")}), workers=2)
    assert str(err.value) == "cannot decode image 250"
    assert any("examples 193..256" in note for note in err.value.__notes__)


def test_a_streamed_dataset_s_labels_are_read_by_the_workers(tmp_path, eager_workers):
    ds = Traced(200, tmp_path)
    bundle = bundle_from_data(ds, val=0.25, max_bytes=1000, workers=2)  # too big: streamed, labels read once
    assert bundle.meta["kind"] == "stream" and _readers(tmp_path) - {os.getpid()}
    ys = torch.cat([y for _, y in bundle.train.batches(64)] + [bundle.val.y if isinstance(bundle.val, Split) else
                                                              torch.cat([y for _, y in bundle.val.batches(64)])])
    assert sorted(ys.tolist()) == sorted(i % 3 for i in range(200))


def test_worth_workers_weighs_the_rest_against_starting_them(monkeypatch):
    from trainlab.data import streaming

    monkeypatch.setattr(streaming.multiprocessing, "get_context", lambda: type("C", (), {"get_start_method": lambda self: "fork"})())
    assert streaming.worth_workers(100, 10_000, 0.3, 2)  # 30 s more here
    assert not streaming.worth_workers(100, 10_000, 0.3, 0)  # no workers asked for
    assert not streaming.worth_workers(100, 10_000, 0.1, 2)  # still reading here for the first SOLO_SECONDS
    assert not streaming.worth_workers(900, 1000, 0.3, 2)  # 0.03 s left
    assert not streaming.worth_workers(1000, 1000, 5.0, 2)  # nothing left
    monkeypatch.setattr(streaming.multiprocessing, "get_context", lambda: type("C", (), {"get_start_method": lambda self: "spawn"})())
    assert not streaming.worth_workers(1000, 3000, 1.0, 2)  # 2 s left: under spawn a worker takes ~2 s to start
    assert streaming.worth_workers(1000, 10_000, 1.0, 2)


def test_one_hot_labels_are_read_as_the_classes_of_their_ones():
    x, y = _xy()
    one_hot = np.eye(3)[y]  # Keras' to_categorical
    ids = bundle_from_data((x, y), val=(x[:9], y[:9]), test=(x[:6], y[:6]), seed=1)
    for form in (one_hot, torch.as_tensor(one_hot, dtype=torch.float32), one_hot.astype(np.int64)):
        b = bundle_from_data((x, form), val=(x[:9], one_hot[:9]), test=(x[:6], one_hot[:6]), seed=1)
        assert (b.task, b.n_classes, b.class_names) == ("classification", 3, ["0", "1", "2"])
        assert b.meta["labels"] == memory.ONE_HOT
        for split in ("train", "val"):
            assert torch.equal(getattr(b, split).y, getattr(ids, split).y) and torch.equal(getattr(b, split).x, getattr(ids, split).x)
        assert torch.equal(b.test.open().y, ids.test.open().y)
    assert "labels" not in ids.meta
    # kept as targets where they are not one label a row, or regression is asked for
    assert bundle_from_data((x, one_hot), task="regression").target_names is None
    assert bundle_from_data((x, one_hot), task="regression").task == "regression"
    multi_hot = one_hot.copy()
    multi_hot[:, 0] = 1  # several 1s a row: several targets, as before
    assert bundle_from_data((x, multi_hot)).task == "regression"


def test_one_hot_columns_of_a_dataframe_name_their_classes():
    pd = pytest.importorskip("pandas")
    x, y = _xy()
    dummies = pd.get_dummies(pd.Series(np.array(["cat", "dog", "eel"])[y]))  # columns cat, dog, eel of bools
    b = bundle_from_data((x, dummies))
    assert (b.task, b.class_names) == ("classification", ["cat", "dog", "eel"])
    assert torch.equal(torch.cat([b.train.y, b.val.y]).sort().values, torch.as_tensor(y).sort().values)


def test_a_sparse_matrix_is_read_dense_when_it_fits():
    sparse = pytest.importorskip("scipy.sparse")
    x, y = _xy()
    dense = bundle_from_data((x, y), seed=3)
    b = bundle_from_data((sparse.csr_matrix(x), y), val=0.1, test=(sparse.csr_matrix(x[:5]), y[:5]), seed=3)
    assert torch.equal(b.train.x, dense.train.x) and torch.equal(b.val.x, dense.val.x)
    assert torch.equal(b.test.open().x, torch.as_tensor(x[:5], dtype=torch.float32))
    with pytest.raises(DataError) as err:  # a TF-IDF matrix far too big as dense: one line, not an out-of-memory
        bundle_from_data((sparse.csr_matrix((100_000, 50_000), dtype=np.float32), np.zeros(100_000)))
    assert str(err.value).startswith("X must be at most max_bytes=4,294,967,296 bytes as a dense float32 array. "
                                     "Got a csr_matrix of shape (100000, 50000) (20,000,000,000 bytes dense).")


def test_a_read_only_array_is_copied_and_a_writable_one_shared():
    # a pandas column under copy-on-write or a memory map is read-only: torch would share it and warn (once per
    # process) that writing to it is undefined behaviour; it is copied instead
    ro = np.arange(12, dtype=np.float32).reshape(4, 3)
    ro.setflags(write=False)
    t = memory._float32(ro)
    assert not np.shares_memory(t.numpy(), ro) and t.tolist() == ro.tolist()
    rw = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.shares_memory(memory._float32(rw).numpy(), rw)  # no copy of a user's big writable array
