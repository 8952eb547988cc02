"""A run trained on a CUDA GPU is usable on every path: report, verdict, predict, evaluate, export, load, the
scikit-learn estimators, resume on the CPU. All marked ``gpu``: the ``device`` fixture skips them without one."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import trainlab as tl
from trainlab.config import resolve_config
from trainlab.export import export_run
from trainlab.train.inference import evaluate_run, load_run, predict_run
from trainlab.workflow import run as workflow_run

pytestmark = pytest.mark.gpu


class MyNN(nn.Module):
    """The CIFAR-10 tutorial's CNN (the course's seed 001 class): the model whose report crashed on cuda."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _cifar_like(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.rand(n, 3, 32, 32, generator=g) * 0.3
    for k in range(10):  # class k: a bright patch at a class-specific place
        r, c = 2 + 7 * (k // 4), 2 + 7 * (k % 4)
        x[y == k, k % 3, r:r + 6, c:c + 6] += 0.7
    return x, y


def test_user_cnn_on_cuda_writes_its_report_and_predicts(tmp_path, device):
    x, y = _cifar_like(640, 0)
    xv, yv = _cifar_like(160, 1)
    xt, yt = _cifar_like(160, 2)
    torch.manual_seed(0)
    run = tl.fit(MyNN(), (x, y), val=(xv, yv), test=(xt, yt), epochs=3, batch_size=64, optimizer="momentum",
                 lr=0.05, device="cuda", out_dir=str(tmp_path), verbose=False)
    html = run.report_path.read_text()
    assert "confusion" in html and run.diagnosis.verdict
    assert next(run.model.parameters()).device.type == "cuda"  # the report did not move the user's model
    pred = run.predict(xt.numpy())
    with torch.no_grad():
        assert pred.device.type == "cpu" and torch.equal(pred, run.model(xt.to(device)).argmax(1).cpu())
    assert run.evaluate()["test_acc"] == pytest.approx(run.summary["test"]["test_acc"], abs=1e-6)  # best.pt both
    run.model.cpu()  # the user moves the model: predict follows it
    assert float((run.predict(xt.numpy()) == pred).float().mean()) >= 0.99  # CPU kernels: a near-tie may flip
    run.model.to(device)
    cpu_model = tl.load(run.run_dir, model=MyNN())  # checkpoints load on the CPU whatever they trained on
    assert next(cpu_model.parameters()).device.type == "cpu"
    assert export_run(run.run_dir, "onnx", model=MyNN()).exists()


def test_cli_run_on_cuda_evaluates_predicts_exports_and_resumes_on_cpu(tmp_path, fake_mnist, device):
    cfg = resolve_config(overrides={"device": "cuda", "data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent),
                                    "out_dir": str(tmp_path / "runs"), "epochs": 2, "tensorboard": False,
                                    "name": "gpu", "batch_size": 32})  # 540 images: 16 full batches to capture
    outcome = workflow_run(cfg, verbose=False)
    run_dir = outcome.result.run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["environment"]["device"].startswith("cuda") and summary["steps"]["cuda_graph"] is True
    assert (run_dir / "report.html").exists() and (run_dir / "diagnosis.json").exists()
    assert evaluate_run(run_dir)["test_acc"] == pytest.approx(summary["test"]["test_acc"], abs=1e-6)
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    assert predict_run(run_dir, [img])[0]["class"]
    for fmt in ("torchscript", "safetensors"):
        assert export_run(run_dir, fmt).exists()
    on_cuda = load_run(run_dir, device="cuda")
    assert next(on_cuda.model.parameters()).device.type == "cuda"
    resumed = workflow_run(resume_dir=run_dir, overrides={"epochs": 3, "device": "cpu"}, verbose=False)
    assert len(resumed.result.history) == 3


def test_sklearn_estimator_on_cuda(device):
    from trainlab.sklearn import TrainlabClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = TrainlabClassifier(device="cuda", epochs=20).fit(X, y)
    assert (clf.predict(X) == y).mean() > 0.9
    assert clf.predict_proba(X).shape == (400, 2)


def test_a_pickled_cuda_estimator_unpickles_on_a_machine_without_a_gpu(device, monkeypatch):
    import pickle

    from trainlab.sklearn import TrainlabClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    clf = TrainlabClassifier(device="cuda", epochs=3).fit(X, (X[:, 0] > 0).astype(int))
    blob = pickle.dumps(clf)
    back = pickle.loads(blob)
    assert next(back.model_.parameters()).is_cuda and next(clf.model_.parameters()).is_cuda
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    laptop = pickle.loads(blob)
    assert next(laptop.model_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(laptop.predict_proba(X), back.predict_proba(X), atol=1e-5)


def test_fix_and_lr_find_of_a_users_module_trained_on_cuda(tmp_path, device):
    # the module sits on the GPU after fit: check_fits fed it a CPU batch ("model must take the data's examples")
    x, y = _cifar_like(400, 0)
    net = MyNN()
    run = tl.fit(net, (x, y), epochs=3, batch_size=64, lr=1e-5, device="cuda", out_dir=str(tmp_path), verbose=False,
                 report=False, tensorboard=False)
    assert next(net.parameters()).is_cuda
    found = tl.lr_find(net, (x, y), batch_size=64, device="cuda", seeds=1, steps=20, out_dir=str(tmp_path))
    assert len(found.lrs) == len(found.losses) > 0
    result = run.fix(verbose=False, report=False)
    assert result.run_dir is not None and (result.nothing_to_fix or result.outcome is not None)


def test_a_streamed_dataset_of_cuda_tensors_trains(tmp_path, device):
    # its labels went through np.asarray: "can't convert cuda tensor to numpy"
    from torch.utils.data import Dataset

    from trainlab.data.memory import bundle_from_data

    class OnGpu(Dataset):
        def __init__(self):
            self.x, self.y = _cifar_like(120, 3)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i].to(device), self.y[i].to(device)

    bundle = bundle_from_data(OnGpu(), max_bytes=1000)
    assert bundle.meta["kind"] == "stream"
    xb, yb = next(iter(bundle.train.batches(8)))
    assert xb.shape == (8, 3, 32, 32) and yb.dtype == torch.int64
    cfg = resolve_config(overrides={"device": "cuda", "data.name": "memory", "epochs": 1, "batch_size": 16,
                                    "out_dir": str(tmp_path), "tensorboard": False})
    outcome = workflow_run(cfg, bundle=bundle, model=MyNN(), report=False, verbose=False)
    assert outcome.result.history[0]["train_loss"] > 0


def test_a_run_leaves_the_callers_gpu_random_stream_where_it_was(tmp_path, device):
    """The run seeds its own GPU's stream inside a fork of it (train.checkpoint.seed_rng): the caller's
    dropout masks after tl.fit are the ones they would have drawn without it."""
    torch.cuda.manual_seed(123)
    before = torch.cuda.get_rng_state(device)
    x, y = _cifar_like(128, 0)
    tl.fit(MyNN(), (x, y), epochs=1, batch_size=32, device="cuda", out_dir=str(tmp_path), verbose=False,
           report=False, tensorboard=False)
    assert torch.equal(torch.cuda.get_rng_state(device), before)


class _Greedy(MyNN):
    """MyNN whose training passes over more than 32 examples ask the GPU for 4 TiB: a real CUDA out-of-memory."""

    def forward(self, x):
        if self.training and len(x) > 32:
            torch.empty(2**40, device=x.device)  # float32: 4 TiB, more than any GPU holds
        return super().forward(x)


def test_a_real_cuda_out_of_memory_is_one_line_and_micro_batches_train_the_same_updates(tmp_path, device):
    from trainlab.errors import OutOfMemory

    x, y = _cifar_like(320, 0)
    kw = dict(epochs=2, batch_size=64, lr=0.01, device="cuda", out_dir=str(tmp_path), verbose=False, report=False,
              tensorboard=False, seed=5)
    torch.manual_seed(0)
    with pytest.raises(OutOfMemory, match=r"^the GPU ran out of memory in epoch 1, update 1 of \d+, on passes of 64 "
                                          r"examples \(CUDA out of memory\. Tried to allocate [\d.]+ [GT]iB\)\. Set "
                                          r"speed\.micro_batch=32") as err:
        tl.fit(_Greedy(), (x, y), **kw)
    assert "\n" not in str(err.value)
    assert json.loads((err.value.run_dir / "summary.json").read_text())["stopped_by"] == "out_of_memory"
    torch.manual_seed(0)
    parts = tl.fit(_Greedy(), (x, y), micro_batch=32, **kw)  # passes of 32 fit
    torch.manual_seed(0)
    whole = tl.fit(MyNN(), (x, y), **kw)
    assert parts.summary["steps"]["eager_because"].startswith("speed.micro_batch=32")
    for a, b in zip(whole.history, parts.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4) and a["val_loss"] == pytest.approx(
            b["val_loss"], rel=1e-4)
