"""Shared helpers for the model tests.

Configs are built with ``ModelConfig.model_construct`` (fields unvalidated) so these tests do not
depend on the data and train packages that config validation imports to check registered names.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from trainlab.config import ModelConfig


def make_model_config(**changes: Any) -> ModelConfig:
    """The default ``ModelConfig`` with ``changes`` applied, skipping validation."""
    return ModelConfig.model_construct(**changes)


@pytest.fixture
def mcfg() -> Callable[..., ModelConfig]:
    return make_model_config
