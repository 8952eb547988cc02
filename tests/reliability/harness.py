"""The reliability suite's machinery: a case, the promise it checks, and running the CLI as a user does.

The promise (README, exit codes): bad input → exit code 2, exactly one line on stderr (``error: …``, no
traceback), nothing new written and nothing already written lost. ``refused`` checks all of it against a
snapshot of the case's folder (paths, sizes, inodes and modification times: an atomic rewrite changes the
inode, an in-place one the time), taken before the command ran.

CLI cases run ``trainlab.cli.main`` in this process with stdout/stderr captured at the file-descriptor level
(so a warning printed by C++ code counts as a line too) — 0.1 s a case instead of 2 s of imports; a few cases
also run ``python -m trainlab.cli`` as a process to show that both agree.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

SRC = Path(__file__).resolve().parents[2] / "src"
CATEGORIES = ("kills", "cli", "api", "files", "disk", "search", "playground")


class Skip(Exception):
    """A case this machine cannot try (no tmpfs mount, no uvicorn...); ``str`` says why."""


@dataclass(frozen=True)
class Case:
    """One thing a hostile user does. ``run(folder)`` raises AssertionError when trainlab falls short."""

    category: str
    name: str
    run: Callable[[Path], None] = field(repr=False)
    quick: bool = False  # part of the subset the default ``pytest`` runs

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def full_mode() -> bool:
    """The full set runs with TRAINLAB_RELIABILITY=full (and from benchmarks/reliability.py); else the quick subset."""
    return os.environ.get("TRAINLAB_RELIABILITY", "").lower() == "full"


@contextlib.contextmanager
def _captured() -> Iterator[dict[str, str]]:
    """Everything written to fds 1 and 2 (and sys.stdout/sys.stderr) inside the block, as text."""
    got: dict[str, str] = {}
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        saved = (os.dup(1), os.dup(2))
        old = (sys.stdout, sys.stderr)
        for s in old:
            with contextlib.suppress(Exception):
                s.flush()
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(2), "wb"), encoding="utf-8", write_through=True)
        try:
            yield got
        finally:
            for s in (sys.stdout, sys.stderr):
                s.flush()
                s.close()
            sys.stdout, sys.stderr = old
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for key, f in (("out", fo), ("err", fe)):
                f.seek(0)
                got[key] = f.read().decode("utf-8", "replace")


def cli(argv: list[str], cwd: Path, *, process: bool = False, timeout: float = 120) -> Outcome:
    """``trainlab <argv>`` in ``cwd``: in this process (default) or as ``python -m trainlab.cli``."""
    argv = [str(a) for a in argv]
    if process:
        env = dict(os.environ, PYTHONPATH=str(SRC), HOME=os.environ.get("HOME", str(cwd)))
        r = subprocess.run([sys.executable, "-m", "trainlab.cli", *argv], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=timeout)
        return Outcome(r.returncode, r.stdout, r.stderr)
    from trainlab.cli import main

    old = Path.cwd()
    os.chdir(cwd)
    try:
        with _captured() as got:
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # noqa: BLE001 — escaping main is what a traceback would be
                import traceback

                traceback.print_exc()
                code = 1 if not isinstance(exc, KeyboardInterrupt) else 130
    finally:
        os.chdir(old)
    return Outcome(code, got["out"], got["err"])


Snapshot = dict[str, tuple[int, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every file and folder under ``root``: path → (size, inode, mtime_ns); a folder → (-1, 0, 0), since its
    time moves when an entry comes and goes again (a temp file) and its entries are compared one by one."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[str((Path(dirpath) / name).relative_to(root))] = (-1, 0, 0)
        for name in filenames:
            p = Path(dirpath) / name
            with contextlib.suppress(FileNotFoundError):
                st = p.lstat()
                out[str(p.relative_to(root))] = (st.st_size, st.st_ino, st.st_mtime_ns)
    return out


def changes(before: Snapshot, after: Snapshot) -> str:
    """What differs between two snapshots, in words ('' when nothing)."""
    new = sorted(set(after) - set(before))
    lost = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{label}: {items[:4]}" for label, items in (("new", new), ("lost", lost), ("changed", changed)) if items]
    return "; ".join(parts)


def one_line_error(o: Outcome, what: str = "") -> None:
    """Exit 2 and exactly one line on stderr, 'error: …', with no traceback."""
    lines = o.err.splitlines()
    assert o.code == 2, f"{what}exit code {o.code}, not 2; stderr: {o.err[-600:]!r}"
    assert "Traceback" not in o.err, f"{what}a traceback: {o.err[-800:]!r}"
    assert len(lines) == 1 and o.err.endswith("\n"), f"{what}{len(lines)} lines on stderr, not 1: {o.err[:600]!r}"
    assert lines[0].startswith("error: "), f"{what}stderr does not start with 'error: ': {lines[0][:300]!r}"


def refused(argv: list[str], cwd: Path, *, watch: Path | None = None, process: bool = False,
            contains: str | None = None) -> Outcome:
    """Run ``trainlab <argv>`` and check the whole promise; ``watch``: the folder that must not change (cwd)."""
    watch = watch or cwd
    before = snapshot(watch)
    o = cli(argv, cwd, process=process)
    one_line_error(o, f"trainlab {' '.join(map(str, argv))[:160]}: ")
    diff = changes(before, snapshot(watch))
    assert not diff, f"trainlab {' '.join(map(str, argv))[:160]}: files changed: {diff}"
    if contains is not None:
        assert contains in o.err, f"stderr lacks {contains!r}: {o.err!r}"
    return o
