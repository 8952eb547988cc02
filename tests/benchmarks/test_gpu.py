"""benchmarks/gpu.py: the one script a session lent a GPU runs, so it must run every test marked ``gpu``."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_py_runs_every_test_file_with_tests_marked_gpu():
    tree = ast.parse((ROOT / "benchmarks" / "gpu.py").read_text())
    listed = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "GPU_TESTS" for t in node.targets))
    marked = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
              if path != Path(__file__).resolve() and re.search(r"pytest\.mark\.gpu\b", path.read_text())}
    assert marked and set(listed) == marked
    assert all((ROOT / name).is_file() for name in listed)
