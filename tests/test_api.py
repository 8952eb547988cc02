"""The Python API: any nn.Module on any data through the same engine, with the same errors and files."""
from __future__ import annotations

import os
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

import trainlab as tl
from tests.conftest import alive
from trainlab.errors import CheckpointError, ConfigError, DataError


def _xy(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


class Net(nn.Module):
    def __init__(self, n_in=4, n_out=2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, 16), nn.Tanh())
        self.out = nn.Linear(16, n_out)

    def forward(self, x):
        return self.out(self.body(x))


def seeded_net() -> Net:
    torch.manual_seed(0)  # the user's module is initialised by torch's global RNG
    return Net()


@pytest.fixture
def opts(tmp_path):
    return dict(out_dir=str(tmp_path / "runs"), epochs=4, batch_size=32, optimizer="adam", lr=0.02, verbose=False,
                report=False, tensorboard=False)


class Pairs(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


@pytest.mark.parametrize("kind", ["tensors", "numpy", "dataframe", "dataset", "iterable"])
def test_every_data_kind_trains_the_same(kind, opts):
    x, y = _xy()
    data = {"tensors": (x, y), "numpy": (x.numpy(), y.numpy()), "dataset": Pairs(x, y), "iterable": Stream(x, y)}
    if kind == "dataframe":
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame(x.numpy(), columns=list("abcd")).assign(label=y.numpy())
        run = tl.fit(seeded_net(), frame, target="label", **opts)
    else:
        run = tl.fit(seeded_net(), data[kind], **opts)
    reference = tl.fit(seeded_net(), (x, y), **opts)
    assert [h["train_loss"] for h in run.history] == pytest.approx([h["train_loss"] for h in reference.history])
    assert run.history[-1]["val_acc"] > 0.8


def test_dataset_name_and_config_file_run_the_cli_engine(tmp_path, opts):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: circle, n_points: 200}\nmodel: {hidden: [8], activation: tanh, init: xavier}\n"
                   "epochs: 3\nbatch_size: 16\ntensorboard: false\n")
    run = tl.fit(config=cfg, out_dir=str(tmp_path / "runs"), verbose=False, report=False)
    assert run.config.data.name == "circle" and len(run.history) == 3
    named = tl.fit(data="xor", **opts)
    assert named.config.data.name == "xor" and (named.run_dir / "config.yaml").exists()


def test_fit_returns_history_diagnosis_evaluate_predict(opts):
    x, y = _xy()
    xt, yt = _xy(100, seed=1)
    run = tl.fit(Net(), (x, y), test=(xt, yt), **{**opts, "epochs": 8})
    assert [h["epoch"] for h in run.history] == list(range(1, 9))
    assert run.history.to_pandas().shape[0] == 8
    assert run.diagnosis.verdict in {"good_fit", "still_improving", "underfitting"}
    ev = run.evaluate()
    best = tl.load(run.run_dir, model=Net())  # evaluate() scores the best checkpoint
    assert ev["test_acc"] == pytest.approx(float((best(xt).argmax(1) == yt).float().mean()), abs=1e-6)
    assert run.predict(xt).shape == (100,)
    for nothing, got in ((None, "None"), ({}, "a dict")):  # None was a TypeError from len() deep in the conversion
        with pytest.raises(DataError, match=rf"^X must be an array with one row per example\. Got {got}\. Pass an array"):
            run.predict(nothing)
    proba = run.predict(xt[:5], proba=True)
    assert proba.shape == (5, 2) and torch.allclose(proba.sum(1), torch.ones(5))
    assert run.plot().axes  # a matplotlib Figure with the curves
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["test"]["test_acc"] == pytest.approx(ev["test_acc"])


def test_summary_tables_a_module_from_a_shape_or_a_batch_and_a_run_keeps_the_same_table(opts):
    table = tl.summary(Net(), (4,))
    assert [(r.name, r.output, r.params) for r in table.rows] == [("body.0", "(16,)", 80), ("body.1", "(16,)", 0),
                                                                 ("out", "(2,)", 34)]
    assert tl.summary(Net(), np.zeros((7, 4), dtype="float32")) == table  # a batch: its examples' shape
    x, y = _xy()
    run = tl.fit(Net(), (x, y), **{**opts, "epochs": 1})
    assert run.model_table == table
    assert json.loads((run.run_dir / "summary.json").read_text())["model_table"] == table.as_json()


@pytest.mark.parametrize("model, shape, match", [
    (Net(), (0, 4), r"^input_shape must be one example's shape as positive whole numbers.* Got \(0, 4\)\. Leave"),
    (Net(), "4", r"^input_shape must be .* Got '4'"),
    (Net(), torch.zeros(4), r"^input_shape must be one example's shape or a batch of examples\. Got an array of shape"),
    (Net(), (5,), r"^model Net\.forward must run on a batch of input shape \(2, 5\)\. Got RuntimeError: mat1 and mat2"),
    (Net, (4,), r"^model must be a torch\.nn\.Module instance\. Got the class Net\. Pass an instance: Net\(\.\.\.\)"),
    (None, (4,), r"^model must be a torch\.nn\.Module instance\. Got None\. Pass your module first"),
    ("mlp", (4,), r"^model must be a torch\.nn\.Module instance\. Got str 'mlp'\. Pass your module first"),
])
def test_summary_of_a_bad_shape_or_model_is_one_line(model, shape, match):
    with pytest.raises(ConfigError, match=match):
        tl.summary(model, shape)


def test_overfit_batches_memorises_in_memory_data_and_refuses_a_stream(opts):
    x, y = _xy()
    run = tl.fit(seeded_net(), (x, y), **{**opts, "epochs": 40, "overfit_batches": 1})
    assert run.diagnosis.verdict == "memorization" and run.diagnosis.findings[0].severity == "info"
    with pytest.raises(ConfigError, match=r"^overfit_batches must be 0 for a streamed dataset .* Got 1\. Hand over "
                                          r"tensors"):
        tl.fit(Net(), Jittered(x, y), **{**opts, "overfit_batches": 1})  # streamed: read afresh every epoch


class Jittered(Pairs):
    """A random transform: its examples change between reads, so trainlab streams it."""

    def __getitem__(self, i):
        return self.x[i] + 0.01 * torch.randn(self.x.shape[1:]), self.y[i]


def test_evaluate_scores_the_best_checkpoint_on_examples_passed_later(opts):
    # as Keras' model.evaluate(X, y): read as the test set is (text labels to the training classes, normalisation)
    x, y = _xy()
    xt, yt = _xy(100, seed=1)
    words = np.array(["no", "yes"])
    run = tl.fit(Net(), (x.numpy(), words[y]), test=(xt.numpy(), words[yt]), normalize=True, **opts)
    test = run.evaluate()
    ev = run.evaluate(xt.numpy(), words[yt])
    scores = {k: test[k] for k in ("balanced_acc", "macro_f1", "per_class", "macro", "weighted", "confusion")}
    assert ev == {"loss": pytest.approx(test["test_loss"], abs=1e-6), "acc": pytest.approx(test["test_acc"]),
                  "n": 100, "epoch": test["epoch"], **scores}
    assert [r["class"] for r in ev["per_class"]] == ["no", "yes"]  # the training classes' names
    assert run.evaluate((xt[:40].numpy(), words[yt[:40]]))["n"] == 40  # one (X, y) pair, as fit takes data
    with pytest.raises(DataError, match=r"^y must be one of the training classes \['no', 'yes'\]\. Got 'maybe'\."):
        run.evaluate(xt[:3].numpy(), np.array(["no", "maybe", "yes"]))
    with pytest.raises(DataError, match=r"^X must be shaped \(N, 4\) like the training inputs\. Got shape \(3, 2\)"):
        run.evaluate(xt[:3, :2].numpy(), words[yt[:3]])
    named = tl.fit(data="circle", **opts)  # a dataset trainlab loads: X as its inputs, y as class ids
    from trainlab.data.toy import make_toy

    xc, yc = make_toy("circle", 200, noise=0.0, seed=5)
    m = named.evaluate(xc, yc)
    best = tl.load(named.run_dir)
    assert m["acc"] == pytest.approx(float((best(xc).argmax(1) == yc).float().mean()), abs=1e-6) and m["n"] == 200
    for bad in (yc + 5, np.array(["a"] * 200)):  # text labels were a TypeError from torch.as_tensor
        with pytest.raises(DataError, match=r"^y must be class ids 0\.\.1, one per example\."):
            named.evaluate(xc, bad)
    from torch.utils.data import DataLoader, TensorDataset

    own = tl.fit(Net(), (x, y), **opts)  # a Dataset or DataLoader, as fit takes them
    loader = DataLoader(TensorDataset(xt, yt), batch_size=7)
    assert own.evaluate(loader) == own.evaluate(TensorDataset(xt, yt)) == own.evaluate(xt, yt)


def test_load_needs_and_uses_the_users_module(opts):
    x, y = _xy()
    run = tl.fit(Net(), (x, y), **opts)
    with pytest.raises(CheckpointError, match=r"model must be given .* model=Net\(\)"):
        tl.load(run.run_dir)
    with pytest.raises(ConfigError, match=r"^model must be a torch\.nn\.Module instance or None\. Got the class Net\."):
        tl.load(run.run_dir, model=Net)  # was load_state_dict's TypeError
    with pytest.raises(ConfigError, match=r"^run_dir must be a run directory \(a str or Path\)\. Got None\."):
        tl.load(None)
    model = tl.load(run.run_dir, model=Net())
    best = torch.load(run.run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match=r"^model must have the architecture .* Got Net: size mismatch for "
                                              r"out\.weight: copying a param with shape torch\.Size\(\[2, 16\]\)"):
        tl.load(run.run_dir, model=Net(n_out=3))


def test_a_checkpoint_of_another_run_is_named_with_the_shapes(tmp_path):
    runs = {h: tl.fit(data="circle", hidden=[h], epochs=1, batch_size=32, out_dir=str(tmp_path), name=f"h{h}",
                      tensorboard=False, verbose=False, report=False) for h in (8, 16)}
    ckpt = runs[8].run_dir / "checkpoints" / "best.pt"
    ckpt.write_bytes((runs[16].run_dir / "checkpoints" / "best.pt").read_bytes())  # copied over from the wider run
    with pytest.raises(CheckpointError, match=r"^checkpoints/best\.pt of h8 must hold the weights of the model its "
                                              r"config\.yaml describes \(mlp, hidden \[8\]\)\. Got size mismatch for "
                                              r".*torch\.Size\(\[16, 2\]\).*Restore the run's own checkpoint") as info:
        tl.load(runs[8].run_dir)
    assert "\n" not in str(info.value)


def test_builtin_model_runs_load_without_a_module(opts):
    run = tl.fit(data="circle", **opts)
    model = tl.load(run.run_dir)
    assert isinstance(model, nn.Module) and not model.training
    assert isinstance(tl.load(run.run_dir, which="last"), nn.Module)
    with pytest.raises(CheckpointError) as err:  # was "checkpoint must be an existing file ... finished an epoch"
        tl.load(run.run_dir, which="worst")
    assert str(err.value) == (f"which must be a checkpoint {run.run_dir.name} holds (best, last). Got 'worst'. "
                              "Use which='best' (the monitored best) or 'last'.")


def test_diagnostics_work_on_user_modules(opts):
    x, y = _xy()
    run = tl.fit(Net(), (x, y), **opts)
    rows = [json.loads(r) for r in (run.run_dir / "layers.jsonl").read_text().splitlines()]
    assert set(rows[-1]["grad_norm"]) == {"body.0", "out"}
    assert set(rows[-1]["activations"]) == {"body.1"} and rows[-1]["activations"]["body.1"]["kind"] == "tanh"


@pytest.mark.parametrize("model, match", [
    (nn.Linear(4, 10), r"model output must be \(batch, 2\) for 2 classes. Got \(2, 10\). Make your module"),
    (nn.Linear(4, 1), r"model output must be \(batch, 2\) for 2 classes. Got \(2, 1\)"),
    (nn.Linear(3, 2), r"input shape \(2, 4\): mat1 .*Make your module take examples of shape \(4,\)"),
])
def test_shape_mismatch_is_caught_before_the_first_step(model, match, opts):
    x, y = _xy()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match=match) as info:
        tl.fit(model, (x, y), **opts)
    assert "\n" not in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


class RaisesInForward(nn.Module):
    def __init__(self, exc):
        super().__init__()
        self.lin, self.exc = nn.Linear(4, 2), exc

    def forward(self, x):
        raise self.exc


class NoParameters(nn.Module):
    def forward(self, x):
        return x[:, :2]


def _frozen() -> nn.Module:
    net = Net()
    net.requires_grad_(False)
    return net


def _label_5():
    x, y = _xy()
    y = y.clone()
    y[7] = 5
    return x, y


@pytest.mark.parametrize("model, data, extra, error, match", [
    (Net(), (torch.empty(0, 4), torch.empty(0, dtype=torch.long)), {}, DataError,
     r"^X must be at least one example\. Got 0 rows \(shape \(0, 4\)\)\. Pass a non-empty X and y\.$"),
    (Net(), (torch.empty(10, 0), torch.zeros(10, dtype=torch.long)), {}, DataError,
     r"^X must be at least one value per example\. Got shape \(10, 0\)"),
    (RaisesInForward(TypeError("forward() got an unexpected keyword")), _xy(), {}, ConfigError,
     r"^model RaisesInForward\.forward must run on a batch of input shape \(2, 4\)\. Got TypeError: forward\(\) got "
     r"an unexpected keyword\. Fix RaisesInForward\.forward"),
    (RaisesInForward(Exception("boom")), _xy(), {}, ConfigError, r"^model RaisesInForward\.forward must run .*Got Exception: boom\."),
    ("not a model", _xy(), {}, ConfigError,
     r"^model must be a torch\.nn\.Module instance or None\. Got str 'not a model'\. Pass your nn\.Module instance"),
    (Net, _xy(), {}, ConfigError, r"^model must be a torch\.nn\.Module instance or None\. Got the class Net\. Pass an instance: Net\(\.\.\.\)\.$"),
    (_xy(), None, {}, ConfigError,  # data first, as sklearn's fit(X, y); was the tensors' values printed
     r"^model must be a torch\.nn\.Module instance or None\. Got tuple of 2 \(Tensor \(300, 4\), Tensor \(300,\)\)\. "
     r"That is data: pass it as data=\.\.\., e\.g\. tl\.fit\(data=\(X, y\)\) to train the config's model or "
     r"tl\.fit\(MyNet\(\), \(X, y\)\) to train yours\.$"),
    (_xy()[0].numpy(), None, {}, ConfigError, r"^model must be .* Got ndarray \(300, 4\)\. That is data"),
    (NoParameters(), _xy(), {}, ConfigError,
     r"^model must be a module with trainable parameters\. Got NoParameters with no parameters\. Give it a layer"),
    (_frozen(), _xy(), {}, ConfigError, r"^model must be a module with trainable parameters\. Got Net with every parameter frozen"),
    (Net(), _xy(), {"test": (torch.zeros(10, 5), torch.zeros(10, dtype=torch.long))}, DataError,
     r"^test X must be shaped \(N, 4\) like the training inputs\. Got shape \(10, 5\)\."),
    (Net(), _xy(), {"test": (torch.full((10, 4), float("nan")), torch.zeros(10, dtype=torch.long))}, DataError,
     r"^test X must be finite\. Got NaN or Inf in 10 rows"),  # was found after training, when the test set opened
    (Net(), _xy(), {"test": (torch.zeros(10, 4), torch.zeros(7, dtype=torch.long))}, DataError,
     r"^test y must be one target per row of test X\. Got 7 targets for 10 rows\."),
    (Net().double(), _xy(), {}, ConfigError,  # was the dry run's "Float and Double" with advice about shapes
     r"^model weights must be float32, as the data trainlab feeds them\. Got body\.0\.weight as float64\. Call model\.float\(\)"),
    (Net(), _xy(), {"config": [1, 2]}, ConfigError,  # was a TypeError from dict()
     r"^config must be a TrainConfig, the path of a YAML config file, or a dict of config keys\. Got list \[1, 2\]\."),
    (Net(), _xy(), {"callbacks": [print]}, ConfigError,  # was an AttributeError from inside the loop, a stub run
     r"^callbacks must be a list of trainlab\.Callback instances\. Got <built-in function print>\. Subclass"),
    (Net(), _xy(), {"callbacks": [tl.Callback]}, ConfigError,
     r"^callbacks must be a list of trainlab\.Callback instances \(the class: pass an instance\)\."),
    (Net(), _xy(), {"callbacks": 5}, ConfigError, r"^callbacks must be a list of trainlab\.Callback instances\. Got 5\."),
    (Net(), _label_5(), {}, DataError,
     r"^labels must be the 2 classes 0\.\.1 that Net outputs\. Got the labels \['0', '1', '5'\]: 5 is outside them\. "
     r"Fix or drop the rows labelled 5, or make Net's last layer output 3 values per example\.$"),
    (nn.Linear(4, 1), _xy(), {}, ConfigError,  # a Keras-style binary classifier: its one score needs a sign loss
     r"^model output must be \(batch, 2\) for 2 classes\. Got \(2, 1\)\. Make your module's last layer output 2 "
     r"value\(s\) per example, or set loss='bce' for its one score \(a logit; from_logits=False after a Sigmoid\)\.$"),
])
def test_bad_model_or_data_is_refused_before_the_run_directory_exists(model, data, extra, error, match, opts):
    with pytest.raises(error, match=match) as info:
        tl.fit(model, data, **extra, **opts)
    assert "\n" not in str(info.value)
    assert not (Path(opts["out_dir"])).exists() or not any(Path(opts["out_dir"]).iterdir())


def test_unknown_keyword_gets_did_you_mean_and_bad_value_the_config_error(opts):
    x, y = _xy()
    with pytest.raises(ConfigError, match=r"lrr is not a trainlab option. Got lrr=0.1. Did you mean 'lr'\?"):
        tl.fit(Net(), (x, y), lrr=0.1)
    with pytest.raises(ConfigError, match=r"optimizer.lr must be > 0"):
        tl.fit(Net(), (x, y), **{**opts, "lr": -1})
    run = tl.fit(Net(), (x, y), **{**opts, "optimizer__momentum": 0.5, "optimizer": "momentum"})
    assert run.config.optimizer.momentum == 0.5


def test_keras_and_lightning_names_point_to_ours_in_one_line(opts):
    x, y = _xy()
    with pytest.raises(ConfigError) as err:
        tl.fit(Net(), (x, y), validation_data=(x[:30], y[:30]))  # its repr was 30 lines of a tensor's numbers
    assert str(err.value) == ("validation_data is not a trainlab option. Got validation_data=(a tensor of shape "
                              "(30, 4), a tensor of shape (30,)). Did you mean 'val'? (Keras' validation_data: "
                              "val=(X_val, y_val))")
    for theirs, ours in (("validation_split", "val"), ("max_epochs", "epochs"), ("learning_rate", "lr"),
                         ("num_workers", "workers"), ("accumulate_grad_batches", "micro_batch"),
                         ("gradient_accumulation_steps", "micro_batch"), ("class_weight", "class_weights"),
                         ("gradient_clip_val", "grad_clip"), ("clip_grad_norm", "grad_clip"),
                         ("patience", "early_stopping")):
        with pytest.raises(ConfigError, match=rf"^{theirs} is not a trainlab option\. .* Did you mean '{ours}'\? \("):
            tl.fit(Net(), (x, y), **{theirs: 1})
    with pytest.raises(ConfigError, match=r"^metrics is not a trainlab option\. Got metrics=\['accuracy'\]\. Keras' "
                                          r"metrics: trainlab records the loss and, for classes, the accuracy"):
        tl.fit(Net(), (x, y), metrics=["accuracy"])
    from trainlab.config import resolve_config

    for lightning, here in (("bf16-mixed", "bf16"), ("16-mixed", "fp16"), ("32-true", "fp32"), (32, "fp32")):
        assert resolve_config(overrides={"speed.precision": lightning}).speed.precision == here  # Lightning's names


class Recorder(tl.Callback):
    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_train_begin(self, state):
        self.calls.append("train_begin")

    def on_epoch_begin(self, state):
        self.calls.append(f"epoch_begin {state.epoch}")

    def on_batch_begin(self, state, step):
        self.calls.append("batch_begin")

    def on_batch_end(self, state, step, loss):
        self.calls.append("batch_end")
        assert torch.isfinite(loss) and step < state.steps_per_epoch

    def on_epoch_end(self, state, metrics):
        self.calls.append(f"epoch_end {metrics['epoch']}")
        if metrics["epoch"] == self.stop_at:
            state.request_stop("recorder said so")

    def on_train_end(self, state):
        self.calls.append("train_end")


def test_callback_protocol_order_and_stop(opts):
    x, y = _xy(64)
    rec = Recorder(stop_at=2)
    run = tl.fit(Net(), (x, y), callbacks=[rec], **{**opts, "batch_size": 29, "epochs": 5})
    steps = -(-int(64 * 0.9) // 29)
    epoch = ["epoch_begin {e}"] + ["batch_begin", "batch_end"] * steps + ["epoch_end {e}"]
    expected = ["train_begin"] + [c.format(e=1) for c in epoch] + [c.format(e=2) for c in epoch] + ["train_end"]
    assert rec.calls == expected
    assert run.summary["stop_reason"] == "recorder said so"


def test_numpy_float_regression(opts):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float64)
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    run = tl.fit(nn.Linear(3, 1), (x, y), **{**opts, "epochs": 30, "lr": 0.05})
    assert run.history[-1]["val_acc"] is None and run.history[-1]["val_loss"] < 0.05
    assert run.predict(x[:4]).shape == (4,)


def test_run_export_writes_a_model_that_predicts_the_same(opts, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    x, y = _xy()
    run = tl.fit(seeded_net(), (x, y), **opts)
    path = run.export("onnx", tmp_path / "net.onnx")
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: x[:16].numpy()})[0]
    best = tl.load(run.run_dir, model=Net())
    assert np.abs(got - best(x[:16]).detach().numpy()).max() < 1e-5


class CountingPairs(Pairs):
    """A map-style dataset that records how often each example is read."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)


def test_a_dataset_too_large_for_memory_streams_through_a_dataloader(opts, monkeypatch):
    import trainlab.data.memory as memory

    x, y = _xy(256)
    xv, yv = _xy(64, seed=1)
    held = tl.fit(seeded_net(), (x, y), val=(xv, yv), **opts)
    big = CountingPairs(x, y)
    real_fits = memory._fits
    monkeypatch.setattr(memory, "_fits", lambda ds, max_bytes: real_fits(ds, 1024))  # "too large": 1 KiB budget
    streamed = tl.fit(seeded_net(), big, val=(xv, yv), **opts)
    assert streamed._bundle.meta["kind"] == "stream"
    # the same batches in the same order: the streamed run is the in-memory run
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    flat = lambda run: [h[k] for h in run.history for k in keys]  # noqa: E731
    assert flat(streamed) == pytest.approx(flat(held), rel=1e-6)
    assert big.reads >= opts["epochs"] * len(x)  # read batch by batch every epoch, not once into memory


class PidPairs(Pairs):
    """Leaves a file named after each process that reads it (DataLoader workers count in their own memory)."""

    def __init__(self, x, y, folder):
        super().__init__(x, y)
        self.folder = folder

    def __getitem__(self, i):
        (self.folder / str(os.getpid())).touch()
        return super().__getitem__(i)


def test_workers_read_a_streamed_dataset_in_other_processes_and_train_the_same(opts, monkeypatch, tmp_path):
    import trainlab.data.memory as memory

    x, y = _xy(256)
    real_fits = memory._fits
    monkeypatch.setattr(memory, "_fits", lambda ds, max_bytes: real_fits(ds, 1024))  # streamed
    runs = {}
    for workers in (0, 2):
        folder = tmp_path / f"pids-{workers}"
        folder.mkdir()
        (folder / "test").mkdir()
        runs[workers] = tl.fit(seeded_net(), PidPairs(x, y, folder), val=0.25, test=PidPairs(x, y, folder / "test"),
                               workers=workers, **opts)
        testers = {int(p.name) for p in (folder / "test").iterdir()} - {os.getpid()}
        assert len(testers) == (0 if workers == 0 else 1), testers  # the test set's one batch read by a worker
        readers = {int(p.name) for p in folder.iterdir() if p.name != "test"} - {os.getpid()}
        # at most 2 for the training split and 2 for the validation split (whose one batch a pass is read by one of
        # them), kept up for all 4 epochs' passes (started again for each pass, they were 12), stopped at the end
        assert len(readers) == 0 if workers == 0 else 2 <= len(readers) <= 4, readers
        assert not [pid for pid in readers if alive(pid)], "a DataLoader worker outlived its run"
        assert runs[workers].summary["streamed"] == {"because": memory.STREAMED_TOO_BIG, "workers": workers}
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    flat = lambda run: [h[k] for h in run.history for k in keys]  # noqa: E731
    assert flat(runs[2]) == pytest.approx(flat(runs[0]), rel=1e-6)  # the same batches, in the same order


class NoisyPairs(CountingPairs):
    """A random transform in __getitem__ (as torchvision's RandomCrop): a new draw on every read."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + 0.05 * torch.randn(x.shape), y


def test_a_random_transform_in_a_dataset_draws_anew_every_epoch(opts):
    x, y = _xy(256)
    noisy = NoisyPairs(x, y)
    run = tl.fit(seeded_net(), noisy, val=0.25, **opts)
    assert noisy.reads >= opts["epochs"] * 192  # each epoch reads its training examples (the augmented draws)
    assert run.summary["streamed"]["because"].startswith("its examples change between reads")
    assert run.summary["data"]["val"] == 64 and run.history[-1]["val_acc"] > 0.8  # one fixed val set, learned
    held = tl.fit(seeded_net(), Pairs(x, y), val=0.25, **opts)  # the same examples every read: tensors, as before
    assert held.summary["streamed"] is None


class NoisyStream(IterableDataset):
    """An IterableDataset with a random transform (a generator over files with augmentation): counts its passes."""

    def __init__(self, x, y):
        self.x, self.y, self.passes = x, y, 0

    def __iter__(self):
        self.passes += 1
        return ((x + 0.05 * torch.randn(x.shape), y) for x, y in zip(self.x, self.y))


def test_an_iterable_dataset_with_a_random_transform_draws_anew_every_epoch(opts, capsys):
    x, y = _xy(256)
    by_class = y.argsort(stable=True)  # sorted by class, as a loop over one folder per class hands them out
    stream = NoisyStream(x[by_class], y[by_class])
    run = tl.fit(seeded_net(), stream, val=0.25, **opts)
    assert run.summary["streamed"]["because"].startswith("its examples change between reads")
    assert stream.passes >= 1 + opts["epochs"]  # its first pass, then one a training epoch
    assert run.summary["data"]["val"] == 64 and run.history[-1]["val_acc"] > 0.8  # one fixed val set, learned
    with pytest.raises(ConfigError, match=r"^speed.workers must be 0 for an IterableDataset whose examples "
                                          r"change between passes .*Got 2\. Set workers=0") as err:
        tl.fit(seeded_net(), NoisyStream(x, y), val=0.25, workers=2, **opts)
    assert "\n" not in str(err.value)


def test_streamed_data_with_a_val_fraction_a_streamed_test_set_and_a_report(opts, monkeypatch):
    import trainlab.data.memory as memory

    x, y = _xy(300)
    xt, yt = _xy(80, seed=2)
    real_fits = memory._fits
    monkeypatch.setattr(memory, "_fits", lambda ds, max_bytes: real_fits(ds, 1024))
    run = tl.fit(seeded_net(), Pairs(x, y), val=0.2, test=Pairs(xt, yt), **{**opts, "report": True, "epochs": 6})
    assert (len(run._bundle.train), len(run._bundle.val)) == (240, 60)
    ev = run.evaluate()
    best = tl.load(run.run_dir, model=Net())
    assert ev["n"] == 80 and ev["test_acc"] == pytest.approx(float((best(xt).argmax(1) == yt).float().mean()))
    # examples passed later, read as the test set: a big Dataset streamed, its DataLoader, tensors (was one line
    # asking for (X, y) tensors: no reader was kept for a streamed run)
    later = Pairs(xt, yt)
    assert run.evaluate(later)["acc"] == pytest.approx(ev["test_acc"])
    assert run.evaluate(torch.utils.data.DataLoader(later, batch_size=16))["acc"] == pytest.approx(ev["test_acc"])
    assert run.evaluate(xt, yt)["loss"] == pytest.approx(ev["test_loss"], rel=1e-5)
    with pytest.raises(DataError, match=r"^y must be "):
        run.evaluate(xt, yt + 7)
    page = run.report_path.read_text()
    assert "read batch by batch" in page  # validation pictures need in-memory data: the report says so


def test_predict_of_a_run_on_input_features_takes_raw_points(tmp_path):
    run = tl.fit(data="circle", out_dir=str(tmp_path), tensorboard=False, epochs=30, batch_size=16, threads=1,
                 data__features=["x1", "x2", "x1_sq", "x2_sq"], model__hidden=[4], model__activation="tanh",
                 model__init="xavier", report=False)
    pred = run.predict(torch.tensor([[0.0, 0.0], [0.5, -0.5], [4.5, 0.0], [0.0, -4.6]])).tolist()
    assert pred[0] == pred[1] and pred[2] == pred[3] and pred[0] != pred[2]  # the disc vs the ring around it
    with pytest.raises(DataError, match=r"X must hold the raw columns \['x1', 'x2'\] .* Got shape \(4, 4\)"):
        run.predict(torch.zeros(4, 4))


def test_a_remedys_sets_read_as_fit_keywords_that_fit_accepts():
    from trainlab.api import fit_keywords, options_to_overrides

    sets = {"optimizer.lr": 3 / 10, "model.hidden": [64], "loss.class_weights": "balanced",
            "stop.early_stopping.patience": 6}
    text = fit_keywords(sets)
    assert text == "lr=0.3, hidden=[64], class_weights='balanced', stop__early_stopping__patience=6"
    keywords = eval(f"dict({text})")  # the text is valid Python keywords ...
    assert options_to_overrides(keywords) == {**sets, "optimizer.lr": 0.3}  # ... that fit maps back to the keys
    assert fit_keywords({"data.task": "classification"}) == "task='classification'"  # fit's own parameter


def test_a_dataloader_stands_for_its_dataset_with_its_batch_size_workers_and_shuffling(opts):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _xy(300)
    options = {k: v for k, v in opts.items() if k != "batch_size"}
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True)
    val = DataLoader(TensorDataset(*_xy(60, seed=1)), batch_size=7)
    run = tl.fit(seeded_net(), loader, val=val, **options)
    assert (run.config.batch_size, run.config.shuffle, run.config.speed.workers) == (50, True, 0)
    same = tl.fit(seeded_net(), TensorDataset(x, y), val=TensorDataset(*_xy(60, seed=1)), batch_size=50, **options)
    assert [h["train_loss"] for h in run.history] == [h["train_loss"] for h in same.history]
    assert run.summary["data"]["val"] == 60

    ordered = tl.fit(seeded_net(), DataLoader(TensorDataset(x, y), batch_size=30, num_workers=2), batch_size=20,
                     **options)  # a keyword wins over the loader
    assert (ordered.config.batch_size, ordered.config.shuffle, ordered.config.speed.workers) == (20, False, 2)
    assert run.config.drop_last is False and ordered.config.drop_last is False
    dropping = tl.fit(seeded_net(), DataLoader(TensorDataset(x, y), batch_size=64, drop_last=True), **options)
    assert dropping.config.drop_last is True and dropping.summary["first_epoch"]["steps"] == 4  # 300 = 4 x 64 + 44


class PidTraced(Dataset):
    """(x, y) pairs whose reads each leave the reading process's id in ``folder``."""

    def __init__(self, x, y, folder):
        self.x, self.y, self.folder = x, y, folder

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        (self.folder / str(os.getpid())).touch()
        return self.x[i], self.y[i]


def test_fit_s_workers_read_a_slow_dataset_into_memory(opts, tmp_path, monkeypatch):
    from trainlab.data import streaming

    monkeypatch.setattr(streaming, "SOLO_SECONDS", 0.0)  # as if each example took long to read
    monkeypatch.setattr(streaming, "WORKERS_PAY_AFTER", {})
    monkeypatch.setattr(streaming, "WORKERS_PAY_AFTER_DEFAULT", 0.0)
    (tmp_path / "reads").mkdir()
    x, y = _xy(300)
    run = tl.fit(seeded_net(), PidTraced(x, y, tmp_path / "reads"), workers=2, **opts)
    assert {int(p.name) for p in (tmp_path / "reads").iterdir()} - {os.getpid()}, "the workers read nothing"
    same = tl.fit(seeded_net(), (x, y), **opts)  # the examples as tensors: the same run
    assert [h["train_loss"] for h in run.history] == [h["train_loss"] for h in same.history]


def test_a_dataloader_trainlab_cannot_honour_is_one_line(opts, tmp_path):
    from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    ds = TensorDataset(*_xy(64))
    for loader, said in ((DataLoader(ds, sampler=WeightedRandomSampler(torch.ones(64), 64)),
                          r"Got 'WeightedRandomSampler'.*class_weights='balanced'"),
                         (DataLoader(ds, collate_fn=lambda batch: batch), r"Got 'collate_fn=<lambda>'")):
        with pytest.raises(DataError, match=r"^data must be a DataLoader with .*" + said) as err:
            tl.fit(seeded_net(), loader, **opts)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()  # refused before any run directory


def test_a_torch_compiled_module_trains_through_its_compiled_code_and_keeps_the_module_s_own_weights(opts, tmp_path,
                                                                                                      monkeypatch):
    compiled_graphs = []

    def backend(gm, example_inputs):  # a torch.compile backend that runs the traced graph as it is, and counts it
        compiled_graphs.append(gm)
        return gm.forward

    x, y = _xy(300)
    net = seeded_net()
    compiled = torch.compile(net, backend=backend)
    run = tl.fit(compiled, (x, y), test=_xy(60, seed=1), **{**opts, "report": True})
    assert compiled_graphs, "the training steps never went through the compiled module"
    plain = tl.fit(seeded_net(), (x, y), test=_xy(60, seed=1), **opts)
    assert [h["train_loss"] for h in run.history] == pytest.approx([h["train_loss"] for h in plain.history], rel=1e-6)
    assert run.summary["custom_model"] == "Net" and run.run_dir.name.startswith("memory-Net")
    keys = set(torch.load(run.run_dir / "checkpoints" / "best.pt", weights_only=True)["model"])
    assert keys == set(net.state_dict()) and not any("_orig_mod" in k for k in keys)  # loads into Net itself
    assert (run.run_dir / "report.html").exists() and (run.run_dir / "activations.png").exists()
    loaded = tl.load(run.run_dir, model=compiled)  # the compiled wrapper stands for its module here too
    assert type(loaded) is Net and torch.equal(loaded(x[:5]).argmax(1), run.predict(x[:5]))

    from trainlab.train import distributed
    from trainlab.train.distributed import Ranks

    monkeypatch.setattr(distributed, "current", lambda: Ranks(0, 2))  # as under torchrun: DDP would be stepped around
    with pytest.raises(ConfigError, match=r"^model must be a module that is not torch.compile'd in a distributed run"
                                          r".*Got 'torch.compile\(Net\)'\. Pass the module itself"):
        tl.fit(compiled, (x, y), **opts)


def _lazy_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))  # as d2l builds its networks


def test_a_lazy_module_gets_its_weights_from_the_data_and_loads_back(opts):
    x, y = _xy(300)
    run = tl.fit(_lazy_net(), (x, y), **opts)  # was torch's "Attempted to use an uninitialized parameter"
    by_hand = _lazy_net()
    by_hand(torch.zeros(2, 4))  # d2l's way: one forward pass on a batch of the data's shape
    start = {k: v.clone() for k, v in by_hand.state_dict().items()}
    same = tl.fit(by_hand, (x, y), **opts)
    assert [h["train_loss"] for h in run.history] == [h["train_loss"] for h in same.history]
    assert run.model[0].weight.shape == (8, 4)
    assert all(torch.equal(run._init_state[k], v) for k, v in start.items())  # Run.fix starts from these weights
    loaded = tl.load(run.run_dir, model=nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2)))
    assert torch.equal(loaded(x[:20]).argmax(1), run.predict(x[:20]))


def test_one_hot_labels_train_as_their_class_ids(opts):
    x, y = _xy(300)
    run = tl.fit(seeded_net(), (x, nn.functional.one_hot(y).float()), **opts)  # was a silent 2-target regression
    same = tl.fit(seeded_net(), (x, y), **opts)
    assert [h["val_acc"] for h in run.history] == [h["val_acc"] for h in same.history]
    assert run.summary["labels"].startswith("one-hot rows") and same.summary["labels"] is None
    assert torch.equal(run.predict(x[:20]), same.predict(x[:20]))


def test_torch_optimizer_and_loss_objects_train_as_their_trainlab_equivalents(tmp_path):
    """optimizer=torch.optim.Adam(net.parameters(), lr=...) and loss=nn.CrossEntropyLoss(...), as a Lightning or
    skorch user writes them: the run trains with trainlab's own optimizer and loss set from them, and says so in
    its config; a keyword that contradicts them is one line."""
    x, y = _xy()
    net, twin = Net(), Net()
    twin.load_state_dict(net.state_dict())
    kw = dict(epochs=2, batch_size=32, out_dir=str(tmp_path), verbose=False, report=False)
    run = tl.fit(net, (x, y), optimizer=torch.optim.Adam(net.parameters(), lr=5e-3, weight_decay=1e-4),
                 loss=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])), **kw)
    from trainlab.api import config_of

    cfg = config_of(run.run_dir)
    assert cfg["optimizer"]["name"] == "adam" and cfg["optimizer"]["lr"] == 5e-3
    assert cfg["optimizer"]["weight_decay"] == 1e-4 and cfg["loss"]["class_weights"] == [1.0, 2.0]
    same = tl.fit(twin, (x, y), optimizer="adam", lr=5e-3, weight_decay=1e-4, class_weights=[1.0, 2.0],
                  loss="cross_entropy", **kw)
    assert [h["train_loss"] for h in run.history] == pytest.approx([h["train_loss"] for h in same.history])
    with pytest.raises(ConfigError, match=r"^optimizer\.lr must be given once\. Got 0\.01 as a keyword and 0\.005 in "
                                          r"optimizer=a torch\.optim\.Adam\. Drop one of them\.$"):
        tl.fit(Net(), (x, y), optimizer=torch.optim.Adam(net.parameters(), lr=5e-3), lr=0.01, **kw)
    with pytest.raises(ConfigError, match=r"^criterion is not a trainlab option\. .* Did you mean 'loss'\? \(skorch"):
        tl.fit(Net(), (x, y), criterion=nn.CrossEntropyLoss, **kw)


def test_class_weights_as_a_keras_dict_train_as_the_list_and_the_run_keeps_the_list(tmp_path):
    x, y = _xy()
    kw = dict(epochs=2, batch_size=32, seed=1, out_dir=str(tmp_path), verbose=False, report=False)
    by_dict = tl.fit(None, (x, y), class_weights={1: 4.0}, **kw)
    by_list = tl.fit(None, (x, y), class_weights=[1.0, 4.0], **kw)
    assert by_dict.config.loss.class_weights == [1.0, 4.0]
    assert "class_weights:\n  - 1.0\n  - 4.0" in (by_dict.run_dir / "config.yaml").read_text()
    assert [h["train_loss"] for h in by_dict.history] == [h["train_loss"] for h in by_list.history]
