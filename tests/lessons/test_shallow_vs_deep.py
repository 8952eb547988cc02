"""Lesson shallow-vs-deep: hidden layers beat the straight line on circle and spiral."""
from __future__ import annotations


def test_deeper_nets_beat_no_hidden_layer(lesson_run):
    md, out = lesson_run("shallow-vs-deep")
    acc = out.results["test_acc"]
    for name in ("circle", "spiral"):
        assert acc[name]["[8, 8, 8]"] > acc[name]["no hidden"] + 0.1, (name, acc[name])
    assert acc["circle"]["[4, 2]"] > acc["circle"]["no hidden"] + 0.1
    assert max(acc[d]["no hidden"] for d in acc) < 0.8  # one line cannot separate any of the three
    assert len(out.table) == 9 and {r["dataset"] for r in out.table} == {"circle", "xor", "spiral"}
    assert (md.parent / "boundaries.png").stat().st_size > 20_000
    assert f"{acc['spiral']['[8, 8, 8]']:.2f}" in md.read_text()
