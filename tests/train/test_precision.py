"""speed.precision: bf16/fp16 updates under autocast (fp16 with loss scaling), float32 weights, validation and test;
refused where a device cannot compute it. The CPU runs autocast and the loss scaler too, so everything but the
tensor cores is checked here."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.diagnose.verdict import diagnose_run
from trainlab.errors import ConfigError, TrainingError
from trainlab.train.callbacks import Callback
from trainlab.train import precision
from trainlab.train.run import resume, train


class Recorder(nn.Module):
    """A small MLP that notes the dtype its first layer computes in, separately for training and evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        self.seen: dict[bool, set[torch.dtype]] = {True: set(), False: set()}

    def note(self, training: bool, dtype: torch.dtype) -> None:
        self.seen[training].add(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net[0](x)
        self.note(self.training, h.dtype)
        return self.net[2](self.net[1](h))


def _circle(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    return x, (x.norm(dim=1) < 0.6).long()


def test_bf16_updates_run_in_bfloat16_and_validation_in_float32(tmp_path):
    model = Recorder()
    run = tl.fit(model, _circle(), test=_circle(seed=1), precision="bf16", epochs=2, out_dir=str(tmp_path), verbose=False, report=False)
    assert model.seen[True] == {torch.bfloat16}  # every training step's forward pass
    assert model.seen[False] == {torch.float32}  # validation and the test
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # the weights stay float32
    assert run.summary["test"] is not None


def test_fp32_runs_use_no_autocast(tmp_path):
    model = Recorder()
    tl.fit(model, _circle(), epochs=1, out_dir=str(tmp_path), verbose=False, report=False)
    assert model.seen[True] == {torch.float32}


def test_bf16_trains_as_well_as_fp32_but_not_identically(make_cfg):
    over = {"epochs": 8, "model.hidden": [32], "optimizer.lr": 0.3}
    fp32 = train(make_cfg(**over, name="fp32"), verbose=False)
    bf16 = train(make_cfg(**over, name="bf16", **{"speed.precision": "bf16"}), verbose=False)
    assert fp32.history[-1]["val_acc"] > 0.85
    assert bf16.history[-1]["val_acc"] == pytest.approx(fp32.history[-1]["val_acc"], abs=0.05)
    # the bf16 run really computed something else: its weights are not the float32 run's
    assert any(not torch.equal(a, b) for a, b in zip(fp32.model.parameters(), bf16.model.parameters()))


def test_a_bf16_run_resumes_exactly(make_cfg):
    over = {"speed.precision": "bf16", "model.dropout": 0.2}
    whole = train(make_cfg(**over, epochs=4, name="whole"), verbose=False)
    half = train(make_cfg(**over, epochs=2, name="half"), verbose=False)
    rest = resume(half.run_dir, overrides={"epochs": 4}, verbose=False)
    assert [h["train_loss"] for h in rest.history] == [h["train_loss"] for h in whole.history]
    for a, b in zip(whole.model.parameters(), rest.model.parameters()):
        assert torch.equal(a, b)


def test_the_lr_range_test_takes_the_steps_the_run_will_take(monkeypatch):
    seen: set[torch.dtype] = set()  # the sweep trains copies of the model: they report here
    monkeypatch.setattr(Recorder, "note", lambda self, training, dtype: seen.add(dtype) if training else None,
                        raising=False)
    tl.lr_find(Recorder(), _circle(), precision="bf16", seeds=1, steps=10)
    assert seen == {torch.bfloat16}


def test_an_unknown_precision_is_one_line_naming_the_choices(make_cfg):
    with pytest.raises(ConfigError) as err:
        make_cfg(**{"speed.precision": "fp8"})
    assert "speed.precision" in str(err.value) and "'fp16'" in str(err.value) and "\n" not in str(err.value)


def test_devices_that_cannot_compute_bf16_are_refused_with_one_line(monkeypatch):
    precision.check("fp32", torch.device("mps"))  # float32 runs anywhere
    precision.check("bf16", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"^speed.precision must be fp32 on device mps\. Got 'bf16'"):
        precision.check("bf16", torch.device("mps"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ConfigError) as err:
        precision.check("bf16", torch.device("cuda", 0))
    assert str(err.value).startswith("speed.precision must be fp16 or fp32 on a GPU without bfloat16")
    assert "Got 'bf16' on Tesla T4" in str(err.value) and "speed.precision=fp16" in str(err.value)
    precision.check("fp16", torch.device("cuda", 0))  # every CUDA GPU computes float16


def test_autocast_in_a_graph_keeps_no_cast_weights():
    ctx = precision.autocast("bf16", torch.device("cpu"), in_graph=True)
    assert isinstance(ctx, torch.autocast) and ctx._cache_enabled is False
    assert not isinstance(precision.autocast("fp32", torch.device("cpu")), torch.autocast)


# --- fp16: loss scaling ------------------------------------------------------------------------------------------


class InfGradients(Callback):
    """Makes the first ``times`` backward passes' gradients inf (all of them with None), as float16 overflow does."""

    def __init__(self, times: int | None) -> None:
        self.times, self.seen = times, 0
        self.scales: list[float] = []  # the loss scale each on_train_begin found

    def on_train_begin(self, state):
        self.scales.append(state.scaler.get_scale() if state.scaler is not None else None)
        first = next(iter(state.model.parameters()))
        first.register_hook(self._hook)

    def _hook(self, grad):
        self.seen += 1
        return grad * float("inf") if self.times is None or self.seen <= self.times else grad


def test_fp16_updates_run_in_float16_and_validation_in_float32(tmp_path):
    model = Recorder()
    run = tl.fit(model, _circle(), precision="fp16", epochs=2, out_dir=str(tmp_path), verbose=False, report=False)
    assert model.seen[True] == {torch.float16} and model.seen[False] == {torch.float32}
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert [h["skipped_updates"] for h in run.history] == [0, 0]
    last = torch.load(run.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["scaler"]["scale"] == 65536.0  # GradScaler's start: no overflow on this toy set


def test_fp16_skips_overflowing_updates_counts_them_and_halves_the_scale(make_cfg):
    inf = InfGradients(times=3)
    run = train(make_cfg(**{"speed.precision": "fp16"}, epochs=2), callbacks=[inf], verbose=False)
    assert [h["skipped_updates"] for h in run.history] == [3, 0]
    assert all(0 < h["grad_norm"] < float("inf") for h in run.history)  # the mean over the applied updates
    assert run.summary["first_epoch"]["first_grad_norm"] > 0  # the first applied update's, not a skipped one's
    assert run.summary["steps"]["eager_because"].startswith("device cpu")
    last = torch.load(run.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["scaler"]["scale"] == 65536.0 / 2 ** 3


def test_a_skipped_update_leaves_the_weights_and_the_optimizer_alone(make_cfg):
    """The first update overflows: the weights after it are the initial ones and Adam has not started its moments."""

    class Snap(Callback):
        def on_train_begin(self, state):
            self.before = [p.detach().clone() for p in state.model.parameters()]

        def on_batch_end(self, state, step, loss):
            if step == 0:
                self.after_first = [p.detach().clone() for p in state.model.parameters()]
                self.adam_state = len(state.optimizer.state)

    snap = Snap()
    train(make_cfg(**{"speed.precision": "fp16", "optimizer.name": "adam"}, epochs=1),
          callbacks=[InfGradients(times=1), snap], verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(snap.before, snap.after_first))
    assert snap.adam_state == 0


def test_an_fp16_epoch_without_any_update_stops_with_its_cause_and_a_remedy(make_cfg):
    cfg = make_cfg(**{"speed.precision": "fp16"}, epochs=3, name="fp16-inf")
    with pytest.raises(TrainingError) as info:
        train(cfg, callbacks=[InfGradients(times=None)], verbose=False)
    msg = str(info.value)
    assert "float16 gradients overflowed at every update of epoch 1" in msg and "speed.precision=bf16" in msg
    assert "\n" not in msg
    found = {f.rule: f for f in diagnose_run(cfg.out_dir + "/fp16-inf").findings}
    assert found["non_finite"].evidence["cause_id"] == "fp16_overflow"
    assert found["non_finite"].sets == {"speed.precision": "fp32"}


def test_an_fp16_run_resumes_with_its_loss_scale(make_cfg):
    first = InfGradients(times=2)
    half = train(make_cfg(**{"speed.precision": "fp16"}, epochs=2, name="half"), callbacks=[first], verbose=False)
    again = InfGradients(times=0)
    rest = resume(half.run_dir, overrides={"epochs": 3}, callbacks=[again], verbose=False)
    assert first.scales == [65536.0] and again.scales == [65536.0 / 4]
    assert [h["skipped_updates"] for h in rest.history] == [2, 0, 0]


@pytest.mark.gpu
@pytest.mark.parametrize("prec", ["bf16", "fp16"])
def test_mixed_precision_on_the_gpu_trains_like_fp32(make_cfg, device, prec):
    if prec == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no bfloat16")
    over = {"device": "cuda", "epochs": 8, "model.hidden": [32], "optimizer.lr": 0.3, "data.n_points": 330}
    fp32 = train(make_cfg(**over, name="fp32"), verbose=False)
    mixed = train(make_cfg(**over, name=prec, **{"speed.precision": prec}), verbose=False)
    assert mixed.history[-1]["val_acc"] == pytest.approx(fp32.history[-1]["val_acc"], abs=0.05)
    assert mixed.summary["steps"]["cuda_graph"] is (prec == "bf16")


class PastFloat16(nn.Module):
    """A network whose hidden values pass 65504 (float16's largest number) on the way and come back: fine in
    float32, inf under float16 autocast, as an unnormalised sum or a large attention logit is."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(2, 16), nn.Linear(16, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)) * 1e6 / 1e6)


def test_a_forward_pass_past_float16s_range_is_named_and_float32_fixes_it(tmp_path):
    from trainlab import remedy

    data = _circle()
    with pytest.raises(TrainingError) as err:
        tl.fit(PastFloat16(), data, precision="fp16", epochs=2, out_dir=str(tmp_path), verbose=False,
               report=False, tensorboard=False)
    assert err.value.facts["precision"] == "fp16"
    found = {f.rule: f for f in diagnose_run(err.value.run_dir).findings}
    assert found["non_finite"].evidence["cause_id"] == "fp16_overflow"
    assert "65504" in found["non_finite"].evidence["cause"]
    result = remedy.fix(err.value.run_dir, model=PastFloat16(), data=data, verbose=False, report=False)
    assert result.sets == {"speed.precision": "fp32"}
    assert result.error is None and result.after["val_acc"] > 0.5  # the same network trains in float32


def test_cpu_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd fphp asimdhp bf16\nCPU implementer\t: 0x41\n")
    assert precision.cpu_flags(str(x86)) == {"fpu", "sse2", "avx2", "fma"}
    assert {"fphp", "bf16"} <= precision.cpu_flags(str(arm))
    assert precision.cpu_flags(str(tmp_path / "absent")) is None  # macOS, Windows: nothing to read, nothing said


@pytest.mark.parametrize("flags, prec, device, said", [
    ({"avx2", "fma"}, "bf16", "cpu", "no bfloat16 instructions"),
    ({"avx2", "fma"}, "fp16", "cpu", "no float16 instructions"),
    ({"avx2", "avx512_bf16"}, "bf16", "cpu", None),
    ({"asimd", "fphp"}, "fp16", "cpu", None),
    ({"avx2"}, "fp32", "cpu", None),
    ({"avx2"}, "bf16", "cuda", None),  # the GPU computes it, whatever the host CPU has
    (None, "bf16", "cpu", None),
])
def test_a_precision_this_cpu_emulates_gets_a_note(monkeypatch, flags, prec, device, said):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    note = precision.emulated_note(prec, torch.device(device))
    assert note is None if said is None else (said in note and note.startswith("note: ") and "fp32" in note)


def test_the_note_is_printed_before_the_first_epoch(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    tl.fit(Recorder(), _circle(), precision="bf16", epochs=1, out_dir=str(tmp_path), report=False, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: this CPU has no bfloat16 instructions") and lines[1].startswith("epoch 1/1")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    tl.fit(Recorder(), _circle(), precision="bf16", epochs=1, out_dir=str(tmp_path), report=False, verbose=True)
    assert "note:" not in capsys.readouterr().out
