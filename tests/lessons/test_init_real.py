"""Lesson init-real: N(0, 0.01²) stays at chance on Fashion-MNIST while Xavier and He learn, He fastest."""
from __future__ import annotations

import math


def test_tiny_init_stays_at_chance_while_xavier_and_he_learn(lesson_run):
    md, out = lesson_run("init-real")
    res = out.results["inits"]
    tiny, xavier, he = res["N(0, 0.01²)"], res["Xavier"], res["He"]
    assert tiny["final_loss"] > 0.95 * math.log(10)
    assert he["final_loss"] < xavier["final_loss"] < 0.7 * math.log(10)
    assert he["test_acc"] > tiny["test_acc"] + 0.3
    assert "N(0, 0.01²) never left it" in out.conclusion and "He learns fastest" in out.conclusion
    assert (md.parent / "init.png").stat().st_size > 10_000
