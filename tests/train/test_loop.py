"""train.loop.gradients: one batch's gradients in one pass or in micro-batches (gradient accumulation)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.train.losses import LOSSES, weighted, weight_penalty
from trainlab.train.loop import finish_update, gradients


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def _batch(n: int = 50):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("micro", [1, 7, 16, 25, 49])
@pytest.mark.parametrize("class_weights, l2, scale", [(None, 0.0, 1.0), ([1.0, 5.0, 0.5], 0.0, 1.0),
                                                      (None, 0.01, 1.0), ([0.2, 1.0, 3.0], 0.01, 0.75)])
def test_micro_batches_give_the_whole_batchs_loss_gradients_and_hits(micro, class_weights, l2, scale):
    x, y = _batch()
    loss = weighted(LOSSES.get("cross_entropy"), class_weights, y, 3, torch.device("cpu"))
    results = []
    for size in (None, micro):
        net = _net()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        weights = [p for p in net.parameters() if p.ndim > 1]
        passes = []
        net.register_forward_pre_hook(lambda m, args: passes.append(len(args[0])))
        mean, hits = gradients(net, loss, x, y, opt, precision_name="fp32", device=torch.device("cpu"), scaler=None,
                               micro_batch=size, scale=scale, hits=True,
                               penalty=(lambda w=weights: weight_penalty(w, 0.0, l2)) if l2 else None)
        grads = [p.grad.clone() for p in net.parameters()]
        results.append((mean, hits, grads, passes))
    (mean1, hits1, grads1, passes1), (mean2, hits2, grads2, passes2) = results
    assert passes1 == [50] and len(passes2) == -(-50 // micro) and max(passes2) == micro and sum(passes2) == 50
    assert torch.allclose(mean1, mean2, atol=1e-6) and int(hits1) == int(hits2)
    for g1, g2 in zip(grads1, grads2):
        assert torch.allclose(g1, g2, atol=1e-6), (g1 - g2).abs().max()
    # the update from the summed gradients is the whole batch's
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    gradients(net, loss, x, y, opt, precision_name="fp32", device=torch.device("cpu"), scaler=None, micro_batch=micro)
    before = [p.detach().clone() for p in net.parameters()]
    norms, gnorm, applied = finish_update(opt, list(net.parameters()), None, None)
    assert applied and torch.isclose(gnorm, norms.norm())
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_a_micro_batch_as_big_as_the_batch_is_one_pass_and_the_gradients_start_from_zero():
    x, y = _batch(20)
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    passes = []
    net.register_forward_pre_hook(lambda m, args: passes.append(len(args[0])))
    loss = LOSSES.get("cross_entropy")
    first, _ = gradients(net, loss, x, y, opt, precision_name="fp32", device=torch.device("cpu"), scaler=None,
                         micro_batch=20)
    g = [p.grad.clone() for p in net.parameters()]
    gradients(net, loss, x, y, opt, precision_name="fp32", device=torch.device("cpu"), scaler=None, micro_batch=6)
    assert passes == [20, 6, 6, 6, 2]
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(g, net.parameters()))  # zeroed, not added


class Hungry(nn.Module):
    """A net whose training passes over more than ``most`` examples (evaluation: ``most_eval``) raise torch's
    out-of-memory error, as a GPU does for a batch that does not fit."""

    def __init__(self, most: int = 32, most_eval: int = 10**9):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
        self.most, self.most_eval = most, most_eval

    def forward(self, x):
        if len(x) > (self.most if self.training else self.most_eval):
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
                "1.06 GiB is free. If reserved but unallocated memory is large try setting "
                "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.")
        return self.net(x)


def test_running_out_of_memory_stops_with_one_line_a_verdict_and_a_fix_that_trains(tmp_path):
    import json

    import trainlab as tl
    from trainlab.errors import OutOfMemory

    x, y = _batch(400)
    kw = dict(epochs=2, batch_size=64, lr=0.1, out_dir=str(tmp_path), verbose=False, report=False)
    with pytest.raises(OutOfMemory) as err:
        tl.fit(Hungry(32), (x, y), **kw)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        "the machine ran out of memory in epoch 1, update 1 of 6, on passes of 64 examples (CUDA out of memory. "
        "Tried to allocate 2.00 GiB). Set speed.micro_batch=32: the same updates, each in passes of at most 32 "
        "examples, or use a smaller model."), msg
    assert msg.endswith("No epoch had finished, so no checkpoint was written.")
    run_dir = err.value.run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "out_of_memory" and summary["non_finite"] is None
    assert summary["out_of_memory"]["sets"] == {"speed.micro_batch": 32} and summary["out_of_memory"]["step"] == 1
    head = err.value.outcome.diagnosis.findings[0]
    assert head.rule == "out_of_memory" and head.sets == {"speed.micro_batch": 32}
    assert "passes of 64 examples" in head.message and "gradient accumulation" in head.remedy
    fixed = tl.fix(run_dir, model=Hungry(32), data=(x, y), verbose=False, report=False)
    assert fixed.sets == {"speed.micro_batch": 32} and fixed.error is None
    assert len(fixed.outcome.result.history) == 2  # trained both epochs in passes of 32


def test_running_out_of_memory_while_validating_names_eval_batch_size(tmp_path):
    import trainlab as tl
    from trainlab.errors import OutOfMemory

    x, y = _batch(400)  # 40 validation examples: an eval_batch_size of 2048 ran as one batch of 40
    with pytest.raises(OutOfMemory, match=r"^the machine ran out of memory validating epoch 1 in batches of 40 "
                                          r"\(CUDA out of memory\. Tried to allocate 2\.00 GiB\)\. Set "
                                          r"eval_batch_size=20\. No epoch"):
        tl.fit(Hungry(64, most_eval=20), (x, y), epochs=1, batch_size=64, out_dir=str(tmp_path), verbose=False,
               report=False)


def test_running_out_of_memory_on_the_test_set_keeps_the_trained_run_and_names_a_batch_that_scores_it(tmp_path):
    import json

    import trainlab as tl
    from trainlab.errors import OutOfMemory

    x, y = _batch(400)
    xt, yt = _batch(300)  # validation passes of 40 fit; a test pass of 300 does not
    with pytest.warns(RuntimeWarning) as caught:
        run = tl.fit(Hungry(64, most_eval=100), (x, y), test=(xt, yt), epochs=2, batch_size=64,
                     out_dir=str(tmp_path), verbose=False, report=False)
    msg = str(caught[0].message)
    assert "\n" not in msg and msg.startswith(
        "test set not scored: the machine ran out of memory scoring the 300 test examples in batches of 300 (CUDA "
        f"out of memory. Tried to allocate 2.00 GiB). Score them in smaller batches: trainlab evaluate {run.run_dir} "
        "--batch-size 150 (Python: run.evaluate(batch_size=150))."), msg
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["test"] is None and summary["test_error"] == msg.removeprefix("test set not scored: ")
    assert len(run.history) == 2 and (run.run_dir / "checkpoints" / "best.pt").exists()  # the training is kept
    with pytest.raises(OutOfMemory, match=r"in batches of 150 .*--batch-size 75 \(Python: "
                                          r"run\.evaluate\(batch_size=75\)\)\.$"):
        run.evaluate(batch_size=150)
    scored = run.evaluate(batch_size=75)
    assert scored["n"] == 300 and 0 <= scored["test_acc"] <= 1


def test_predict_and_evaluate_go_in_batches_and_name_a_smaller_one_when_memory_runs_out(tmp_path):
    import trainlab as tl
    from trainlab.errors import ConfigError, OutOfMemory

    x, y = _batch(400)
    run = tl.fit(Hungry(64, most_eval=100), (x, y), epochs=1, batch_size=64, out_dir=str(tmp_path),
                 verbose=False, report=False)
    xn, yn = _batch(250)
    with pytest.raises(OutOfMemory, match=r"^the machine ran out of memory predicting 250 examples in batches of "
                                          r"250 \(CUDA out of memory\. Tried to allocate 2\.00 GiB\)\. Pass "
                                          r"predict\(\.\.\., batch_size=125\)\.$"):
        run.predict(xn)
    passes = []
    hook = run.model.register_forward_pre_hook(lambda m, args: passes.append(len(args[0])))
    probs = run.predict(xn, proba=True, batch_size=100)
    hook.remove()
    assert passes == [100, 100, 50] and probs.shape == (250, 3)
    with torch.inference_mode():  # the same numbers as one pass of a model that can take it
        run.model.eval()
        whole = torch.softmax(run.model.net(xn), dim=1)
    assert torch.allclose(probs, whole, atol=1e-6)
    assert torch.equal(run.predict(xn, batch_size=7), probs.argmax(1))
    with pytest.raises(OutOfMemory, match=r"evaluating 250 examples in batches of 250 .*Pass evaluate\(\.\.\., "
                                          r"batch_size=125\)\.$"):
        run.evaluate(xn, yn)
    assert run.evaluate(xn, yn, batch_size=50)["n"] == 250
    for bad in (0, -3, 2.5, True, "64"):
        with pytest.raises(ConfigError, match=r"^batch_size must be a whole number of examples per pass, at least "
                                              r"1\. Got .*\. Pass 256, or leave it out for the run's "
                                              r"eval_batch_size \(2048\)\.$"):
            run.predict(xn, batch_size=bad)


@pytest.mark.parametrize("exc, oom", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                  "allocate 1099511627776 bytes."), True),
    (MemoryError(), True), (RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"), False),
    (ValueError("out of memory"), False),
])
def test_memory_errors_are_told_from_others(exc, oom):
    from trainlab.train.loop import is_out_of_memory

    assert is_out_of_memory(exc) is oom
