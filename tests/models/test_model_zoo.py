"""Structure of each model: exact layer lists for the classic recipes, options, residual paths, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError
from trainlab.models import build_model, count_parameters
from trainlab.models.blocks import BasicBlock, ResidualDenseBlock


def layer_list(model: nn.Module) -> list[tuple]:
    """Leaf modules as (type name, key sizes): the structure a reader would draw."""
    out = []
    for m in model.modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.Linear):
            out.append(("Linear", m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d):
            out.append(("Conv2d", m.in_channels, m.out_channels, m.kernel_size[0], m.padding[0]))
        else:
            out.append((type(m).__name__,))
    return out


def test_default_recipe_is_the_classic_mlp() -> None:
    model = build_model(ModelConfig(), (1, 28, 28), 10)
    assert layer_list(model) == [("Flatten",), ("Linear", 784, 256), ("ReLU",), ("Linear", 256, 10)]
    names = [n for n, _ in model.named_modules()]
    assert {"flatten", "layers.0", "layers.0.linear", "layers.0.act", "head"} <= set(names)
    assert count_parameters(model) == 784 * 256 + 256 + 256 * 10 + 10


def test_mlp_without_hidden_layers_is_linear(mcfg) -> None:
    model = build_model(mcfg(hidden=[]), (1, 28, 28), 10)
    assert layer_list(model) == [("Flatten",), ("Linear", 784, 10)]
    assert layer_list(build_model(mcfg(name="linear"), (1, 28, 28), 10)) == layer_list(model)


def test_mlp_stacks_hidden_layers_in_order(mcfg) -> None:
    model = build_model(mcfg(hidden=[64, 32], activation="tanh"), (5,), 3)
    assert layer_list(model) == [("Flatten",), ("Linear", 5, 64), ("Tanh",), ("Linear", 64, 32), ("Tanh",),
                                 ("Linear", 32, 3)]


def test_cifar_tutorial_net_is_expressible(mcfg) -> None:
    cfg = mcfg(name="cnn", channels=[32, 32, 64], kernel=5, pool="max", hidden=[64], activation="linear")
    model = build_model(cfg, (3, 32, 32), 10)
    shaped = [layer for layer in layer_list(model) if layer[0] in ("Conv2d", "Linear", "MaxPool2d")]
    assert shaped == [("Conv2d", 3, 32, 5, 2), ("MaxPool2d",), ("Conv2d", 32, 32, 5, 2), ("MaxPool2d",),
                      ("Conv2d", 32, 64, 5, 2), ("MaxPool2d",), ("Linear", 1024, 64), ("Linear", 64, 10)]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("pool, pool_type, side", [("max", nn.MaxPool2d, 4), ("avg", nn.AvgPool2d, 4),
                                                   ("none", None, 8)])
def test_cnn_pool_choice(mcfg, pool: str, pool_type, side: int) -> None:
    model = build_model(mcfg(name="cnn", channels=[4], pool=pool, hidden=[]), (1, 8, 8), 3)
    block = model.get_submodule("features.0")
    assert (pool_type is None) == (not hasattr(block, "pool"))
    if pool_type is not None:
        assert isinstance(block.pool, pool_type)
    assert model.head.in_features == 4 * side * side


def test_mlp_batchnorm_and_dropout_present_when_asked(mcfg) -> None:
    model = build_model(mcfg(hidden=[16], batchnorm=True, dropout=0.5), (4,), 2)
    block = model.get_submodule("layers.0")
    assert isinstance(block.norm, nn.BatchNorm1d) and isinstance(block.drop, nn.Dropout)
    assert block.drop.p == 0.5
    assert block.linear.bias is None  # BN's shift makes it redundant
    plain = build_model(mcfg(hidden=[16]), (4,), 2).get_submodule("layers.0")
    assert not hasattr(plain, "norm") and not hasattr(plain, "drop")


def test_cnn_batchnorm_and_dropout_present_when_asked(mcfg) -> None:
    model = build_model(mcfg(name="cnn", channels=[4], batchnorm=True, dropout=0.2), (1, 8, 8), 2)
    block = model.get_submodule("features.0")
    assert isinstance(block.norm, nn.BatchNorm2d) and isinstance(block.drop, nn.Dropout)
    assert isinstance(model.get_submodule("layers.0.norm"), nn.BatchNorm1d)


def test_dropout_is_inactive_in_eval_mode(mcfg) -> None:
    x = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    with_drop = build_model(mcfg(hidden=[32], dropout=0.5, init="he"), (10,), 3, seed=4)
    without = build_model(mcfg(hidden=[32], dropout=0.0, init="he"), (10,), 3, seed=4)
    with_drop.eval()
    without.eval()
    torch.testing.assert_close(with_drop(x), without(x))
    with_drop.train()
    assert not torch.allclose(with_drop(x), without(x))


def test_perceptron_is_one_linear_unit(mcfg) -> None:
    model = build_model(mcfg(name="perceptron"), (2,), 1)
    assert layer_list(model) == [("Flatten",), ("Linear", 2, 1)]


def test_perceptron_rejects_more_than_one_output_and_names_the_loss_to_use(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"^model\.name perceptron must be paired with a one-score loss on 2 classes.*"
                                          r"Got a loss that needs 10 outputs\. Use loss\.name=perceptron"):
        build_model(mcfg(name="perceptron"), (2,), 10)


def test_perceptron_with_the_default_loss_trains_with_the_perceptron_loss(make_cfg) -> None:
    from trainlab.train.run import train

    # was: "must be used with 2 classes … Got n_outputs=2" on a 2-class set
    result = train(make_cfg(**{"model.name": "perceptron", "data.name": "gauss", "epochs": 3}), verbose=False)
    assert result.prepared.loss.name == "perceptron" and result.history[-1]["val_acc"] > 0.8


def test_cnn_on_flat_input_is_a_config_error(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"^model\.name cnn needs image input \(C, H, W\)\. "
                                          r"Got input shape \(2,\)\. Use mlp for flat data\.$"):
        build_model(mcfg(name="cnn"), (2,), 2)


def test_cnn_pooling_below_one_pixel_names_channels(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"^model\.channels must be at most 3 conv blocks .* 8×8 images.*"
                                          r"Got \[4, 4, 4, 4\]"):
        build_model(mcfg(name="cnn", channels=[4, 4, 4, 4]), (1, 8, 8), 2)
    build_model(mcfg(name="cnn", channels=[4, 4, 4, 4], pool="none"), (1, 8, 8), 2)  # no pooling, no limit


def test_cnn_and_resnet_need_channels(mcfg) -> None:
    for name in ("cnn", "resnet"):
        with pytest.raises(ConfigError, match=r"^model\.channels must be at least one"):
            build_model(mcfg(name=name, channels=[]), (1, 8, 8), 2)


def test_unknown_model_name_suggests_the_closest(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"model\.name must be one of .*Did you mean 'mlp'"):
        build_model(mcfg(name="mpl"), (2,), 2)


# --- resnet ----------------------------------------------------------------------------------------


def test_image_resnet_stages_downsample_and_project(mcfg) -> None:
    model = build_model(mcfg(name="resnet", channels=[8, 16, 32], blocks=2), (3, 16, 16), 10)
    shapes = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape)
        return hook

    for name in ("stem", "stages.0", "stages.1", "stages.2"):
        model.get_submodule(name).register_forward_hook(record(name))
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    assert shapes == {"stem": (2, 8, 16, 16), "stages.0": (2, 8, 16, 16), "stages.1": (2, 16, 8, 8),
                      "stages.2": (2, 32, 4, 4)}
    assert isinstance(model.get_submodule("stages.0.0.shortcut"), nn.Identity)
    projection = model.get_submodule("stages.1.0.shortcut.conv")
    assert projection.kernel_size == (1, 1) and projection.stride == (2, 2)
    assert isinstance(model.get_submodule("stages.1.1.shortcut"), nn.Identity)
    assert len(model.get_submodule("stages.2")) == 2
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d) and model.head.in_features == 32


def test_basic_block_adds_the_shortcut() -> None:
    block = BasicBlock(4, 4, stride=1, activation="relu").eval()
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    branch = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(block(x), torch.relu(branch + x))
    with torch.no_grad():
        block.bn2.weight.zero_()  # residual branch outputs 0 → the block is the identity on x ≥ 0
    x = x.relu()
    torch.testing.assert_close(block(x), x)


def test_residual_dense_block_adds_the_input(mcfg) -> None:
    block = ResidualDenseBlock(6, mcfg(activation="sigmoid"))
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(block(x), x + block.branch(x))
    with torch.no_grad():
        block.branch.linear2.weight.zero_()
        block.branch.linear2.bias.zero_()
    torch.testing.assert_close(block(x), x)


def test_flat_resnet_width_and_depth(mcfg) -> None:
    model = build_model(mcfg(name="resnet", hidden=[], blocks=3, activation="tanh"), (2,), 3)
    assert (model.stem.in_features, model.stem.out_features) == (2, 64)
    assert len(model.blocks) == 3 and all(isinstance(b, ResidualDenseBlock) for b in model.blocks)
    assert isinstance(model.get_submodule("blocks.0.branch.act"), nn.Tanh)
    assert build_model(mcfg(name="resnet", hidden=[32]), (2,), 3).stem.out_features == 32


def test_residual_connections_keep_gradients_alive_in_deep_sigmoid_nets(mcfg) -> None:
    # The lesson this model exists for: 16 sigmoid layers shrink the first layer's gradient by ~0.25 per
    # layer; the identity path of the residual MLP carries it through undiminished.
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    mlp = build_model(mcfg(hidden=[32] * 16, activation="sigmoid", init="xavier"), (2,), 2)
    res = build_model(mcfg(name="resnet", hidden=[32], blocks=16, activation="sigmoid", init="xavier"), (2,), 2)
    mlp(x).square().mean().backward()
    res(x).square().mean().backward()
    first_mlp = mlp.get_submodule("layers.0.linear").weight.grad.norm()
    first_res = res.stem.weight.grad.norm()
    assert first_res > 1000 * first_mlp


def test_conv1d_is_the_mnist1d_cnn(mcfg) -> None:
    model = build_model(mcfg(name="conv1d", channels=[25, 25, 25], hidden=[], kernel=3), (1, 40), 10)
    convs = [(m.in_channels, m.out_channels, m.stride[0]) for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert convs == [(1, 25, 2), (25, 25, 2), (25, 25, 2)]
    assert model.get_submodule("head").in_features == 25 * 5  # 40 → 20 → 10 → 5 positions
    assert model(torch.zeros(3, 1, 40)).shape == (3, 10)


def test_conv1d_reads_a_flat_sequence_as_one_channel(mcfg) -> None:
    cfg = mcfg(name="conv1d", channels=[4], hidden=[], kernel=3)
    flat, channel = build_model(cfg, (40,), 3, seed=1), build_model(cfg, (1, 40), 3, seed=1)
    x = torch.randn(2, 40)
    assert torch.allclose(flat(x), channel(x[:, None, :]))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 4, 4, 4)])
def test_conv1d_refuses_images_in_one_line(mcfg, shape) -> None:
    with pytest.raises(ConfigError, match=r"model.name conv1d needs sequence input \(L,\) or \(C, L\)\. Got input shape"):
        build_model(mcfg(name="conv1d", channels=[4]), shape, 3)


def test_conv1d_needs_a_conv_block(mcfg) -> None:
    with pytest.raises(ConfigError, match=r"model.channels must be at least one conv block for model.name=conv1d"):
        build_model(mcfg(name="conv1d", channels=[]), (1, 40), 3)
