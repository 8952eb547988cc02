"""Checkpoints: atomic writes, weights-only reads, one-line CheckpointErrors, exact RNG restore."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from trainlab.errors import CheckpointError
from trainlab.train.checkpoint import FORMAT, load_checkpoint, restore_rng, rng_state, save_atomic, seed_rng


def _payload() -> dict[str, Any]:
    return {"format": FORMAT, "epoch": 3, "model": {"w": torch.arange(6.0).view(2, 3), "b": torch.tensor([0.5])},
            "history": [{"epoch": 1, "val_loss": 0.5, "val_acc": None}, {"epoch": 2, "val_loss": 0.25}],
            "best": None, "ints": torch.tensor([1, 2, 3], dtype=torch.int64), "name": "run-1", "flag": True}


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b and type(a) is type(b)


def _leftovers(directory: Path, keep: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p != keep)


def test_save_then_load_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "last.pt"  # parent directories are created
    assert save_atomic(_payload(), path) == path
    _assert_same(_payload(), load_checkpoint(path))
    assert _leftovers(path.parent, path) == []  # no temp file left behind


def test_save_overwrites_and_roundtrips_real_training_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    sched.step()
    path = tmp_path / "last.pt"
    save_atomic({"format": FORMAT, "epoch": 0}, path)
    save_atomic({"format": FORMAT, "epoch": 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict()}, path)
    ckpt = load_checkpoint(path)  # weights_only=True accepts what the loop saves
    assert ckpt["epoch"] == 1
    _assert_same(model.state_dict(), ckpt["model"])
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(ckpt["optimizer"])
    _assert_same(opt.state_dict()["state"], fresh.state_dict()["state"])
    assert ckpt["scheduler"]["last_epoch"] == 1


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_atomic(_payload(), path)
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        f.write(data[:len(data) // 2])  # as a full disk or a kill mid-write would leave it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_fail)
    new = dict(_payload(), epoch=4, model={"w": torch.randn(200, 200)})
    with pytest.raises(OSError, match="must be on a disk with free space. Got no space left"):  # a StorageError
        save_atomic(new, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    _assert_same(_payload(), load_checkpoint(path))
    assert _leftovers(tmp_path, path) == []


def test_a_crash_before_any_checkpoint_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK\x03\x04partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError):
        save_atomic(_payload(), tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^checkpoint must be an existing file\. Got '.*nope\.pt'\. "):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match=r"must be an existing file"):
        load_checkpoint(tmp_path)  # a directory is not a checkpoint file


CORRUPT = r"must be a readable trainlab checkpoint\. Got a corrupt or truncated file \(.+\)\. Use checkpoints/best\.pt"


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "last.pt"
    save_atomic(_payload(), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=CORRUPT) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


# Seed 3's noise starts with pickle's LONG_BINGET opcode ('j'): torch's unpickler raises KeyError there.
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    path = tmp_path / "noise.pt"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=gen, dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match=CORRUPT) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("data", [b"t", b"a", b"R", b"}Ns", b"h\x00"], ids=["t", "a", "R", "dict-setitem", "get"])
def test_corrupt_pickle_opcodes_raise_checkpoint_error(tmp_path: Path, data: bytes) -> None:
    # One- to three-byte files that any disk corruption could produce: pickle opcodes on an empty stack/memo.
    path = tmp_path / "bad.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=CORRUPT):
        load_checkpoint(path)


@pytest.mark.parametrize("obj", [{"epoch": 1, "model": {}}, {"format": "someone-else/2", "epoch": 1},
                                 [1, 2, 3], torch.zeros(3)], ids=["no-tag", "wrong-tag", "list", "tensor"])
def test_a_torch_file_without_the_format_tag(tmp_path: Path, obj: Any) -> None:
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=rf"must be a trainlab checkpoint \({FORMAT}\)\. "
                                              rf"Got {type(obj).__name__} without that format tag\."):
        load_checkpoint(path)


class Opaque:
    """Any class: unpickling it needs its import path, which weights_only refuses."""

    def __init__(self) -> None:
        self.value = 42


class RunsCommandOnLoad:
    """Unpickling this would call os.system; weights_only must refuse before running anything."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.pt"
    torch.save({"format": FORMAT, "x": Opaque()}, path)
    with pytest.raises(CheckpointError, match=CORRUPT):
        load_checkpoint(path)


def test_a_pickled_command_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "x": RunsCommandOnLoad(marker)}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=CORRUPT):
        load_checkpoint(path)
    assert not marker.exists()


# --- RNG state --------------------------------------------------------------------------------------


def _draws(shuffle: torch.Generator, augment: torch.Generator | None) -> list[torch.Tensor]:
    out = [torch.rand(5), torch.randn(3), torch.randperm(20, generator=shuffle)]
    if augment is not None:
        out.append(torch.rand(4, generator=augment))
    return out


@pytest.mark.parametrize("with_augment", [True, False])
def test_rng_state_and_restore_reproduce_the_same_draws(tmp_path: Path, with_augment: bool) -> None:
    shuffle = torch.Generator().manual_seed(1)
    augment = torch.Generator().manual_seed(2) if with_augment else None
    _draws(shuffle, augment)  # move every stream away from its seed
    # through a checkpoint file, as --resume does
    save_atomic({"format": FORMAT, "rng": rng_state(shuffle, augment)}, tmp_path / "rng.pt")
    first = _draws(shuffle, augment)
    second = _draws(shuffle, augment)
    assert not all(torch.equal(a, b) for a, b in zip(first, second))  # the streams did move on
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"], shuffle, augment)
    again = _draws(shuffle, augment)
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def test_a_gpu_state_goes_back_onto_the_gpu_the_resumed_run_trains_on_alone(monkeypatch) -> None:
    """rng_state keeps the run's GPU's stream; restore_rng puts it onto the resuming run's GPU (in a distributed run
    each process's own, all seeded and drawing alike) and onto no other: the caller's GPUs keep their streams."""
    restored, saved = [], torch.full((8,), 7, dtype=torch.uint8)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: saved)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, str(device))))
    shuffle = torch.Generator().manual_seed(5)
    state = rng_state(shuffle, None, torch.device("cuda", 0))
    assert torch.equal(state["cuda_device"], saved) and "cuda" not in state
    restore_rng(state, shuffle, None, torch.device("cuda", 1))
    restore_rng(state, shuffle, None, torch.device("cpu"))  # resumed on the CPU: no GPU stream to put back
    restore_rng(state, shuffle, None)
    assert restored == [(saved, "cuda:1")]
    assert "cuda_device" not in rng_state(shuffle, None, torch.device("cpu"))


def test_a_checkpoint_with_every_gpus_state_restores_the_run_gpus_alone(monkeypatch) -> None:
    # checkpoints before 2026-12-06 held one CUDA state per GPU of the saving machine
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, str(device))))
    shuffle = torch.Generator().manual_seed(5)
    gpus = [torch.full((8,), 1, dtype=torch.uint8), torch.full((8,), 2, dtype=torch.uint8)]
    old = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(), "cuda": gpus}
    restore_rng(old, shuffle, None, torch.device("cuda"))
    restore_rng(old, shuffle, None, torch.device("cuda", 1))
    restore_rng(old, shuffle, None, torch.device("cuda", 2))  # a GPU the saving machine had no state for
    assert restored == [(gpus[0], "cuda"), (gpus[1], "cuda:1")]


def test_seed_rng_seeds_the_cpu_as_manual_seed_does_and_only_the_gpu_it_is_given(monkeypatch) -> None:
    torch.manual_seed(11)
    want = torch.rand(4)
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(("all", seed)))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: seeded.append((str(torch.cuda.current), seed)))
    monkeypatch.setattr(torch.cuda, "current", None, raising=False)

    class OnDevice:  # torch.cuda.device(d) without a GPU: records which one is current
        def __init__(self, d):
            self.d = d

        def __enter__(self):
            torch.cuda.current = self.d

        def __exit__(self, *exc):
            torch.cuda.current = None

    monkeypatch.setattr(torch.cuda, "device", OnDevice)
    seed_rng(11)
    assert torch.equal(torch.rand(4), want)
    seed_rng(11, torch.device("cpu"))
    assert seeded == []  # torch.manual_seed would have seeded (or queued seeding) every GPU
    seed_rng(11, torch.device("cuda", 1))
    assert seeded == [("cuda:1", 11)] and torch.equal(torch.rand(4), want)


def test_restore_rng_into_fresh_generators() -> None:
    shuffle, augment = torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)
    torch.randperm(7, generator=shuffle)
    torch.rand(3, generator=augment)
    state = rng_state(shuffle, augment)
    want = _draws(shuffle, augment)
    fresh_shuffle, fresh_augment = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    restore_rng(state, fresh_shuffle, fresh_augment)
    for a, b in zip(want, _draws(fresh_shuffle, fresh_augment)):
        assert torch.equal(a, b)


def test_rng_state_without_augment_records_none() -> None:
    state = rng_state(torch.Generator().manual_seed(0), None)
    assert state["augment"] is None
    assert isinstance(state["torch"], torch.Tensor) and isinstance(state["shuffle"], torch.Tensor)


def test_best_shares_the_file_of_its_epoch_and_survives_later_saves(tmp_path: Path) -> None:
    from trainlab.train.checkpoint import link_atomic

    save_atomic({"format": FORMAT, "epoch": 1}, tmp_path / "last.pt")
    link_atomic(tmp_path / "last.pt", tmp_path / "best.pt")
    save_atomic({"format": FORMAT, "epoch": 2}, tmp_path / "last.pt")  # replaces last.pt with a new file
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from trainlab.files import StorageError
    from trainlab.train import checkpoint

    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": 1}, path)

    def full(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2 << 20, 2 << 20, 0))
    with pytest.raises(StorageError, match=r"last.pt must be on a disk with free space\. Got no space left"):
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": 2}, path)
    assert checkpoint.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_keep_all_leaves_one_checkpoint_per_epoch_that_resume_leaves_alone(make_cfg) -> None:
    from trainlab.train.run import epoch_file, resume, train

    result = train(make_cfg(**{"checkpoint.keep": "all", "epochs": 3}), verbose=False)
    ckpts = result.run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("epoch-*.pt")) == ["epoch-001.pt", "epoch-002.pt", "epoch-003.pt"]
    loaded = [load_checkpoint(ckpts / epoch_file(e)) for e in (1, 2, 3)]  # weights_only: every one loads safely
    assert [c["epoch"] for c in loaded] == [1, 2, 3]
    head = [c["model"]["head.weight"] for c in loaded]
    assert not torch.equal(head[0], head[1]) and not torch.equal(head[1], head[2])  # each its epoch's weights
    assert os.path.samefile(ckpts / "epoch-003.pt", ckpts / "last.pt")  # a link to last.pt: no second write
    resume(result.run_dir, overrides={"epochs": 4}, verbose=False)
    assert load_checkpoint(ckpts / "epoch-004.pt")["epoch"] == 4
    assert torch.equal(load_checkpoint(ckpts / "epoch-001.pt")["model"]["head.weight"], head[0])
    plain = train(make_cfg(epochs=2), verbose=False)  # the default keeps last + best only
    assert sorted(p.name for p in (plain.run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def test_history_is_stored_as_json_text_encoding_each_row_once_and_reads_back_as_rows(tmp_path, monkeypatch):
    import json

    import trainlab.train.checkpoint as ck

    encoded = []
    real_dumps = json.dumps
    monkeypatch.setattr(ck.json, "dumps", lambda row, **kw: encoded.append(row["epoch"]) or real_dumps(row, **kw))
    text = ck.HistoryText()
    history: list[dict[str, Any]] = []
    for epoch in range(1, 201):
        history.append({"epoch": epoch, "val_loss": 1 / epoch, "val_acc": None, "lr": 0.1, "nan": float("nan")})
        stored = text(history)
        if epoch == 150:
            history[-1]["late"] = True  # a callback after the checkpointer added to its epoch's row
    assert isinstance(stored, str) and len(encoded) < 2 * 200 + 1  # two rows a save, not every row every save
    save_atomic({"format": FORMAT, "history": stored}, tmp_path / "last.pt")
    back = load_checkpoint(tmp_path / "last.pt")["history"]
    assert [r["epoch"] for r in back] == list(range(1, 201)) and back[149]["late"] is True
    assert back[10]["val_loss"] == history[10]["val_loss"] and back[10]["nan"] != back[10]["nan"]  # exact, NaN kept
    # a value JSON would not give back as it was: the list itself, pickled as before
    history.append({"epoch": 201, "layers": (1, 2)})
    assert text(history) == history


def test_a_runs_checkpoints_hold_its_history_as_text_that_reads_back_as_its_rows(tmp_path):
    import trainlab as tl

    x = torch.randn(120, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    run = tl.fit(data=(x, y), epochs=3, out_dir=str(tmp_path), verbose=False, report=False, tensorboard=False)
    raw = torch.load(run.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert isinstance(raw["history"], str)
    assert load_checkpoint(run.run_dir / "checkpoints" / "last.pt")["history"] == list(run.history)
    # (tests/train/test_resume.py: a resumed run continues from these rows with the metrics of an uninterrupted one)
