"""Facts about where a run ran, saved with every run as evidence: versions, device, threads, git revision; and
whether this machine has the GPU a run names (:func:`check_gpu`)."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError


def check_gpu(name: str) -> None:
    """A ConfigError where the device ``name`` (cuda, cuda:N) needs a GPU this machine lacks: none at all, or not
    that index. The one check of a CUDA device setting, for a single process (``train.run.resolve_device``) and
    for each process of a distributed run (``train.distributed``)."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        raise ConfigError(f"device must be available on this machine. Got {name!r} but torch sees no CUDA GPU. "
                          "Use device=cpu or device=auto.")
    index = name.partition(":")[2]
    if index.isdigit() and int(index) >= n:
        raise ConfigError(f"device must be one of this machine's {n} GPU{'s' if n > 1 else ''} (cuda:0"
                          f"{f' … cuda:{n - 1}' if n > 1 else ''}). Got {name!r}. Use device=cuda (the first one).")


def cores() -> int:
    """CPU cores this process may use (respects affinity masks and container limits where visible)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git revision of the trainlab source tree, when it is a checkout; None otherwise."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    from trainlab import __version__

    info = {"trainlab": __version__, "git": git_revision(), "torch": str(torch.__version__),
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "threads": threads, "cores": cores()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
