"""The building blocks the model zoo is assembled from, each with named parts for readable hook names.

A dense block is ``linear → (norm) → act → (drop)``, a conv block ``conv → (norm) → act → (pool) → (drop)``.
A hook on a block sees that layer's output after its activation: what per-layer diagnostics want.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.models.activations import make_activation

__all__ = ["named_sequential", "dense_block", "dense_stack", "conv_block", "conv1d_block", "BasicBlock", "ResidualDenseBlock"]


def named_sequential(**parts: nn.Module | None) -> nn.Sequential:
    """An ``nn.Sequential`` whose children are named by the keywords; ``None`` and empty containers are left out."""
    kept = OrderedDict((name, m) for name, m in parts.items()
                       if m is not None and not (isinstance(m, nn.Sequential) and len(m) == 0))
    return nn.Sequential(kept)


def dense_block(n_in: int, n_out: int, cfg: ModelConfig, activation: str | None = None) -> nn.Sequential:
    """``linear → (batchnorm) → activation → (dropout)`` mapping (B, n_in) → (B, n_out).

    ``activation``: a registered name; None: ``cfg.activation``."""
    return named_sequential(
        # A bias before BatchNorm is redundant: BN subtracts the mean and adds its own shift.
        linear=nn.Linear(n_in, n_out, bias=not cfg.batchnorm),
        norm=nn.BatchNorm1d(n_out) if cfg.batchnorm else None,
        act=make_activation(activation or cfg.activation),
        drop=nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None,
    )


def dense_stack(n_in: int, hidden: list[int], cfg: ModelConfig,
                activations: list[str] | None = None) -> tuple[nn.Sequential, int]:
    """One dense block per entry of ``hidden`` (``activations[i]`` in block i; None: ``cfg.activation`` in all);
    returns the stack and its output width."""
    acts = activations if activations is not None else [cfg.activation] * len(hidden)
    assert len(acts) == len(hidden), "one activation per hidden layer (ModelConfig validates this)"
    blocks = []
    for width, act in zip(hidden, acts):
        blocks.append(dense_block(n_in, width, cfg, act))
        n_in = width
    return nn.Sequential(*blocks), n_in


def conv_block(c_in: int, c_out: int, cfg: ModelConfig) -> nn.Sequential:
    """``conv(same padding) → (batchnorm) → act → (pool 2) → (dropout)``: (B, c_in, H, W) → (B, c_out, H', W')."""
    pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "none": None}[cfg.pool]
    return named_sequential(
        conv=nn.Conv2d(c_in, c_out, cfg.kernel, padding=cfg.kernel // 2, bias=not cfg.batchnorm),
        norm=nn.BatchNorm2d(c_out) if cfg.batchnorm else None,
        act=make_activation(cfg.activation),
        pool=pool,
        drop=nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None,
    )


def conv1d_block(c_in: int, c_out: int, cfg: ModelConfig) -> nn.Sequential:
    """``conv1d(stride 2) → (batchnorm) → act → (dropout)``: (B, c_in, L) → (B, c_out, ⌈L/2⌉).

    The stride halves the length instead of a pooling layer, as in the MNIST-1D paper's CNN."""
    return named_sequential(
        conv=nn.Conv1d(c_in, c_out, cfg.kernel, stride=2, padding=cfg.kernel // 2, bias=not cfg.batchnorm),
        norm=nn.BatchNorm1d(c_out) if cfg.batchnorm else None,
        act=make_activation(cfg.activation),
        drop=nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None,
    )


class BasicBlock(nn.Module):
    """ResNet basic block: ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))`` with 3×3 convs.

    The shortcut is the identity when shape is kept, else a strided 1×1 conv + BN projection.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), norm=nn.BatchNorm2d(c_out)))
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))  # (B, c_out, H/stride, W/stride)
        return self.act2(branch + self.shortcut(x))


class ResidualDenseBlock(nn.Module):
    """``x + f(x)`` with ``f = linear → (batchnorm) → act → linear``: (B, width) → (B, width).

    The identity path carries the gradient past ``f``, so deep stacks of saturating activations still train.
    """

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.branch = named_sequential(
            linear1=nn.Linear(width, width, bias=not cfg.batchnorm),
            norm=nn.BatchNorm1d(width) if cfg.batchnorm else None,
            act=make_activation(cfg.activation),
            linear2=nn.Linear(width, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)  # (B, width)
