"""check_fits, build_model's argument checks and count_parameters."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError
from trainlab.models import build_model, check_fits, count_parameters


def test_check_fits_accepts_a_fitting_model() -> None:
    check_fits(build_model(ModelConfig(), (1, 28, 28), 10), (1, 28, 28), 10)


def test_check_fits_runs_its_batch_on_the_models_own_device() -> None:
    # a user's module already on a GPU (trained by an earlier fit, or .cuda()): the batch of zeros was built on the
    # CPU and the module "did not take the data's examples"; "meta" stands in for "cuda" on a machine without one
    check_fits(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)).to("meta"), (2,), 3, custom=True)
    check_fits(nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4)).to("meta"), (2, 2), 4, custom=True)


def test_check_fits_names_both_shapes_for_the_wrong_input_size(mcfg) -> None:
    model = build_model(mcfg(hidden=[100]), (2,), 10)
    with pytest.raises(ConfigError, match=r"^model must take the data's examples of shape \(1, 28, 28\)\. Got an error "
                                          r"on a batch of input shape \(2, 1, 28, 28\): mat1 and mat2 shapes cannot be "
                                          r"multiplied \(2x784 and 2x100\)\. Make the model's input size match") as err:
        check_fits(model, (1, 28, 28), 10)
    assert "\n" not in str(err.value)


def test_check_fits_catches_a_wrong_channel_count(mcfg) -> None:
    model = build_model(mcfg(name="cnn", channels=[4]), (3, 8, 8), 2)
    with pytest.raises(ConfigError, match=r"^checkpoint must take the data's examples of shape \(1, 8, 8\)\. Got an error on a batch of input shape \(2, 1, 8, 8\)"):
        check_fits(model, (1, 8, 8), 2, field_hint="checkpoint")


def test_check_fits_names_the_wrong_output_count(mcfg) -> None:
    model = build_model(mcfg(), (1, 28, 28), 2)
    with pytest.raises(ConfigError, match=r"^model output must be \(batch, 10\) for 10 classes\. Got \(2, 2\)\. "
                                          r"Rebuild the model with n_outputs=10"):
        check_fits(model, (1, 28, 28), 10)


@pytest.mark.parametrize("training", [True, False])
def test_check_fits_restores_modes_and_batchnorm_statistics(mcfg, training: bool) -> None:
    model = build_model(mcfg(hidden=[8], batchnorm=True, dropout=0.5), (4,), 2)
    model.train(training)
    model.get_submodule("layers.0.drop").eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in model.named_modules()}
    norm = model.get_submodule("layers.0.norm")
    stats = (norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone())
    check_fits(model, (4,), 2)
    assert {name: m.training for name, m in model.named_modules()} == before
    assert all(torch.equal(a, b) for a, b in zip(stats, (norm.running_mean, norm.running_var,
                                                        norm.num_batches_tracked)))
    with pytest.raises(ConfigError):
        check_fits(model, (5,), 2)
    assert {name: m.training for name, m in model.named_modules()} == before  # restored after a failure too


@pytest.mark.parametrize("shape, n_outputs, field", [((), 2, "input_shape"), ((0, 3), 2, "input_shape"),
                                                     ((2,), 0, "n_outputs")])
def test_build_model_rejects_bad_shapes(mcfg, shape: tuple, n_outputs: int, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} must be "):
        build_model(mcfg(), shape, n_outputs)


def test_count_parameters_counts_trainable_scalars() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert count_parameters(model) == 3 * 4 + 4 + 4 * 2 + 2
    model[0].requires_grad_(False)
    assert count_parameters(model) == 4 * 2 + 2


def test_a_module_with_nan_or_inf_weights_is_one_line_before_training(tmp_path) -> None:
    import trainlab as tl

    m = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
        m[2].bias[0] = float("inf")
    x = torch.randn(200, 2)
    with pytest.raises(ConfigError, match=r"^model must start from finite weights\. Got 1 NaN/Inf of the 32 values of "
                                          r"0\.weight \(and 1 more parameter\(s\)\)\. Pass a freshly built module") as e:
        tl.fit(m, (x, (x[:, 0] > 0).long()), epochs=2, batch_size=32, out_dir=str(tmp_path / "runs"), verbose=False)
    assert "\n" not in str(e.value) and not (tmp_path / "runs").exists()  # was: torch.histc's RuntimeError
