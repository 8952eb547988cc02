"""Lesson shallow-vs-deep: hidden layers beat the straight line on circle and spiral."""
from __future__ import annotations

import trainlab.lessons.shallow_vs_deep  # noqa: F401  (registers the lesson)
from trainlab.lessons.base import run_lesson


def test_deeper_nets_beat_no_hidden_layer(tmp_path):
    md, out = run_lesson("shallow-vs-deep", tmp_path, seed=0, quick=True)
    acc = out.results["test_acc"]
    for name in ("circle", "spiral"):
        assert acc[name]["[8, 8, 8]"] > acc[name]["no hidden"] + 0.1, (name, acc[name])
    assert acc["circle"]["[4, 2]"] > acc["circle"]["no hidden"] + 0.1
    assert max(acc[d]["no hidden"] for d in acc) < 0.8  # one line cannot separate any of the three
    assert len(out.table) == 9 and {r["dataset"] for r in out.table} == {"circle", "xor", "spiral"}
    assert (tmp_path / "boundaries.png").stat().st_size > 20_000
    assert f"{acc['spiral']['[8, 8, 8]']:.2f}" in md.read_text()
