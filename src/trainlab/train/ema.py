"""An exponential moving average of a model's weights (``ema.decay``), kept beside the weights training updates.

After every update each averaged tensor moves a share 1 - d towards the trained one, avg ← d·avg + (1 - d)·w,
for the parameters and the floating-point buffers (BatchNorm's running statistics); integer buffers (BatchNorm's
update count) are copied. As TensorFlow's ``ExponentialMovingAverage(num_updates=t)``, the early updates use
d_t = min(d, (1 + t) / (10 + t)) unless ``ema.warmup`` is false, so the average is not dominated by the untrained
weights for the first ~1/(1 - d) updates. The same average as torch's ``AveragedModel(model,
multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True)`` without the warm-up, Keras' ``use_ema``, timm's
``ModelEmaV2`` and Lightning's ``EMAWeightAveraging``.

The run validates, checkpoints (``model`` in every checkpoint; the trained weights as ``train_model`` for
resuming), tests, predicts and exports with the average; the updates themselves use the trained weights.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """``model``'s weights averaged over its updates; ``update()`` after each one, ``model`` the averaged copy."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.model = copy.deepcopy(model)  # same architecture and device, built-in or the user's own module
        self.model.requires_grad_(False)
        self.model.eval()
        live = dict(model.named_parameters()) | dict(model.named_buffers())
        mine = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        self._avg: list[torch.Tensor] = []  # averaged tensors ...
        self._live: list[torch.Tensor] = []  # ... and the trained ones they follow
        self._copied: list[tuple[torch.Tensor, torch.Tensor]] = []  # (averaged, live) integer buffers
        for name, t in live.items():
            if t.is_floating_point():
                self._avg.append(mine[name])
                self._live.append(t)
            else:
                self._copied.append((mine[name], t))

    def decay_now(self) -> float:
        """The share kept at the next update: ``decay``, or less during the warm-up."""
        t = self.updates
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the weights after an update: one fused lerp over every tensor."""
        if self._avg:
            torch._foreach_lerp_(self._avg, self._live, 1 - self.decay_now())
        for avg, live in self._copied:
            avg.copy_(live)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_state_dict(self, state: dict[str, Any], weights: dict[str, Any]) -> None:
        """Continue from a checkpoint: its update count and the averaged weights (the checkpoint's ``model``)."""
        self.model.load_state_dict(weights)
        self.updates = int(state.get("updates", 0))
