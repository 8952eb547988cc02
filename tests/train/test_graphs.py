"""CUDA-graph training steps: when they are used, that they change nothing but speed, and what stays portable.

The tests marked ``gpu`` need a CUDA GPU (``benchmarks/gpu.py`` runs them on one); the others run anywhere and
check the pieces that decide and undo: the reasons a run stays eager, the warm-up undo, portable checkpoints.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.train import graphs
from trainlab.train.run import _build_state, _loop_data, prepare, resume, train


def _state_and_data(make_cfg, **overrides):
    p = prepare(make_cfg(**overrides))
    return _build_state(p), _loop_data(p)[0]


# --- anywhere -------------------------------------------------------------------------------------------------


def test_cpu_runs_stay_eager_and_say_why(make_cfg):
    result = train(make_cfg(device="cpu"), verbose=False)
    steps = json.loads((result.run_dir / "summary.json").read_text())["steps"]
    assert steps["cuda_graph"] is False
    assert steps["eager_because"].startswith("device cpu")


@pytest.mark.parametrize("overrides, reason", [
    ({"speed.graphs": False}, "speed.graphs=false"),
    ({"speed.precision": "fp16"}, "speed.precision=fp16"),
    ({"optimizer.name": "adagrad"}, "optimizer adagrad"),
    ({"optimizer.name": "rmsprop", "schedule.name": "cosine"}, "optimizer rmsprop with schedule cosine"),
    ({"batch_size": 100}, "fewer than"),
    ({"speed.micro_batch": 8}, "speed.micro_batch=8 runs each update as several passes"),
])
def test_why_not_names_the_reason(make_cfg, overrides, reason):
    state, data = _state_and_data(make_cfg, device="cpu", **overrides)
    data.device = torch.device("cuda")  # only the decision is tested here: pretend the data sit on a GPU
    assert reason in graphs.why_not(state, data, per_step_callbacks=False)


def test_why_not_allows_the_usual_optimizers_and_refuses_per_step_callbacks(make_cfg):
    for name in ("sgd", "momentum", "nesterov", "adam", "adamw"):
        state, data = _state_and_data(make_cfg, device="cpu", **{"optimizer.name": name, "schedule.name": "cosine"})
        data.device = torch.device("cuda")
        assert graphs.why_not(state, data, per_step_callbacks=False) is None, name
        assert "callback" in graphs.why_not(state, data, per_step_callbacks=True)


def test_augmented_image_runs_stay_eager(make_cfg, fake_mnist):
    state, data = _state_and_data(make_cfg, device="cpu", **{"data.name": "fashion-mnist",
                                                             "data.dir": str(fake_mnist.parent),
                                                             "model.name": "cnn", "data.augment.flip": True})
    data.device = torch.device("cuda")
    assert "augment" in graphs.why_not(state, data, per_step_callbacks=False)


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: torch.optim.Adam(ps, lr=0.01),
    lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5),
])
def test_undoing_warmup_steps_gives_the_fresh_optimizers_first_update(make_opt):
    """Capture warms up on real steps; _restore must leave the weights *and* the optimizer as if no step ran,
    so the captured run's first update equals an eager run's (computed both ways, as micrograd's tests do)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh = [p.detach().clone() for p in net.parameters()]
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))

    def step(model, opt):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    twin = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    twin.load_state_dict(net.state_dict())
    opt, twin_opt = make_opt(net.parameters()), make_opt(twin.parameters())
    saved = graphs._snapshot(net, opt)
    for _ in range(3):
        step(net, opt)  # the warm-up
    graphs._restore(net, opt, saved)
    assert all(torch.equal(p, f) for p, f in zip(net.parameters(), fresh))
    assert torch.equal(net[1].running_mean, torch.zeros(4)) and int(net[1].num_batches_tracked) == 0
    for _ in range(2):
        step(net, opt)
        step(twin, twin_opt)
    for p, q in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_checkpoints_drop_the_graph_only_optimizer_flags():
    p = nn.Parameter(torch.ones(3))
    adam, sgd = torch.optim.Adam([p], lr=0.01), torch.optim.SGD([p], lr=0.1, momentum=0.9)
    adam.param_groups[0]["capturable"] = True
    sgd.param_groups[0]["fused"] = True
    sgd.param_groups[0]["lr"] = torch.tensor(0.05)
    a, s = graphs.portable_optimizer_state(adam), graphs.portable_optimizer_state(sgd)
    assert a["param_groups"][0]["capturable"] is False
    assert s["param_groups"][0]["fused"] is None and s["param_groups"][0]["lr"] == pytest.approx(0.05)
    torch.optim.Adam([nn.Parameter(torch.ones(3))], lr=0.01).load_state_dict(a)  # loads on a CPU-only machine


# --- on a CUDA GPU --------------------------------------------------------------------------------------------

GRAPH_CASES = [
    {"optimizer.name": "sgd"},
    {"optimizer.name": "momentum", "schedule.name": "cosine"},
    {"optimizer.name": "adam", "optimizer.lr": 0.01, "grad_clip": 0.5},
    {"optimizer.name": "adamw", "optimizer.lr": 0.01, "schedule.name": "onecycle", "loss.l2": 1e-3},
    {"optimizer.name": "nesterov", "schedule.warmup_epochs": 1, "loss.l1": 1e-4},
    {"optimizer.name": "rmsprop", "optimizer.lr": 0.003},
    {"optimizer.name": "momentum", "schedule.name": "onecycle", "drop_last": True},  # no eager last batch at all
    {"optimizer.name": "adam", "optimizer.lr": 0.01, "ema.decay": 0.9},  # the average follows replays and the tail
]


@pytest.mark.gpu
@pytest.mark.parametrize("overrides", GRAPH_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_captured_steps_match_eager_steps(make_cfg, device, overrides):
    """Same seed, graphs on and off: the same metrics every epoch and the same final weights (float tolerance;
    the training split leaves a smaller last batch, which runs eagerly between replays — and moves the
    schedule, which the next epoch's first replay must see: an lr one step stale failed this at rel 1e-4)."""
    base = {"device": "cuda", "data.n_points": 330, "epochs": 3, **overrides}
    on = train(make_cfg(**base, name="on"), verbose=False)
    off = train(make_cfg(**base, name="off", **{"speed.graphs": False}), verbose=False)
    assert on.summary["steps"] == {"cuda_graph": True, "eager_because": None}
    assert off.summary["steps"]["eager_because"] == "speed.graphs=false"
    for a, b in zip(on.history, off.history):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "grad_norm", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    for (name, p), q in zip(on.model.named_parameters(), off.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.gpu
def test_bf16_captured_steps_match_bf16_eager_steps(make_cfg, device):
    """speed.precision=bf16 inside a graph: autocast's cache of bfloat16 weight copies is off there, else every
    replay would compute with the copies cast at capture, before any update (the eager steps recast each step)."""
    base = {"device": "cuda", "data.n_points": 330, "epochs": 3, "speed.precision": "bf16",
            "optimizer.name": "adam", "optimizer.lr": 0.01}
    on = train(make_cfg(**base, name="on"), verbose=False)
    off = train(make_cfg(**base, name="off", **{"speed.graphs": False}), verbose=False)
    assert on.summary["steps"] == {"cuda_graph": True, "eager_because": None}
    for a, b in zip(on.history, off.history):
        for key in ("train_loss", "val_loss", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-5), (a["epoch"], key)
    for p, q in zip(on.model.parameters(), off.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_captured_cnn_with_batchnorm_and_dropout_trains(make_cfg, fake_mnist, device):
    cfg = make_cfg(device="cuda", **{"data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent),
                                     "model.name": "cnn", "model.batchnorm": True, "model.dropout": 0.2,
                                     "optimizer.name": "adam", "optimizer.lr": 0.003, "batch_size": 32, "epochs": 4})
    result = train(cfg, verbose=False)
    assert result.summary["steps"]["cuda_graph"] is True
    assert result.history[-1]["val_acc"] > 0.9  # the fake set is easy: a broken update would stay near 0.1


class HostBranch(nn.Module):
    """A user module that reads a value back to the host each step: capture cannot record it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        if float(h.abs().mean()) > 10:  # never true; the read is what matters
            h = h / 2
        return self.b(h)


@pytest.mark.gpu
def test_a_module_capture_cannot_record_falls_back_to_eager(tmp_path, device):
    torch.manual_seed(0)
    x = torch.randn(400, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    run = tl.fit(HostBranch(), (x, y), epochs=3, batch_size=32, device="cuda", out_dir=str(tmp_path),
                 verbose=False, report=False, tensorboard=False)
    assert run.summary["steps"]["cuda_graph"] is False
    assert run.summary["steps"]["eager_because"].startswith("capture failed")
    assert len(run.history) == 3 and run.history[-1]["val_loss"] < run.history[0]["val_loss"] + 0.5


@pytest.mark.gpu
def test_graph_run_resumes_on_cpu_and_back(make_cfg, device):
    cfg = make_cfg(device="cuda", epochs=2, name="r", **{"optimizer.name": "adam", "optimizer.lr": 0.01})
    first = train(cfg, verbose=False)
    on_cpu = resume(first.run_dir, overrides={"epochs": 3, "device": "cpu"}, verbose=False)
    assert on_cpu.summary["steps"]["eager_because"].startswith("device cpu")
    back = resume(first.run_dir, overrides={"epochs": 4, "device": "cuda"}, verbose=False)
    assert back.summary["steps"]["cuda_graph"] is True and len(back.history) == 4


@pytest.mark.gpu
def test_a_graph_run_with_dropout_resumes_exactly(make_cfg, device):
    """The warm-up steps before a capture draw dropout masks too. Their random state is undone, so a run resumed
    from a checkpoint (which captures again) draws the masks the uninterrupted run drew."""
    over = {"device": "cuda", "model.dropout": 0.3, "data.n_points": 330}
    whole = train(make_cfg(**over, epochs=4, name="whole"), verbose=False)
    half = train(make_cfg(**over, epochs=2, name="half"), verbose=False)
    rest = resume(half.run_dir, overrides={"epochs": 4}, verbose=False)
    assert whole.summary["steps"]["cuda_graph"] is True and rest.summary["steps"]["cuda_graph"] is True
    assert [h["epoch"] for h in rest.history] == [1, 2, 3, 4]
    for a, b in zip(whole.history, rest.history):
        for key in ("train_loss", "val_loss", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["epoch"], key)


_GRAPH_RUN = r'''
import json, sys
from trainlab.cli import main
code = main(["train", "--set", "device=cuda", "--set", "data.name=circle", "--set", "epochs=2", "--set",
             f"out_dir={sys.argv[1]}", "--set", "tensorboard=false", "--quiet", "--no-report"])
print(json.dumps({"code": code, "dynamo": "torch._dynamo" in sys.modules}))
'''


@pytest.mark.gpu
def test_a_graph_run_leaves_dynamo_unimported(tmp_path, device):
    """The captured step updates through train.optim.step: torch's own opt.step() imports torch._dynamo (~0.9 s,
    inside the first epoch, where capture happens)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _GRAPH_RUN, str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    run = next(tmp_path.iterdir())
    assert got == {"code": 0, "dynamo": False}
    assert json.loads((run / "summary.json").read_text())["steps"]["cuda_graph"] is True
