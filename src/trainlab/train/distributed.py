"""Data-parallel training across processes: torchrun + DistributedDataParallel, with trainlab's semantics.

A run under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment; ``trainlab train --nproc-per-node N`` starts
it) trains one model in N processes ("ranks"):

- ``batch_size`` is the *global* batch: every epoch's permutation is drawn the same on every rank (one seed),
  each global batch is split into N contiguous parts and rank r takes part r; DDP averages the gradients, and
  each rank's loss is scaled by (its share × N) so the average is the gradient of the global batch's mean loss,
  as one process computes it (equal up to floating-point summation order);
- the training metrics are summed over the ranks once per epoch (one all-reduce); every rank evaluates the
  same validation split, so stop rules decide the same on every rank;
- rank 0 alone writes: the run directory, checkpoints, logs, TensorBoard, the verdict and the report. The
  other ranks write nothing; they read a checkpoint to resume, as rank 0 does.

Backend: gloo on CPUs, nccl on CUDA (``TRAINLAB_DDP_BACKEND`` overrides).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator


import torch
import torch.distributed as dist

from trainlab.errors import ConfigError
from trainlab.gpu_start import one_visible_gpu
from trainlab.train.env import check_gpu


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world`` processes (``local_*``: on this machine)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Ranks()


def from_env() -> Ranks:
    """The ranks torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); one process without them."""
    env = os.environ
    if int(env.get("WORLD_SIZE", "1")) <= 1:
        return SINGLE
    return Ranks(int(env.get("RANK", "0")), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")),
                 int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])))


def current() -> Ranks:
    """The ranks of the process group this process has joined (one process when it has joined none)."""
    return from_env() if dist.is_available() and dist.is_initialized() else SINGLE


def on_cuda(device: str) -> bool:
    """Whether a run's ``device`` setting puts it on a GPU (``auto`` does wherever torch sees one)."""
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def backend_for(device: str) -> str:
    name = os.environ.get("TRAINLAB_DDP_BACKEND") or ("nccl" if on_cuda(device) else "gloo")
    if name == "nccl" and not torch.cuda.is_available():
        raise ConfigError(f"the distributed backend must suit the device. Got nccl on a machine without CUDA "
                          f"(device={device!r}). Use device=cpu (gloo), or unset TRAINLAB_DDP_BACKEND.")
    return name


@contextlib.contextmanager
def session(device_of: Callable[[], str]) -> Iterator[Ranks]:
    """Join torchrun's process group for the run (when started by torchrun), and leave it afterwards.
    ``device_of()`` gives the run's device (for the backend); asked only when there is a group to join."""
    ranks = from_env()
    if not ranks.active or not dist.is_available() or dist.is_initialized():
        yield current()
        return
    device = device_of()
    backend = backend_for(device)
    if on_cuda(device):  # each process on its own GPU, whichever backend: bare "cuda" then means that one
        torch.cuda.set_device(_gpu_of(device, ranks))
    dist.init_process_group(backend)
    try:
        if on_cuda(device) and backend == "nccl" and handed_own_gpu(ranks):
            _check_distinct_gpus(ranks)
        yield ranks
    finally:
        dist.destroy_process_group()


def handed_own_gpu(ranks: Ranks) -> bool:
    """Whether the launcher handed this process one GPU of its own, as ``srun --gpus-per-task=1`` does: one of
    several processes on a machine, ``CUDA_VISIBLE_DEVICES`` naming a single GPU, and torch seeing just that one.
    The process then trains on its cuda:0, not on the index of its local rank (which it cannot see)."""
    return ranks.local_world > 1 and one_visible_gpu() and torch.cuda.device_count() == 1


def local_gpu(ranks: Ranks) -> int:
    """The index, among the GPUs this process sees, of the one its local rank trains on."""
    return 0 if handed_own_gpu(ranks) else ranks.local_rank


def _gpu_of(device: str, ranks: Ranks) -> int:
    """The GPU this process trains on: the one ``device`` names (cuda:N), else the one of its local rank. A
    ConfigError, the same on every process, where that GPU is not there."""
    check_gpu(device)
    named = device.partition(":")[2]
    if named.isdigit():
        return int(named)
    gpus = torch.cuda.device_count()
    if ranks.local_world > gpus and not handed_own_gpu(ranks):
        raise ConfigError(f"the processes on a machine must each have a GPU. Got {ranks.local_world} processes for "
                          f"{gpus} GPU{'s' if gpus != 1 else ''} (device={device!r}). Use --nproc-per-node {gpus}, "
                          f"or device=cpu.")
    return local_gpu(ranks)


def duplicate_gpu(every: list[tuple[str, str]]) -> tuple[int, int, str, str] | None:
    """(first rank, second rank, host, GPU) of the first GPU two ranks hold, from each rank's (host, GPU uuid) in
    rank order; None when every rank holds a GPU of its own."""
    seen: dict[tuple[str, str], int] = {}
    for rank, key in enumerate(every):
        if key in seen:
            return seen[key], rank, key[0], key[1]
        seen[key] = rank
    return None


def _check_distinct_gpus(ranks: Ranks) -> None:
    """Processes handed one GPU each (``handed_own_gpu``) that were handed the same one would stop NCCL at its first
    exchange ("Duplicate GPU detected", deep inside torch): compared here over a side gloo group, one line on every
    process."""
    import socket

    group = dist.new_group(backend="gloo")
    try:
        every: list[Any] = [None] * ranks.world
        dist.all_gather_object(every, (socket.gethostname(), str(torch.cuda.get_device_properties(0).uuid)),
                               group=group)
    finally:
        dist.destroy_process_group(group)
    twice = duplicate_gpu(every)
    if twice is not None:
        a, b, host, gpu = twice
        raise ConfigError(f"each process must be handed a GPU of its own. Got ranks {a} and {b} both handed GPU "
                          f"{gpu} on {host} (CUDA_VISIBLE_DEVICES). Hand each process another GPU, or device=cpu.")


def device_for(device: torch.device, ranks: Ranks) -> torch.device:
    """Each rank's own GPU on a multi-GPU machine (cuda → cuda:<local rank>, or cuda:0 where the launcher handed
    each process one GPU); CPUs are shared. One GPU named for every process on a machine would put them all on it
    (NCCL refuses: duplicate GPU): a ConfigError."""
    if ranks.active and device.type == "cuda":
        if device.index is None:
            return torch.device("cuda", local_gpu(ranks))
        if ranks.local_world == 1:  # one process on this machine: the GPU it was given
            return device
        raise ConfigError(f"device must not name one GPU for the {ranks.local_world} processes on this machine. "
                          f"Got {str(device)!r}. Use device=cuda: each process takes the GPU of its local rank.")
    return device


def broadcast(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable value: the run directory's name)."""
    if not ranks.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_over_ranks(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """``t`` summed over every rank (in place, one all-reduce); ``t`` itself in one process."""
    if ranks.active:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def check_sizes(n_train: int, batch_size: int, ranks: Ranks) -> None:
    """One line for a setup whose ranks would get no examples."""
    if not ranks.active:
        return
    if batch_size < ranks.world:
        raise ConfigError(f"batch_size must be at least the number of processes ({ranks.world}) in a distributed "
                          f"run: it is the global batch, split across them. Got {batch_size}. Raise batch_size.")
    if n_train < ranks.world:
        raise ConfigError(f"the training split must hold at least one example per process ({ranks.world}). Got "
                          f"{n_train}. Use fewer processes (--nproc-per-node).")


def shard(idx: torch.Tensor, ranks: Ranks) -> tuple[torch.Tensor, float]:
    """This rank's contiguous part of one global batch's indices, and the factor its mean loss is scaled by
    (its share × world) so that DDP's average of the ranks' gradients is the global batch's mean gradient."""
    part = idx.tensor_split(ranks.world)[ranks.rank]
    return part, len(part) * ranks.world / max(len(idx), 1)


def barrier(ranks: Ranks) -> None:
    """Wait until every rank gets here (nothing in one process)."""
    if ranks.active:
        dist.barrier()
