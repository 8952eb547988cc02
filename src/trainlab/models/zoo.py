"""The plain feed-forward models: perceptron, linear (softmax/linear regression), mlp, cnn and conv1d.

Every builder is ``builder(cfg, input_shape, n_outputs) -> nn.Module`` (``input_shape`` without the batch
dimension) and returns an ``nn.Sequential`` of named parts ending in ``head``, the output ``nn.Linear``:
``flatten``, ``layers.<i>.{linear,norm,act,drop}`` and, for cnn, ``features.<i>.{conv,norm,act,pool,drop}``
(conv1d: ``features.<i>.{conv,norm,act,drop}``).
Weights are left for :func:`trainlab.models.init.init_weights`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError, problem
from trainlab.models.blocks import conv1d_block, conv_block, dense_stack, named_sequential
from trainlab.registry import MODELS

__all__ = ["build_perceptron", "build_linear", "build_mlp", "build_cnn", "build_conv1d", "image_shape", "sequence_shape",
           "flat_size"]


def flat_size(input_shape: tuple[int, ...]) -> int:
    """Number of features one example has once flattened, e.g. (1, 28, 28) → 784."""
    return math.prod(input_shape)


def image_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``input_shape`` as (C, H, W), or a ConfigError saying ``model`` needs image input."""
    if len(input_shape) != 3:
        raise ConfigError(f"model.name {model} needs image input (C, H, W). Got input shape {tuple(input_shape)}. "
                          "Use mlp for flat data.")
    c, h, w = input_shape
    return c, h, w


def sequence_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``input_shape`` as (C, L): (L,) is one channel; a ConfigError saying ``model`` needs sequence input otherwise."""
    if len(input_shape) == 1:
        return 1, input_shape[0]
    if len(input_shape) != 2:
        raise ConfigError(f"model.name {model} needs sequence input (L,) or (C, L). Got input shape "
                          f"{tuple(input_shape)}. Use cnn for images, mlp for anything flattened.")
    c, length = input_shape
    return c, length


@MODELS.register("perceptron", "Rosenblatt's perceptron: one linear unit whose sign is the class (2 classes only)")
def build_perceptron(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Flatten → Linear(in, 1): a raw score (B, 1); the loss and prediction read its sign."""
    if n_outputs != 1:
        raise ConfigError(f"model.name perceptron must be paired with a one-score loss on 2 classes (its one output's "
                          f"sign is the class). Got a loss that needs {n_outputs} outputs. Use loss.name=perceptron (or "
                          "hinge, bce) on 2 classes, or model.name=linear / mlp for more classes or for regression.")
    return named_sequential(flatten=nn.Flatten(), head=nn.Linear(flat_size(input_shape), 1))


@MODELS.register("linear", "one linear layer: softmax regression (cross-entropy) or linear regression (mse)")
def build_linear(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Flatten → Linear(in, n_outputs): (B, *input_shape) → (B, n_outputs)."""
    return named_sequential(flatten=nn.Flatten(), head=nn.Linear(flat_size(input_shape), n_outputs))


@MODELS.register("mlp", "multilayer perceptron: model.hidden layers of linear → (batchnorm) → act → (dropout), "
                        "act per layer from model.activations if given")
def build_mlp(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Flatten → one dense block per ``cfg.hidden`` → Linear(last, n_outputs); ``hidden: []`` is the linear model.

    Block i's activation is ``cfg.activations[i]`` when that list is given, else ``cfg.activation``."""
    layers, width = dense_stack(flat_size(input_shape), cfg.hidden, cfg, cfg.hidden_activations())
    return named_sequential(flatten=nn.Flatten(), layers=layers, head=nn.Linear(width, n_outputs))


def _check_pooling(cfg: ModelConfig, h: int, w: int) -> None:
    # Each pooled block halves H and W (rounding down); below 1 px there is nothing left to pool.
    if cfg.pool == "none":
        return
    max_blocks = int(math.log2(min(h, w)))
    if len(cfg.channels) > max_blocks:
        raise ConfigError(problem(
            "model.channels", f"at most {max_blocks} conv blocks with model.pool={cfg.pool} on {h}×{w} images "
            "(each block halves the size)", cfg.channels,
            "Drop entries of model.channels, or set model.pool=none"))


def _feature_size(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    # A dry forward is simpler and safer than shape arithmetic; eval mode so BatchNorm's running
    # statistics are not touched and Dropout draws nothing.
    features.eval()
    with torch.no_grad():
        out = features(torch.zeros(1, *input_shape))  # (1, C', H', W')
    features.train()
    return out[0].numel()


@MODELS.register("cnn", "convnet: model.channels conv blocks (conv → (batchnorm) → activation → pool → (dropout)), "
                        "then an mlp head over model.hidden")
def build_cnn(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Conv blocks per ``cfg.channels`` over (B, C, H, W) → Flatten → dense blocks per ``cfg.hidden`` → head."""
    c, h, w = image_shape("cnn", input_shape)
    if not cfg.channels:
        raise ConfigError(problem("model.channels", "at least one conv block for model.name=cnn", cfg.channels,
                                  "Set e.g. model.channels=[32, 64], or use model.name=mlp"))
    _check_pooling(cfg, h, w)
    sizes = [c, *cfg.channels]
    features = nn.Sequential(*[conv_block(c_in, c_out, cfg) for c_in, c_out in zip(sizes, sizes[1:])])
    layers, width = dense_stack(_feature_size(features, input_shape), cfg.hidden, cfg)
    return named_sequential(features=features, flatten=nn.Flatten(), layers=layers,
                            head=nn.Linear(width, n_outputs))


@MODELS.register("conv1d", "1-D convnet for sequences (MNIST-1D): model.channels conv1d blocks of stride 2 (conv → "
                           "(batchnorm) → activation → (dropout)), then an mlp head over model.hidden")
def build_conv1d(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Stride-2 conv1d blocks per ``cfg.channels`` over (B, C, L) (or (B, L) as one channel) → Flatten → dense
    blocks per ``cfg.hidden`` → head. MNIST-1D's CNN: ``channels=[25, 25, 25], hidden=[]`` on length 40."""
    c, length = sequence_shape("conv1d", input_shape)
    if not cfg.channels:
        raise ConfigError(problem("model.channels", "at least one conv block for model.name=conv1d", cfg.channels,
                                  "Set e.g. model.channels=[25, 25, 25], or use model.name=mlp"))
    sizes = [c, *cfg.channels]
    features = nn.Sequential(*[conv1d_block(c_in, c_out, cfg) for c_in, c_out in zip(sizes, sizes[1:])])
    layers, width = dense_stack(_feature_size(features, (c, length)), cfg.hidden, cfg)
    # (B, L) → (B, 1, L) for flat sequences; (C, L) examples go in as they are
    channel = nn.Unflatten(1, (1, length)) if len(input_shape) == 1 else None
    return named_sequential(channel=channel, features=features, flatten=nn.Flatten(), layers=layers,
                            head=nn.Linear(width, n_outputs))
