"""Lesson batch-size: updates per epoch by batch size, and per epoch small minibatches beat full batch."""
from __future__ import annotations


def test_update_counts_and_loss_per_epoch(lesson_run):
    md, out = lesson_run("batch-size")
    runs = out.results["runs"]
    online, mini, full = runs["batch 1"], runs["batch 10"], runs["full batch"]
    per_epoch = [r["updates_per_epoch"] for r in runs.values()]  # batch 1, 10, 100, full
    assert per_epoch == sorted(per_epoch, reverse=True) and full["updates_per_epoch"] == 1
    assert online["updates_per_epoch"] == out.results["n_train"]
    assert mini["final_loss"] < full["final_loss"]  # same epochs, 24 updates per epoch against 1
    curve = mini["curve"]
    clock = curve["seconds"]  # cumulative, so it never goes back (no bound on how long anything takes)
    assert curve["update"][-1] == mini["updates"] and clock == sorted(clock)
    spent = [(r["seconds"], r["ms_per_update"]) for r in runs.values()]
    assert all(a > 0 and b > 0 for a, b in spent)
    assert (md.parent / "batch_size.png").stat().st_size > 10_000
    assert f"{mini['final_loss']:.3g}" in md.read_text()
