"""Each picture: a valid PNG of sane size, and the numbers it drew equal the run's own records."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.config import resolve_config
from trainlab.data import load_data
from trainlab.diagnose import diagnostic_callbacks, read_layers
from trainlab.report import LiveCurves, report_callbacks
from trainlab.report.live import DrawAhead
from trainlab.report.painter import Painter
from trainlab.report.html import make_pictures, validation_predictions
from trainlab.report.plots import (plot_activation_histograms, plot_confusion, plot_curves, plot_decision_boundary,
                                   plot_grad_norms, plot_regression_scatter, plot_wrong_examples, read_metrics)
from trainlab.report.history import most_confident_wrong
from trainlab.train.callbacks import Callback
from trainlab.train.run import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOY = {"tensorboard": False, "data.name": "circle", "data.n_points": 300, "model.hidden": [8],
       "model.activation": "tanh", "model.init": "xavier", "optimizer.lr": 0.1, "batch_size": 16, "epochs": 4}


def assert_png(path: Path, min_wh: tuple[int, int] = (250, 200), max_wh: tuple[int, int] = (2400, 2400)) -> np.ndarray:
    """A real PNG: signature, decodes, size within bounds, not a blank canvas. Returns the pixels."""
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("RGB"))
    assert min_wh[0] <= w <= max_wh[0] and min_wh[1] <= h <= max_wh[1], (w, h)
    assert pixels.std() > 5, "the picture is blank"
    return pixels


def both_setups(p, run_dir):
    return [*diagnostic_callbacks(p, run_dir), *report_callbacks(p, run_dir)]


def toy_cfg(root: Path, **overrides):
    return resolve_config(overrides={"out_dir": str(root / "runs"), **TOY, **overrides})


@pytest.fixture(scope="module")
def circle_run(tmp_path_factory):
    return train(toy_cfg(tmp_path_factory.mktemp("circle")), setup=both_setups, verbose=False)


def test_curves_draw_the_logged_metrics_best_epoch_stop_reason_and_test_point(circle_run):
    run_dir, s = circle_run.run_dir, circle_run.summary
    data = plot_curves(run_dir)
    rows = read_metrics(run_dir)
    assert data["epochs"] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert data[key] == pytest.approx([r[key] for r in rows])
    assert data["best_epoch"] == s["best_epoch"] and data["stop_reason"] == "epochs: reached 4"
    assert data["test"]["test_acc"] == pytest.approx(s["test"]["test_acc"])
    assert_png(data["path"], min_wh=(900, 350))


def test_regression_curves_have_no_accuracy_panel(tmp_path):
    result = train(toy_cfg(tmp_path, **{"data.name": "plane", "epochs": 2}), verbose=False)
    data = plot_curves(result.run_dir)
    assert data["val_acc"] is None and data["train_acc"] is None and len(data["val_loss"]) == 2
    assert assert_png(data["path"]).shape[1] < 900  # one panel (loss), not two


class PngWatcher(Callback):
    """Records what curves.png looks like right after LiveCurves ran in the same epoch."""

    def __init__(self, run_dir: Path, live: LiveCurves) -> None:
        self.png, self.live, self.seen = run_dir / "curves.png", live, []

    def on_epoch_end(self, state, metrics):
        self.seen.append((self.live.draws, hashlib.sha256(self.png.read_bytes()).hexdigest()))


def test_live_curves_rewrite_the_png_at_every_epoch_end(tmp_path):
    made = {}

    def setup(p, run_dir):
        made["live"] = LiveCurves(run_dir, min_interval=0)
        made["watch"] = PngWatcher(run_dir, made["live"])
        return [made["live"], made["watch"]]

    result = train(toy_cfg(tmp_path), setup=setup, verbose=False)
    seen = made["watch"].seen
    assert [draws for draws, _ in seen] == [1, 2, 3, 4]
    assert len({digest for _, digest in seen}) == 4  # a new picture each epoch
    assert made["live"].draws == 5  # plus the final one with the stop reason
    assert_png(result.run_dir / "curves.png", min_wh=(900, 350))


def test_report_callbacks_is_a_setup_whose_final_picture_has_every_epoch_and_the_stop_reason(tmp_path):
    made = []

    def setup(p, run_dir):
        made.extend(report_callbacks(p, run_dir))
        return made

    result = train(toy_cfg(tmp_path), setup=setup, verbose=False)
    live, ahead = made
    assert isinstance(ahead, DrawAhead) and type(ahead.painter) is Painter  # in this process: nothing drawn ahead
    assert isinstance(live, LiveCurves) and live.draws >= 1  # the final picture; a toy run ends within MIN_WAIT
    assert live.last["epochs"] == [1, 2, 3, 4] and live.last["stop_reason"] == result.summary["stop_reason"]
    assert live.last["best_epoch"] == result.summary["best_epoch"]
    assert live.last["val_loss"] == pytest.approx([h["val_loss"] for h in result.history])
    assert not (result.run_dir / "report.html").exists()
    assert_png(result.run_dir / "curves.png", min_wh=(900, 350))


def test_confusion_matrix_rows_are_normalised_and_per_class_accuracy_is_its_diagonal(tmp_path):
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 2, 2, 0]
    data = plot_confusion(y_true, y_pred, ["a", "b", "c", "never"], tmp_path / "c.png")
    m = data["matrix"]
    np.testing.assert_allclose(m[:3].sum(axis=1), 1.0)
    np.testing.assert_allclose(m[3], 0.0)  # a class without validation examples
    np.testing.assert_allclose(m[0], [0.75, 0.25, 0, 0])
    np.testing.assert_allclose(data["per_class_acc"][:3], [0.75, 0.5, 0.75])
    assert np.isnan(data["per_class_acc"][3])
    assert data["counts"].sum() == 10 and data["accuracy"] == pytest.approx(0.7)
    assert_png(data["path"])


def test_confusion_of_a_run_is_the_best_checkpoint_on_the_validation_split(circle_run, tmp_path):
    vp = validation_predictions(circle_run.run_dir)
    data = plot_confusion(vp.bundle.val.y, vp.pred, vp.run.info["class_names"], tmp_path / "c.png")
    s = circle_run.summary
    assert data["counts"].sum() == s["data"]["val"]
    assert data["accuracy"] == pytest.approx(s["best_val"]["val_acc"])
    np.testing.assert_allclose(data["matrix"].sum(axis=1), 1.0)


def test_wrong_examples_are_the_most_confident_mistakes_in_order(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((30, 1, 28, 28)).astype(np.float32)
    y_true = np.arange(30) % 3
    y_pred = y_true.copy()
    y_pred[[2, 5, 11, 17, 23]] = (y_true[[2, 5, 11, 17, 23]] + 1) % 3
    confidence = rng.random(30)
    data = plot_wrong_examples(images, y_true, y_pred, confidence, ["x", "y", "z"], tmp_path / "w.png", n=4)
    assert data["n_wrong"] == 5 and len(data["indices"]) == 4
    assert all(y_true[i] != y_pred[i] for i in data["indices"])
    assert data["confidence"] == sorted(data["confidence"], reverse=True)
    left_out = ({2, 5, 11, 17, 23} - set(data["indices"])).pop()
    assert confidence[left_out] <= min(data["confidence"])
    assert_png(data["path"])
    none = plot_wrong_examples(images, y_true, y_true, confidence, ["x", "y", "z"], tmp_path / "n.png")
    assert none["indices"] == [] and none["n_wrong"] == 0
    assert_png(none["path"], min_wh=(100, 100))


def test_wrong_examples_drawn_from_only_the_shown_images_are_the_same_picture(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((50, 1, 28, 28)).astype(np.float32)
    y_true, y_pred, confidence = np.arange(50) % 5, rng.integers(0, 5, 50), rng.random(50)
    shown = most_confident_wrong(y_true, y_pred, confidence, 6)
    assert len(shown) == 6 and (y_true[shown] != y_pred[shown]).all()
    whole = plot_wrong_examples(images, y_true, y_pred, confidence, list("abcde"), tmp_path / "a.png", n=6)
    few = plot_wrong_examples({int(i): images[i] for i in shown}, y_true, y_pred, confidence, list("abcde"),
                              tmp_path / "b.png", n=6)
    assert whole["indices"] == few["indices"] == shown.tolist() and whole["n_wrong"] == few["n_wrong"]
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_image_run_pictures_on_fake_mnist(fake_mnist, tmp_path):
    cfg = resolve_config(overrides={"out_dir": str(tmp_path / "runs"), "tensorboard": False,
                                    "data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent),
                                    "data.download": False, "model.hidden": [32], "batch_size": 64, "epochs": 2})
    result = train(cfg, setup=both_setups, verbose=False)
    sent: dict[str, tuple] = {}

    class Recording(Painter):
        def draw(self, name, /, *args, **kwargs):
            sent[name] = args
            return super().draw(name, *args, **kwargs)

    pics, notes = make_pictures(result.run_dir, painter=Recording())
    assert {"curves", "confusion", "examples", "grad_norms", "activations"} <= set(pics)
    # the examples' job carries only the images it shows, not the whole validation split
    assert sorted(sent["plot_wrong_examples"][0]) == sorted(pics["examples"]["indices"])
    assert "boundary" not in pics and "scatter" not in pics and not notes
    conf = pics["confusion"]
    assert conf["matrix"].shape == (10, 10) and conf["class_names"][0] == "T-shirt/top"
    np.testing.assert_allclose(conf["matrix"].sum(axis=1), 1.0)
    assert conf["counts"].sum() == result.summary["data"]["val"]
    ex = pics["examples"]
    vp = validation_predictions(result.run_dir)
    probs = vp.out.softmax(dim=1)
    wrong = (vp.pred != vp.bundle.val.y).nonzero()[:, 0]
    assert ex["n_wrong"] == len(wrong)
    top = wrong[probs[wrong].max(dim=1).values.argsort(descending=True)][:len(ex["indices"])]
    assert ex["indices"] == top.tolist()
    assert ex["confidence"] == pytest.approx(probs[top].max(dim=1).values.tolist(), rel=1e-5)
    for name in ("curves", "examples", "grad_norms", "activations"):
        assert_png(pics[name]["path"])
    assert "path" not in conf and "plot_confusion" not in sent  # 10 classes: the report's table, no picture


def test_the_report_uses_the_validation_outputs_training_kept_instead_of_a_second_pass(tmp_path, monkeypatch):
    from trainlab.report import html as report_html
    from trainlab.workflow import run

    result = train(toy_cfg(tmp_path), verbose=False)
    fresh = validation_predictions(result.run_dir, bundle=result.prepared.bundle)
    forwards: list[int] = []
    real_load_run = report_html.load_run

    def counted(*args, **kwargs):
        loaded = real_load_run(*args, **kwargs)
        loaded.model.register_forward_hook(lambda *_: forwards.append(1))
        return loaded

    monkeypatch.setattr(report_html, "load_run", counted)
    reused = validation_predictions(result.run_dir, bundle=result.prepared.bundle, outputs=result.best_val_outputs)
    assert forwards == [] and torch.equal(reused.pred, fresh.pred)
    torch.testing.assert_close(reused.out, fresh.out)
    # `trainlab train` (workflow.run) hands its report the outputs its training kept
    handed: list = []
    real_vp = report_html.validation_predictions
    monkeypatch.setattr(report_html, "validation_predictions",
                        lambda *a, **k: (handed.append(k.get("outputs")), real_vp(*a, **k))[1])
    outcome = run(toy_cfg(tmp_path, name="again"), verbose=False)
    assert len(handed) == 1 and handed[0] is outcome.result.best_val_outputs is not None


@pytest.fixture(scope="module")
def plane_run(tmp_path_factory):
    cfg = toy_cfg(tmp_path_factory.mktemp("plane"), **{"data.name": "plane", "optimizer.lr": 0.02, "epochs": 6})
    return train(cfg, setup=both_setups, verbose=False)


def test_regression_scatter_is_predicted_vs_true_on_validation(plane_run):
    pics, _ = make_pictures(plane_run.run_dir)
    assert "scatter" in pics and "confusion" not in pics and "examples" not in pics
    d = pics["scatter"]
    vp = validation_predictions(plane_run.run_dir)
    np.testing.assert_allclose(d["true"], vp.bundle.val.y.numpy())
    np.testing.assert_allclose(d["pred"], vp.out.numpy(), rtol=1e-6)
    rmse = float(np.sqrt(((d["pred"] - d["true"]) ** 2).mean()))
    assert d["rmse"][0] == pytest.approx(rmse)
    assert d["rmse"][0] ** 2 == pytest.approx(plane_run.summary["best_val"]["val_loss"], rel=1e-4)
    assert_png(d["path"])


def test_scatter_r2_is_one_for_perfect_predictions(tmp_path):
    y = np.linspace(-1, 1, 50)[:, None]
    d = plot_regression_scatter(y, y, tmp_path / "s.png", target_names=["v"])
    assert d["r2"] == [pytest.approx(1.0)] and d["rmse"] == [pytest.approx(0.0)]
    assert_png(d["path"])


def test_fitted_surface_of_a_2d_regression_uses_train_and_validation_points(plane_run):
    pics, _ = make_pictures(plane_run.run_dir)
    b = pics["boundary"]
    bundle = load_data(plane_run.prepared.cfg.data, plane_run.prepared.cfg.seed)
    assert b["n_val"] == len(bundle.val) and b["n_train"] == len(bundle.train)
    assert b["val_rmse"] ** 2 == pytest.approx(plane_run.summary["best_val"]["val_loss"], rel=1e-4)
    assert b["z"].shape == (len(b["yy"]), len(b["xx"]))
    assert_png(b["path"])


def test_decision_boundary_is_the_model_evaluated_over_the_plane(circle_run, tmp_path):
    vp = validation_predictions(circle_run.run_dir)
    b = vp.bundle
    d = plot_decision_boundary(vp.run.model, b.train, b.val, tmp_path / "b.png", task="classification",
                               loss=vp.run.loss, class_names=vp.run.info["class_names"], resolution=40)
    assert d["z"].shape == (40, 40) and set(np.unique(d["z"])) <= {0, 1}
    assert d["n_val"] == len(b.val) and d["n_train"] == len(b.train)
    assert d["val_acc"] == pytest.approx(circle_run.summary["best_val"]["val_acc"])
    xs = torch.cat([b.train.x, b.val.x])
    assert d["xx"][0] < float(xs[:, 0].min()) and d["xx"][-1] > float(xs[:, 0].max())
    with torch.no_grad():  # the grid cell (i, j) is the model at (xx[j], yy[i])
        for i, j in [(0, 0), (13, 29), (39, 5)]:
            out = vp.run.model(torch.tensor([[d["xx"][j], d["yy"][i]]], dtype=torch.float32))
            assert d["z"][i, j] == int(out.argmax(1))
            assert d["p1"][i, j] == pytest.approx(float(out.softmax(1)[0, 1]), abs=1e-5)
    assert_png(d["path"], min_wh=(500, 400))


def test_grad_norm_curves_are_the_per_layer_norms_of_layers_jsonl(circle_run):
    d = plot_grad_norms(circle_run.run_dir)
    rows = read_layers(circle_run.run_dir)
    assert d["epochs"] == [1, 2, 3, 4]
    assert list(d["layers"]) == ["layers.0.linear", "head"]
    for name, ys in d["layers"].items():
        assert ys == pytest.approx([r["grad_norm"][name] for r in rows])
    assert_png(d["path"])


def test_activation_histograms_are_the_first_and_last_epoch(circle_run):
    d = plot_activation_histograms(circle_run.run_dir)
    saved = json.loads((circle_run.run_dir / "activations.json").read_text())
    assert (d["first_epoch"], d["last_epoch"]) == (1, 4)
    assert list(d["layers"]) == list(saved["first"]["layers"]) == ["layers.0.act"]
    layer = d["layers"]["layers.0.act"]
    assert layer["kind"] == "tanh"
    assert layer["first"] == saved["first"]["layers"]["layers.0.act"]
    assert layer["last"] == saved["last"]["layers"]["layers.0.act"]
    assert sum(layer["last"]["counts"]) == circle_run.summary["data"]["val"] * 8  # probe × units
    assert_png(d["path"])


def test_activation_histograms_are_none_when_no_layer_was_probed_at_both_epochs(circle_run, tmp_path):
    import shutil

    run_dir = tmp_path / "renamed"
    shutil.copytree(circle_run.run_dir, run_dir)
    saved = json.loads((run_dir / "activations.json").read_text())
    saved["last"]["layers"] = {f"other.{k}": v for k, v in saved["last"]["layers"].items()}  # e.g. a module renamed
    (run_dir / "activations.json").write_text(json.dumps(saved))
    assert plot_activation_histograms(run_dir) is None  # was a ZeroDivisionError that ended the report


def test_saturated_sigmoids_and_vanishing_gradients_show_in_the_layer_pictures(tmp_path):
    cfg = toy_cfg(tmp_path, **{"model.hidden": [16, 16, 16, 16], "model.activation": "sigmoid",
                               "model.init": "normal", "model.init_std": 3.0, "epochs": 2})
    result = train(cfg, setup=diagnostic_callbacks, verbose=False)
    acts = plot_activation_histograms(result.run_dir)
    assert all(layer["saturated"][1] > 0.5 for layer in acts["layers"].values())
    assert all(layer["kind"] == "sigmoid" for layer in acts["layers"].values())
    small = train(toy_cfg(tmp_path, **{"model.hidden": [16, 16, 16, 16], "model.activation": "sigmoid",
                                       "model.init": "normal", "model.init_std": 0.1, "epochs": 2}),
                  setup=diagnostic_callbacks, verbose=False)
    grads = plot_grad_norms(small.run_dir)["layers"]
    assert grads["layers.0.linear"][-1] < grads["head"][-1] / 100  # vanishing toward the input


def test_layer_pictures_are_none_without_layer_statistics(tmp_path):
    result = train(toy_cfg(tmp_path, epochs=1), verbose=False)
    assert plot_grad_norms(result.run_dir) is None
    assert plot_activation_histograms(result.run_dir) is None


def test_live_curves_redraw_after_the_longer_of_min_wait_and_nine_drawings(tmp_path):
    """A redraw waits max(MIN_WAIT, 9x the last drawing's cost) after the start or the last drawing: epochs
    longer than that get every redraw, shorter ones fewer, and drawing stays under a tenth of the wall time."""
    from trainlab.report.live import MIN_WAIT, WAIT_PER_DRAW_SECOND
    from trainlab.train.callbacks import TrainState

    cfg = resolve_config(overrides={"epochs": 9})
    state = TrainState(cfg=cfg, model=None, optimizer=None, scheduler=None, steps_per_epoch=1)
    now = [100.0]  # the test's own clock: time passes only where the test says so, whatever the machine does
    live = LiveCurves(tmp_path, clock=lambda: now[0])

    def epoch_end():
        n = len(state.history) + 1
        state.history.append({"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.1 / n, "lr": 0.1,
                              "epoch_time": 0.1, "train_acc": 0.5, "val_acc": 0.5})
        live.on_epoch_end(state, state.history[-1])

    live.on_train_begin(state)
    epoch_end()
    assert live.draws == 0 and not (tmp_path / "curves.png").exists()  # within MIN_WAIT of the start
    now[0] += MIN_WAIT  # slow epochs have passed since the start
    epoch_end()
    assert live.draws == 1 and live.last["epochs"] == [1, 2]
    assert live.wait() == max(MIN_WAIT, WAIT_PER_DRAW_SECOND * live.draw_seconds)
    epoch_end()
    assert live.draws == 1  # right after a drawing: no second one
    now[0] += live.wait() + 0.01
    epoch_end()
    assert live.draws == 2 and live.last["epochs"] == [1, 2, 3, 4]
    live.draw_seconds = 1.0  # a slow drawing (a long history, a busy machine) stretches the wait beyond MIN_WAIT
    assert live.wait() == WAIT_PER_DRAW_SECOND
    now[0] += MIN_WAIT + 0.01
    epoch_end()
    assert live.draws == 2
    state.stop_reason = "epochs: reached 5"
    live.on_train_end(state)
    assert live.draws == 3 and live.last["stop_reason"] == "epochs: reached 5"


def test_live_curves_without_final_leave_the_last_picture_to_the_report(tmp_path):
    made = {}

    def setup(p, run_dir):
        made["live"] = LiveCurves(run_dir, min_interval=0, final=False)
        return [made["live"]]

    result = train(toy_cfg(tmp_path), setup=setup, verbose=False)
    live = made["live"]
    assert live.draws == 4 and live.last["epochs"] == [1, 2, 3, 4]  # every epoch's end, no final drawing
    assert live.last["stop_reason"] != result.summary["stop_reason"]


@pytest.mark.parametrize("low, high", [(0.35, 0.85), (1e-7, 0.5)])
def test_log_axes_are_labelled_with_plain_numbers_that_read_back_as_the_ticks(low, high):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from trainlab.report.plots import plain_log_y

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([1, 2], [low, high])
    plain_log_y(ax)
    FigureCanvasAgg(fig).draw()  # the formatters label the ticks when drawn
    ticks = ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
    labels = [(t.label1.get_text(), t.get_loc()) for t in ticks if t.label1.get_text()]
    assert len(labels) >= 2
    for text, loc in labels:  # "0.4", "1e-06": no mathtext ("$4\\times10^{-1}$")
        assert "$" not in text and float(text) == pytest.approx(loc, rel=1e-2)
