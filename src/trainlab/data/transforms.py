"""Input standardisation (fit on the training split only) and batch-vectorised image augmentation.

The augmenter draws from its own ``torch.Generator`` (``.generator``) so the engine can save and
restore its state for an exact resume; it never touches the global RNG.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainlab.config import AugmentConfig
from trainlab.errors import ConfigError, DataError, problem

__all__ = ["Standardizer", "Augmenter", "AugmentParams", "make_augmenter"]

# A feature whose training std is below this is treated as constant: it is centred but not scaled,
# because dividing by ~0 would turn float noise in val/test into huge inputs.
_MIN_STD = 1e-6


class Standardizer:
    """``(x - mean_) / std_`` with statistics per channel for (N, C, H, W) and per feature for (N, D)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean_ = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std_ = torch.as_tensor(std, dtype=torch.float32).flatten()

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Standardizer":
        """Statistics of ``x`` (N, D) or (N, C, ...) over every axis but the feature/channel axis 1."""
        if x.ndim < 2 or len(x) == 0:
            raise DataError(problem("inputs", "a non-empty batch shaped (N, D) or (N, C, H, W)",
                                    tuple(x.shape), "Standardise a training split, not a single example"))
        dims = [0] + list(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        count = x.numel() // x.shape[1]
        # Two passes in float64 over row chunks: exact enough for millions of pixels without a
        # float64 copy of the whole split (CIFAR-10 would need 1.2 GB).
        rows = max(1, (1 << 22) // max(1, x[0].numel()))
        total = sum(x[s:s + rows].sum(dim=dims, dtype=torch.float64) for s in range(0, len(x), rows))
        mean = total / count
        sq = sum(((x[s:s + rows].double() - mean.view(shape)) ** 2).sum(dim=dims) for s in range(0, len(x), rows))
        std = torch.sqrt(sq / count)
        std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
        return cls(mean, std)

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.ndim < 2 or x.shape[1] != len(self.mean_):
            raise DataError(problem("inputs", f"shaped (N, {len(self.mean_)}, ...) like the training data",
                                    tuple(x.shape), "Pass data with the same features/channels"))
        return (1, len(self.mean_)) + (1,) * (x.ndim - 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised float32 copy of ``x``."""
        shape = self._shape(x)
        mean = self.mean_.to(x.device).view(shape)
        std = self.std_.to(x.device).view(shape)
        return (x.float() - mean) / std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`__call__` (e.g. to plot inputs in their original units)."""
        shape = self._shape(z)
        return z.float() * self.std_.to(z.device).view(shape) + self.mean_.to(z.device).view(shape)

    def state_dict(self) -> dict[str, list[float]]:
        """JSON-able statistics, saved with the run so ``predict`` applies the same transform."""
        return {"mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Standardizer":
        """Rebuild from :meth:`state_dict` output."""
        return cls(torch.tensor(state["mean"]), torch.tensor(state["std"]))

    def __repr__(self) -> str:
        return f"Standardizer(features={len(self.mean_)})"


def _check_images(xb: torch.Tensor) -> None:
    if xb.ndim != 4:
        raise ConfigError(problem("data.augment", "used only with image batches shaped (B, C, H, W)",
                                  tuple(xb.shape), "Turn augmentation off for toy and tabular datasets"))


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample random choices for one batch. Shifts are (B,) int64 in pixels, ``flip`` (B,) bool.

    ``crop_dy/dx`` ∈ [-p, p] is the crop offset relative to the centred crop (a crop at padded offset
    ``o`` ∈ [0, 2p] reads source pixel ``i + o - p``); ``shift_dy/dx`` ∈ [-t, t] reads pixel ``i + s``.
    """

    crop_dy: torch.Tensor
    crop_dx: torch.Tensor
    flip: torch.Tensor
    shift_dy: torch.Tensor
    shift_dx: torch.Tensor


class Augmenter:
    """Random crop after zero padding, horizontal flip and zero-fill translation, in that order,
    applied to a whole (B, C, H, W) batch with one gather (no per-sample Python)."""

    def __init__(self, cfg: AugmentConfig, generator: torch.Generator) -> None:
        self.cfg = cfg
        self.generator = generator

    def sample(self, batch: int) -> AugmentParams:
        """Draw the random choices for ``batch`` examples (only for the enabled transforms)."""
        g, zero = self.generator, torch.zeros(batch, dtype=torch.int64)
        p, t = self.cfg.crop_padding, self.cfg.translate
        crop_dy = torch.randint(-p, p + 1, (batch,), generator=g) if p else zero
        crop_dx = torch.randint(-p, p + 1, (batch,), generator=g) if p else zero
        flip = (torch.rand(batch, generator=g) < 0.5) if self.cfg.flip else torch.zeros(batch, dtype=torch.bool)
        shift_dy = torch.randint(-t, t + 1, (batch,), generator=g) if t else zero
        shift_dx = torch.randint(-t, t + 1, (batch,), generator=g) if t else zero
        return AugmentParams(crop_dy, crop_dx, flip, shift_dy, shift_dx)

    def apply(self, xb: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """``xb`` (B, C, H, W) transformed with the given per-sample choices; same dtype and shape."""
        _check_images(xb)
        B, C, H, W = xb.shape
        dev = xb.device
        # Trace every output pixel back to its source pixel through translate ← flip ← crop. A pixel is
        # zero if it fell outside the image at either stage (crop padding or translation fill).
        i = torch.arange(H, device=dev).view(1, H)
        j = torch.arange(W, device=dev).view(1, W)
        i_mid = i + params.shift_dy.to(dev).view(B, 1)  # (B, H) row in the flipped crop
        j_mid = j + params.shift_dx.to(dev).view(B, 1)  # (B, W)
        ok_i, ok_j = (i_mid >= 0) & (i_mid < H), (j_mid >= 0) & (j_mid < W)
        j_mid = torch.where(params.flip.to(dev).view(B, 1), W - 1 - j_mid, j_mid)
        i_src = i_mid + params.crop_dy.to(dev).view(B, 1)
        j_src = j_mid + params.crop_dx.to(dev).view(B, 1)
        ok_i &= (i_src >= 0) & (i_src < H)
        ok_j &= (j_src >= 0) & (j_src < W)

        flat = i_src.clamp(0, H - 1).unsqueeze(2) * W + j_src.clamp(0, W - 1).unsqueeze(1)  # (B, H, W)
        out = torch.gather(xb.reshape(B, C, H * W), 2, flat.view(B, 1, H * W).expand(B, C, H * W))
        valid = (ok_i.unsqueeze(2) & ok_j.unsqueeze(1)).view(B, 1, H * W)
        return out.masked_fill_(~valid, 0).view(B, C, H, W)

    def __call__(self, xb: torch.Tensor) -> torch.Tensor:
        """A freshly augmented copy of the batch ``xb`` (B, C, H, W)."""
        _check_images(xb)  # before drawing, so a bad call does not advance the generator
        return self.apply(xb, self.sample(len(xb)))

    def __repr__(self) -> str:
        c = self.cfg
        return f"Augmenter(crop_padding={c.crop_padding}, flip={c.flip}, translate={c.translate})"


def make_augmenter(cfg: AugmentConfig, seed: int) -> Augmenter | None:
    """An :class:`Augmenter` with its own generator seeded by ``seed``; ``None`` when nothing is on."""
    if not (cfg.crop_padding or cfg.flip or cfg.translate):
        return None
    return Augmenter(cfg, torch.Generator().manual_seed(int(seed)))
