"""report.html: one self-contained page with every section that applies, all text escaped."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.conftest import FASHION_DIR, write_fake_mnist
from tests.report.test_plots import assert_png, both_setups, toy_cfg
from trainlab.config import resolve_config
from trainlab.data.base import SealedTest
from trainlab.errors import CheckpointError, DataError
from trainlab.report import html as report_html, write_report
from trainlab.report.html import validation_predictions
from trainlab.train.run import train

DIAGNOSIS = {"verdict": "lr_too_high", "findings": [
    {"rule": "slow_start", "severity": "info", "title": "Slow first epoch", "message": "Epoch 1 was slow.",
     "evidence": {}, "remedy": ""},
    {"rule": "lr_too_high", "severity": "error", "title": "Loss <b>oscillates</b>",
     "message": "val_loss rose 3 times <script>alert(1)</script>", "evidence": {"rises": 3, "lr": 0.5},
     "remedy": "Lower optimizer.lr to 0.05 & retry"},
    {"rule": "overfit", "severity": "warning", "title": "Gap between train and validation", "message": "gap 0.1",
     "evidence": {"gap": 0.1}, "remedy": "Add dropout"},
]}


def section_ids(page: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z_]+)"', page))


def assert_self_contained(page: str) -> list[str]:
    """No network: every src/href is a data URI or an in-page anchor. Returns the image URIs."""
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:40] for r in refs]
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "<script" not in page.lower()
    return [r for r in refs if r.startswith("data:")]


def decode_images(uris: list[str], tmp_path: Path) -> None:
    for i, uri in enumerate(uris):
        assert uri.startswith("data:image/png;base64,")
        path = tmp_path / f"inline{i}.png"
        path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
        assert_png(path)


def fake_mnist_run(fake_mnist: Path, tmp_path: Path, **overrides):
    cfg = resolve_config(overrides={"out_dir": str(tmp_path / "runs"), "tensorboard": False,
                                    "data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent),
                                    "data.download": False, "model.hidden": [32], "batch_size": 64, "epochs": 2,
                                    **overrides})
    return train(cfg, setup=both_setups, verbose=False)


def test_report_of_an_image_run_has_every_section_escaped_and_self_contained(fake_mnist, tmp_path):
    result = fake_mnist_run(fake_mnist, tmp_path)
    (result.run_dir / "diagnosis.json").write_text(json.dumps(DIAGNOSIS))
    path = write_report(result.run_dir)
    assert path == result.run_dir / "report.html"
    page = path.read_text()
    assert section_ids(page) == {"verdict", "curves", "confusion", "examples", "model", "layers", "config", "timing",
                                 "environment"}
    model = page[page.index('<section id="model"'):page.index("</section>", page.index('id="model"'))]
    cells = re.findall(r"<tr><td><code>([^<]*)</code></td><td>(\w+)</td><td>([^<]*)</td><td class=\"num\">([0-9,]+)</td>",
                       model)
    assert cells == [("flatten", "Flatten", "(784,)", "0"), ("layers.0.linear", "Linear", "(32,)", "25,120"),
                     ("layers.0.act", "ReLU", "(32,)", "0"), ("head", "Linear", "(10,)", "330")]
    assert "25,450 parameters for examples of shape (1, 28, 28)" in model
    uris = assert_self_contained(page)
    assert len(uris) == 4  # curves, wrong examples, gradient norms, activation histograms
    decode_images(uris, tmp_path)
    for name in ("curves", "wrong_examples", "grad_norms", "activations"):
        assert (result.run_dir / f"{name}.png").is_file()
    assert not (result.run_dir / "confusion.png").exists()  # 10 classes: a table, no picture
    # escaped text: the finding's markup shows as text, never as markup
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Loss &lt;b&gt;oscillates&lt;/b&gt;" in page and "0.05 &amp; retry" in page
    verdict = page[page.index('<section id="verdict"'):page.index("</section>", page.index('id="verdict"'))]
    assert "lr_too_high" in verdict
    order = [verdict.index(f'class="finding {sev}"') for sev in ("error", "warning", "info")]
    assert order == sorted(order)  # errors first
    assert "<th>rises</th><td>3</td>" in verdict and "Lower optimizer.lr" in verdict
    # config, timing, environment say what ran where
    s = result.summary
    assert "<th>data.name</th><td>fashion-mnist</td>" in page and "<th>model.hidden</th><td>[32]</td>" in page
    assert f"<th>torch</th><td>{s['environment']['torch']}</td>" in page
    assert f"<th>threads</th><td>{s['environment']['threads']}</td>" in page
    timing_row = f"<th>wall time (s)</th><td>{s['wall_time']:.4g}</td>"  # the run's recorded value, shown
    assert timing_row in page
    assert f"accuracy {s['best_val']['val_acc']:.4f}" in page  # the confusion matrix is the best checkpoint's
    confusion = page[page.index('id="confusion"'):page.index('id="examples"')]
    assert "validation" in confusion.lower()
    # the table's numbers are the best checkpoint's validation predictions: row i, column j = share of class i
    vp = validation_predictions(result.run_dir)
    y, pred = vp.bundle.val.y.numpy(), vp.pred.numpy()
    shares = re.findall(r'<td style="[^"]*" title="true ([^,]*), predicted ([^:]*): (\d+) of (\d+)">([0-9.]*)</td>',
                        confusion)
    names = vp.run.info["class_names"]
    assert len(shares) == 100
    for k, (true, predicted, count, n, shown) in enumerate(shares):
        i, j = divmod(k, 10)
        assert (true, predicted) == (names[i], names[j])
        assert int(count) == int(((y == i) & (pred == j)).sum()) and int(n) == int((y == i).sum())
        assert shown == (f"{int(count) / int(n):.2f}" if int(count) else "")


def test_a_confusion_matrix_of_more_classes_than_a_table_holds_is_a_picture(fake_mnist, tmp_path, monkeypatch):
    result = fake_mnist_run(fake_mnist, tmp_path, epochs=1)
    monkeypatch.setattr(report_html, "TABLE_CLASSES", 9)  # Fashion-MNIST's 10 classes: one too many
    page = write_report(result.run_dir).read_text()
    confusion = page[page.index('id="confusion"'):page.index('id="examples"')]
    assert 'table class="cm"' not in confusion and confusion.count('<img src="data:image/png;base64,') == 1
    assert_png(result.run_dir / "confusion.png")


def test_table_colours_run_from_white_to_dark_blue():
    assert report_html.blues(0) == "#f7fbff" and report_html.blues(1) == "#08306b"
    assert report_html.blues(-1) == "#f7fbff" and report_html.blues(2) == "#08306b"
    assert report_html.blues(0.5) == report_html.BLUES[4]  # the middle stop
    darkness = [sum(int(report_html.blues(v / 10)[k:k + 2], 16) for k in (1, 3, 5)) for v in range(11)]
    assert darkness == sorted(darkness, reverse=True)


def test_report_never_opens_the_test_split(circle_run_for_report, monkeypatch):
    def refuse(self):
        raise AssertionError("the report opened the test split")

    monkeypatch.setattr(SealedTest, "open", refuse)
    page = write_report(circle_run_for_report.run_dir).read_text()
    assert {"confusion", "boundary"} <= section_ids(page)
    test_acc = circle_run_for_report.summary["test"]["test_acc"]
    assert f"acc {test_acc:.4f}" in page  # the test number comes from summary.json


def test_report_of_a_run_whose_test_pass_ran_out_of_memory_says_so_above_the_cards(circle_run_for_report, tmp_path):
    import json
    import shutil

    run_dir = Path(shutil.copytree(circle_run_for_report.run_dir, tmp_path / "run"))
    summary = json.loads((run_dir / "summary.json").read_text())
    told = ("the machine ran out of memory scoring the 60 test examples in batches of 60 (...). Score them in "
            "smaller batches: trainlab evaluate runs/x --batch-size 30")
    summary.update(test=None, test_error=told)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    page = write_report(run_dir).read_text()
    assert f'<p class="banner">Test set not scored: {told}</p>' in page
    assert '<div class="k">test</div><div class="v">not scored</div>' in page


def test_a_report_whose_validation_pass_runs_out_of_memory_says_so_and_keeps_the_rest(tmp_path):
    import torch

    import trainlab as tl
    from tests.train.test_loop import Hungry

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(400, 5, generator=g), torch.randint(0, 3, (400,), generator=g)
    run = tl.fit(Hungry(64), (x, y), epochs=1, batch_size=64, out_dir=str(tmp_path), verbose=False, report=False)
    tight = Hungry(64, most_eval=20)  # the same weights; a pass over more than 20 examples runs out of memory
    page = write_report(run.run_dir, model=tight, bundle=run._bundle).read_text()
    assert ("No validation predictions: the machine ran out of memory predicting the 40 validation examples in "
            "batches of 40 (CUDA out of memory. Tried to allocate 2.00 GiB). The report leaves out the validation "
            "pictures.") in page
    assert "curves" in section_ids(page)  # the rest of the report is there
    assert '<p class="what">memory · Hungry (your module) · sgd lr 0.1 · batch 64</p>' in page  # not mlp [256] relu
    config = page[page.index('id="config"'):page.index('id="timing"')]
    assert "<th>model</th><td>Hungry (your module)</td>" in config and "<th>model.name</th>" not in config


@pytest.fixture(scope="module")
def circle_run_for_report(tmp_path_factory):
    return train(toy_cfg(tmp_path_factory.mktemp("circle")), setup=both_setups, verbose=False)


def test_report_of_a_2d_classification_run_shows_the_decision_boundary(circle_run_for_report, tmp_path):
    page = write_report(circle_run_for_report.run_dir).read_text()
    assert section_ids(page) == {"verdict", "curves", "confusion", "boundary", "model", "layers", "config", "timing",
                                 "environment"}
    assert "triangles: validation points" in page
    uris = assert_self_contained(page)
    assert len(uris) == 4  # curves, boundary, the two layer pictures; the 2-class confusion matrix is a table
    decode_images(uris, tmp_path)
    assert page.count('<td style="background:#') == 4
    assert "No readable diagnosis.json" in page  # absent diagnosis is said, not an error


def test_report_of_a_regression_run_has_scatter_and_surface_not_confusion(tmp_path):
    result = train(toy_cfg(tmp_path, **{"data.name": "plane", "optimizer.lr": 0.02}), setup=both_setups,
                   verbose=False)
    page = write_report(result.run_dir).read_text()
    assert section_ids(page) == {"verdict", "curves", "scatter", "boundary", "model", "layers", "config", "timing",
                                 "environment"}
    assert "fitted surface" in page and "Predicted vs true (validation)" in page
    decode_images(assert_self_contained(page), tmp_path)


def test_report_of_a_run_without_layer_statistics_says_so(tmp_path):
    result = train(toy_cfg(tmp_path, epochs=2), verbose=False)
    page = write_report(result.run_dir).read_text()
    assert "layers" in section_ids(page) and "recorded no per-layer statistics" in page
    assert len(assert_self_contained(page)) == 2  # curves, boundary (and the confusion table)
    assert not (result.run_dir / "grad_norms.png").exists()


def test_report_of_a_run_whose_data_is_gone_still_shows_curves(fake_mnist, tmp_path, monkeypatch):
    result = fake_mnist_run(fake_mnist, tmp_path, epochs=1)

    def gone(cfg, seed):
        raise DataError("data.name 'fashion-mnist' must be available. Got nothing. Install it.")

    monkeypatch.setattr(report_html, "load_data", gone)
    page = write_report(result.run_dir).read_text()
    assert {"curves", "confusion", "layers"} <= section_ids(page) and "examples" not in section_ids(page)
    assert "No validation predictions: data.name &#x27;fashion-mnist&#x27; must be available" in page


def test_report_refuses_validation_pictures_on_data_other_than_the_runs(fake_mnist, tmp_path):
    result = fake_mnist_run(fake_mnist, tmp_path, epochs=3, **{"optimizer.lr": 0.5})
    write_fake_mnist(fake_mnist, seed=1)  # same place, same format, different examples
    page = write_report(result.run_dir).read_text()
    assert "examples" not in section_ids(page) and not (result.run_dir / "wrong_examples.png").exists()
    assert re.search(r"No validation predictions: data.name &#x27;fashion-mnist&#x27; must give the validation "
                     r"split the run was trained with\. Got val_loss [0-9.]+ now vs [0-9.]+ logged at epoch 3\.",
                     page)


@pytest.mark.parametrize("weights", [[1.0, 8.0], [0.5, 2.0]])
def test_a_run_with_class_weights_gets_its_validation_pictures(tmp_path, weights):
    # its logged val_loss is the weighted loss, batch by batch: checked against the unweighted one, every such run
    # lost its pictures ("Got val_loss 0.7389 now vs 0.6845 logged")
    cfg = toy_cfg(tmp_path, **{"loss.class_weights": weights, "eval_batch_size": 7, "epochs": 2})
    result = train(cfg, verbose=False)
    for outputs in (result.best_val_outputs, None):  # as training writes it, and from the run directory alone
        vp = validation_predictions(result.run_dir, outputs=outputs)
        assert vp.pred is not None and len(vp.pred) == len(vp.bundle.val)


def test_balanced_class_weights_of_imbalanced_labels_keep_the_validation_pictures(tmp_path):
    import torch

    import trainlab as tl

    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g)
    y = (x[:, 0] > 1.0).long()  # 1 in 6 of class 1: "balanced" weighs it ~3×
    run = tl.fit(None, (x, y), epochs=2, batch_size=32, class_weights="balanced", hidden=[8], eval_batch_size=7,
                 out_dir=str(tmp_path), verbose=False, tensorboard=False)
    page = run.report_path.read_text()
    assert "No validation predictions" not in page and "confusion" in section_ids(page)


def test_report_of_a_missing_run_is_one_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"^run must be an existing run directory\. Got .*nope"):
        write_report(tmp_path / "nope")


@pytest.mark.e2e
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_default_recipe_on_real_fashion_mnist_produces_every_image_picture(tmp_path):
    cfg = resolve_config(overrides={"out_dir": str(tmp_path / "runs"), "tensorboard": False, "epochs": 2,
                                    "data.limit": 5000, "data.dir": str(FASHION_DIR.parent), "data.download": False})
    result = train(cfg, setup=both_setups, verbose=False)
    page = write_report(result.run_dir).read_text()
    assert {"verdict", "curves", "confusion", "examples", "layers", "config", "timing", "environment"} \
        <= section_ids(page)
    for name in ("curves", "wrong_examples", "grad_norms", "activations"):
        assert_png(result.run_dir / f"{name}.png")
    assert page.count('<td style="background:#') == 100  # the 10 x 10 confusion table
    assert result.summary["data"]["val"] == 500 and result.summary["best_val"]["val_acc"] > 0.3  # chance is 0.1
    assert "<th>data.limit</th><td>5000</td>" in page


def test_a_run_on_input_features_is_drawn_over_the_x1_x2_plane(tmp_path):
    """circle with x1², x2² added and normalised: the boundary is drawn over raw (x1, x2), inside is one class."""
    cfg = resolve_config(overrides={"out_dir": str(tmp_path), "tensorboard": False, "data.name": "circle",
                                    "data.features": ["x1", "x2", "x1_sq", "x2_sq"], "data.normalize": True,
                                    "model.hidden": [4], "model.activation": "tanh", "model.init": "xavier",
                                    "batch_size": 16, "epochs": 30, "threads": 1})
    run = train(cfg, verbose=False)
    pics, _ = report_html.make_pictures(run.run_dir, summary=run.summary)
    b = pics["boundary"]
    assert b["val_acc"] > 0.95
    # the axes span the raw points (circle radius 5), not the standardised features (about ±2)
    assert b["xx"][0] < -4.5 and b["xx"][-1] > 4.5 and b["yy"][0] < -4.5 and b["yy"][-1] > 4.5
    z = b["z"]
    centre, corner = z[len(z) // 2, len(z) // 2], z[0, 0]
    assert centre != corner  # the disc inside, the ring outside
    assert_png(run.run_dir / "boundary.png")


def test_a_remedys_config_changes_show_as_set_lines():
    finding = {**DIAGNOSIS["findings"][1], "sets": {"optimizer.lr": 0.05, "model.hidden": [64, 64]}}
    page = report_html._verdict({"verdict": "lr_too_high", "findings": [finding]})
    assert "<code>--set optimizer.lr=0.05 --set model.hidden=[64,64]</code>" in page


def test_the_curves_say_what_they_measure_under_mixing_a_weight_average_and_label_smoothing(tmp_path):
    plain = write_report(train(toy_cfg(tmp_path, epochs=2), verbose=False).run_dir).read_text()
    assert "mixed batches" not in plain and "moving average" not in plain and "smoothed labels" not in plain
    cfg = toy_cfg(tmp_path, epochs=2, **{"data.augment.mixup": 0.2, "ema.decay": 0.9, "loss.label_smoothing": 0.1})
    page = write_report(train(cfg, verbose=False).run_dir).read_text()
    curves = page[page.index('id="curves"'):page.index('id="model"')]
    assert ("The training loss and accuracy are those of the mixup-mixed batches the updates saw" in curves
            and "Validation scores the moving average of the weights (ema.decay=0.9)" in curves
            and "(loss.label_smoothing=0.1): they cannot reach 0." in curves)


def test_the_test_card_names_the_balanced_accuracy_where_the_class_sizes_change_the_picture(tmp_path):
    result = train(toy_cfg(tmp_path, epochs=2, **{"data.test_fraction": 0.3}), verbose=False)
    summary_path = result.run_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    acc = summary["test"]["test_acc"]
    for balanced, shown in ((acc, False), (acc - 0.2, True)):
        summary["test"]["balanced_acc"] = balanced
        summary_path.write_text(json.dumps(summary))
        page = write_report(result.run_dir).read_text()
        assert (f"balanced acc {balanced:.4f} · " in page) is shown


def test_a_run_monitoring_a_class_score_shows_it_on_the_best_validation_card_and_per_epoch(tmp_path):
    result = train(toy_cfg(tmp_path, epochs=3, monitor="val_macro_f1"), verbose=False)
    page = write_report(result.run_dir).read_text()
    best = result.summary["best_val"]
    assert f"macro F1 {best['val_macro_f1']:.4f}" in page and "by val_macro_f1" in page
    table = page[page.index("Metrics per epoch"):]
    assert "<th>val_balanced_acc</th><th>val_macro_f1</th>" in table
    plain = write_report(train(toy_cfg(tmp_path, epochs=3), verbose=False).run_dir).read_text()
    assert "macro F1 " not in plain[:plain.index('id="verdict"')]  # the card keeps the accuracy
