"""Data-parallel training (train/distributed.py): ``trainlab train --nproc-per-node 2`` with gloo on 127.0.0.1
follows the one-process run (the global batch split across the ranks, gradients averaged by DDP), writes one
run directory from rank 0, runs as two "nodes" of one process each, stops with one line when a process is
killed, and resumes across process counts (1 → 2, 2 → 1).

Equality: the ranks' gradients are averaged in another summation order than one process's mean, so the metrics
agree to float32 rounding (measured ≤ 1e-7 on these runs), asserted within 1e-5."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOY = ["--set", "data.name=circle", "--set", "data.n_points=400", "--set", "model.hidden=[16]",
       "--set", "model.activation=tanh", "--set", "model.init=xavier", "--set", "batch_size=32",
       "--set", "tensorboard=false", "--no-report", "--quiet"]


def trainlab(cwd: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """``trainlab train`` on the toy setup (a resume: only its own arguments), as a user runs it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    setup = ["--no-report", "--quiet"] if "--resume" in args else TOY
    return subprocess.run([sys.executable, "-m", "trainlab", "train", *setup, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_curves(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert rb[key] == pytest.approx(ra[key], abs=1e-5), (ra["epoch"], key)


def test_two_processes_follow_one_write_one_run_and_resume_a_one_process_run(tmp_path):
    ref = trainlab(tmp_path, "--set", "epochs=4", "--name", "ref")
    two = trainlab(tmp_path, "--set", "epochs=4", "--name", "two", "--nproc-per-node", "2")
    assert ref.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ref", "two"]  # one directory for 2 ranks
    assert_same_curves(metrics(tmp_path / "runs/ref"), metrics(tmp_path / "runs/two"))
    s1, s2 = (json.loads((tmp_path / f"runs/{r}/summary.json").read_text()) for r in ("ref", "two"))
    assert s2["test"]["test_acc"] == s1["test"]["test_acc"] and s2["epochs_run"] == 4
    assert s2["steps"]["eager_because"].startswith("a distributed (DDP) run")
    assert two.stdout.count("verdict:") == 1 and not two.stderr.strip()  # rank 0 prints; rank 1 says nothing
    # each rank's 16 examples of a batch in passes of 5, 5, 5 and 1, exchanged once (DDP's no_sync): the same run
    parts = trainlab(tmp_path, "--set", "epochs=4", "--name", "parts", "--nproc-per-node", "2",
                     "--set", "speed.micro_batch=5")
    assert parts.returncode == 0, parts.stderr[-2000:]
    assert_same_curves(metrics(tmp_path / "runs/ref"), metrics(tmp_path / "runs/parts"))
    # 1 process for 2 epochs, resumed in 2 to 4, follows the reference (2 → 1: the kill test below)
    assert trainlab(tmp_path, "--set", "epochs=2", "--name", "b").returncode == 0
    back = trainlab(tmp_path, "--resume", "runs/b", "--set", "epochs=4", "--nproc-per-node", "2")
    assert back.returncode == 0, back.stderr[-2000:]
    assert_same_curves(metrics(tmp_path / "runs/ref"), metrics(tmp_path / "runs/b"))


def test_two_processes_average_the_weights_as_one_does(tmp_path):
    """ema.decay under DDP: every rank averages the same updated weights; rank 0's checkpoints and validation
    follow the one-process run."""
    ema = ("--set", "epochs=3", "--set", "ema.decay=0.9")
    one = trainlab(tmp_path, *ema, "--name", "one")
    two = trainlab(tmp_path, *ema, "--name", "two", "--nproc-per-node", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert_same_curves(metrics(tmp_path / "runs/one"), metrics(tmp_path / "runs/two"))
    import torch

    a, b = (torch.load(tmp_path / f"runs/{r}/checkpoints/last.pt", weights_only=True) for r in ("one", "two"))
    assert a["ema"] == b["ema"]
    for k, v in a["model"].items():
        assert torch.allclose(v.float(), b["model"][k].float(), atol=1e-5), k


def test_two_nodes_of_one_process_each_on_127_0_0_1(tmp_path):
    port = _free_port()
    args = ["--set", "epochs=3", "--name", "nodes", "--nnodes", "2", "--master-port", str(port)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "trainlab", "train", *TOY, *args]
    node1 = subprocess.Popen([*cmd, "--node-rank", "1"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    node0 = subprocess.run([*cmd, "--node-rank", "0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=180)
    out1, err1 = node1.communicate(timeout=60)
    assert node0.returncode == 0 and node1.returncode == 0, node0.stderr[-1500:] + err1[-1500:]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["nodes"]
    trainlab(tmp_path, "--set", "epochs=3", "--name", "single")
    assert_same_curves(metrics(tmp_path / "runs/single"), metrics(tmp_path / "runs/nodes"))


@pytest.mark.parametrize("args, match", [
    (["--nproc-per-node", "0"], r"^error: --nproc-per-node must be at least 1\. Got 0\."),
    (["--nnodes", "2", "--node-rank", "2"], r"^error: --node-rank must be 0 … 1 \(--nnodes 2\)\. Got 2\."),
])
def test_bad_distributed_setups_are_one_line(tmp_path, args, match):
    import re

    got = trainlab(tmp_path, "--set", "epochs=1", *args)
    lines = [line for line in got.stderr.splitlines() if line.startswith("error: ")]
    assert got.returncode != 0 and lines and re.search(match, lines[0]), got.stderr[-2000:]
    assert "Traceback" not in got.stderr and not (tmp_path / "runs").exists()


def test_a_global_batch_smaller_than_the_process_count_is_refused(make_cfg, monkeypatch):
    from trainlab.errors import ConfigError
    from trainlab.train import distributed
    from trainlab.train.distributed import Ranks, check_sizes, shard
    from trainlab.train.run import prepare

    with pytest.raises(ConfigError, match=r"^batch_size must be at least the number of processes \(4\) .* Got 2\."):
        check_sizes(100, 2, Ranks(0, 4))
    check_sizes(100, 4, Ranks(0, 4))
    # refused while preparing, before train() makes the run directory
    monkeypatch.setattr(distributed, "current", lambda: Ranks(0, 4))
    with pytest.raises(ConfigError, match=r"^batch_size must be at least the number of processes \(4\)"):
        prepare(make_cfg(batch_size=2))

    # the parts of a global batch: contiguous, every example once; each mean loss scaled by its share x world
    import torch

    idx = torch.arange(10)
    parts = [shard(idx, Ranks(r, 4)) for r in range(4)]
    assert torch.equal(torch.cat([p for p, _ in parts]), idx)
    assert [f for _, f in parts] == [3 * 4 / 10, 3 * 4 / 10, 2 * 4 / 10, 2 * 4 / 10]


def test_a_master_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        got = trainlab(tmp_path, "--nproc-per-node", "2", "--master-port", str(port))
    assert got.returncode == 2 and got.stderr.strip() == (
        f"error: --master-port must be a free port on this machine. Got {port}. Pick another with --master-port, "
        "or stop what listens there.")
    assert not (tmp_path / "runs").exists()


def test_a_master_port_out_of_range_is_one_line(tmp_path):
    # was bind()'s OverflowError with a traceback, exit 1
    got = trainlab(tmp_path, "--nproc-per-node", "2", "--master-port", "99999")
    assert got.returncode == 2 and got.stderr.strip() == (
        "error: --master-port must be a port number 1 … 65535. Got 99999. Use e.g. --master-port 29500.")
    assert not (tmp_path / "runs").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(run_name: str, local_rank: int) -> int | None:
    """The pid of the training process with ``local_rank`` of the run named ``run_name`` (from /proc)."""
    for d in Path("/proc").iterdir():
        try:
            if not d.name.isdigit() or f"{run_name}".encode() not in (d / "cmdline").read_bytes():
                continue
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"LOCAL_RANK={local_rank}".encode() in env and b"TORCHELASTIC_RUN_ID=" in b"\0".join(env):
            return int(d.name)
    return None


@pytest.mark.parametrize("rank_0_too", [False, True], ids=["rank-1-killed", "and-rank-0-terminated"])
def test_a_killed_process_stops_the_run_with_one_line_and_one_process_resumes_it_exactly(tmp_path, rank_0_too):
    """Rank 1 killed: rank 0 finds its exchange failing and says so in one line. With ``rank_0_too`` rank 0 is sent
    SIGTERM at once, as torchrun does 0.1 s after a process dies, before a slow machine's rank 0 noticed on its own
    (CI's 2-core machine: then nobody said which epoch to resume from): the same line from its SIGTERM."""
    import signal

    from tests.conftest import train_until_checkpoint

    args = [*TOY, "--set", "data.n_points=4000", "--set", "epochs=8", "--name", "killed", "--nproc-per-node", "2"]
    job, _ = train_until_checkpoint(tmp_path, args, "killed")
    victim, first = _worker("killed", 1), _worker("killed", 0)
    assert victim is not None and first is not None and job.poll() is None, "the run ended before a checkpoint"
    os.kill(victim, signal.SIGKILL)  # rank 1 gone after at least one epoch's checkpoint
    if rank_0_too:
        os.kill(first, signal.SIGTERM)
    out, err = job.communicate(timeout=120)
    assert job.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: every process of a distributed run must stay up"), err
    assert "Resume from its last checkpoint (epoch " in lines[0] and "Traceback" not in err
    resumed = trainlab(tmp_path, "--resume", "runs/killed")  # 2 processes, then 1
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ref = trainlab(tmp_path, "--set", "data.n_points=4000", "--set", "epochs=8", "--name", "ref")
    assert ref.returncode == 0
    assert_same_curves(metrics(tmp_path / "runs/ref"), metrics(tmp_path / "runs/killed"))


def test_the_backend_follows_the_device_and_nccl_without_cuda_is_one_line(monkeypatch):
    import torch

    from trainlab.errors import ConfigError
    from trainlab.train.distributed import backend_for

    monkeypatch.delenv("TRAINLAB_DDP_BACKEND", raising=False)
    assert backend_for("cpu") == "gloo" and backend_for("auto") == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert backend_for("cuda") == "nccl" and backend_for("cuda:1") == "nccl"
    assert backend_for("auto") == "nccl"  # the default device on a GPU machine: was gloo, slow on GPUs
    monkeypatch.setenv("TRAINLAB_DDP_BACKEND", "gloo")  # overridable
    assert backend_for("cuda") == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("TRAINLAB_DDP_BACKEND", "nccl")
    with pytest.raises(ConfigError, match=r"^the distributed backend must suit the device\. Got nccl on a machine "
                                          r"without CUDA \(device='cpu'\)\. Use device=cpu \(gloo\)"):
        backend_for("cpu")


@pytest.mark.parametrize("device, local_world, gpus, expected", [
    ("cuda", 2, 2, "cuda:1"),  # rank 1 of 2 on a 2-GPU machine: its own GPU
    ("cuda:1", 1, 2, "cuda:1"),  # one process on this machine: the GPU it names
    ("cuda:0", 2, 2, r"^device must not name one GPU for the 2 processes on this machine\. Got 'cuda:0'\. Use "
                     r"device=cuda: each process takes the GPU of its local rank\.$"),
    ("cuda", 4, 2, r"^the processes on a machine must each have a GPU\. Got 4 processes for 2 GPUs "
                   r"\(device='cuda'\)\. Use --nproc-per-node 2, or device=cpu\.$"),
    ("cuda:3", 1, 2, r"^device must be one of this machine's 2 GPUs \(cuda:0 … cuda:1\)\. Got 'cuda:3'\."),
    ("cuda", 2, 0, r"^device must be available on this machine\. Got 'cuda' but torch sees no CUDA GPU\."),
])
def test_each_process_gets_a_gpu_of_its_own_or_one_line(monkeypatch, device, local_world, gpus, expected):
    """Which GPU a process of a multi-GPU run takes (``session`` sets it before joining the group, ``prepare``
    moves the model there): both rules agree, and a setup that would share or miss a GPU is one line."""
    import torch

    from trainlab.errors import ConfigError
    from trainlab.train.distributed import Ranks, _gpu_of, device_for

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ranks = Ranks(rank=local_world - 1, world=local_world, local_rank=local_world - 1, local_world=local_world)
    if expected.startswith("cuda"):
        assert f"cuda:{_gpu_of(device, ranks)}" == expected
        assert str(device_for(torch.device(device), ranks)) == expected
        return
    with pytest.raises(ConfigError, match=expected):
        _gpu_of(device, ranks)
        device_for(torch.device(device), ranks)  # the rule session's check leaves for prepare


@pytest.mark.parametrize("visible, gpus, expected", [
    ("3", 1, "cuda:0"),  # srun --gpus-per-task=1: this process sees only its own GPU, as cuda:0
    (" 3 ", 1, "cuda:0"),
    ("0,1", 2, "cuda:1"),  # both GPUs visible to each process: the one of its local rank
    ("", 1, r"^the processes on a machine must each have a GPU\. Got 2 processes for 1 GPU "),  # one GPU for two
    ("0,1", 1, r"^the processes on a machine must each have a GPU\. Got 2 processes for 1 GPU "),
])
def test_a_process_handed_its_own_gpu_trains_on_it(monkeypatch, visible, gpus, expected):
    import torch

    from trainlab import gpu_start
    from trainlab.errors import ConfigError
    from trainlab.train.distributed import Ranks, _gpu_of, device_for

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    ranks = Ranks(rank=1, world=2, local_rank=1, local_world=2)
    if not expected.startswith("cuda"):
        with pytest.raises(ConfigError, match=expected):
            _gpu_of("cuda", ranks)
        return
    assert f"cuda:{_gpu_of('cuda', ranks)}" == expected
    assert str(device_for(torch.device("cuda"), ranks)) == expected
    # the CUDA context trainlab train starts early is that GPU's too
    started = gpu_start.gpu_ordinal("cuda", {"WORLD_SIZE": "2", "LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": visible})
    assert f"cuda:{started}" == expected


def test_two_processes_handed_the_same_gpu_are_found():
    from trainlab.train.distributed import duplicate_gpu

    assert duplicate_gpu([("a", "GPU-1"), ("a", "GPU-2"), ("b", "GPU-1")]) is None  # another machine's GPU-1
    assert duplicate_gpu([("a", "GPU-1"), ("a", "GPU-2"), ("a", "GPU-1")]) == (0, 2, "a", "GPU-1")


CHECK_GPUS = r"""
import os, sys, types
import torch
import torch.distributed as dist
from trainlab.errors import ConfigError
from trainlab.train.distributed import Ranks, _check_distinct_gpus

rank, uuid = int(sys.argv[1]), sys.argv[2]
torch.cuda.get_device_properties = lambda device=None: types.SimpleNamespace(uuid=uuid)  # no GPU here: its uuid
dist.init_process_group("gloo", rank=rank, world_size=2, init_method=f"tcp://127.0.0.1:{sys.argv[3]}")
try:
    _check_distinct_gpus(Ranks(rank=rank, world=2, local_rank=rank, local_world=2))
    print("distinct")
except ConfigError as exc:
    print(f"error: {exc}")
dist.destroy_process_group()
"""


@pytest.mark.parametrize("uuids, expected", [
    (("GPU-a", "GPU-b"), "distinct"),
    (("GPU-a", "GPU-a"), "error: each process must be handed a GPU of its own. Got ranks 0 and 1 both handed GPU "
                         "GPU-a on "),
])
def test_processes_compare_the_gpus_they_were_handed(uuids, expected):
    """The comparison itself, in two real processes over gloo (each told which GPU it holds: CI has none)."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", CHECK_GPUS, str(r), uuids[r], port], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for (out, err), p in zip(outs, procs):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().startswith(expected), out
