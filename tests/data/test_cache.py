"""The decoded-file cache: a hit gives the same tensor without decoding, a changed source or a damaged entry
is decoded again, an unwritable cache is skipped. Every cache here lives under pytest's tmp_path."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.config import DataConfig
from trainlab.data import cache, idx, images
from trainlab.errors import DataError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def big_idx(path: Path, n: int = 1500, seed: int = 0) -> np.ndarray:
    """A gzipped IDX file of random (incompressible) pixels, over cache.MIN_BYTES so that it is cached."""
    arr = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    idx.write_idx(path, arr)
    assert path.stat().st_size >= cache.MIN_BYTES
    return arr


class CountingDecoder:
    """read_idx that counts the real decodes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> torch.Tensor:
        self.calls += 1
        return idx.read_idx(path)


@pytest.fixture
def src(tmp_path) -> Path:
    path = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    big_idx(path)
    return path


def test_hit_returns_the_same_tensor_without_decoding(tmp_path, src):
    decode, root = CountingDecoder(), tmp_path / "cache"
    first = cache.cached_decode(src, decode, root)
    second = cache.cached_decode(src, decode, root)
    assert decode.calls == 1
    assert second.dtype == first.dtype == torch.uint8 and second.shape == first.shape == (1500, 28, 28)
    assert torch.equal(second, first) and torch.equal(second, idx.read_idx(src))
    entry = cache.entry_path(src, root)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary files left behind


def test_changed_source_is_decoded_again(tmp_path, src):
    decode, root = CountingDecoder(), tmp_path / "cache"
    cache.cached_decode(src, decode, root)
    st = src.stat()
    # Same size, same mtime: only the gzip trailer (CRC-32 of the decoded bytes) tells the files apart.
    new = big_idx(src, seed=1)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src.stat().st_size == st.st_size
    out = cache.cached_decode(src, decode, root)
    assert decode.calls == 2 and torch.equal(out, torch.from_numpy(new))
    # A different size (and mtime) too; the entry is replaced in place, not added beside the old one.
    newer = big_idx(src, n=1600, seed=2)
    out = cache.cached_decode(src, decode, root)
    assert decode.calls == 3 and torch.equal(out, torch.from_numpy(newer))
    assert torch.equal(cache.cached_decode(src, decode, root), out) and decode.calls == 3
    assert len(list((root / "decoded").iterdir())) == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other_object"])
def test_damaged_entry_is_rewritten_not_an_error(tmp_path, src, damage):
    decode, root = CountingDecoder(), tmp_path / "cache"
    expected = cache.cached_decode(src, decode, root)
    entry = cache.entry_path(src, root)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(4096))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a valid torch file that is not a cache entry
        torch.save({"data": torch.zeros(3)}, entry)
    assert torch.equal(cache.cached_decode(src, decode, root), expected)
    assert decode.calls == 2
    assert torch.equal(cache.cached_decode(src, decode, root), expected)
    assert decode.calls == 2  # the rewritten entry is good again


def test_unwritable_cache_still_loads(tmp_path, src):
    decode = CountingDecoder()
    blocked = tmp_path / "cache"
    blocked.mkdir()
    (blocked / "decoded").write_text("a file where the cache directory would go")  # blocks even root
    out = cache.cached_decode(src, decode, blocked)
    assert torch.equal(out, idx.read_idx(src)) and decode.calls == 1
    assert cache.cached_decode(src, decode, blocked) is not None and decode.calls == 2
    assert sorted(p.name for p in blocked.iterdir()) == ["decoded"]  # no temporary files either


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_cache_directory_still_loads(tmp_path, src):
    root = tmp_path / "cache"
    (root / "decoded").mkdir(parents=True)
    (root / "decoded").chmod(0o500)
    try:
        assert torch.equal(cache.cached_decode(src, idx.read_idx, root), idx.read_idx(src))
        assert list((root / "decoded").iterdir()) == []
    finally:
        (root / "decoded").chmod(0o700)


def test_small_plain_or_uncached_sources_are_not_cached(tmp_path, src):
    root = tmp_path / "cache"
    small = idx.write_idx(tmp_path / "small.gz", np.zeros((10, 28, 28), np.uint8))
    plain = idx.write_idx(tmp_path / "plain", np.random.default_rng(0).integers(0, 256, (1500, 28, 28), np.uint8),
                          gzip=False)
    for path in (small, plain):
        assert torch.equal(cache.cached_decode(path, idx.read_idx, root), idx.read_idx(path))
    assert not root.exists()
    decode = CountingDecoder()
    cache.cached_decode(src, decode, None)
    cache.cached_decode(src, decode, None)
    assert decode.calls == 2 and not root.exists()


def test_damaged_source_is_still_a_data_error_and_caches_nothing(tmp_path, src):
    root = tmp_path / "cache"
    blob = src.read_bytes()
    src.write_bytes(blob[: len(blob) - 1000] + blob[-8:])  # big enough, with a trailer, but cut in the middle
    with pytest.raises(DataError, match=r"must be a complete gzip stream"):
        cache.cached_decode(src, idx.read_idx, root)
    assert not cache.entry_path(src, root).exists()


def test_image_source_reads_the_cache_and_keeps_the_test_split_lazy(tmp_path, monkeypatch):
    data = tmp_path / "d"
    data.mkdir()
    train_x = big_idx(data / "train-images-idx3-ubyte.gz")
    idx.write_idx(data / "train-labels-idx1-ubyte.gz", (np.arange(1500) % 10).astype(np.uint8))
    idx.write_idx(data / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    idx.write_idx(data / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    where = {"env": {}, "cache_dir": tmp_path / "cache", "system_dir": tmp_path / "system"}
    cfg = DataConfig(dir=str(data), download=False)
    decoded = []
    monkeypatch.setattr(images, "read_idx", lambda p: decoded.append(Path(p).name) or idx.read_idx(p))

    cold = images.load_images("mnist", cfg, **where)
    warm = images.load_images("mnist", cfg, **where)
    assert decoded == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert torch.equal(warm.train.x, cold.train.x) and torch.equal(warm.train.y, cold.train.y)
    assert torch.equal(warm.train.x, torch.from_numpy(train_x).unsqueeze(1))
    assert warm.train.x.dtype == torch.uint8 and warm.train.y.dtype == torch.int64
    assert cache.entry_path(data / "train-images-idx3-ubyte.gz", where["cache_dir"]).is_file()
    assert warm.test().x.shape == (5, 1, 28, 28)  # read only now
    assert decoded[-2:] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@pytest.mark.e2e
@pytest.mark.skipif(not (REAL_FASHION / "train-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist_from_the_cache_equals_the_decoded_files(tmp_path):
    cfg = DataConfig(dir=str(REAL_FASHION), download=False)
    cold = images.load_images("fashion-mnist", cfg, env={}, cache_dir=tmp_path)
    warm = images.load_images("fashion-mnist", cfg, env={}, cache_dir=tmp_path)
    assert torch.equal(warm.train.x, cold.train.x) and torch.equal(warm.train.y, cold.train.y)
    assert torch.equal(warm.test().x, cold.test().x)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "decoded").iterdir()) == ["t10k", "train"]
