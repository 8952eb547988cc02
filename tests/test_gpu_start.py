"""trainlab.gpu_start: a GPU run's CUDA context started beside the torch import. Without a GPU (CI) the driver is
a stand-in that records its calls; the test marked ``gpu`` starts a real context and trains on it."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from trainlab import gpu_start


@pytest.mark.parametrize("device, environ, ordinal", [
    ("cuda", {}, 0), ("auto", {}, 0), ("cuda:2", {}, 2), ("cpu", {}, None), ("mps", {}, None),
    ("cuda", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}, 3),  # a distributed run: the GPU of the local rank
    ("cuda", {"WORLD_SIZE": "1", "LOCAL_RANK": "3"}, 0),
    ("cuda:1", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}, 1),
])
def test_the_gpu_started_is_the_one_the_run_trains_on(device, environ, ordinal):
    assert gpu_start.gpu_ordinal(device, environ) == ordinal


class FakeDriver:
    """libcuda.so.1's three calls; ``fail`` names the one that returns an error (CUDA_ERROR_NO_DEVICE: 100)."""

    def __init__(self, fail: str | None = None):
        self.calls: list[tuple] = []
        self.fail = fail

    def _result(self, name):
        return 100 if name == self.fail else 0

    def cuInit(self, flags):  # noqa: N802  (the driver's names)
        self.calls.append(("cuInit", flags))
        return self._result("cuInit")

    def cuDeviceGet(self, dev, ordinal):  # noqa: N802
        self.calls.append(("cuDeviceGet", ordinal))
        ctypes.cast(dev, ctypes.POINTER(ctypes.c_int)).contents.value = 40 + ordinal
        return self._result("cuDeviceGet")

    def cuDevicePrimaryCtxRetain(self, ctx, dev):  # noqa: N802
        self.calls.append(("cuDevicePrimaryCtxRetain", dev.value))
        return self._result("cuDevicePrimaryCtxRetain")


def test_a_gpu_run_starts_its_gpus_context_in_a_thread_with_lazy_module_loading(monkeypatch):
    driver = FakeDriver()
    monkeypatch.setattr(gpu_start, "torch_has_cuda", lambda: True)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: driver if name == "libcuda.so.1" else None)
    monkeypatch.delenv("CUDA_MODULE_LOADING", raising=False)
    monkeypatch.delenv("TRAINLAB_CUDA_EARLY", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    thread = gpu_start.start("cuda:1")
    assert thread is not None and thread.daemon
    thread.join(10)
    assert driver.calls == [("cuInit", 0), ("cuDeviceGet", 1), ("cuDevicePrimaryCtxRetain", 41)]
    # what torch sets before its own cuInit: else the driver loads every kernel of torch's libraries up front
    assert os.environ["CUDA_MODULE_LOADING"] == "LAZY"


def test_nothing_starts_for_a_cpu_run_a_cpu_torch_or_when_switched_off(monkeypatch):
    driver = FakeDriver()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: driver)
    monkeypatch.delenv("TRAINLAB_CUDA_EARLY", raising=False)
    monkeypatch.setattr(gpu_start, "torch_has_cuda", lambda: False)
    assert gpu_start.start("auto") is None  # a CPU-only torch on a machine with a driver: it trains on the CPU
    monkeypatch.setattr(gpu_start, "torch_has_cuda", lambda: True)
    assert gpu_start.start("cpu") is None
    monkeypatch.setenv("TRAINLAB_CUDA_EARLY", "0")
    assert gpu_start.start("cuda") is None
    assert driver.calls == []


def test_a_cuda_torch_is_told_from_a_cpu_one_without_importing_it(tmp_path, monkeypatch):
    import importlib.machinery

    fake = tmp_path / "torch"
    (fake / "lib").mkdir(parents=True)
    spec = importlib.machinery.ModuleSpec("torch", None, is_package=True)
    spec.submodule_search_locations = [str(fake)]
    monkeypatch.setattr(gpu_start.importlib.util, "find_spec", lambda name: spec if name == "torch" else None)
    assert gpu_start.torch_has_cuda() is False
    (fake / "lib" / "libtorch_cuda.so").write_bytes(b"")
    assert gpu_start.torch_has_cuda() is True


@pytest.mark.parametrize("fail, calls", [("cuInit", 1), ("cuDeviceGet", 2), ("cuDevicePrimaryCtxRetain", 3)])
def test_a_driver_error_ends_the_thread_quietly_at_that_call(monkeypatch, fail, calls):
    driver = FakeDriver(fail)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: driver)
    assert gpu_start._retain_primary_context(0) is False
    assert len(driver.calls) == calls  # torch starts CUDA itself later, and says what is wrong


def test_without_an_nvidia_driver_the_thread_ends_quietly(monkeypatch):
    def no_driver(name):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes, "CDLL", no_driver)
    assert gpu_start._retain_primary_context(0) is False


def test_importing_it_imports_no_torch():
    code = "import sys, trainlab.gpu_start; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_trainlab_train_starts_the_configured_device(tmp_path, monkeypatch):
    from trainlab.cli import main

    seen = []
    monkeypatch.setattr(gpu_start, "start", seen.append)
    code = main(["train", "--set", "data.name=circle", "--set", "data.n_points=100", "--set", "batch_size=16", "--set", "epochs=1",
                 "--set", "device=cpu", "--set", f"out_dir={tmp_path}", "--set", "tensorboard=false", "--quiet",
                 "--no-report"])
    assert code == 0 and seen == ["cpu"]


_REAL = r'''
import json, time, trainlab.gpu_start as g
t0 = time.perf_counter()
thread = g.start("cuda")
assert thread is not None, "trainlab.gpu_start started nothing: no CUDA torch found"
thread.join()
import torch
x = torch.ones(256, 256, device="cuda")
print(json.dumps({"sum": float((x @ x).sum()), "device": str(x.device)}))
'''


@pytest.mark.gpu
def test_torch_trains_on_the_context_started_early(device):
    out = subprocess.run([sys.executable, "-c", _REAL], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sum": 256.0 ** 3, "device": "cuda:0"}
