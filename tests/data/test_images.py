"""Image readers (IDX, CIFAR pickles), mirror downloads and the image dataset sources, on generated files.

Downloads go to a throw-away ``http.server`` on 127.0.0.1; nothing touches the real home cache. One e2e
test reads the real Fashion-MNIST from /usr/share/datasets when it is installed.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.config import DataConfig
from trainlab.data import cifar, idx, images, load_data
from trainlab.data import download as dl
from trainlab.errors import DataError
from trainlab.registry import DATASETS

MNIST_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------------------------
# Helpers: generated datasets, an isolated search path, a local mirror


def make_mnist(directory: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the four MNIST-style gz files with random pixels; labels cycle through 0..9."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        MNIST_TRAIN[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        MNIST_TRAIN[1]: (np.arange(n_train) % 10).astype(np.uint8),
        MNIST_TEST[0]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        MNIST_TEST[1]: (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for name, arr in arrays.items():
        idx.write_idx(directory / name, arr)
    return arrays


def make_cifar(directory: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch)
        cifar.write_cifar_batch(directory / name, x, y)
        out[name] = (x, y)
    cifar.write_cifar_meta(directory / "batches.meta", [f"class{i}" for i in range(10)])
    return out


@pytest.fixture
def where(tmp_path: Path) -> dict:
    """Search-path keywords that keep a test away from $TRAINLAB_DATA, ~/.cache and /usr/share."""
    return {"env": {}, "cache_dir": tmp_path / "cache", "system_dir": tmp_path / "system"}


class Mirror:
    """A static file server on a free 127.0.0.1 port that records every path requested."""

    def __init__(self, root: Path) -> None:
        self.root, self.requests = root, []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path: Path):
    (tmp_path / "mirror").mkdir()
    m = Mirror(tmp_path / "mirror")
    yield m
    m.close()


def md5_table(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


def dead_url() -> str:
    """A URL on a port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_roundtrip_keeps_values_shape_and_dtype(tmp_path, compress, dtype):
    arr = (np.arange(2 * 3 * 5) * 7 - 20).astype(dtype).reshape(2, 3, 5)
    path = idx.write_idx(tmp_path / "a.idx", arr, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    out = idx.read_idx(path)
    assert out.dtype == torch.from_numpy(arr).dtype
    assert torch.equal(out, torch.from_numpy(arr))
    assert idx.read_idx_shape(path) == (2, 3, 5)


def test_idx_gzip_is_detected_by_content_not_by_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_plain = idx.write_idx(tmp_path / "x-idx1-ubyte", arr, gzip=True)
    plain_named_gz = idx.write_idx(tmp_path / "y-idx1-ubyte.gz", arr, gzip=False)
    assert torch.equal(idx.read_idx(gz_named_plain), torch.from_numpy(arr))
    assert torch.equal(idx.read_idx(plain_named_gz), torch.from_numpy(arr))


def test_idx_bad_magic_is_a_one_line_data_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip file saved under the wrong name
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte must be an IDX file.*50 4b 03 04.*download") as exc:
        idx.read_idx(path)
    one_line(exc)


def test_idx_truncated_payload_is_rejected(tmp_path):
    path = idx.write_idx(tmp_path / "a", np.zeros((10, 28, 28), np.uint8), gzip=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"must be 7856 bytes for an array of shape \(10, 28, 28\)\. Got 7756 bytes"):
        idx.read_idx(path)


def test_idx_truncated_gzip_is_rejected(tmp_path):
    path = idx.write_idx(tmp_path / "a.gz", np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"a\.gz must be a complete gzip stream\. Got a damaged one") as exc:
        idx.read_idx(path)
    one_line(exc)


def test_idx_multi_member_gzip_reads_whole(tmp_path):
    payload = bytes([0, 0, 8, 1]) + (6).to_bytes(4, "big") + bytes(range(6))
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(payload[:7]) + gzip.compress(payload[7:]))
    assert idx.read_idx(path).tolist() == list(range(6))


# ---------------------------------------------------------------------------------------------
# CIFAR batches


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_batch_roundtrip(tmp_path, protocol):
    x = np.random.default_rng(1).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    y = [3, 1, 4, 1, 5, 9, 2]
    path = cifar.write_cifar_batch(tmp_path / "data_batch_1", x, y, protocol=protocol)
    images_, labels = cifar.read_cifar_batch(path)
    assert images_.dtype == torch.uint8 and images_.shape == (7, 3, 32, 32)
    assert torch.equal(images_, torch.from_numpy(x))
    assert labels.dtype == torch.int64 and labels.tolist() == y
    # The official layout: row = 1024 red, 1024 green, 1024 blue values.
    with open(path, "rb") as fh:
        raw = pickle.load(fh)
    assert raw[b"data"].shape == (7, 3072) and raw[b"data"][0, 1024] == x[0, 1, 0, 0]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_rejects_pickles_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"asks for (posix|os|nt)\.system, which could run code") as exc:
        cifar.read_cifar_batch(path)
    one_line(exc)
    assert not marker.exists()


def test_cifar_truncated_batch_is_rejected(tmp_path):
    path = cifar.write_cifar_batch(tmp_path / "b", np.zeros((5, 3, 32, 32), np.uint8), [0] * 5)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"must be a complete CIFAR batch pickle\. Got a damaged file"):
        cifar.read_cifar_batch(path)


def test_cifar_label_count_must_match_images(tmp_path):
    path = cifar.write_cifar_batch(tmp_path / "b", np.zeros((5, 3, 32, 32), np.uint8), [0] * 4)
    with pytest.raises(DataError, match=r"'labels' must be 5 integers, one per image"):
        cifar.read_cifar_batch(path)


def test_cifar_meta_roundtrip(tmp_path):
    path = cifar.write_cifar_meta(tmp_path / "batches.meta", ["a", "b"])
    assert cifar.read_cifar_meta(path) == ["a", "b"]


# ---------------------------------------------------------------------------------------------
# download()


def test_download_verifies_checksum_and_leaves_no_temp_files(tmp_path, mirror):
    body = os.urandom(3 * (1 << 20) + 17)  # more than one streaming chunk
    (mirror.root / "f.bin").write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    dest = dl.download([mirror.url + "f.bin"], tmp_path / "out" / "f.bin", sha, progress=False)
    assert dest.read_bytes() == body
    assert list((tmp_path / "out").iterdir()) == [dest]
    md5 = hashlib.md5(body).hexdigest()
    assert dl.download([mirror.url + "f.bin"], tmp_path / "g.bin", md5).read_bytes() == body


def test_download_tries_the_next_mirror(tmp_path, mirror):
    (mirror.root / "f.bin").write_bytes(b"hello")
    urls = [dead_url() + "f.bin", mirror.url + "missing/f.bin", mirror.url + "f.bin"]
    dest = dl.download(urls, tmp_path / "f.bin", hashlib.md5(b"hello").hexdigest())
    assert dest.read_bytes() == b"hello"
    assert mirror.requests == ["/missing/f.bin", "/f.bin"]


def test_download_checksum_mismatch_fails_and_keeps_nothing(tmp_path, mirror):
    (mirror.root / "f.bin").write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"f\.bin: md5 [0-9a-f]{32}, expected 0{32}.*Put the files in") as exc:
        dl.download([mirror.url + "f.bin"], tmp_path / "f.bin", "0" * 32)
    one_line(exc)
    assert list(tmp_path.glob("*f.bin*")) == []


def test_download_server_down_names_mirror_and_fix(tmp_path):
    url = dead_url() + "f.bin"
    with pytest.raises(DataError, match=rf"{url}: .*Put the files in {tmp_path} or pass --data-dir\.$"):
        dl.download([url], tmp_path / "f.bin", None)


def test_download_progress_bar_on_a_terminal(tmp_path, mirror, monkeypatch):
    (mirror.root / "f.bin").write_bytes(b"x" * 5000)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert dl.download([mirror.url + "f.bin"], tmp_path / "f.bin", None, progress=True).stat().st_size == 5000


def test_download_rejects_malformed_checksum(tmp_path):
    with pytest.raises(DataError, match=r"checksum must be 32 \(md5\) or 64 \(sha256\) hex digits"):
        dl.download(["http://127.0.0.1:1/x"], tmp_path / "x", "abc")


# ---------------------------------------------------------------------------------------------
# Image sources: loading, search order, laziness


def test_registered_sources():
    for name in ("fashion-mnist", "mnist", "cifar10"):
        assert DATASETS.get(name).kind == "image"


def test_mnist_loads_as_uint8_pixels_that_become_floats_in_unit_range(tmp_path, where):
    arrays = make_mnist(tmp_path / "d")
    raw = images.load_images("mnist", DataConfig(dir=str(tmp_path / "d"), download=False), **where)
    assert raw.train.x.shape == (30, 1, 28, 28) and raw.train.x.dtype == torch.uint8
    assert torch.equal(raw.train.x, torch.from_numpy(arrays[MNIST_TRAIN[0]]).unsqueeze(1))
    floats = raw.train.unit_pixels()
    assert torch.equal(floats.x, torch.from_numpy(arrays[MNIST_TRAIN[0]]).float().div(255).unsqueeze(1))
    assert floats.unit_pixels() is floats  # a float split stays as it is
    assert raw.train.y.dtype == torch.int64 and raw.train.y.tolist() == arrays[MNIST_TRAIN[1]].tolist()
    assert (raw.task, raw.n_classes, raw.input_shape) == ("classification", 10, (1, 28, 28))
    assert raw.class_names == [str(d) for d in range(10)]
    assert raw.meta["location"] == str(tmp_path / "d")
    test = raw.test()
    assert test.x.shape == (10, 1, 28, 28) and test.y.tolist() == arrays[MNIST_TEST[1]].tolist()


def test_load_data_cuts_the_pixels_into_float_splits_in_unit_range(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the decoded-file cache goes there
    arrays = make_mnist(tmp_path / "d", n_train=40)
    bundle = load_data(DataConfig(name="mnist", dir=str(tmp_path / "d"), download=False, val_fraction=0.25), seed=0)
    pixels = torch.from_numpy(arrays[MNIST_TRAIN[0]]).float().div(255).unsqueeze(1)
    row_of = {row.numpy().tobytes(): i for i, row in enumerate(pixels)}  # random pixels: every row is unique
    assert (len(bundle.train), len(bundle.val)) == (30, 10)
    seen = []
    for split in (bundle.train, bundle.val):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 28, 28)
        for x, y in zip(split.x, split.y):
            seen.append(row_of[x.numpy().tobytes()])  # the very values of pixel / 255
            assert int(y) == arrays[MNIST_TRAIN[1]][seen[-1]]
    assert sorted(seen) == list(range(40))
    test = bundle.test.open()
    assert test.x.dtype == torch.float32
    assert torch.equal(test.x, torch.from_numpy(arrays[MNIST_TEST[0]]).float().div(255).unsqueeze(1))


def test_fashion_class_names(tmp_path, where):
    make_mnist(tmp_path / "d")
    raw = images.load_images("fashion-mnist", DataConfig(dir=str(tmp_path / "d"), download=False), **where)
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_search_order_data_dir_then_env_then_cache(tmp_path, where):
    make_mnist(tmp_path / "given", n_train=11)
    make_mnist(tmp_path / "env", n_train=12)
    make_mnist(where["cache_dir"] / "mnist", n_train=13)  # the subfolder form, as downloads leave it
    make_mnist(where["system_dir"] / "mnist", n_train=14)
    env = {"TRAINLAB_DATA": str(tmp_path / "env")}
    kw = {**where, "env": env}

    def n_train(cfg_dir, **over):
        return len(images.load_images("mnist", DataConfig(dir=cfg_dir, download=False), **{**kw, **over}).train)

    assert n_train(str(tmp_path / "given")) == 11
    assert n_train(None) == 12
    assert n_train(None, env={}) == 13
    assert n_train(None, env={}, cache_dir=tmp_path / "empty") == 14


def test_subfolder_and_unpacked_files_are_found(tmp_path, where):
    arrays = make_mnist(tmp_path / "root" / "mnist")
    for name in MNIST_TRAIN:  # users often gunzip the files
        path = tmp_path / "root" / "mnist" / name
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    raw = images.load_images("mnist", DataConfig(dir=str(tmp_path / "root"), download=False), **where)
    assert raw.meta["location"] == str(tmp_path / "root" / "mnist")
    assert raw.train.y.tolist() == arrays[MNIST_TRAIN[1]].tolist()


def test_missing_data_dir_is_an_error(tmp_path, where):
    with pytest.raises(DataError, match=r"^data\.dir must be an existing directory\. Got '.*nope'\."):
        images.load_images("mnist", DataConfig(dir=str(tmp_path / "nope")), **where)


def test_nothing_found_and_download_off_says_where_and_how(tmp_path, where):
    with pytest.raises(DataError, match=r"in one of .*cache, .*system .*download is off.*--data-dir") as exc:
        images.load_images("fashion-mnist", DataConfig(download=False), **where)
    assert "apt-get install dataset-fashion-mnist" in one_line(exc)


def test_labels_out_of_range_are_rejected(tmp_path, where):
    make_mnist(tmp_path / "d")
    idx.write_idx(tmp_path / "d" / MNIST_TRAIN[1], np.full(30, 10, np.uint8))
    with pytest.raises(DataError, match=r"labels must be in \[0, 10\)\. Got values from 10 to 10"):
        images.load_images("mnist", DataConfig(dir=str(tmp_path / "d"), download=False), **where)


def test_label_count_must_match_images(tmp_path, where):
    make_mnist(tmp_path / "d")
    idx.write_idx(tmp_path / "d" / MNIST_TRAIN[1], np.zeros(29, np.uint8))
    with pytest.raises(DataError, match=r"must hold one label per image \(30\)\. Got shape \(29,\)"):
        images.load_images("mnist", DataConfig(dir=str(tmp_path / "d"), download=False), **where)


def test_test_split_is_read_only_when_asked(tmp_path, where, monkeypatch):
    make_mnist(tmp_path / "d")
    opened = []
    real = images.read_idx
    monkeypatch.setattr(images, "read_idx", lambda p: opened.append(Path(p).name) or real(p))
    raw = images.load_images("mnist", DataConfig(dir=str(tmp_path / "d"), download=False), **where)
    assert sorted(opened) == sorted(MNIST_TRAIN)
    # Changing the test files after loading must show up: proof they had not been read yet.
    idx.write_idx(tmp_path / "d" / MNIST_TEST[1], np.full(10, 7, np.uint8))
    test = raw.test()
    assert set(opened) == set(MNIST_TRAIN + MNIST_TEST)
    assert test.y.tolist() == [7] * 10


def test_cifar_loads_lazily_with_meta_class_names(tmp_path, where):
    batches = make_cifar(tmp_path / "root" / "cifar-10-batches-py")
    cfg = DataConfig(dir=str(tmp_path / "root"), download=False)
    raw = images.load_images("cifar10", cfg, **where)
    assert raw.train.x.shape == (20, 3, 32, 32) and raw.train.x.dtype == torch.uint8
    assert torch.equal(raw.train.unit_pixels().x[:4], torch.from_numpy(batches["data_batch_1"][0]).float() / 255)
    assert raw.train.y.dtype == torch.int64
    assert raw.class_names == [f"class{i}" for i in range(10)] and raw.input_shape == (3, 32, 32)
    (tmp_path / "root" / "cifar-10-batches-py" / "test_batch").unlink()  # not needed until test() is called
    with pytest.raises(DataError, match="test_batch must be an existing CIFAR batch file"):
        raw.test()


def test_describe_reads_headers_only(tmp_path, where):
    make_mnist(tmp_path / "d", n_train=40, n_test=20)
    info = images.describe_images("mnist", DataConfig(dir=str(tmp_path / "d")), **where)
    assert info == {"available": True, "location": str(tmp_path / "d"), "sizes": {"train": 40, "test": 20},
                    "download": images.MIRRORS["mnist"][0]}
    make_cifar(tmp_path / "c" / "cifar10")
    info = images.describe_images("cifar10", DataConfig(dir=str(tmp_path / "c")), **where)
    assert info["sizes"] == {"train": 50000, "test": 10000}
    assert images.describe_images("mnist", DataConfig(), **where)["available"] is False


# ---------------------------------------------------------------------------------------------
# Downloading through the sources, against the local mirror


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """Point ~, $TRAINLAB_DATA and /usr/share/datasets away from the real machine for registry-level loads."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TRAINLAB_DATA", raising=False)
    monkeypatch.setattr(images, "SYSTEM_DIR", tmp_path / "system")
    return home


def test_download_then_reuse_cached_copy(tmp_path, mirror, isolated_home, monkeypatch):
    arrays = make_mnist(mirror.root)
    monkeypatch.setitem(images.MIRRORS, "mnist", [dead_url(), mirror.url])
    monkeypatch.setitem(images.CHECKSUMS, "mnist", md5_table(mirror.root))
    source = DATASETS.get("mnist")
    raw = source.load(DataConfig(download=True), 0)
    cache = isolated_home / ".cache" / "trainlab" / "mnist"
    assert raw.meta["location"] == str(cache)
    assert sorted(mirror.requests) == sorted("/" + f for f in MNIST_TRAIN + MNIST_TEST)
    assert raw.train.y.tolist() == arrays[MNIST_TRAIN[1]].tolist()
    n_requests = len(mirror.requests)
    again = source.load(DataConfig(download=True), 0)
    assert len(mirror.requests) == n_requests  # served from the cache
    assert torch.equal(again.train.x, raw.train.x)
    assert source.describe(DataConfig())["location"] == str(cache)


def test_download_goes_into_data_dir_when_given(tmp_path, mirror, where, monkeypatch):
    make_mnist(mirror.root)
    (tmp_path / "mine").mkdir()
    raw = images.load_images("mnist", DataConfig(dir=str(tmp_path / "mine")), mirrors=[mirror.url],
                             checksums=md5_table(mirror.root), **where)
    assert raw.meta["location"] == str(tmp_path / "mine" / "mnist")
    assert not where["cache_dir"].exists()


def test_download_checksum_mismatch_is_an_error(tmp_path, mirror, where):
    make_mnist(mirror.root)
    table = {**md5_table(mirror.root), MNIST_TRAIN[0]: "f" * 32}
    with pytest.raises(DataError, match=r"download failed \(.*train-images-idx3-ubyte\.gz: md5 .*expected f{32}"):
        images.load_images("mnist", DataConfig(), mirrors=[mirror.url], checksums=table, **where)
    assert not (where["cache_dir"] / "mnist" / MNIST_TRAIN[0]).exists()


@pytest.mark.parametrize("broken", ["down", "404"])
def test_download_unreachable_mirror_is_an_error(tmp_path, mirror, where, broken):
    url = dead_url() if broken == "down" else mirror.url  # the mirror serves an empty directory: 404
    with pytest.raises(DataError, match=r"download failed .*Put the files in .*cache/mnist or pass --data-dir") as exc:
        images.load_images("mnist", DataConfig(), mirrors=[url], checksums={}, **where)
    msg = one_line(exc)
    assert (url + MNIST_TRAIN[0]) in msg and ("HTTP 404" in msg) is (broken == "404")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cifar_download_unpacks_archive(tmp_path, mirror, where):
    make_cifar(tmp_path / "src")
    members = {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in (tmp_path / "src").iterdir()}
    (mirror.root / "cifar-10-python.tar.gz").write_bytes(_tar_gz(members))
    raw = images.load_images("cifar10", DataConfig(), mirrors=[mirror.url], checksums=md5_table(mirror.root),
                             **where)
    dest = where["cache_dir"] / "cifar10"
    assert raw.meta["location"] == str(dest / "cifar-10-batches-py")
    assert len(raw.train) == 20 and len(raw.test()) == 4
    assert not (dest / "cifar-10-python.tar.gz").exists()


def test_cifar_archive_escaping_its_folder_is_refused(tmp_path, mirror, where):
    (mirror.root / "cifar-10-python.tar.gz").write_bytes(_tar_gz({"../../escaped": b"boom"}))
    with pytest.raises(DataError, match=r"must be a complete tar archive"):
        images.load_images("cifar10", DataConfig(), mirrors=[mirror.url], checksums={}, **where)
    assert not list(tmp_path.rglob("escaped"))


# ---------------------------------------------------------------------------------------------
# End to end on the real Fashion-MNIST


@pytest.mark.e2e
@pytest.mark.skipif(not (REAL_FASHION / MNIST_TRAIN[0]).exists(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist(tmp_path):
    cfg = DataConfig(dir=str(REAL_FASHION), download=False)
    raw = images.load_images("fashion-mnist", cfg, env={}, cache_dir=tmp_path)
    assert raw.train.x.shape == (60000, 1, 28, 28) and raw.train.x.dtype == torch.uint8
    assert int(raw.train.x.min()) == 0 and int(raw.train.x.max()) == 255
    assert torch.bincount(raw.train.y, minlength=10).tolist() == [6000] * 10
    test = raw.test()
    assert test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.y, minlength=10).tolist() == [1000] * 10
    info = images.describe_images("fashion-mnist", cfg, env={}, cache_dir=tmp_path)
    assert info["sizes"] == {"train": 60000, "test": 10000} and info["available"]
