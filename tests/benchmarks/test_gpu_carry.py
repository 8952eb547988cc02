"""benchmarks/gpu_carry.py picks the wheels a GPU machine's image lacks: every package trainlab needs there,
transitively, is in the image or carried; nothing the image has (torch above all) is carried again."""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("gpu_carry", ROOT / "benchmarks" / "gpu_carry.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_carry"] = module
    spec.loader.exec_module(module)
    return module


def test_carried_wheels_and_the_image_together_hold_every_package_trainlab_needs():
    carry = load()
    wanted = carry.needed()
    assert {"pydantic", "pydantic-core", "optuna", "fastapi", "uvicorn", "websockets"} <= set(wanted)
    assert ("skorch" in wanted) == carry.has("skorch")  # CI installs no skorch; a developer's machine may
    assert not {"torch", "numpy", "matplotlib", "tensorboard", "scikit-learn"} & set(wanted)
    assert all(wanted[name] == md.version(name) for name in wanted)  # the versions tested here
    for name in wanted:
        for r in md.requires(name) or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(dict(carry.TARGET, extra="")):
                dep = canonicalize_name(req.name)
                assert dep in wanted or dep in carry.IMAGE, f"{name} needs {dep}, neither carried nor in the image"
