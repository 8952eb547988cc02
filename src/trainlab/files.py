"""Files a run writes and reads back: written whole or not at all, read back with the damaged file named.

Every file trainlab reads again later (summary.json, config.yaml, diagnosis.json, activations.json, search
files, checkpoints) is written to a temporary file beside it, flushed to disk and renamed over the old one:
a crash or a full disk mid-write leaves the previous version, never half of a new one, and no 0-byte file.
The append-only logs (metrics.jsonl, layers.jsonl) may end in a partial line after a crash; their reader
drops that line and nothing else. A disk that is full, read-only or not ours to write becomes one
:class:`StorageError` line naming the path and what to do, instead of a traceback from deep inside a library.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import yaml

from trainlab.errors import TrainlabError

T = TypeVar("T")

# What each storage errno means for the person running trainlab, and what they can do about it.
STORAGE_FIXES = {
    errno.ENOSPC: ("on a disk with free space", "no space left on the device",
                   "Free some space or write elsewhere with --set out_dir=<folder>"),
    errno.EDQUOT: ("on a disk with free space", "the disk quota is exceeded",
                   "Free some space or write elsewhere with --set out_dir=<folder>"),
    errno.EROFS: ("writable", "a read-only file system", "Copy the run to a writable folder, or use --set out_dir="),
    errno.EACCES: ("writable by this user", "permission denied",
                   "Fix the folder's permissions, or write elsewhere with --set out_dir=<folder>"),
    errno.EPERM: ("writable by this user", "operation not permitted",
                  "Fix the folder's permissions, or write elsewhere with --set out_dir=<folder>"),
    # a folder to make where a file already is (out_dir=notes.txt, --out report.html for a folder)
    errno.EEXIST: ("a folder", "a file of that name already there", "Name a folder, or move the file away"),
    errno.ENOTDIR: ("under a folder", "a file where a folder of its path should be",
                    "Name a path whose parents are folders, or move the file away"),
}


class StorageError(TrainlabError, OSError):
    """A file could not be written: the disk is full, read-only, or not writable by this user."""


class DamagedFileError(TrainlabError):
    """A file trainlab wrote earlier cannot be read back (truncated, edited, or not text)."""


def storage_error(path: str | Path, exc: OSError) -> StorageError | None:
    """The one-line StorageError for a storage OSError (full, read-only, no permission), else None."""
    if exc.errno not in STORAGE_FIXES:
        return None
    need, what, fix = STORAGE_FIXES[exc.errno]
    return StorageError(f"{path} must be {need}. Got {what} (errno {errno.errorcode[exc.errno]}). {fix}.")


@contextlib.contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Turn a storage OSError raised inside the block into a StorageError naming ``path``."""
    try:
        yield
    except OSError as exc:
        err = storage_error(getattr(exc, "filename", None) or path, exc)
        if err is None:
            raise
        raise err from None


def write_atomic(path: str | Path, write: Callable[[Any], None], *, binary: bool = False) -> Path:
    """Write ``path`` whole or not at all: ``write(f)`` fills a temp file beside it, fsync, rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with storage_errors(path):
            with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return path


def remove_empty_tree(folder: str | Path) -> bool:
    """Remove ``folder`` when it holds no file, only (nested) empty folders: what a command that failed before it
    wrote anything leaves behind. Returns whether it was removed."""
    folder = Path(folder)
    if not folder.is_dir() or any(p.is_file() or p.is_symlink() for p in folder.rglob("*")):
        return False
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
    return not folder.exists()


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.tmp-<pid>`` files that killed processes left in ``folder``; returns what went."""
    gone = []
    for tmp in Path(folder).glob(".*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                gone.append(tmp)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def json_safe(value: Any) -> Any:
    """NaN/Inf become the strings "nan"/"inf"/"-inf" (in dicts, lists and tuples too), so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_text(path: str | Path, text: str) -> Path:
    """``path.write_text(text)``, atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda f: f.write(text))


def write_json(path: str | Path, obj: Any, **dump: Any) -> Path:
    """``obj`` as JSON in ``path``, atomically; ``dump`` goes to ``json.dumps`` (indent, default...)."""
    return write_text(path, json.dumps(obj, **dump) + "\n")


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names one key twice: YAML keeps the last silently (``epochs: 2`` then ``epochs: 3`` trains 3)."""

    def __init__(self, key: Any, first_line: int, line: int) -> None:
        super().__init__(f"{key!r} twice (lines {first_line} and {line})")
        self.key, self.first_line, self.line = key, first_line, line

    def problem(self, field: str, path: str | Path) -> str:
        """The one line for ``field`` (the file's role: --config, search space file) read from ``path``."""
        return (f"{field} must name each key once. Got {self.key!r} twice in {str(path)!r} (lines {self.first_line} "
                f"and {self.line}). Keep the one you mean.")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *defaults`` may repeat what it merges
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the constructor below says so
                break
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` through libyaml's C parser where PyYAML was built with it (a run's config.yaml
    parses in ~5 ms instead of ~60 ms, and a report or verdict reads it several times); a key named twice in
    one mapping is a :class:`DuplicateKeyError`, not the last value silently."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def read_json(path: str | Path, *, missing: T | None = None, fix: str = "Delete it, or rerun") -> Any:
    """The JSON object in ``path`` (every JSON file trainlab writes holds one); ``missing`` when there is no such
    file; DamagedFileError (one line) when it is damaged or holds something else (``[]``, a string)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return missing
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path} must be UTF-8 JSON written by trainlab. Got bytes that are not text. "
                               f"{fix}.") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DamagedFileError(f"{path} must be JSON written by trainlab. Got a damaged or truncated file "
                               f"({exc.msg} at line {exc.lineno}). {fix}.") from None
    if not isinstance(value, dict):  # a reader's .get / ["key"] would fail deep inside with a TypeError
        raise DamagedFileError(f"{path} must hold the JSON object trainlab writes. Got {_json_kind(value)}. {fix}.")
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    kind = {list: "a list", str: "a string", bool: "true/false"}.get(type(value), "a number")
    return f"{kind} ({json.dumps(value)[:40]})"


def read_jsonl(path: str | Path, *, fix: str = "Delete the damaged lines, or rerun") -> list[Any]:
    """Rows of an append-only JSON-lines log. A partial last line (a crash mid-append) is dropped; a damaged
    line before it raises DamagedFileError naming the file and the line. No file: no rows."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            if i == len(lines) - 1 and not complete:
                break  # the partial line of an append the process did not finish
            raise DamagedFileError(f"{path} must hold one JSON object per line. Got a damaged line {i + 1}. "
                                   f"{fix}.") from None
        if not isinstance(row, dict):
            raise DamagedFileError(f"{path} must hold one JSON object per line. Got {_json_kind(row)} at line "
                                   f"{i + 1}. {fix}.")
        rows.append(row)
    return rows


def not_utf8(field: str, path: str | Path, exc: UnicodeDecodeError) -> str:
    """The one line for a text file that is not UTF-8 (a Latin-1 CSV, a binary file given as YAML)."""
    return (f"{field} must be a UTF-8 text file. Got {str(path)!r} with the byte 0x{exc.object[exc.start]:02x}, "
            f"which is not UTF-8 (a Latin-1/Windows export, or not a text file). Save it as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 {Path(path).name} > utf8-{Path(path).name}.")


def read_utf8(path: str | Path, field: str, error: type[TrainlabError]) -> str:
    """The text of ``path``; ``error`` (one line naming ``field``) when it is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(not_utf8(field, path, exc)) from None
