"""A cache of decoded dataset files, so that a run does not gunzip the same IDX file every time.

Gunzipping and decoding Fashion-MNIST's training images (26 MB gzipped) takes ~0.24 s on 2 CPU cores; the
cached uint8 tensor, read back with ``torch.load(mmap=True, weights_only=True)``, takes under 1 ms before its
pages are touched (and touching them costs about what it does for a freshly decoded tensor). Writing an
entry adds ~0.03 s to the first run. ``weights_only`` also means a planted cache file cannot run code.

- Where: ``<cache root>/decoded/<file name>-<hash of its path>.pt``, one entry per source file, replaced
  when the source changes, so stale entries do not pile up. The cache root is ``~/.cache/trainlab``
  unless the caller names another one.
- Which files: gzipped ones of at least :data:`MIN_BYTES`. A plain IDX file already *is* the decoded
  bytes (a copy would double its disk use to save ~70 ms), and a small file decodes faster than an entry
  is checked and written.
- Checked against the source by size, mtime and the gzip trailer (the CRC-32 and length of the decoded
  bytes, the last 8 bytes of the file): one ``stat`` and an 8-byte read, never a pass over the file. Size
  and mtime are what Python's own ``.pyc`` cache trusts; the trailer also catches a same-size rewrite
  within one timestamp tick, which size and mtime alone would miss. (A hash of the IDX *header* would
  not do: it holds only the shape, identical for any other 60000 images.)
- Never an error: an entry that cannot be read back (truncated, damaged, another format, another source)
  is decoded again and rewritten; a cache directory that cannot be written is skipped. Entries are
  written to a temporary file and renamed into place, so a reader sees a whole entry or none.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["FORMAT", "MIN_BYTES", "entry_path", "cached_decode"]

FORMAT = "trainlab-decoded/1"
# Fashion-MNIST decodes at ~9 ms per MiB of gzip: a smaller file is not worth a file in the user's cache
# (and this keeps the small generated datasets of tests and quick experiments out of it).
MIN_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def entry_path(source: Path, cache_root: Path) -> Path:
    """Where the decoded form of ``source`` is cached under ``cache_root``."""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return cache_root / "decoded" / f"{source.name}-{digest}.pt"


def _fingerprint(source: Path, min_bytes: int) -> dict[str, Any] | None:
    """What identifies this version of ``source``; None when it is not worth caching (or cannot be read)."""
    try:
        with open(source, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size < max(min_bytes, 10) or fh.read(2) != _GZIP_MAGIC:
                return None
            fh.seek(-8, os.SEEK_END)
            trailer = fh.read(8)
    except OSError:
        return None  # the decoder reports a missing or unreadable file in its own words
    return {"path": str(source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "gzip_trailer": trailer.hex()}


def _read_entry(entry: Path, fingerprint: dict[str, Any]) -> torch.Tensor | None:
    try:
        # mmap: the tensor's pages are read from the page cache when first used, not copied here.
        obj = torch.load(entry, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  missing, or damaged in any of the ways torch.load can fail: rewrite it
        return None
    if (not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("source") != fingerprint
            or not isinstance(obj.get("data"), torch.Tensor)):
        return None
    return obj["data"]


def _write_entry(entry: Path, fingerprint: dict[str, Any], data: torch.Tensor) -> None:
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        # No fsync: after a crash a half-written entry fails to load and is simply rewritten.
        torch.save({"format": FORMAT, "source": fingerprint, "data": data}, tmp)
        os.replace(tmp, entry)
    except (OSError, RuntimeError):  # read-only or full disk (torch.save reports some of those as RuntimeError)
        with contextlib.suppress(OSError):  # e.g. the directory itself could not be made
            tmp.unlink(missing_ok=True)


def cached_decode(source: str | Path, decode: Callable[[Path], torch.Tensor], cache_root: Path | None,
                  *, min_bytes: int = MIN_BYTES) -> torch.Tensor:
    """``decode(source)``, served from (and stored in) ``cache_root/decoded`` when ``source`` is worth caching.

    ``cache_root`` None turns the cache off. The tensor is equal to ``decode(source)`` in dtype, shape and
    values; decoding errors (a damaged source) propagate unchanged, cache problems never do.
    """
    source = Path(source)
    fingerprint = _fingerprint(source, min_bytes) if cache_root is not None else None
    if fingerprint is None:
        return decode(source)
    entry = entry_path(source, cache_root)
    data = _read_entry(entry, fingerprint)
    if data is None:
        data = decode(source)
        _write_entry(entry, fingerprint, data)
    return data
