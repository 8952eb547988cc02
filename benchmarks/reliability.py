"""Issue 18's reliability suite, every case, as one table: per category the cases tried, held and fallen short.

What a case holds to: bad input → exit code 2, one line on stderr (no traceback), nothing new written and nothing
already written lost (the Python API: a TrainlabError subclass of one line, before the run directory exists); a
SIGKILLed run → every checkpoint loads with weights_only=True and the resumed run equals an uninterrupted one; a
killed search → failed trials, the exact trial count, a rerun refused while orphans run. The cases are the ones in
tests/reliability/ (``TRAINLAB_RELIABILITY=full python -m pytest tests/reliability`` runs the same set).

    python benchmarks/reliability.py [--quick] [--category cli] [--list]

Measured on the shared 2-core machine (CPU, torch 2.13.0, 1 torch thread, as root: tmpfs mounts allowed), two runs
of the whole set, 2026-12-05, the same table both times (182 s and 176 s):

    category     tried  held  fell short  skipped
    kills           28    28           0        0
    cli            241   241           0        0
    api             63    63           0        0
    files           84    84           0        0
    disk            25    25           0        0
    search           4     4           0        0
    playground      94    94           0        0
    contracts        2     2           0        0
    all            541   541           0        0   (100.0 % held)

Kills caught at a write (a .tmp- file seen when SIGKILL was sent): 13 of the 27 SIGKILLs in each run (checkpoints,
config.yaml, activations.json); the line under the table says which files.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the quick subset (what the default pytest runs)")
    ap.add_argument("--category", help="only this category (kills, cli, api, files, disk, search, playground, contracts)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", action="store_true", help="keep the cases' folders (removed when every case held)")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # the playground cases
    logging.getLogger("trainlab.playground").setLevel(logging.ERROR)  # the refused sockets are the cases

    work = Path(tempfile.mkdtemp(prefix="trainlab-reliability-"))
    os.environ["HOME"] = str(work / "home")  # decoded datasets and caches go here, not to the user's home
    (work / "home").mkdir()
    import torch

    torch.set_num_threads(1)
    from tests.reliability import world
    from tests.reliability.cases import all_cases
    from tests.reliability.harness import Skip
    from tests.reliability.kill_cases import LOOPS

    world.set_root(work)
    cases = [c for c in all_cases() if (c.quick or not a.quick) and (a.category in (None, c.category))]
    if a.list:
        print("\n".join(c.id for c in cases))
        return 0
    tried, held, short, skipped = Counter(), Counter(), Counter(), Counter()
    problems: list[str] = []
    t0 = time.perf_counter()
    for c in cases:
        tried[c.category] += 1
        try:
            c.run(work)
        except Skip as why:
            skipped[c.category] += 1
            problems.append(f"skipped {c.id}: {why}")
        except AssertionError as exc:
            short[c.category] += 1
            problems.append(f"FELL SHORT {c.id}: {str(exc)[:400]}")
        except Exception as exc:  # noqa: BLE001 — a case that crashes the harness falls short too
            short[c.category] += 1
            problems.append(f"FELL SHORT {c.id}: {type(exc).__name__}: {str(exc)[:400]}")
        else:
            held[c.category] += 1
    wall = time.perf_counter() - t0

    print(f"{'category':<12} {'tried':>5} {'held':>5} {'fell short':>11} {'skipped':>8}")
    for cat in tried:
        print(f"{cat:<12} {tried[cat]:>5} {held[cat]:>5} {short[cat]:>11} {skipped[cat]:>8}")
    n, h = sum(tried.values()), sum(held.values())
    share = 100 * h / max(1, n - sum(skipped.values()))
    print(f"{'all':<12} {n:>5} {h:>5} {sum(short.values()):>11} {sum(skipped.values()):>8}   ({share:.1f} % held)")
    caught = [(k, v) for loop in LOOPS.values() for k, v in loop.at_write.items()]
    if caught:
        at = sum(1 for _, v in caught if v)
        print(f"kills: {len(caught)} SIGKILLs, {at} of them with a .tmp- file being written "
              f"({', '.join(sorted({v.split('.tmp-')[0] for _, v in caught if v}))})")
    failed = sum(short.values())
    keep = a.keep or failed
    print(f"{wall:.0f} s on {os.cpu_count()} cores" + (f"; cases under {work}" if keep else ""))
    for line in problems:
        print(line)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
