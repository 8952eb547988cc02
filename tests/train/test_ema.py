"""ema.decay: an exponential moving average of the weights, validated, checkpointed, resumed and returned."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.train.checkpoint import load_checkpoint
from trainlab.train.ema import WeightAverage
from trainlab.train.loop import evaluate
from trainlab.train.run import prepare, train

from tests.train.test_resume import _interrupted_then_resumed, _values


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _train_a_little(net: nn.Module, steps: int, after_each) -> None:
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        after_each()


def test_the_average_is_torchs_averaged_model_with_the_ema_rule_and_buffers():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    net = _net()
    ours = WeightAverage(net, 0.9, warmup=False)
    theirs = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    theirs.update_parameters(net)  # torch's first call copies the weights; ours starts from them
    _train_a_little(net, 12, lambda: (ours.update(), theirs.update_parameters(net)))
    mine, reference = ours.model.state_dict(), theirs.module.state_dict()
    for k, v in mine.items():
        if v.is_floating_point():  # torch averages the integer update count too; ours copies it
            assert torch.allclose(v, reference[k], atol=1e-6), k
    assert not torch.allclose(mine["0.weight"], net[0].weight)  # an average, not the weights themselves
    assert int(mine["1.num_batches_tracked"]) == int(net[1].num_batches_tracked) == 12  # counts are copied
    assert ours.updates == 12


def test_the_warm_up_keeps_less_of_the_average_at_the_first_updates_written_out():
    net = _net()
    avg = WeightAverage(net, 0.999)
    expected = net[0].weight.detach().clone()

    def step():
        d = min(0.999, (1 + avg.updates) / (10 + avg.updates))  # TensorFlow's num_updates rule
        expected.mul_(d).add_(net[0].weight.detach(), alpha=1 - d)
        avg.update()

    _train_a_little(net, 6, step)
    assert avg.decay_now() == pytest.approx(7 / 16)
    assert torch.allclose(avg.model[0].weight, expected, atol=1e-6)


def test_a_run_validates_checkpoints_and_returns_the_averaged_weights(make_cfg):
    cfg = make_cfg(**{"ema.decay": 0.9, "epochs": 4, "stop.early_stopping.patience": 50,
                      "stop.early_stopping.restore_best": False})
    result = train(cfg, verbose=False)
    last = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    p = prepare(cfg)
    assert last["ema"]["updates"] == 4 * -(-len(p.bundle.train) // 16)  # one per update
    scores = {}
    for key in ("model", "train_model"):
        p.model.load_state_dict(last[key])
        scores[key] = evaluate(p.model, p.bundle.val, p.loss, 64, True, torch.device("cpu"))["loss"]
    assert result.history[-1]["val_loss"] == pytest.approx(scores["model"], rel=1e-5)  # validated: the average
    assert scores["train_model"] != pytest.approx(scores["model"], rel=1e-4)
    for k, v in result.model.state_dict().items():  # the run ends with the averaged weights
        assert torch.equal(v, last["model"][k]), k
    plain = train(make_cfg(**{"epochs": 4}), verbose=False)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in result.history]  # same updates
    assert [h["val_loss"] for h in plain.history] != [h["val_loss"] for h in result.history]


def test_an_interrupted_ema_run_resumes_to_the_uninterrupted_runs_metrics_and_average(make_cfg):
    overrides = {"epochs": 6, "ema.decay": 0.95, "optimizer.name": "adam", "optimizer.lr": 0.01,
                 "model.batchnorm": True}
    full = train(make_cfg(name="full", **overrides), verbose=False)
    resumed = _interrupted_then_resumed(make_cfg(name="cut", **overrides), at=3)
    assert _values(resumed.history) == _values(full.history)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


@pytest.mark.parametrize("kw, said", [
    ({"ema_decay": 1.0}, r"ema\.decay must be < 1"),
    ({"use_ema": True}, r"use_ema is not a trainlab option\. Got use_ema=True\. Did you mean 'ema_decay'\? "
                        r"\(Keras' use_ema=True with ema_momentum=0\.99 is ema_decay=0\.99\)"),
])
def test_ema_keywords_of_tl_fit(tmp_path, kw, said):
    import trainlab as tl
    from trainlab.errors import ConfigError

    x, y = torch.randn(40, 3), torch.randint(0, 2, (40,))
    with pytest.raises(ConfigError, match=said):
        tl.fit(nn.Linear(3, 2), (x, y), epochs=1, out_dir=str(tmp_path), verbose=False, report=False, **kw)
    assert not any(tmp_path.iterdir())


def test_ema_as_a_section_keyword_of_tl_fit(tmp_path):
    import trainlab as tl

    x, y = torch.randn(60, 3), torch.randint(0, 2, (60,))
    run = tl.fit(nn.Linear(3, 2), (x, y), epochs=2, ema={"decay": 0.5, "warmup": False}, out_dir=str(tmp_path),
                 verbose=False, report=False)
    assert run.config.ema.decay == 0.5 and run.config.ema.warmup is False


def test_the_console_says_what_the_epoch_lines_measure(make_cfg):
    from trainlab.train.run import _console_notes

    assert not any("moving average" in n or "mixed" in n for n in _console_notes(prepare(make_cfg())))
    notes = _console_notes(prepare(make_cfg(**{"ema.decay": 0.99, "data.augment.mixup": 0.2})))
    assert ("validation, checkpoints and the test score use the weights' moving average (ema.decay=0.99); the "
            "training loss is the trained weights'") in notes
    assert ("the training loss and accuracy are of mixup-mixed batches (accuracy: each mix's dominant label); "
            "validation's of clean ones") in notes
