"""compare_runs: overlaid curves and a table of differing hyperparameters and final metrics."""
from __future__ import annotations

import pytest

from tests.report.test_html import assert_self_contained, decode_images
from tests.report.test_plots import assert_png, toy_cfg
from trainlab.errors import CheckpointError, ConfigError
from trainlab.report import compare_runs
from trainlab.report.compare import comparison_table, load_runs, plot_comparison
from trainlab.train.run import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    variants = [("lr-0.1", {}), ("lr-0.01", {"optimizer.lr": 0.01}),
                ("adam-deep", {"optimizer.name": "adam", "optimizer.lr": 0.01, "model.hidden": [8, 8],
                               "batch_size": 32, "epochs": 3})]
    return [train(toy_cfg(root, name=name, **over), verbose=False) for name, over in variants]


def test_compare_writes_one_self_contained_page_and_one_png(runs, tmp_path):
    path = compare_runs([r.run_dir for r in runs], tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "compare.html"
    assert_png(tmp_path / "cmp" / "compare.png", min_wh=(900, 350))
    page = path.read_text()
    uris = assert_self_contained(page)
    assert len(uris) == 1
    decode_images(uris, tmp_path)
    for r in runs:
        assert f"<td>{r.run_dir.name}</td>" in page
    assert page.count("<tr>") == 2 + len(runs)  # a header group row, the column names, one row per run
    assert "Test split — for the final report only; do not choose between runs on these" in page
    assert page.count('<td class="test">') == 2 * len(runs)


def test_table_has_the_differing_hyperparameters_plus_the_usual_ones_and_final_metrics(runs):
    columns, rows = comparison_table(load_runs([r.run_dir for r in runs]))
    hyper = columns[1:columns.index("epochs run")]
    assert hyper == ["batch_size", "model.name", "model.hidden", "optimizer.name", "optimizer.lr"]
    assert columns.count("epochs") == 0 and columns[-2:] == ["test loss", "test acc"]  # test apart, last
    assert "data.n_points" not in columns and "name" not in columns and "seed" not in columns
    by_run = {row[0]: dict(zip(columns, row)) for row in rows}
    adam = by_run["adam-deep"]
    assert (adam["optimizer.name"], adam["optimizer.lr"], adam["model.hidden"], adam["batch_size"]) == \
        ("adam", 0.01, [8, 8], 32)
    for r in runs:
        row, s = by_run[r.run_dir.name], r.summary
        assert row["epochs run"] == len(r.history) and row["best epoch"] == s["best_epoch"]
        assert row["max epochs"] == r.prepared.cfg.epochs
        assert row["test acc"] == pytest.approx(s["test"]["test_acc"])
        assert row["best val loss"] == pytest.approx(s["best_val"]["val_loss"])
        assert row["stopped"] == s["stop_reason"]


def test_plotted_curves_are_each_runs_metrics(runs, tmp_path):
    data = plot_comparison(load_runs([r.run_dir for r in runs]), tmp_path / "c.png")
    assert list(data["runs"]) == ["lr-0.1", "lr-0.01", "adam-deep"]
    for r in runs:
        series = data["runs"][r.run_dir.name]
        assert series["epochs"] == [h["epoch"] for h in r.history]
        assert series["val_loss"] == pytest.approx([h["val_loss"] for h in r.history])
        assert series["train_acc"] == pytest.approx([h["train_acc"] for h in r.history])
    assert_png(data["path"])


def test_runs_with_the_same_name_in_different_folders_are_told_apart(runs, tmp_path):
    other = train(toy_cfg(tmp_path, name="lr-0.1", epochs=1), verbose=False)
    labels = [r.label for r in load_runs([runs[0].run_dir, other.run_dir])]
    assert labels == [f"{runs[0].run_dir.parent.parent.name}/runs/lr-0.1", f"{tmp_path.name}/runs/lr-0.1"]
    twice = [r.label for r in load_runs([other.run_dir, other.run_dir])]
    assert len(set(twice)) == 2


def test_unknown_run_directory_is_one_checkpoint_error(runs, tmp_path):
    with pytest.raises(CheckpointError, match=r"^run must be an existing run directory\. Got '.*missing'\. ") as exc:
        compare_runs([runs[0].run_dir, tmp_path / "missing"], tmp_path / "out")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text((runs[0].run_dir / "config.yaml").read_text())
    with pytest.raises(CheckpointError, match=r"^run must contain metrics\.jsonl\. Got '.*half' without it\. "):
        compare_runs([tmp_path / "half"], tmp_path / "out")
    with pytest.raises(ConfigError, match=r"^runs must be at least one run directory\. Got none\."):
        compare_runs([], tmp_path / "out")


def test_a_run_of_the_users_own_module_shows_its_class_as_the_model(tmp_path):
    import torch
    from torch import nn

    import trainlab as tl

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))

        def forward(self, x):
            return self.body(x)

    x = torch.randn(120, 2, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    kw = dict(epochs=2, out_dir=str(tmp_path), verbose=False, report=False, tensorboard=False)
    mine, theirs = tl.fit(TwoLayer(), (x, y), name="mine", **kw), tl.fit(data=(x, y), name="built-in", **kw)
    columns, rows = comparison_table(load_runs([mine.run_dir, theirs.run_dir]))
    models = {row[0]: dict(zip(columns, row))["model.name"] for row in rows}
    assert models == {"mine": "TwoLayer (your module)", "built-in": "mlp"}  # was "mlp" for both
