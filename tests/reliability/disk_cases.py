"""Full and read-only disks, real ones ("disk"): a small tmpfs mounted for the case, filled up or remounted read-only,
under every verb that writes. Needs the right to mount (root, or a user namespace); elsewhere each case is skipped
and says why.

Read-only and full-before-the-first-write: the promise in full (exit 2, one line naming the path and the fix,
nothing new, nothing lost). A disk that fills up mid-run: exit 2 and one line, no 0-byte or temp file left, and
every file that was already there still whole (a later ``--resume`` on a disk with room finishes the run).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

from tests.reliability.harness import Case, Skip, changes, cli, one_line_error, refused, snapshot
from tests.reliability.world import TINY, World, case_dir, world

_mount_problem: str | None = None
_checked = False


def _can_mount() -> None:
    """Skip unless a tmpfs can be mounted here (checked once)."""
    global _checked, _mount_problem
    if not _checked:
        _checked = True
        probe = case_dir("disk-probe")
        try:
            with _tmpfs(probe / "m", "64k"):
                pass
        except (OSError, subprocess.CalledProcessError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            _mount_problem = (err.decode(errors="replace").strip() or str(exc))[:160]
    if _mount_problem is not None:
        raise Skip(f"needs a tmpfs mount (root or CAP_SYS_ADMIN): mount -t tmpfs failed here: {_mount_problem}")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


def _fill(path: Path) -> None:
    """Write a filler file until the disk is full (it stays, so the case's snapshot includes it)."""
    fd = os.open(path / ".filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 4096, 1):  # big writes, then the last blocks
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    assert shutil.disk_usage(path).free < 8192, shutil.disk_usage(path)


def _place(m: Path, name: str) -> Path:
    src = world().root / "runs" / name
    dst = m / "runs" / name
    shutil.copytree(src, dst, copy_function=shutil.copy2)
    return dst


VerbArgv = Callable[[Path, World], list]

# verb → (what to copy onto the disk first, argv given the mount)
WRITERS: dict[str, tuple[str | None, VerbArgv]] = {
    "train-new": (None, lambda m, w: ["train", *TINY, "--set", f"out_dir={m / 'runs'}", "--quiet"]),
    "resume": ("toy", lambda m, w: ["train", "--resume", m / "runs" / "toy", "--set", "epochs=4", "--quiet"]),
    "evaluate": ("toy", lambda m, w: ["evaluate", m / "runs" / "toy"]),
    "report": ("toy", lambda m, w: ["report", m / "runs" / "toy"]),
    "export": ("toy", lambda m, w: ["export", m / "runs" / "toy"]),
    "fix": ("toy", lambda m, w: ["fix", m / "runs" / "toy", "--quiet"]),
    "lr-find-run": ("toy", lambda m, w: ["lr-find", "--run", m / "runs" / "toy", "--seeds", "1", "--steps", "10"]),
    "compare": ("toy", lambda m, w: ["compare", m / "runs" / "toy", m / "runs" / "toy", "--out", m / "cmp"]),
    "search-new": (None, lambda m, w: ["search", *TINY, "--set", f"out_dir={m / 'runs'}", "--space", w.space,
                                       "--trials", "2", "--epochs", "1", "--name", "new", "--quiet"]),
    "search-continue": ("search-s", lambda m, w: ["search", *TINY, "--set", f"out_dir={m / 'runs'}", "--space",
                                                  w.space, "--trials", "3", "--epochs", "1", "--name", "s", "--quiet"]),
    "study": ("search-s", lambda m, w: ["study", m / "runs" / "search-s"]),
    "cv": (None, lambda m, w: ["cv", *TINY, "--set", f"out_dir={m / 'runs'}", "--folds", "2", "--quiet"]),
}
QUICK = {"read-only-evaluate", "full-train-new", "read-only-resume"}


def _refused_on(kind: str, verb: str) -> Case:
    need, argv = WRITERS[verb]

    def run(_: Path) -> None:
        _can_mount()
        d = case_dir(f"disk-{kind}-{verb}")
        w = world()
        with _tmpfs(d / "disk", "4m") as m:
            if need is not None:
                _place(m, need)
            (m / "runs").mkdir(exist_ok=True)
            if kind == "read-only":
                _read_only(m)
            else:
                _fill(m)
            o = refused(argv(m, w), d)
            assert str(m) in o.err, f"the line does not name the disk's path {m}: {o.err!r}"

    return Case("disk", f"{kind}-{verb}", run, quick=f"{kind}-{verb}" in QUICK)


def _full_mid_run() -> Case:
    """The disk fills while a run trains: one line, and what was written stays whole and resumable."""
    def run(_: Path) -> None:
        _can_mount()
        d = case_dir("disk-full-mid-run")
        with _tmpfs(d / "disk", "600k") as m:
            args = ["train", *TINY, "--set", "epochs=400", "--set", "model.hidden=[128,128]", "--set",
                    f"out_dir={m / 'runs'}", "--name", "r", "--quiet", "--no-report"]
            o = cli(args, d)
            one_line_error(o)
            assert "no space left" in o.err and str(m) in o.err, o.err
            run_dir = m / "runs" / "r"
            left = [p for p in run_dir.rglob("*") if p.is_file()]
            assert left, "nothing was written before the disk filled (make the disk bigger)"
            assert not [p for p in left if p.stat().st_size == 0], [p.name for p in left if p.stat().st_size == 0]
            assert not [p for p in left if ".tmp-" in p.name], [p.name for p in left if ".tmp-" in p.name]
            for p in left:
                if p.suffix == ".json":
                    json.loads(p.read_text())
            import torch

            for p in run_dir.glob("checkpoints/*.pt"):
                torch.load(p, weights_only=True)
            before = snapshot(run_dir)
            assert not changes(before, snapshot(run_dir))

    return Case("disk", "full-mid-run-keeps-whole-files", run)


def cases() -> list[Case]:
    out = [_refused_on(kind, verb) for kind in ("read-only", "full") for verb in WRITERS]
    out.append(_full_mid_run())
    return out


if __name__ == "__main__":
    print(len(cases()), os.getuid())
