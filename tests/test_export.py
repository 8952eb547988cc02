"""Export: ONNX (onnxruntime), TorchScript (a fresh process with torch only) and safetensors give trainlab's
outputs on the run's own test split; the sidecar says what to feed; unexportable models fail in one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import trainlab.api as tl
from trainlab.config import config_to_dict, replace, resolve_config, validate_config
from trainlab.data import Standardizer, load_data
from trainlab.errors import CheckpointError, ConfigError
from trainlab.export import FORMATS, TRACE_BATCH, export_model, export_run, sidecar_path
from trainlab.models import build_model
from trainlab.train.inference import load_run
from trainlab.train.run import train
from tests.conftest import write_fake_mnist

TOL = 1e-5  # the bound on the max abs difference between an exported file and trainlab


class Net(nn.Module):
    """A user's own module, trained through trainlab.api.fit."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh())
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.body(x))


def _user_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g) * torch.tensor([1.0, 5.0, 0.1, 20.0]) + 3  # mixed scales: normalise
    return x, (x[:, 0] - 3 + (x[:, 1] - 3) / 5 > 0).long() + (x[:, 2] > 3).long()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Three small real runs: an MLP on a toy set, a CNN on fake MNIST (normalised), a user module via fit.

    Each entry: run_dir, the inputs trainlab evaluates (normalised test split), trainlab's outputs on them,
    and a fresh instance for user modules."""
    root = tmp_path_factory.mktemp("export")
    base = {"out_dir": str(root / "runs"), "tensorboard": False, "optimizer.lr": 0.1, "batch_size": 16, "epochs": 2}
    mlp_cfg = resolve_config(overrides={**base, "name": "mlp", "data.name": "circle", "data.n_points": 300,
                                        "model.hidden": [8], "model.activation": "tanh", "model.init": "xavier"})
    mnist = write_fake_mnist(root / "data" / "fashion-mnist", n_train=300, n_test=70)
    cnn_cfg = resolve_config(overrides={**base, "name": "cnn", "data.name": "fashion-mnist",
                                        "data.dir": str(mnist.parent), "data.download": False,
                                        "data.normalize": True, "model.name": "cnn", "model.channels": [4],
                                        "model.hidden": [16], "model.batchnorm": True, "epochs": 1})
    out = {}
    for cfg in (mlp_cfg, cnn_cfg):
        run_dir = train(cfg, verbose=False).run_dir
        x = load_data(cfg.data, cfg.seed).test.open().x  # what trainlab's evaluation feeds the model
        with torch.no_grad():
            want = load_run(run_dir).model(x)
        out[cfg.name] = {"run_dir": run_dir, "x": x, "want": want, "model": None}

    x, y = _user_data(240, 0)
    xt, _ = _user_data(50, 1)
    torch.manual_seed(0)
    fitted = tl.fit(Net(), (x, y), test=(xt, _user_data(50, 1)[1]), out_dir=str(root / "runs"), epochs=3,
                    batch_size=32, optimizer="adam", lr=0.02, normalize=True, verbose=False, report=False,
                    tensorboard=False)
    info = load_run(fitted.run_dir, model=Net()).info
    x_user = Standardizer.from_state(info["stats"]["normalize"])(xt)  # as Run.predict feeds the model
    with torch.no_grad():
        want = tl.load(fitted.run_dir, model=Net())(x_user)
    out["user"] = {"run_dir": fitted.run_dir, "x": x_user, "want": want, "model": Net()}
    for r in out.values():
        assert len(r["x"]) not in (0, TRACE_BATCH)  # the checks below run a batch size the trace never saw
    return out


def _export(run: dict, fmt: str) -> Path:
    return export_run(run["run_dir"], fmt, model=run["model"])


@pytest.mark.parametrize("name", ["mlp", "cnn", "user"])
def test_onnx_in_onnxruntime_gives_trainlabs_outputs_on_the_test_split(runs, name):
    run = runs[name]
    path = _export(run, "onnx")
    assert path == run["run_dir"] / "export" / "model.onnx"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.onnx"]  # no .data, no temp
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, outp.name) == ("input", "output")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == list(run["x"].shape[1:])  # dynamic batch
    x, want = run["x"].numpy(), run["want"].numpy()
    got = session.run(None, {"input": x})[0]  # the whole test split: another batch size than the trace
    assert got.shape == want.shape
    assert np.abs(got - want).max() < TOL
    one = session.run(None, {"input": x[:1]})[0]
    assert np.abs(one - want[:1]).max() < TOL


def test_onnx_with_the_sidecar_recipe_predicts_like_trainlab_from_raw_pixels(runs):
    """A user with only model.onnx + model.json: normalise raw inputs as the sidecar says, take argmax."""
    run = runs["cnn"]
    path = _export(run, "onnx")
    side = json.loads(sidecar_path(path).read_text())
    cfg = load_run(run["run_dir"]).cfg
    raw_cfg = replace(cfg, **{"data.normalize": False})
    raw = load_data(raw_cfg.data, raw_cfg.seed).test.open().x.numpy()  # pixels in [0, 1]
    norm = side["normalize"]
    shape = (1, -1) + (1,) * (raw.ndim - 2)  # per channel, axis 1
    x = (raw - np.array(norm["mean"]).reshape(shape)) / np.array(norm["std"]).reshape(shape)
    logits = onnxruntime.InferenceSession(str(path)).run(None, {side["input"]["name"]: x.astype(np.float32)})[0]
    assert np.abs(logits - run["want"].numpy()).max() < 1e-4  # float64 vs float32 normalisation
    classes = [side["class_names"][k] for k in logits.argmax(1)]
    assert classes == [side["class_names"][k] for k in run["want"].argmax(1).tolist()]
    assert abs(float(np.mean(raw)) - float(np.mean(x))) > 0.1  # the normalisation is not a no-op here


def _apply_steps(steps: list[dict], raw: np.ndarray) -> np.ndarray:
    """model.json's input.transform steps, as a user without trainlab applies them (NumPy only)."""
    x = raw.astype(np.float64)
    for step in steps:
        if step["op"] == "divide":
            x = x / step["by"]
        elif step["op"] == "standardize":
            shape = (1, -1) + (1,) * (x.ndim - 2)  # per channel / feature, axis 1
            x = (x - np.array(step["mean"]).reshape(shape)) / np.array(step["std"]).reshape(shape)
        else:
            raise AssertionError(f"unexpected step {step}")
    return x.astype(np.float32)


@pytest.mark.parametrize("normalize", [False, True])
def test_sidecar_input_transform_turns_raw_uint8_pixels_into_what_the_model_was_fed(runs, tmp_path, normalize):
    """pixels / 255 when data.normalize is off, then (- mean) / std when on: from the idx file's bytes to the
    exact tensor trainlab evaluates, with nothing guessed."""
    from trainlab.data.idx import read_idx

    cfg = load_run(runs["cnn"]["run_dir"]).cfg
    cfg = replace(cfg, **{"data.normalize": normalize, "out_dir": str(tmp_path / "runs"), "name": "px",
                          "model.name": "mlp", "model.hidden": [8]})
    run_dir = train(cfg, verbose=False).run_dir
    side = json.loads(sidecar_path(export_run(run_dir, "onnx")).read_text())
    transform = side["input"]["transform"]
    assert transform["formula"] == ("input = (pixels / 255 - mean) / std, per channel or feature (axis 1)" if normalize
                                    else "input = pixels / 255")
    assert transform["steps"][0] == {"op": "divide", "by": 255} and len(transform["steps"]) == 1 + normalize
    pixels = read_idx(Path(cfg.data.dir) / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").numpy()  # (N, 28, 28) uint8
    x = _apply_steps(transform["steps"], pixels[:, None])
    want = load_data(cfg.data, cfg.seed).test.open().x.numpy()  # what trainlab's own evaluation feeds the model
    assert x.shape == want.shape and np.abs(x - want).max() < 1e-6


def test_sidecar_input_transform_of_toy_and_in_memory_data_says_no_scaling(runs):
    toy = json.loads(sidecar_path(_export(runs["mlp"], "onnx")).read_text())["input"]["transform"]
    assert toy == {"from": "the points' coordinates as generated (no scaling)", "steps": [], "formula": "input = x"}
    user = json.loads(sidecar_path(_export(runs["user"], "onnx")).read_text())["input"]["transform"]
    assert user["formula"] == "input = (x - mean) / std, per channel or feature (axis 1)"
    assert [s["op"] for s in user["steps"]] == ["standardize"]


# The fresh process imports torch only; a finder that refuses trainlab proves nothing even tries to import it.
FRESH = r"""
import json, sys
class NoTrainlab:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "trainlab":
            raise ImportError("trainlab must not be imported here")
sys.meta_path.insert(0, NoTrainlab())
import torch
for job in json.loads(sys.argv[1]):
    extra = {"trainlab.json": ""}
    model = torch.jit.load(job["model"], _extra_files=extra)
    x = torch.load(job["x"])
    with torch.no_grad():
        torch.save(model(x), job["out"])
    json.loads(extra["trainlab.json"])
assert "trainlab" not in sys.modules, sorted(m for m in sys.modules if "trainlab" in m)
print("ok", len(sys.modules))
"""


def test_torchscript_in_a_fresh_process_without_trainlab_gives_trainlabs_outputs(runs, tmp_path):
    jobs = []
    for name, run in runs.items():
        path = _export(run, "torchscript")
        assert path == run["run_dir"] / "export" / "model.pt"
        torch.save(run["x"], tmp_path / f"{name}-x.pt")
        jobs.append({"model": str(path), "x": str(tmp_path / f"{name}-x.pt"), "out": str(tmp_path / f"{name}-y.pt")})
    proc = subprocess.run([sys.executable, "-c", FRESH, json.dumps(jobs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
    for name, run in runs.items():
        got = torch.load(tmp_path / f"{name}-y.pt")
        assert got.shape == run["want"].shape
        assert (got - run["want"]).abs().max() < TOL, name


@pytest.mark.parametrize("name", ["mlp", "cnn", "user"])
def test_safetensors_reload_into_a_freshly_built_model_gives_identical_outputs(runs, name):
    run = runs[name]
    path = _export(run, "safetensors")
    assert path == run["run_dir"] / "export" / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    cfg = validate_config(json.loads(meta["config"]))  # the run's resolved config, valid as it is
    assert config_to_dict(cfg) == config_to_dict(load_run(run["run_dir"], model=run["model"]).cfg)
    shape = json.loads(meta["input"])["shape"]
    assert shape == ["batch", *run["x"].shape[1:]]
    n_out = json.loads(meta["output"])["shape"][1]
    fresh = Net() if name == "user" else build_model(cfg.model, tuple(shape[1:]), n_out, seed=cfg.seed + 1)
    before = fresh(run["x"])
    fresh.load_state_dict(load_file(str(path)), strict=True)
    with torch.no_grad():
        got = fresh.eval()(run["x"])
    assert not torch.equal(before, got)  # the file carried the weights: the fresh init gave other outputs
    assert torch.equal(got, run["want"])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_sidecar_and_embedded_metadata_say_what_to_feed_and_what_comes_out(runs):
    run = runs["cnn"]
    loaded = load_run(run["run_dir"])
    paths = {fmt: _export(run, fmt) for fmt in FORMATS}
    side = json.loads((run["run_dir"] / "export" / "model.json").read_text())
    assert {k: v for k, v in side["input"].items() if k != "transform"} == {
        "name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32"}
    assert side["input"]["transform"]["formula"] == "input = (pixels / 255 - mean) / std, per channel or feature (axis 1)"
    assert side["output"]["name"] == "output" and side["output"]["shape"] == ["batch", 10]
    assert "softmax" in side["output"]["meaning"] and "class_names" in side["output"]["meaning"]
    assert side["task"] == "classification" and side["loss"] == "cross_entropy"
    assert side["class_names"] == loaded.info["class_names"] and len(side["class_names"]) == 10
    stats = loaded.info["stats"]["normalize"]
    assert side["normalize"]["mean"] == stats["mean"] and side["normalize"]["std"] == stats["std"]
    assert side["normalize"]["axis"] == 1 and "(x - mean) / std" in side["normalize"]["apply"]
    assert side["run"] == run["run_dir"].name and side["model"] == "cnn" and side["epoch"] == loaded.epoch
    assert side["config"]["data"]["normalize"] is True

    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in side.items()}
    props = {p.key: p.value for p in onnx.load(str(paths["onnx"])).metadata_props}
    assert props == strings
    extra = {"trainlab.json": ""}
    torch.jit.load(str(paths["torchscript"]), _extra_files=extra)
    assert json.loads(extra["trainlab.json"]) == side
    with safe_open(str(paths["safetensors"]), "pt") as f:
        assert f.metadata() == strings
    # The toy MLP was not normalised: the sidecar says so rather than leaving the key out.
    toy = json.loads(sidecar_path(_export(runs["mlp"], "onnx")).read_text())
    assert toy["normalize"] is None and toy["input"]["shape"] == ["batch", 2]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_a_model_in_training_mode_exports_as_it_predicts_and_stays_in_training_mode(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    model(torch.randn(64, 4) * 3 + 1)  # BatchNorm's running statistics move away from (0, 1)
    path = export_model(model, (4,), tmp_path / "net.pt", "torchscript")
    assert model.training and all(m.training for m in model.modules())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.pt"]
    x = torch.randn(5, 4)
    with torch.no_grad():
        want = model.eval()(x)  # eval: Dropout off, BatchNorm on its running statistics
    assert (torch.jit.load(str(path))(x) - want).abs().max() < TOL


def test_a_write_that_fails_leaves_no_file_and_no_temp(tmp_path, monkeypatch):
    import trainlab.export as export

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "fsync", fail)
    from trainlab.files import StorageError

    with pytest.raises(StorageError, match=r"must be on a disk with free space\. Got no space left on the device"):
        export_model(Net(), (4,), tmp_path / "export" / "model.safetensors", "safetensors")
    assert not list(tmp_path.iterdir())  # neither the file, nor its temp, nor the folder made for it


class DictOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return {"logits": self.lin(x)}


class Branchy(Net):
    def forward(self, x):
        y = super().forward(x)
        return y if y.sum() > 0 else -y  # data-dependent Python control flow


class BatchDependent(Net):
    def forward(self, x):
        y = super().forward(x)
        return y if x.shape[0] > 3 else 2 * y


class Bessel(Net):
    def forward(self, x):
        return torch.special.bessel_j0(super().forward(x))  # no ONNX translation


class Counting(Net):
    """Forward depends on Python state: both exporters capture a constant, only the comparison notices."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x) * self.calls


@pytest.mark.parametrize("module, fmt, match", [
    (DictOut, "onnx", r"^model must return one tensor \(batch, outputs\) to export to onnx\. Got dict\. "
                      r".*format safetensors"),
    (DictOut, "torchscript", r"Got dict\. Return a tensor from forward"),
    (Branchy, "onnx", r"^model must be exportable to ONNX\. Got Branchy: its forward uses tensor values in Python "
                      r".*\(Could not guard on data-dependent expression"),
    (Branchy, "torchscript", r"^model must be exportable to TorchScript\. Got Branchy: tracing would freeze .*"
                             r"\(Converting a tensor to a Python boolean"),
    (BatchDependent, "onnx", r"Got BatchDependent: its forward depends on the batch size"),
    (Bessel, "onnx", r"Got Bessel: an operator has no ONNX translation \(No ONNX function found for "
                     r"prims\.bessel_j0\)\. Change forward, or export with format safetensors"),
    (Counting, "onnx", r"^model must give the same outputs after export to ONNX\. Got a max abs difference"),
    (Counting, "torchscript", r"^model must give the same outputs after export to TorchScript\. Got a max abs"),
])
def test_an_unexportable_model_fails_in_one_line_and_writes_nothing(tmp_path, module, fmt, match):
    with pytest.raises(ConfigError, match=match) as info:
        export_model(module(), (4,), tmp_path / "export" / "model.bin", fmt)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message and len(message) < 400
    assert not (tmp_path / "export").exists()


def test_a_failed_export_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    good = export_model(Net(), (4,), tmp_path / "model.pt", "torchscript")
    before = good.read_bytes(), sidecar_path(good).read_text()
    with pytest.raises(ConfigError, match="exportable to TorchScript"):
        export_model(Branchy(), (4,), good, "torchscript")
    assert (good.read_bytes(), sidecar_path(good).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.pt"]
    # safetensors saves weights only, so the same module exports there, as the error message suggests
    assert export_model(Branchy(), (4,), tmp_path / "w.safetensors", "safetensors").is_file()


def test_unknown_format_names_the_choices_and_suggests_the_closest(runs):
    run_dir = runs["mlp"]["run_dir"]
    with pytest.raises(ConfigError, match=r"^format must be one of onnx, torchscript, safetensors\. Got 'onx'\. "
                                          r"Did you mean 'onnx'\?$"):
        export_run(run_dir, "onx")
    with pytest.raises(ConfigError, match=r"Got 'torchscipt'\. Did you mean 'torchscript'\?"):
        export_model(Net(), (4,), run_dir / "x.pt", "torchscipt")
    assert not (run_dir / "x.pt").exists()


def test_bad_arguments_are_one_line_errors(runs, tmp_path):
    with pytest.raises(ConfigError, match=r"^input_shape must be what the model takes\. Got \(5,\)"):
        export_model(Net(), (5,), tmp_path / "m.onnx", "onnx")
    with pytest.raises(ConfigError, match=r"^input_shape must be a non-empty tuple"):
        export_model(Net(), (0,), tmp_path / "m.onnx", "onnx")
    with pytest.raises(ConfigError, match=r"^out must be the model file's path, not its \.json sidecar"):
        export_model(Net(), (4,), tmp_path / "m.json", "onnx")
    with pytest.raises(CheckpointError, match=r"^model must be given"):  # a user-module run needs its class
        export_run(runs["user"]["run_dir"], "onnx")
    assert not list(tmp_path.iterdir())


def test_out_may_be_a_directory_or_a_path(runs, tmp_path):
    assert export_run(runs["mlp"]["run_dir"], "safetensors", tmp_path) == tmp_path / "model.safetensors"
    custom = export_run(runs["mlp"]["run_dir"], "safetensors", tmp_path / "deploy" / "circle.safetensors")
    assert custom.is_file() and (tmp_path / "deploy" / "circle.json").is_file()


def test_a_model_that_ends_in_a_softmax_is_exported_as_giving_probabilities(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    x, y = _user_data(120, 0)
    fitted = tl.fit(net, (x, y), out_dir=str(tmp_path), epochs=2, batch_size=32, from_logits=False,
                    verbose=False, report=False, tensorboard=False)
    export_run(fitted.run_dir, "torchscript", model=net)
    meaning = json.loads((fitted.run_dir / "export" / "model.json").read_text())["output"]["meaning"]
    assert meaning.startswith("class probabilities (batch, classes)") and "ends in a softmax" in meaning
