"""mixup and CutMix: each training batch mixed with a shuffled copy of itself, labels weighted to match.

mixup (Zhang et al., 2018) takes λ·x + (1 - λ)·x[perm]; CutMix (Yun et al., 2019) pastes a box of x[perm] covering
a share 1 - λ of each image. λ ~ Beta(α, α) once per batch (the papers' reference code), and the loss is
λ·loss(y) + (1 - λ)·loss(y[perm]), with CutMix's λ the exact share of pixels kept after the box is clipped to the
image. With both on, each batch uses one of them, chosen with probability 1/2 (timm's ``switch_prob``).

The targets become (B, 2) class ids, the dominant label first (λ ≥ 1/2 after a swap): the training accuracy of a
mixed batch counts a prediction of that label as right. Every draw comes from one ``torch.Generator`` (the
augmenter's when there is one), which the checkpoints save, so a resumed run mixes as the uninterrupted one did.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from trainlab.config import AugmentConfig

Tensor = torch.Tensor


class Mixer:
    """``mixer(xb, yb)`` → (mixed inputs, (B, 2) label pairs with the dominant one first, its weight λ ≥ 1/2)."""

    def __init__(self, mixup: float, cutmix: float, generator: torch.Generator) -> None:
        self.mixup, self.cutmix, self.generator = mixup, cutmix, generator

    def _beta(self, alpha: float) -> float:
        # torch's Beta sampler reads the global RNG; a NumPy one seeded from our generator keeps the draw ours
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator))
        return float(np.random.default_rng(seed).beta(alpha, alpha))

    def __call__(self, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor, float]:
        g = self.generator
        cut = self.cutmix > 0 and (self.mixup == 0 or bool(torch.rand((), generator=g) < 0.5))
        lam = self._beta(self.cutmix if cut else self.mixup)
        perm = torch.randperm(len(xb), generator=g).to(xb.device)  # (B,) each example's partner
        if cut:
            xb, lam = self._paste_box(xb, perm, lam)
        else:
            xb = xb * lam + xb[perm] * (1 - lam)
        pair = torch.stack([yb, yb[perm]], 1)  # (B, 2)
        if lam < 0.5:  # the partner dominates: its label first
            pair, lam = pair.flip(1), 1 - lam
        return xb, pair, lam

    def _paste_box(self, xb: Tensor, perm: Tensor, lam: float) -> tuple[Tensor, float]:
        """CutMix: a box of side share √(1 - λ) at a uniform centre, clipped to the image, taken from the partner;
        returns the images and the share of pixels left unpasted (the label weight)."""
        h, w = xb.shape[-2:]
        side = math.sqrt(1 - lam)
        cy, cx = (int(torch.randint(0, n, (1,), generator=self.generator)) for n in (h, w))
        hh, hw = int(h * side) // 2, int(w * side) // 2
        y0, y1, x0, x1 = max(cy - hh, 0), min(cy + hh, h), max(cx - hw, 0), min(cx + hw, w)
        out = xb.clone()
        out[..., y0:y1, x0:x1] = xb[perm][..., y0:y1, x0:x1]
        return out, 1 - (y1 - y0) * (x1 - x0) / (h * w)


def make_mixer(cfg: AugmentConfig, generator: torch.Generator) -> Mixer | None:
    """A :class:`Mixer` drawing from ``generator``, or None when mixup and cutmix are both off."""
    if not cfg.mixing:
        return None
    return Mixer(cfg.mixup, cfg.cutmix, generator)
