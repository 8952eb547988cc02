"""Where the whole-process seconds of `trainlab train` go: one run under cProfile, the trainlab functions and
the big imports ordered by cumulative seconds, beside the process's own clock (start → torch imported → done).

cProfile inflates Python-heavy phases by ~1.3×, so read the table for proportions; benchmarks/classic_mlp.py and
benchmarks/gpu.py give the unprofiled figures. Used to decide what to take off the critical path (issue 16).

    python benchmarks/phases.py [--device cpu|cuda] [--top 45] [-- extra trainlab train args]
"""
from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

# Functions worth a line: trainlab's own, the imports that cost (dynamo, matplotlib, tensorboard, pydantic),
# torch.save/load and CUDA start-up.
WATCH = (r"trainlab/|torch/_dynamo/__init__|matplotlib/pyplot|tensorboard/__init__|pydantic/main"
         r"|torch/serialization.py:\d+\((save|load)\)|cuda/__init__.py:\d+\(_lazy_init\)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("rest", nargs="*", help="more `trainlab train` arguments (after --)")
    a = ap.parse_args()
    import torch

    t_torch = time.perf_counter()
    from trainlab import cli

    with tempfile.TemporaryDirectory() as out:
        prof = cProfile.Profile()
        prof.enable()
        try:
            cli.main(["train", "--set", f"device={a.device}", "--set", f"out_dir={out}", *a.rest])
        except SystemExit:
            pass
        prof.disable()
    t_end = time.perf_counter()
    print(f"process clock: torch imported at {t_torch - T_START:.2f} s (torch {torch.__version__}), "
          f"trainlab train took {t_end - t_torch:.2f} s under cProfile")
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(WATCH, a.top)
    rows = [line for line in text.getvalue().splitlines() if line.strip() and "function calls" not in line]
    print("\n".join(line.replace("/work/main/src/", "") for line in rows[3:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
