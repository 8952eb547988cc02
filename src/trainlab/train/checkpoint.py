"""Checkpoints: model + optimizer + scheduler + RNG + epoch + history, written atomically.

Format: a ``torch.save`` file of plain containers and tensors only, read back with
``torch.load(weights_only=True)`` — loading never runs pickled code. A checkpoint is written to a
temporary file in the same directory, flushed to disk, then renamed over the old one, so a crash or a
full disk mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from trainlab import files
from trainlab.errors import CheckpointError

FORMAT = "trainlab-checkpoint/1"


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """Write ``obj`` to ``path`` via a temp file + fsync + rename (:func:`trainlab.files.write_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(f: Any) -> None:
        try:
            torch.save(obj, f)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as "file write failed"
            if shutil.disk_usage(path.parent).free < (1 << 20):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
            raise

    return files.write_atomic(path, write, binary=True)


class HistoryText:
    """A run's history (its per-epoch metrics rows) as the JSON text its checkpoints store, each row encoded once:
    pickled anew as a list every epoch, the rows cost a checkpoint more at every epoch (torch.save calls back into
    Python for each object: 0.4 ms a save at 10 epochs, 1.8 ms at 150, 11 ms at 1000), so the checkpoints of a
    long run of a small model cost time that grew with the square of its epochs; the joined text costs 0.2-0.5 ms.

    The last two rows are encoded again at every save: a callback after the checkpointer may still add to its
    epoch's row, which the next epoch's checkpoint then holds, as it did when the list was pickled. A row that JSON
    would not give back as it is (a tensor, a tuple, a NumPy number a callback put there) keeps the list itself."""

    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], str]] = []  # the rows seen so far (held: compared by identity), JSON

    def __call__(self, history: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        kept = 0
        while kept < min(len(self.rows), len(history) - 2) and self.rows[kept][0] is history[kept]:
            kept += 1
        del self.rows[kept:]
        for row in history[kept:]:
            try:
                text = json.dumps(row)
            except (TypeError, ValueError):
                text = None
            if text is None or not _same_with_nan(json.loads(text), row):
                del self.rows[:]  # a row JSON would change: the list, as torch pickles it
                return list(history)
            self.rows.append((row, text))
        return "[" + ",".join(text for _, text in self.rows) + "]"


def _same_with_nan(a: Any, b: Any) -> bool:
    """Equal values of the same types (a tuple is not the list JSON gives back), NaN matching NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_with_nan(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


def link_atomic(src: str | Path, dst: str | Path) -> Path:
    """Make ``dst`` a copy of the finished file ``src`` (a hard link where possible: no second write), atomically."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        try:
            os.link(src, tmp)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic`; CheckpointError (one line) if missing/corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint must be an existing file. Got {str(path)!r}. "
                              "Point to a run directory that finished at least one epoch.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises IndexError/KeyError/... on garbage
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} must be a readable trainlab checkpoint. Got a corrupt "
                              f"or truncated file ({first}). Use checkpoints/best.pt or retrain.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} must be a trainlab checkpoint ({FORMAT}). "
                              f"Got {type(ckpt).__name__} without that format tag. Use a file from runs/<run>/checkpoints/.")
    if isinstance(ckpt.get("history"), str):  # HistoryText's JSON (a list in checkpoints written before it)
        ckpt["history"] = json.loads(ckpt["history"])
    return ckpt


def seed_rng(seed: int, device: torch.device | None = None) -> None:
    """Seed torch's global random stream on the CPU and, for a GPU, on that GPU alone: ``torch.manual_seed``
    seeds every GPU (or, before CUDA starts, queues that for later), which a fork of the run's streams would
    not put back."""
    torch.random.default_generator.manual_seed(seed)
    if device is not None and device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def rng_state(shuffle: torch.Generator, augment: torch.Generator | None,
              device: torch.device | None = None) -> dict[str, Any]:
    """Every random stream the loop uses, so a resumed run draws the same numbers: on a GPU, that GPU's (its
    dropout masks). In a distributed run every process's GPU was seeded alike and draws alike, so the one
    state rank 0 saves is each process's."""
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
             "augment": augment.get_state() if augment is not None else None}
    if device is not None and device.type == "cuda":
        state["cuda_device"] = torch.cuda.get_rng_state(device)
    return state


def checkpoint_data(run_dir: str | Path) -> dict[str, Any]:
    """The ``data`` facts (n_classes, custom_model, ...) of the run's first readable checkpoint, last.pt then
    best.pt; empty when it has none."""
    for name in ("last.pt", "best.pt"):
        path = Path(run_dir) / "checkpoints" / name
        if path.is_file():
            try:
                return load_checkpoint(path).get("data") or {}
            except CheckpointError:
                continue
    return {}


def restore_rng(state: dict[str, Any], shuffle: torch.Generator, augment: torch.Generator | None,
                device: torch.device | None = None) -> None:
    """Put back what ``rng_state`` saved; a GPU state only onto the GPU the resumed run trains on (``device``):
    a run resumed on the CPU has none to restore, and the caller's other GPUs keep their streams."""
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if augment is not None and state.get("augment") is not None:
        augment.set_state(state["augment"])
    if device is None or device.type != "cuda":
        return
    own = state.get("cuda_device")
    if own is None and state.get("cuda"):  # a checkpoint before 2026-12-06: the state of every GPU it saw
        index = device.index or 0
        own = state["cuda"][index] if index < len(state["cuda"]) else None
    if own is not None:
        torch.cuda.set_rng_state(own, device)
