"""The reliability suite runs in one folder per session (pytest's tmp) on one torch thread."""
from __future__ import annotations

import pytest
import torch

from tests.reliability import world


@pytest.fixture(scope="session", autouse=True)
def reliability_root(tmp_path_factory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    world.set_root(tmp_path_factory.mktemp("reliability"))
    yield
    torch.set_num_threads(old)
