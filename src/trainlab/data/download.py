"""Fetch a file from a list of mirrors, verify its checksum, and move it into place atomically.

The download streams into a hidden temporary file next to the destination and is renamed over it only
once the checksum matches, so an interrupted or corrupted transfer never leaves a file that looks done.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from trainlab.errors import DataError

__all__ = ["download", "file_digest", "DownloadFailed"]

TIMEOUT_S = 30.0  # per blocking socket operation; a stalled mirror fails over instead of hanging
_CHUNK = 1 << 20
_USER_AGENT = "trainlab (+https://github.com/trainlab)"  # some mirrors answer 403 to urllib's default agent


class DownloadFailed(DataError):
    """Every mirror failed; ``attempts`` holds one ``'<url>: <reason>'`` per mirror tried."""

    def __init__(self, message: str, attempts: list[str]) -> None:
        super().__init__(message)
        self.attempts = attempts


def _algorithm(checksum: str) -> str:
    # Length identifies the algorithm: 32 hex digits are md5 (what the dataset sites publish), 64 sha256.
    algo = {32: "md5", 64: "sha256"}.get(len(checksum))
    if algo is None or any(c not in "0123456789abcdefABCDEF" for c in checksum):
        raise DataError(f"checksum must be 32 (md5) or 64 (sha256) hex digits. Got {checksum!r}. "
                        "Copy it from the dataset's download page.")
    return algo


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(name: str, total: int | None):  # -> rich.progress.Progress, task id
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    return bar, bar.add_task(name, total=total)


def _fetch(url: str, tmp, algorithm: str | None, show: bool, timeout: float) -> str | None:
    """Stream ``url`` into the open file ``tmp``; returns the hex digest (None without an algorithm)."""
    digest = hashlib.new(algorithm) if algorithm else None
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        bar, task = _progress_bar(Path(url).name, int(length) if length else None) if show else (None, None)
        try:
            if bar is not None:
                bar.start()
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                tmp.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                if bar is not None:
                    bar.advance(task, len(chunk))
        finally:
            if bar is not None:
                bar.stop()
    return digest.hexdigest() if digest is not None else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def download(urls: Sequence[str], dest: str | Path, checksum: str | None = None, progress: bool = False,
             *, timeout: float = TIMEOUT_S) -> Path:
    """Download the first mirror in ``urls`` that works and matches ``checksum`` (md5 or sha256) to ``dest``.

    A progress bar (bytes) goes to stderr when ``progress`` is true and stderr is a terminal.
    """
    dest = Path(dest)
    algorithm = _algorithm(checksum) if checksum else None
    show = progress and sys.stderr.isatty()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest.parent} must be a writable directory. Got {_reason(exc)}. "
                        "Pass --data-dir with a directory you can write to.") from None
    attempts: list[str] = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                got = _fetch(url, tmp, algorithm, show, timeout)
            if checksum and got != checksum.lower():
                attempts.append(f"{url}: {algorithm} {got}, expected {checksum.lower()}")
                continue
            os.replace(tmp_name, dest)
            return dest
        # URLError, HTTPError, timeouts and resets are OSError; a connection cut mid-body is IncompleteRead.
        except (OSError, ValueError, http.client.HTTPException) as exc:
            attempts.append(f"{url}: {_reason(exc)}")
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    tried = "; ".join(attempts) or "no mirror given"
    raise DownloadFailed(f"{dest.name} must be downloadable from a mirror. Got {tried}. Put the files in "
                         f"{dest.parent} or pass --data-dir.", attempts)
