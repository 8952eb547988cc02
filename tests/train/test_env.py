"""train.env.check_gpu: a CUDA device setting this machine cannot honour is one line, in one process or many."""
from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.train.run import resolve_device


@pytest.mark.parametrize("name, gpus, expected", [
    ("cuda:1", 2, "cuda:1"),
    ("cuda", 1, "cuda"),
    ("cuda:1", 1, r"^device must be one of this machine's 1 GPU \(cuda:0\)\. Got 'cuda:1'\. Use device=cuda \(the "
                  r"first one\)\.$"),
    ("cuda:3", 2, r"^device must be one of this machine's 2 GPUs \(cuda:0 … cuda:1\)\. Got 'cuda:3'\."),
    ("cuda", 0, r"^device must be available on this machine\. Got 'cuda' but torch sees no CUDA GPU\. Use "
                r"device=cpu or device=auto\.$"),
])
def test_a_gpu_the_machine_lacks_is_one_line(monkeypatch, name, gpus, expected):
    """resolve_device (one process) checks with train.env.check_gpu, as each process of a distributed run does:
    cuda:N past the machine's GPUs failed at the first .to() with a raw 'invalid device ordinal'."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    if expected.startswith("cuda"):
        assert resolve_device(name) == torch.device(expected)
        return
    with pytest.raises(ConfigError, match=expected):
        resolve_device(name)
