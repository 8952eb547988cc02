"""Facts about where a run ran, saved with every run as evidence: versions, device, threads, git revision."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


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
