"""Image datasets: Fashion-MNIST, MNIST and CIFAR-10, found on disk or downloaded once, as float tensors.

Search order (the first directory holding every needed file wins; each root is tried as is and with a
``<name>/`` subfolder): ``data.dir`` → ``$TRAINLAB_DATA`` → ``~/.cache/trainlab`` → ``/usr/share/datasets``.
Only if none has them and ``data.download`` is on are they fetched from the official mirrors
(:data:`MIRRORS`, checked against :data:`CHECKSUMS`) into ``~/.cache/trainlab/<name>/``
(or ``<data.dir>/<name>/``). The test files are read only when ``RawData.test()`` is called.
Decoded IDX files are cached under ``~/.cache/trainlab/decoded/`` (see :mod:`trainlab.data.cache`).
"""
from __future__ import annotations

import functools
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from trainlab.data.base import DatasetSource, RawData, Split
from trainlab.data.cache import cached_decode
from trainlab.data.cifar import CIFAR10_CLASSES, read_cifar_batch, read_cifar_meta
from trainlab.data.download import DownloadFailed, download
from trainlab.data.idx import read_idx, read_idx_shape
from trainlab.errors import DataError
from trainlab.registry import DATASETS

__all__ = ["MIRRORS", "CHECKSUMS", "SYSTEM_DIR", "ImageSpec", "SPECS", "default_cache_dir", "search_roots",
           "find_dataset", "load_images", "describe_images"]

SYSTEM_DIR = Path("/usr/share/datasets")  # where distribution packages (apt: dataset-fashion-mnist) put them

# Base URLs tried in order; tests (and users behind a proxy mirror) replace these.
MIRRORS: dict[str, list[str]] = {
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}

# md5 of each downloaded file, as published by the dataset authors (and used by torchvision).
CHECKSUMS: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
}

_MNIST_FILES = (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
_FIX = "Delete the dataset's files and let trainlab download them again"


@dataclass(frozen=True)
class ImageSpec:
    """What one image dataset looks like on disk and in memory."""

    name: str
    description: str
    format: str  # "idx" or "cifar"
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    inner: tuple[str, ...] = ()  # subfolders the files may sit in (an unpacked archive's top folder)
    archive: str | None = None  # downloaded as this one archive and unpacked, instead of file by file
    apt: str | None = None  # distribution package that installs it under SYSTEM_DIR


SPECS: dict[str, ImageSpec] = {
    "fashion-mnist": ImageSpec(
        "fashion-mnist", "Zalando clothing photos, 28x28 grey, 10 classes, 60k train / 10k test", "idx",
        _MNIST_FILES[0], _MNIST_FILES[1], (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        apt="dataset-fashion-mnist"),
    "mnist": ImageSpec(
        "mnist", "handwritten digits, 28x28 grey, 10 classes, 60k train / 10k test", "idx",
        _MNIST_FILES[0], _MNIST_FILES[1], (1, 28, 28), tuple(str(d) for d in range(10))),
    "cifar10": ImageSpec(
        "cifar10", "small colour photos, 32x32 RGB, 10 classes, 50k train / 10k test", "cifar",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), (3, 32, 32), tuple(CIFAR10_CLASSES),
        inner=("cifar-10-batches-py",), archive="cifar-10-python.tar.gz"),
}


# ---------------------------------------------------------------------------------------------
# Finding the files


def default_cache_dir() -> Path:
    """``~/.cache/trainlab``: where downloads go when ``data.dir`` is not set."""
    return Path.home() / ".cache" / "trainlab"


def search_roots(data_dir: str | None, env: Mapping[str, str] | None = None, cache_dir: Path | None = None,
                 system_dir: Path | None = None) -> list[Path]:
    """The directories searched, in order; ``env`` defaults to ``os.environ`` (read here, at load time)."""
    roots = []
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        if not given.is_dir():
            raise DataError(f"data.dir must be an existing directory. Got {data_dir!r}. Create it, fix the "
                            "path, or leave data.dir unset to search $TRAINLAB_DATA and ~/.cache/trainlab.")
        roots.append(given)
    env = os.environ if env is None else env
    if env.get("TRAINLAB_DATA"):
        roots.append(Path(env["TRAINLAB_DATA"]).expanduser())
    roots.append(cache_dir if cache_dir is not None else default_cache_dir())
    roots.append(system_dir if system_dir is not None else SYSTEM_DIR)
    return roots


def _locate(directory: Path, filename: str) -> Path | None:
    # Accept the file unpacked too ("train-images-idx3-ubyte"): read_idx detects gzip by content.
    for candidate in (filename, filename.removesuffix(".gz")):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _candidates(spec: ImageSpec, root: Path) -> list[Path]:
    dirs = [root, root / spec.name]
    return dirs + [d / inner for d in dirs for inner in spec.inner]


def find_dataset(spec: ImageSpec, roots: Sequence[Path]) -> tuple[Path, dict[str, Path]] | None:
    """The first directory under ``roots`` holding all of ``spec``'s files, with each file's path; or None."""
    for root in roots:
        for directory in _candidates(spec, root):
            paths = {f: _locate(directory, f) for f in spec.train_files + spec.test_files}
            if all(paths.values()):
                return directory, paths  # type: ignore[return-value]
    return None


# ---------------------------------------------------------------------------------------------
# Reading


def _check_labels(y: torch.Tensor, n_images: int, n_classes: int, where: Path) -> None:
    if y.ndim != 1 or len(y) != n_images:
        raise DataError(f"{where} must hold one label per image ({n_images}). Got shape {tuple(y.shape)}. {_FIX}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DataError(f"{where} labels must be in [0, {n_classes}). Got values from {int(y.min())} to "
                        f"{int(y.max())}. {_FIX}.")


def _read_idx_split(spec: ImageSpec, images_path: Path, labels_path: Path, cache_root: Path | None) -> Split:
    x, y = cached_decode(images_path, read_idx, cache_root), cached_decode(labels_path, read_idx, cache_root)
    if x.dtype != torch.uint8 or tuple(x.shape[1:]) != spec.input_shape[1:]:
        want = ", ".join(map(str, spec.input_shape[1:]))
        raise DataError(f"{images_path} must hold uint8 images of shape (N, {want}). Got {x.dtype} "
                        f"{tuple(x.shape)}. {_FIX}.")
    _check_labels(y, len(x), len(spec.class_names), labels_path)
    return Split(x.reshape(len(x), *spec.input_shape), y.long())  # (N, 1, 28, 28) uint8: Split.unit_pixels


def _read_cifar_split(spec: ImageSpec, paths: Sequence[Path]) -> Split:
    parts = [read_cifar_batch(p) for p in paths]
    x = torch.cat([p[0] for p in parts])  # (N, 3, 32, 32) uint8
    y = torch.cat([p[1] for p in parts])
    for path, (_, labels) in zip(paths, parts):
        _check_labels(labels, len(labels), len(spec.class_names), path)
    return Split(x, y)  # uint8: Split.unit_pixels


def _read_split(spec: ImageSpec, paths: dict[str, Path], files: tuple[str, ...], cache_root: Path | None) -> Split:
    if spec.format == "idx":
        return _read_idx_split(spec, paths[files[0]], paths[files[1]], cache_root)
    # Not cached: a CIFAR batch is an uncompressed pickle of a uint8 array, read in ~30 ms (mostly a copy);
    # a cached copy would add 30 MB of disk per batch to save about that.
    return _read_cifar_split(spec, [paths[f] for f in files])


def _class_names(spec: ImageSpec, directory: Path) -> list[str]:
    meta = directory / "batches.meta"
    if spec.format == "cifar" and meta.is_file():
        names = read_cifar_meta(meta)
        if len(names) == len(spec.class_names):
            return names
    return list(spec.class_names)


# ---------------------------------------------------------------------------------------------
# Downloading


def _extract(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            # filter="data" refuses absolute paths, "..", links out of dest and device files.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive} must be a complete tar archive. Got {type(exc).__name__}: {exc}. "
                        f"Delete it and try again.") from None


def _download(spec: ImageSpec, dest: Path, mirrors: Sequence[str], checksums: Mapping[str, str],
              progress: bool) -> None:
    if spec.archive is not None:
        archive = download([m + spec.archive for m in mirrors], dest / spec.archive, checksums.get(spec.archive),
                           progress)
        _extract(archive, dest)
        archive.unlink()
        return
    for filename in spec.train_files + spec.test_files:
        if _locate(dest, filename) is None:  # keep what an interrupted earlier download already got
            download([m + filename for m in mirrors], dest / filename, checksums.get(filename), progress)


def _not_found(spec: ImageSpec, roots: Sequence[Path], why: str, dest: Path) -> DataError:
    where = ", ".join(str(r) for r in roots)
    apt = f", or run 'apt-get install {spec.apt}'" if spec.apt else ""
    return DataError(f"data.name {spec.name!r} needs {', '.join(spec.train_files + spec.test_files)} in one of "
                     f"{where} (or their {spec.name}/ subfolders). Got none there, and {why}. Put the files in "
                     f"{dest} or pass --data-dir DIR{apt}.")


def _find_or_fetch(spec: ImageSpec, cfg: Any, env: Mapping[str, str] | None, cache_dir: Path | None,
                   system_dir: Path | None, mirrors: Sequence[str], checksums: Mapping[str, str],
                   progress: bool) -> tuple[Path, dict[str, Path]]:
    roots = search_roots(cfg.dir, env, cache_dir, system_dir)
    found = find_dataset(spec, roots)
    if found is not None:
        return found
    base = Path(cfg.dir).expanduser() if cfg.dir is not None else (cache_dir or default_cache_dir())
    dest = base / spec.name
    if not cfg.download:
        raise _not_found(spec, roots, "data.download is off (set data.download=true to fetch them)", dest)
    try:
        _download(spec, dest, mirrors, checksums, progress)
    except DownloadFailed as exc:
        raise _not_found(spec, roots, f"the download failed ({'; '.join(exc.attempts)})", dest) from None
    found = find_dataset(spec, [dest])
    if found is None:  # e.g. an archive that unpacked into an unexpected folder
        raise _not_found(spec, roots, f"the download into {dest} did not produce them", dest)
    return found


# ---------------------------------------------------------------------------------------------
# Public entry points


def load_images(name: str, cfg: Any, *, env: Mapping[str, str] | None = None, cache_dir: Path | None = None,
                system_dir: Path | None = None, mirrors: Sequence[str] | None = None,
                checksums: Mapping[str, str] | None = None, progress: bool = True) -> RawData:
    """Find (or download) dataset ``name`` per ``cfg.dir``/``cfg.download``; uint8 pixels (``load_data`` splits,
    then makes each split float32 in [0, 1]), test read lazily.

    ``env``, ``cache_dir``, ``system_dir``, ``mirrors`` and ``checksums`` default to the real ones;
    ``cache_dir`` also holds the decoded-file cache (``<cache_dir>/decoded/``).
    """
    spec = SPECS[name]
    directory, paths = _find_or_fetch(
        spec, cfg, env, cache_dir, system_dir, MIRRORS[name] if mirrors is None else mirrors,
        CHECKSUMS[name] if checksums is None else checksums, progress)
    cache_root = cache_dir if cache_dir is not None else default_cache_dir()
    train = _read_split(spec, paths, spec.train_files, cache_root)
    return RawData(
        train=train,
        # Read only when the final evaluation opens the sealed test split, never during training.
        test=lambda: _read_split(spec, paths, spec.test_files, cache_root),
        task="classification", n_classes=len(spec.class_names), input_shape=spec.input_shape,
        class_names=_class_names(spec, directory), meta={"location": str(directory), "dataset": name},
    )


def _sizes(spec: ImageSpec, paths: dict[str, Path]) -> dict[str, int]:
    if spec.format == "idx":
        return {"train": read_idx_shape(paths[spec.train_files[0]])[0],
                "test": read_idx_shape(paths[spec.test_files[0]])[0]}
    # Every official CIFAR batch holds 10000 images; counting them would mean unpickling 180 MB.
    return {"train": 10000 * len(spec.train_files), "test": 10000 * len(spec.test_files)}


def describe_images(name: str, cfg: Any, *, env: Mapping[str, str] | None = None, cache_dir: Path | None = None,
                    system_dir: Path | None = None) -> dict[str, Any]:
    """Where dataset ``name`` is and how big, from file headers only: available, location, sizes, download."""
    spec = SPECS[name]
    try:
        found = find_dataset(spec, search_roots(cfg.dir, env, cache_dir, system_dir))
        sizes = _sizes(spec, found[1]) if found else {}
    except DataError:  # a missing data.dir or a damaged header: not usable as it stands
        found, sizes = None, {}
    return {"available": found is not None, "location": str(found[0]) if found else None, "sizes": sizes,
            "download": MIRRORS[name][0] if MIRRORS[name] else None}


def _load_source(name: str, cfg: Any, seed: int) -> RawData:
    return load_images(name, cfg)  # the files fix the data; the seed has nothing to choose


for _spec in SPECS.values():
    DATASETS.add(_spec.name, DatasetSource(
        name=_spec.name, kind="image", description=_spec.description,
        load=functools.partial(_load_source, _spec.name), describe=functools.partial(describe_images, _spec.name)))
