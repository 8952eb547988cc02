"""speed.precision: bf16 updates under autocast, float32 weights, validation and test; refused where a device
cannot compute it. The CPU runs autocast too, so everything but the tensor cores is checked here."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.errors import ConfigError
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
        make_cfg(**{"speed.precision": "fp16"})
    assert "speed.precision" in str(err.value) and "'bf16'" in str(err.value) and "\n" not in str(err.value)


def test_devices_that_cannot_compute_bf16_are_refused_with_one_line(monkeypatch):
    precision.check("fp32", torch.device("mps"))  # float32 runs anywhere
    precision.check("bf16", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"^speed.precision must be fp32 on device mps\. Got 'bf16'"):
        precision.check("bf16", torch.device("mps"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ConfigError) as err:
        precision.check("bf16", torch.device("cuda", 0))
    assert "Tesla T4" in str(err.value) and "speed.precision=fp32" in str(err.value)


def test_autocast_in_a_graph_keeps_no_cast_weights():
    ctx = precision.autocast("bf16", torch.device("cpu"), in_graph=True)
    assert isinstance(ctx, torch.autocast) and ctx._cache_enabled is False
    assert not isinstance(precision.autocast("fp32", torch.device("cpu")), torch.autocast)
