"""data.augment.mixup / cutmix: batches mixed with a shuffled copy, labels weighted to match."""
from __future__ import annotations

import pytest
import torch

from trainlab.data.mixing import Mixer
from trainlab.registry import LOSSES
from trainlab.train.losses import mixed


def _batch(n=16):
    g = torch.Generator().manual_seed(5)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_mixup_is_a_convex_mix_of_each_example_and_its_partner_with_the_dominant_label_first():
    x, y = _batch()
    mixer = Mixer(0.4, 0.0, torch.Generator().manual_seed(1))
    out, pair, lam = mixer(x, y)
    assert 0.5 <= lam <= 1 and pair.shape == (16, 2) and pair.dtype == torch.int64
    # replay the draws: the same generator gives the partner permutation
    g = torch.Generator().manual_seed(1)
    lam0 = Mixer(0.4, 0.0, g)._beta(0.4)
    perm = torch.randperm(16, generator=g)
    first, second = (x, x[perm]) if lam0 >= 0.5 else (x[perm], x)
    assert torch.allclose(out, first * lam + second * (1 - lam), atol=1e-6)
    labels = torch.stack([y, y[perm]], 1) if lam0 >= 0.5 else torch.stack([y[perm], y], 1)
    assert torch.equal(pair, labels)


def _from_the_batch(out, x):
    """Whether every pixel of ``out`` is the same pixel of some image of ``x`` (pasted, not blended)."""
    return bool((out.unsqueeze(1) == x.unsqueeze(0)).any(1).all())


def test_cutmix_pastes_one_box_and_weighs_the_labels_by_the_pixels_kept():
    x, y = _batch()
    for seed in range(20):
        out, pair, lam = Mixer(0.0, 1.0, torch.Generator().manual_seed(seed))(x, y)
        assert _from_the_batch(out, x)
        changed = (out != x).any(1)  # (B, H, W) pixels taken from the partner (random inputs: all of its box)
        box = changed.any(0)  # one box for the whole batch
        moved = changed.flatten(1).any(1)  # images not paired with themselves
        assert all(torch.equal(changed[i], box) for i in range(len(x)) if moved[i])
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        if len(rows):  # a rectangle
            assert int(box.sum()) == len(rows) * len(cols) == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        kept = 1 - float(box.float().mean())
        assert lam == pytest.approx(max(kept, 1 - kept), abs=1e-6)
        dominant = y if kept >= 0.5 else None
        if dominant is not None:
            assert torch.equal(pair[:, 0], y)


@pytest.mark.parametrize("mixup, cutmix", [(0.2, 0.0), (0.0, 1.0), (0.3, 1.0)])
def test_the_same_generator_state_mixes_the_same_way(mixup, cutmix):
    x, y = _batch()
    a = Mixer(mixup, cutmix, torch.Generator().manual_seed(3))
    b = Mixer(mixup, cutmix, torch.Generator().manual_seed(3))
    for _ in range(3):
        (xa, pa, la), (xb, pb, lb) = a(x, y), b(x, y)
        assert torch.equal(xa, xb) and torch.equal(pa, pb) and la == lb


def test_with_both_on_some_batches_are_mixed_up_and_some_cut():
    x, y = _batch()
    mixer = Mixer(0.3, 1.0, torch.Generator().manual_seed(0))
    kinds = {"cut" if _from_the_batch(out, x) else "mixup" for out, _, _ in (mixer(x, y) for _ in range(20))}
    assert kinds == {"cut", "mixup"}


def test_the_mixed_loss_is_the_cross_entropy_towards_the_mixed_one_hot_target_value_and_gradient():
    g = torch.Generator().manual_seed(2)
    out = torch.randn(10, 4, generator=g, requires_grad=True)
    pair = torch.randint(0, 4, (10, 2), generator=g)
    lam = 0.7
    target = torch.nn.functional.one_hot(pair[:, 0], 4) * lam + torch.nn.functional.one_hot(pair[:, 1], 4) * (1 - lam)
    by_hand = -(target * torch.log_softmax(out, 1)).sum(1).mean()
    ours = mixed(LOSSES.get("cross_entropy"), lam)
    value = ours.fn(out, pair)
    assert torch.allclose(value, by_hand, atol=1e-6)
    g1, = torch.autograd.grad(value, out)
    g2, = torch.autograd.grad(by_hand, out)
    assert torch.allclose(g1, g2, atol=1e-6)
    assert torch.equal(ours.labels(pair), pair[:, 0])
