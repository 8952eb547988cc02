"""A small residual network: convolutional for images, a residual MLP for flat data.

Images (C, H, W): ``stem`` (3×3 conv → BN → act) → ``stages.<i>.<j>`` BasicBlocks, ``model.blocks`` per
entry of ``model.channels``, stride 2 at the start of every stage after the first → global average
``pool`` → ``head``. BatchNorm is always on here: it is part of what makes a ResNet train.
Flat input: ``stem`` Linear(in, width) → ``blocks.<j>`` residual blocks x + f(x) → ``head``, where
width is ``model.hidden[0]`` (64 when empty) and f follows ``model.batchnorm`` and ``model.activation``.
"""
from __future__ import annotations

from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError, problem
from trainlab.models.activations import make_activation
from trainlab.models.blocks import BasicBlock, ResidualDenseBlock, named_sequential
from trainlab.models.zoo import flat_size
from trainlab.registry import MODELS

__all__ = ["build_resnet", "DEFAULT_FLAT_WIDTH"]

DEFAULT_FLAT_WIDTH = 64  # residual MLP width when model.hidden is empty


@MODELS.register("resnet", "small ResNet (BasicBlocks, model.blocks per stage of model.channels); "
                           "a residual MLP on flat data")
def build_resnet(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Image input (C, H, W) → convolutional ResNet; any other shape → residual MLP on the flattened input."""
    if len(input_shape) == 3:
        return _image_resnet(cfg, input_shape[0], n_outputs)
    return _flat_resnet(cfg, flat_size(input_shape), n_outputs)


def _image_resnet(cfg: ModelConfig, c_in: int, n_outputs: int) -> nn.Sequential:
    if not cfg.channels:
        raise ConfigError(problem("model.channels", "at least one stage width for model.name=resnet",
                                  cfg.channels, "Set e.g. model.channels=[16, 32, 64]"))
    width = cfg.channels[0]
    stem = named_sequential(conv=nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                            norm=nn.BatchNorm2d(width), act=make_activation(cfg.activation))
    stages = []
    for i, c_out in enumerate(cfg.channels):
        # Halve H and W when entering each stage after the first, as the standard ResNet does.
        strides = [2 if i > 0 else 1] + [1] * (cfg.blocks - 1)
        blocks = []
        for stride in strides:
            blocks.append(BasicBlock(width, c_out, stride, cfg.activation))
            width = c_out
        stages.append(nn.Sequential(*blocks))
    return named_sequential(stem=stem, stages=nn.Sequential(*stages),
                            pool=nn.AdaptiveAvgPool2d(1),  # (B, C, H', W') → (B, C, 1, 1)
                            flatten=nn.Flatten(), head=nn.Linear(width, n_outputs))


def _flat_resnet(cfg: ModelConfig, n_in: int, n_outputs: int) -> nn.Sequential:
    width = cfg.hidden[0] if cfg.hidden else DEFAULT_FLAT_WIDTH
    blocks = nn.Sequential(*[ResidualDenseBlock(width, cfg) for _ in range(cfg.blocks)])
    return named_sequential(flatten=nn.Flatten(), stem=nn.Linear(n_in, width), blocks=blocks,
                            head=nn.Linear(width, n_outputs))
