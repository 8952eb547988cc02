"""Per-layer statistics: computed in the loop / by hooks, checked against a direct computation."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trainlab.diagnose import diagnostic_callbacks, read_layers
from trainlab.diagnose.stats import activation_stats, probe_modules
from trainlab.train.loop import layer_norms
from trainlab.train.run import train


def test_dead_and_saturated_units_match_a_direct_count():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 4), nn.Sigmoid())
    with torch.no_grad():
        net[0].bias[:2] = -100.0  # units 0 and 1 can never fire
        net[2].weight.mul_(30)  # push the sigmoid into saturation
    x = torch.randn(200, 3)
    summary, hists = activation_stats(net, x)
    relu_out = net[1](net[0](x))
    sig_out = net(x)
    assert summary["1"]["dead"] == pytest.approx(float((relu_out.amax(0) <= 0).float().mean()))
    assert summary["1"]["dead"] >= 2 / 6
    assert summary["3"]["saturated"] == pytest.approx(float(((sig_out < 0.1) | (sig_out > 0.9)).float().mean()))
    assert summary["3"]["kind"] == "sigmoid" and summary["1"]["units"] == 6
    assert sum(hists["3"]["counts"]) == sig_out.numel()
    assert net.training  # probing restores the mode


def test_models_without_activation_modules_are_probed_at_linear_layers():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert list(probe_modules(net)) == ["0", "1"]
    # every layer kind a scheme initialises, 1-D convolutions (the conv1d family, MNIST-1D) included
    conv = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Conv1d(4, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2))
    summary, _ = activation_stats(conv, torch.randn(5, 1, 40))
    assert list(summary) == ["0", "1", "3"] and summary["0"]["units"] == 4



def test_layer_norms_are_rms_over_updates():
    names = ["a.weight", "a.bias", "b.weight"]
    sq = torch.tensor([9.0 + 16.0, 0.0, 4.0])  # two updates: |g_a.w| = 3 then 4; |g_b.w|² sums to 4
    got = layer_norms(names, sq, steps=2)
    assert got == pytest.approx({"a": (25 / 2) ** 0.5, "b": (4 / 2) ** 0.5})


def test_loop_layer_grad_norms_equal_the_gradients_of_a_single_full_batch_step(make_cfg):
    # With one update per epoch, the RMS over updates is that update's own gradient norm per layer.
    cfg = make_cfg(**{"batch_size": 216, "epochs": 1, "optimizer.lr": 1e-12, "model.hidden": [4]})
    result = train(cfg, setup=diagnostic_callbacks, verbose=False)
    row = read_layers(result.run_dir)[0]
    from trainlab.train.run import prepare

    p = prepare(cfg)
    x, y = p.bundle.train.x, p.bundle.train.y
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
    loss = nn.functional.cross_entropy(p.model(x[perm]), y[perm])
    loss.backward()
    expected = {"layers.0.linear": torch.cat([p.model.layers[0].linear.weight.grad.flatten(),
                                              p.model.layers[0].linear.bias.grad.flatten()]).norm().item(),
                "head": torch.cat([p.model.head.weight.grad.flatten(), p.model.head.bias.grad.flatten()]).norm().item()}
    assert row["grad_norm"] == pytest.approx(expected, rel=1e-4)


def test_layer_files_are_written_each_epoch_and_survive_resume(make_cfg):
    from tests.train.test_resume import InterruptAfter
    from trainlab.train.run import resume

    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(epochs=3, name="cut"), setup=diagnostic_callbacks, callbacks=[InterruptAfter(2)], verbose=False)
    result = resume(make_cfg().out_dir + "/cut", setup=diagnostic_callbacks, verbose=False)
    rows = read_layers(result.run_dir)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]["activations"]) == {"layers.0.act"}
    hist = json.loads((result.run_dir / "activations.json").read_text())
    assert (hist["first"]["epoch"], hist["last"]["epoch"]) == (1, 3)


def test_histograms_are_written_after_the_first_epoch_and_when_training_ends(make_cfg, monkeypatch):
    from tests.train.test_resume import InterruptAfter
    from trainlab.diagnose import stats

    written = []
    real = stats.files.write_json

    def spy(path, obj, **kw):
        if path.name == "activations.json":
            written.append((obj["first"]["epoch"], obj["last"]["epoch"]))
        return real(path, obj, **kw)

    monkeypatch.setattr(stats.files, "write_json", spy)
    result = train(make_cfg(epochs=4, name="whole"), setup=diagnostic_callbacks, verbose=False)
    assert written == [(1, 1), (1, 4)]  # not once an epoch: only the report reads the file
    hist = json.loads((result.run_dir / "activations.json").read_text())
    summary, hists = activation_stats(result.model, stats_probe(result))
    assert hist["last"]["layers"] == json.loads(json.dumps(hists))  # the last epoch's, as activation_stats gives
    written.clear()
    with pytest.raises(KeyboardInterrupt):  # stopped after epoch 2's statistics: the file says epoch 2
        train(make_cfg(epochs=4, name="cut"), setup=diagnostic_callbacks, callbacks=[InterruptAfter(2)], verbose=False)
    assert written == [(1, 1), (1, 2)]


def stats_probe(result):
    """The probe batch LayerStats measures: the first validation examples."""
    return result.prepared.bundle.val.x[:512]
