"""Start a GPU's CUDA context beside the torch import, for ``trainlab train`` on a GPU.

Before its first step a CUDA run pays for two things, one after the other: importing torch (~1 s on a workstation,
several on the sandboxed H200 machine of issue 16) and then, on its first CUDA call, starting CUDA (``cuInit`` and
the GPU's primary context: seconds more on such a machine). Starting CUDA needs no torch: the CUDA driver's own API
does it (``cuInit``, ``cuDevicePrimaryCtxRetain``), and torch's first CUDA call then finds that GPU's primary context
made and uses it, as the CUDA runtime uses any primary context the driver API retained. :func:`start` makes those
calls in a thread through ctypes, which lets go of the GIL during each call, so they run beside the import.

Never an error: where there is no NVIDIA driver, no such GPU, or a call fails, the thread just ends, and torch
starts CUDA itself as it always did (and says what is wrong). ``TRAINLAB_CUDA_EARLY=0`` turns it off (the A/B row
of ``benchmarks/gpu.py``). This module imports no torch, by design.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import threading
from pathlib import Path

__all__ = ["gpu_ordinal", "one_visible_gpu", "start", "torch_has_cuda"]


def one_visible_gpu(environ: dict[str, str] | None = None) -> bool:
    """Whether ``CUDA_VISIBLE_DEVICES`` names exactly one GPU: a launcher that hands each process its own (as
    ``srun --gpus-per-task=1`` does) leaves the process seeing it alone, as GPU 0."""
    env = os.environ if environ is None else environ
    return len([d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]) == 1


def gpu_ordinal(device: str, environ: dict[str, str] | None = None) -> int | None:
    """The GPU a run's ``device`` setting will train on: the one ``cuda:N`` names; for ``cuda`` and ``auto`` the
    first, or in a distributed run the one of the process's local rank (as ``train.distributed`` assigns them).
    None for a CPU (or MPS) run."""
    env = os.environ if environ is None else environ
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    if device in ("cuda", "auto"):
        # a process handed one GPU of its own sees it as 0 (train.distributed.handed_own_gpu)
        distributed = int(env.get("WORLD_SIZE", "1")) > 1 and not one_visible_gpu(env)
        return int(env.get("LOCAL_RANK", "0")) if distributed else 0
    return None


def start(device: str) -> threading.Thread | None:
    """Start the CUDA context of the GPU ``device`` will train on, in a thread; None where there is nothing to
    start (a CPU run, not Linux, a torch without CUDA, switched off)."""
    ordinal = gpu_ordinal(device)
    if (ordinal is None or os.environ.get("TRAINLAB_CUDA_EARLY", "1") == "0" or not sys.platform.startswith("linux")
            or not torch_has_cuda()):
        return None
    # The driver reads this in cuInit: torch sets the same default just before its own (torch.cuda._lazy_init);
    # without it every kernel of torch's CUDA libraries would be loaded into the context up front.
    os.environ.setdefault("CUDA_MODULE_LOADING", "LAZY")
    thread = threading.Thread(target=_retain_primary_context, args=(ordinal,), name="trainlab-cuda-start",
                              daemon=True)
    thread.start()
    return thread


def torch_has_cuda() -> bool:
    """Whether the installed torch is a CUDA build (it ships ``lib/libtorch_cuda.so``), found without importing
    it: a CPU-only torch on a machine with an NVIDIA driver trains on the CPU, and a context made for it would
    only hold GPU memory."""
    spec = importlib.util.find_spec("torch")
    return spec is not None and any((Path(folder) / "lib" / "libtorch_cuda.so").exists()
                                    for folder in spec.submodule_search_locations or ())


def _retain_primary_context(ordinal: int) -> bool:
    """cuInit, then retain GPU ``ordinal``'s primary context (held until the process ends, as torch holds it)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:  # no NVIDIA driver on this machine
        return False
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    try:
        return (cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(dev), ordinal) == 0
                and cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0)
    except AttributeError:  # a libcuda.so.1 without the driver API (a stub)
        return False
