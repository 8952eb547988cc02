"""A run from config to its directory: files, determinism, stop rules, the sealed test split, no overwrite."""
from __future__ import annotations

import csv
import json
import re

import pytest
import torch
import yaml

from trainlab.config import config_to_dict, validate_config
from trainlab.data import load_data
from trainlab.train.callbacks import Callback
from trainlab.train.logs import COLUMNS
from trainlab.train.run import choose_threads, prepare, train

METRIC_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "grad_norm")


def _metrics(history):
    return [{k: h[k] for k in METRIC_KEYS} for h in history]


def test_run_directory_holds_every_artifact(make_cfg):
    cfg = make_cfg(**{"tensorboard": True, "name": "full"})
    result = train(cfg, verbose=False)
    d = result.run_dir
    assert d.name == "full"
    saved = validate_config(yaml.safe_load((d / "config.yaml").read_text()))
    assert config_to_dict(saved) == config_to_dict(cfg)  # resolved and complete: it rebuilds the same config
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(set(COLUMNS) <= set(r) for r in rows)
    with open(d / "metrics.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in csv_rows] == pytest.approx([r["val_loss"] for r in rows])
    assert list(d.glob("tb/events.out.tfevents.*"))
    for name in ("last", "best"):
        ckpt = torch.load(d / "checkpoints" / f"{name}.pt", weights_only=True)
        assert {"model", "optimizer", "scheduler", "rng", "epoch", "config"} <= set(ckpt)
    assert torch.load(d / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3
    summary = json.loads((d / "summary.json").read_text())
    assert summary["stop_reason"] == "epochs: reached 3" and summary["stopped_by"] == "epochs"
    assert summary["test"]["n"] > 0 and 0 <= summary["test"]["test_acc"] <= 1
    assert summary["best_epoch"] == min(rows, key=lambda r: r["val_loss"])["epoch"]
    assert summary["environment"]["torch"] == torch.__version__


def test_training_learns_a_toy_set(make_cfg):
    result = train(make_cfg(**{"epochs": 30, "model.hidden": [8, 8], "optimizer.name": "adam",
                               "optimizer.lr": 0.03, "data.name": "xor"}), verbose=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] * 0.5
    assert result.summary["test"]["test_acc"] > 0.9


def test_same_seed_same_metrics_and_other_seed_differs(make_cfg):
    cfg = make_cfg(**{"model.dropout": 0.2, "optimizer.name": "momentum"})
    a, b = train(cfg, verbose=False), train(cfg, verbose=False)
    assert _metrics(a.history) == _metrics(b.history)
    c = train(make_cfg(**{"model.dropout": 0.2, "optimizer.name": "momentum", "seed": 1}), verbose=False)
    assert _metrics(c.history) != _metrics(a.history)


def test_new_run_never_reuses_a_directory(make_cfg):
    cfg = make_cfg(name="same", epochs=1)
    first = train(cfg, verbose=False)
    before = (first.run_dir / "metrics.jsonl").read_text()
    second = train(cfg, verbose=False)
    assert second.run_dir.name == "same-2"
    assert (first.run_dir / "metrics.jsonl").read_text() == before


class _TestSpy(Callback):
    def __init__(self, bundle):
        self.bundle, self.seen = bundle, []

    def on_epoch_end(self, state, metrics):
        self.seen.append(self.bundle.test.opened)


def test_test_split_is_opened_once_after_training(make_cfg):
    cfg = make_cfg()
    bundle = load_data(cfg.data, cfg.seed)
    spy = _TestSpy(bundle)
    train(cfg, callbacks=[spy], verbose=False, bundle=bundle)
    assert spy.seen == [0, 0, 0]
    assert bundle.test.opened == 1


@pytest.mark.parametrize("overrides, reason", [
    ({"stop.target.value": 0.05, "stop.target.metric": "val_acc"}, "target"),
    ({"stop.convergence.tol": 10.0, "stop.convergence.patience": 1}, "convergence"),
    ({"stop.early_stopping.patience": 1, "optimizer.lr": 1e-9}, "early_stopping"),
])
def test_stop_rules_end_the_run_early(make_cfg, overrides, reason):
    result = train(make_cfg(epochs=20, **overrides), verbose=False)
    assert result.summary["stop_reason"].startswith(reason)
    assert result.summary["stopped_by"] == reason  # the rule as data, for the verdict and resume
    assert len(result.history) < 20


def test_early_stopping_restores_best_weights(make_cfg):
    result = train(make_cfg(**{"epochs": 15, "stop.early_stopping.patience": 2, "optimizer.lr": 3.0}), verbose=False)
    best = torch.load(result.run_dir / "checkpoints" / "best.pt", weights_only=True)
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, best["model"][k])


def test_full_batch_and_online_updates(make_cfg):
    full = train(make_cfg(batch_size=180, epochs=2), verbose=False)  # 300 points - 20 % test - 10 % val → 216
    assert full.prepared.bundle.train.x.shape[0] == 216
    online = train(make_cfg(batch_size=1, epochs=1), verbose=False)
    assert online.history[0]["train_loss"] > 0


def test_l1_l2_penalties_shrink_weights(make_cfg):
    plain = train(make_cfg(epochs=5), verbose=False)
    l2 = train(make_cfg(**{"epochs": 5, "loss.l2": 0.1}), verbose=False)
    norm = lambda m: sum(p.pow(2).sum() for n, p in m.named_parameters() if p.ndim > 1)  # noqa: E731
    assert norm(l2.model) < norm(plain.model)


def test_threads_are_chosen_from_the_work_per_step(make_cfg):
    assert choose_threads(20, 10, cores=2) == 1
    assert choose_threads(203_530, 256, cores=2) == 2
    assert prepare(make_cfg()).threads == 1
    assert prepare(make_cfg(threads=2)).threads == 2


@pytest.mark.parametrize("model", ["perceptron", "linear", "mlp", "resnet"])
def test_every_flat_model_trains_end_to_end(make_cfg, model):
    loss = "perceptron" if model == "perceptron" else "auto"
    result = train(make_cfg(**{"model.name": model, "loss.name": loss, "data.name": "gauss"}), verbose=False)
    assert result.summary["test"]["test_acc"] > 0.8


def test_regression_run_has_no_accuracy(make_cfg):
    result = train(make_cfg(**{"data.name": "plane", "epochs": 5, "optimizer.lr": 0.01}), verbose=False)
    assert result.history[-1]["val_acc"] is None
    assert result.history[-1]["val_loss"] < result.history[0]["train_loss"]


def test_gradient_clipping_bounds_each_update(make_cfg):
    # With plain SGD an update is lr·g; clipping |g| to c bounds each step's change by lr·c.
    free = train(make_cfg(epochs=1, **{"optimizer.lr": 1.0}), verbose=False)
    clipped = train(make_cfg(epochs=1, grad_clip=1e-3, **{"optimizer.lr": 1.0}), verbose=False)
    start = prepare(make_cfg()).model  # the same seed → the same initial weights
    steps = -(-len(clipped.prepared.bundle.train) // 16)
    delta = torch.cat([(a - b).flatten() for a, b in zip(clipped.model.parameters(), start.parameters())]).norm()
    assert delta <= steps * 1.0 * 1e-3 * 1.0001
    assert clipped.history[0]["grad_norm"] > 1e-3  # the recorded norm is before clipping
    free_delta = torch.cat([(a - b).flatten() for a, b in zip(free.model.parameters(), start.parameters())]).norm()
    assert free_delta > 10 * delta


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle", "warmup", "plateau"])
def test_every_schedule_runs_and_logs_its_lr(make_cfg, schedule):
    result = train(make_cfg(epochs=4, **{"schedule.name": schedule, "schedule.step_epochs": 2}), verbose=False)
    lrs = [h["lr"] for h in result.history]
    if schedule in ("constant", "warmup", "plateau"):  # plateau: 4 epochs, fewer than its patience of 5
        assert lrs == pytest.approx([0.1] * 4)
    elif schedule == "step":
        assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001])
    else:
        assert lrs[-1] < lrs[0] * 0.5 or schedule == "onecycle" and max(lrs) > lrs[-1]


def test_tensorboard_events_hold_the_epoch_scalars(make_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(make_cfg(tensorboard=True), verbose=False)
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    assert {"loss/train", "loss/val", "accuracy/val", "lr", "grad_norm"} <= set(acc.Tags()["scalars"])
    vals = [e.value for e in acc.Scalars("loss/val")]
    assert vals == pytest.approx([h["val_loss"] for h in result.history], rel=1e-6)


def test_shuffle_false_walks_the_training_split_in_the_same_order_every_epoch(make_cfg):
    """With zero init and no dropout the seed only picks the batch order: shuffle=false makes it irrelevant."""
    from trainlab.data import load_data

    base = {"model.name": "linear", "model.init": "zeros", "epochs": 3}
    bundle = load_data(make_cfg().data, 0)

    def losses(seed: int, shuffle: bool) -> list[float]:
        run = train(make_cfg(**base, seed=seed, shuffle=shuffle), bundle=bundle, verbose=False)
        return [h["train_loss"] for h in run.history]

    assert losses(0, False) == losses(1, False)
    assert losses(0, True) != losses(1, True)


def test_runs_saved_before_momentum_was_refused_still_load(make_cfg):
    """Older runs saved optimizer.momentum: 0.9 (the old default) beside optimizer.name: sgd; they stay readable."""
    import yaml

    from trainlab.train.run import read_run_config

    result = train(make_cfg(name="old"), verbose=False)
    path = result.run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["optimizer"]["momentum"] = 0.9
    path.write_text(yaml.safe_dump(raw))
    assert read_run_config(result.run_dir).optimizer.momentum is None


def test_a_cut_short_config_yaml_is_named_and_an_older_one_without_the_frame_still_reads(make_cfg):
    from trainlab.config import RUN_CONFIG_END, RUN_CONFIG_HEAD, config_to_yaml
    from trainlab.errors import CheckpointError
    from trainlab.train.run import read_run_config

    cfg = make_cfg(name="framed")
    d = train(cfg, verbose=False).run_dir
    text = (d / "config.yaml").read_text()
    assert text.startswith(RUN_CONFIG_HEAD) and text.endswith(RUN_CONFIG_END)
    assert config_to_dict(read_run_config(d)) == config_to_dict(cfg)
    cut = text[: text.index("optimizer:")]  # still valid YAML: defaults would stand in for the rest
    assert validate_config(yaml.safe_load(cut))
    (d / "config.yaml").write_text(cut)
    with pytest.raises(CheckpointError, match=r"config\.yaml' must be the whole file trainlab wrote\. Got one cut short"):
        read_run_config(d)
    (d / "config.yaml").write_text(config_to_yaml(cfg))  # as older trainlab wrote it: no head, no end line
    assert config_to_dict(read_run_config(d)) == config_to_dict(cfg)


def test_the_best_epochs_validation_outputs_are_kept_for_the_report_and_are_the_best_checkpoints(make_cfg):
    from trainlab.train.inference import load_run

    # lr 3 on a tanh net: validation loss goes up and down, so the best epoch is not always the last
    result = train(make_cfg(epochs=6, **{"optimizer.lr": 3.0}), verbose=False)
    best = load_run(result.run_dir)
    with torch.no_grad():
        expected = best.model(result.prepared.bundle.val.x)
    kept = result.best_val_outputs
    assert kept is not None and kept.shape == expected.shape
    torch.testing.assert_close(kept, expected, rtol=1e-5, atol=1e-6)
    assert best.epoch == result.summary["best_val"]["epoch"] == 5  # (seeded) not the last epoch's outputs


def test_evaluate_keeps_the_outputs_only_when_asked_and_only_up_to_its_cap(monkeypatch):
    from trainlab.data import Split
    from trainlab.train import loop
    from trainlab.train.losses import resolve_loss

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    split = Split(torch.randn(50, 4), torch.randint(0, 3, (50,)))
    loss = resolve_loss("cross_entropy", "classification", 3)
    plain = loop.evaluate(model, split, loss, 16, True)
    kept = loop.evaluate(model, split, loss, 16, True, keep_outputs=True)
    assert "outputs" not in plain and kept["loss"] == plain["loss"]
    with torch.no_grad():
        torch.testing.assert_close(kept["outputs"], model(split.x))
    monkeypatch.setattr(loop, "KEEP_OUTPUTS", 50 * 3 - 1)  # one number short of the whole split's
    assert loop.evaluate(model, split, loss, 16, True, keep_outputs=True)["outputs"] is None


@pytest.mark.parametrize("name, gpus, want", [("cuda:1", 1, "cuda"), ("cuda:1", 2, "cuda:1"), ("cuda", 1, "cuda"),
                                              ("auto", 1, "cuda"), ("cuda:1", 0, "cpu"), ("cpu", 2, "cpu")])
def test_a_finished_run_is_used_on_a_gpu_this_machine_has(monkeypatch, name, gpus, want):
    # trained on cuda:1, reported on a one-GPU machine: was torch's "invalid device ordinal" on the first batch
    from trainlab.train.inference import inference_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert inference_device(name) == torch.device(want)


@pytest.mark.parametrize("weights, smoothing", [(None, 0.0), ([1.0, 8.0], 0.0), (None, 0.2), ([1.0, 8.0], 0.2)])
def test_evaluate_scores_the_test_split_with_the_loss_training_summarised(make_cfg, weights, smoothing):
    # with class weights, `trainlab evaluate` gave the unweighted test loss beside the summary's weighted one
    from trainlab.train.inference import evaluate_run

    result = train(make_cfg(**{"loss.class_weights": weights, "loss.label_smoothing": smoothing, "epochs": 2,
                               "eval_batch_size": 7}), verbose=False)
    test = result.summary["test"]
    if smoothing:  # the smoothed loss is what training logged: above the unsmoothed one a confident model has
        plain = train(make_cfg(**{"loss.class_weights": weights, "epochs": 2, "eval_batch_size": 7}), verbose=False)
        assert test["test_loss"] != pytest.approx(plain.summary["test"]["test_loss"], rel=1e-3)
    got = evaluate_run(result.run_dir)
    assert got["test_loss"] == pytest.approx(test["test_loss"], rel=1e-6) and got["test_acc"] == test["test_acc"]


def _bn_net():
    from torch import nn

    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("n, bs, world, fine, said", [
    (300, 299, 1, False, r"300 training examples in batches of 299 leave 1 for the last one.*Got 299\. Use "
                         r"batch_size=298 or 300, set drop_last=true \(the last batch left out\), or a model "
                         r"without BatchNorm\.$"),
    (300, 1, 1, False, r"batches of 1 give 1.*Got 1\. Use batch_size=2, or a model without BatchNorm\.$"),
    (101, 50, 1, False, r"leave 1 for the last one.*Use batch_size=49 or 51"),
    (98, 8, 2, False, r"per process: 98 training examples in batches of 8, "
                      r"split over 2 processes, leave 1 for the last one"),
    (100, 6, 4, False, r"per process: batches of 6, split over 4 processes, give 1"), (100, 6, 2, True, None),
    (300, 32, 1, True, None), (300, 300, 1, True, None), (302, 300, 1, True, None), (8, 2, 1, True, None),
])
def test_a_batch_of_one_for_batchnorm_is_refused_before_training(n, bs, world, fine, said):
    from trainlab.errors import ConfigError
    from trainlab.train.run import check_batchnorm_batches

    if not fine and "last one" in said:  # the last smaller batch is the only problem: leaving it out is fine
        check_batchnorm_batches(_bn_net(), n, bs, world, drop_last=True)

    if fine:
        check_batchnorm_batches(_bn_net(), n, bs, world)
        return
    with pytest.raises(ConfigError, match=r"^batch_size must be a size that gives BatchNorm layers at least 2 "
                                          r"examples in every batch.*" + said):
        check_batchnorm_batches(_bn_net(), n, bs, world)


@pytest.mark.parametrize("n, bs, world, micro, said", [
    (1000, 256, 1, 85, r"batches of 256 examples in passes of 85 leave 1 for the last pass.*Got 85\. "
                       r"Use speed\.micro_batch=84 or 86\.$"),
    (1000, 256, 1, 231, r"batches of 232 examples in passes of 231 leave 1"),  # the last batch: 1000 = 3 x 256 + 232
    (1000, 256, 1, 1, r"passes of 1 give every example a pass of its own.*Got 1\. Use speed\.micro_batch=2\.$"),
    (1000, 256, 2, 127, r"batches of 128 examples per process in passes of 127 leave 1"),
    (1000, 256, 1, 64, None), (1000, 256, 1, 300, None), (1024, 256, 1, 254, None),
])
def test_a_pass_of_one_for_batchnorm_under_micro_batch_is_refused_before_training(n, bs, world, micro, said):
    from trainlab.errors import ConfigError
    from trainlab.train.run import check_batchnorm_batches

    if said is None:
        check_batchnorm_batches(_bn_net(), n, bs, world, micro_batch=micro)
        return
    with pytest.raises(ConfigError, match=r"^speed\.micro_batch must be a size that gives BatchNorm layers at least 2 "
                                          r"examples in every pass: " + said):
        check_batchnorm_batches(_bn_net(), n, bs, world, micro_batch=micro)
    from torch import nn

    check_batchnorm_batches(nn.Linear(2, 2), n, bs, world, micro_batch=micro)  # without BatchNorm: any size


def test_without_batchnorm_any_batch_size_trains():
    from torch import nn

    from trainlab.train.run import check_batchnorm_batches

    check_batchnorm_batches(nn.Sequential(nn.Linear(2, 8), nn.LayerNorm(8), nn.Linear(8, 2)), 300, 299)
    check_batchnorm_batches(nn.Linear(2, 2), 300, 1)


def test_train_with_batchnorm_and_a_last_batch_of_one_is_one_line_and_writes_nothing(make_cfg, tmp_path):
    from trainlab.errors import ConfigError

    cfg = make_cfg(**{"model.batchnorm": True, "batch_size": 215})  # 216 training examples = 215 + 1
    with pytest.raises(ConfigError, match=r"leave 1 for the last one.*Use batch_size=214 or 216") as err:
        train(cfg, verbose=False)
    assert "\n" not in str(err.value) and not (tmp_path / "runs").exists()


class _SeenBatches(__import__("torch").nn.Module):
    """A small net that records the rows of every training batch it sees (column 0 of the inputs: a row id)."""

    def __init__(self):
        import torch

        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                       torch.nn.Linear(8, 2))
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x[:, 0].long().tolist())
        return self.net(x)


@pytest.mark.parametrize("form", ["tensors", "streamed"])
def test_drop_last_leaves_out_the_smaller_last_batch_and_other_examples_each_epoch(tmp_path, form, monkeypatch):
    import torch
    from torch.utils.data import Dataset

    import trainlab as tl
    import trainlab.data.memory as memory

    real_fits = memory._fits
    monkeypatch.setattr(memory, "_fits", lambda ds, max_bytes: real_fits(ds, 1000))  # a Dataset: read batch by batch

    x = torch.randn(100, 3)
    x[:, 0] = torch.arange(100.)
    y = (x[:, 1] > 0).long()

    class Rows(Dataset):
        def __len__(self):
            return 100

        def __getitem__(self, i):
            return x[i], y[i]

    data = (x, y) if form == "tensors" else Rows()
    kw = dict(val=(x[:10], y[:10]), epochs=3, batch_size=32, lr=0.1, out_dir=str(tmp_path), verbose=False,
              report=False, tensorboard=False)
    net = _SeenBatches()
    run = tl.fit(net, data, drop_last=True, **kw)  # 100 = 3 x 32 + 4: a last batch of 4 left out
    assert run._bundle.meta["kind"] == ("stream" if form == "streamed" else "tensors")
    assert [len(b) for b in net.seen] == [32] * 9 and run.summary["first_epoch"]["steps"] == 3
    epochs = [sorted(sum(net.seen[k:k + 3], [])) for k in (0, 3, 6)]
    assert all(len(set(e)) == 96 for e in epochs) and len({tuple(e) for e in epochs}) > 1  # shuffled: others left out
    losses = [h["train_loss"] for h in run.history]
    # without drop_last the same seed trains on every example, the last batch of 4 too
    whole = _SeenBatches()
    tl.fit(whole, data, **kw)
    assert [len(b) for b in whole.seen] == [32, 32, 32, 4] * 3 and all(__import__("math").isfinite(v) for v in losses)


def test_several_config_and_data_problems_are_one_line_naming_each(make_cfg):
    from trainlab.errors import ConfigError
    from trainlab.train.run import prepare

    with pytest.raises(ConfigError) as err:
        prepare(make_cfg(batch_size=500, **{"data.augment.flip": True}))  # 300 circle points, 2 features each
    text = str(err.value)
    assert "\n" not in text
    assert re.match(r"^\(1\) batch_size must be <= the number of training examples \(\d+\)\. Got 500\.", text)
    assert " (2) data.augment must be off for non-image data." in text


@pytest.mark.parametrize("overrides, said", [
    ({"data.augment.cutmix": 1.0}, r"^data\.augment must be off for non-image data\. Got \{'cutmix': 1\.0\} for input "
                                   r"shape \(2,\)\. Remove data\.augment\.cutmix \(mixup mixes any inputs\)\.$"),
    ({"data.augment.mixup": 0.2, "data.task": "regression", "data.name": "csv"}, None),
])
def test_mixing_that_cannot_apply_is_one_line(make_cfg, overrides, said, tmp_path):
    from trainlab.errors import ConfigError
    from trainlab.train.run import prepare

    if said is None:  # a regression: targets that are not class labels
        csv = tmp_path / "r.csv"
        csv.write_text("a,b,t\n" + "".join(f"{i % 7},{i % 3},{i * 0.5}\n" for i in range(40)))
        overrides = {**overrides, "data.path": str(csv), "data.target": "t"}
        said = (r"^data\.augment\.mixup must be 0 for a regression dataset: it mixes class labels\. Got 0\.2\. "
                r"Set data\.augment\.mixup=0\.$")
    with pytest.raises(ConfigError, match=said):
        prepare(make_cfg(**overrides))
    assert prepare(make_cfg(**{"data.augment.mixup": 0.2})).bundle.task == "classification"  # toy points mix


def test_the_default_batch_size_on_a_smaller_training_split_is_the_whole_split(tmp_path, capsys):
    # Keras, skorch and a DataLoader train 150 rows with their default batch size; trainlab's default (256) then
    # becomes the whole split, said once, and the run's config keeps the size used (a resume trains the same).
    import numpy as np

    import trainlab as tl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    run = tl.fit(None, (x, y), val=0.2, epochs=2, out_dir=tmp_path, verbose=True, report=False)
    out = capsys.readouterr().out
    assert "note: batch_size=120, the whole training split: the default 256 is more than its 120 examples" in out
    assert yaml.safe_load((run.run_dir / "config.yaml").read_text())["batch_size"] == 120
    assert [len(r) for r in run.history] == [len(run.history[0])] * 2 and run.summary["steps"] is not None
    with pytest.raises(Exception, match=r"^batch_size must be <= the number of training examples \(120\)\. "
                                        r"Got 256\."):
        tl.fit(None, (x, y), val=0.2, epochs=1, batch_size=256, out_dir=tmp_path, verbose=False, report=False)


def test_micro_batch_trains_the_same_updates_in_smaller_passes(tmp_path):
    """speed.micro_batch (gradient accumulation): the same updates as whole batches, within float tolerance, with
    no forward pass over more than micro_batch examples; the steps say why they are eager."""
    import torch

    import trainlab as tl

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).long()

    def fit(**kw):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
        seen = []
        net.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])) if m.training else None)
        run = tl.fit(net, (x, y), val=0.2, epochs=3, batch_size=64, lr=0.2, optimizer="momentum", momentum=0.9, l2=1e-3, seed=3,
                     class_weights="balanced", out_dir=str(tmp_path), verbose=False, report=False, **kw)
        return run, net, seen

    whole, net1, seen1 = fit()
    parts, net2, seen2 = fit(micro_batch=20)
    assert max(seen1) == 64 and max(seen2) == 20 and sum(seen1) == sum(seen2) == 3 * 160
    for a, b in zip(whole.history, parts.history):
        for key in ("train_loss", "train_acc", "val_loss", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert all(torch.allclose(p, q, atol=1e-5) for p, q in zip(net1.parameters(), net2.parameters()))
    assert parts.summary["steps"]["eager_because"].startswith("device cpu")  # on a CPU the first reason is the device


def test_overfit_batches_trains_and_validates_on_the_same_first_batches(make_cfg):
    cfg = make_cfg(**{"overfit_batches": 2, "batch_size": 8, "epochs": 60, "optimizer.name": "adam",
                      "optimizer.lr": 0.05})
    p = prepare(cfg)
    whole = prepare(make_cfg(**{"batch_size": 8}))
    assert p.bundle.train is p.bundle.val and len(p.bundle.train) == 16
    assert torch.equal(p.bundle.train.x, whole.bundle.train.x[:16])  # the first two batches of the training split
    assert p.bundle.test.opened == 0 and len(p.bundle.test.open()) == len(whole.bundle.test.open())  # sealed, whole
    assert "overfit_batches=2: training and validating on the same 16 training examples" in p.notes[-1]
    result = train(cfg, verbose=False)
    assert result.history[-1]["train_acc"] == 1.0 and result.history[-1]["val_acc"] == 1.0
    assert "shared_with_val" not in result.summary["preflight"]  # the same rows by design: no leakage finding
