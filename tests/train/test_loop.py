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
