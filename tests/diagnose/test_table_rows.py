"""Issue 15's table, row by row, on real small runs through ``tl.fit`` (never a synthetic history): each run
that went wrong gets the cause in the "what really went wrong" column as its verdict, and its remedies form one
plan. Fashion-MNIST rows train on small subsets (``limit``) so that each test takes about a second here.

The rows about the untrained model (softmax before cross-entropy, unscaled inputs, shuffled labels) are also in
test_preflight.py with their near misses; here they stand beside the others so the whole table is one file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from torch import nn

import trainlab as tl
from trainlab.api import fit_call
from trainlab.data import cifar

from trainlab.diagnose.verdict import format_diagnosis
from trainlab.errors import ConfigError, TrainingError

from tests.conftest import FASHION_DIR
from tests.diagnose.test_preflight import mlp, moons

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
needs_fashion = pytest.mark.skipif(
not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                   reason=f"Fashion-MNIST is not in {FASHION_DIR}")


def fit(model, data, tmp_path, **kw):
    opts = dict(out_dir=str(tmp_path), verbose=False, report=False, tensorboard=False, threads=1)
    return tl.fit(model, data, **{**opts, **kw})


def fashion(tmp_path, **kw):
    return fit(None, "fashion-mnist", tmp_path, data_dir=str(FASHION_DIR.parent), **kw)


def diagnosed(make):
    """The diagnosis of a run, whether it finished or stopped on NaN/Inf."""
    try:
        return make().diagnosis
    except TrainingError as err:
        return err.outcome.diagnosis


def raises_lr(d, lr: float) -> list[str]:
    """Findings whose remedy would raise optimizer.lr above ``lr`` (by its sets or in words)."""
    return [f.rule for f in d.findings if "raise optimizer.lr" in f.remedy or f.sets.get("optimizer.lr", 0) > lr]


# --- causes before the first update ------------------------------------------------------------------------------

def test_own_mlp_ending_in_softmax_under_cross_entropy_is_a_loss_output_mismatch(tmp_path):
    d = fit(mlp(nn.Softmax(dim=1)), moons(), tmp_path, epochs=8, batch_size=32, lr=0.1).diagnosis  # was: good_fit
    assert d.verdict == "loss_output_mismatch"


def test_moons_times_1000_plus_5000_is_inputs_not_scaled(tmp_path):
    x, y = moons()
    d = diagnosed(lambda: fit(mlp(), (x * 1000 + 5000, y), tmp_path, epochs=8, batch_size=32, lr=0.1))
    assert d.verdict == "inputs_not_scaled"  # was: exploding_gradients, dead_units
    assert "--set data.normalize=true" in format_diagnosis(d) or "data.normalize=true" in d.findings[0].remedy


def test_moons_with_shuffled_labels_has_no_signal(tmp_path):
    x, y = moons()
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    d = fit(mlp(), (x, shuffled), tmp_path, epochs=10, batch_size=32, lr=0.1).diagnosis  # was: underfitting
    assert d.verdict == "no_signal" and "underfitting" not in d.rules()


# --- too early to judge ------------------------------------------------------------------------------------------

@needs_fashion
def test_two_epochs_with_validation_accuracy_rising_are_too_early(tmp_path):
    run = fashion(tmp_path, limit=1000, epochs=2, hidden=[64], optimizer="adam", lr=0.002, batch_size=32)
    acc = [h["val_acc"] for h in run.history]
    assert acc[1] > acc[0] and acc[1] > 0.6  # a run that learns well and is still rising
    assert run.diagnosis.verdict == "too_early" and "good_fit" not in run.diagnosis.rules()  # was: good_fit


@needs_fashion
def test_three_epochs_at_a_mediocre_accuracy_are_too_early(tmp_path):
    run = fashion(tmp_path, limit=1000, epochs=3, hidden=[32], lr=0.03, batch_size=32)
    assert 0.15 < run.history[-1]["val_acc"] < 0.8
    d = run.diagnosis
    assert d.verdict == "too_early" and "good_fit" not in d.rules()  # was: "Good fit … keep this setup"
    assert "3 epochs are too few to judge" in d.findings[0].message


def _cifar_shaped(root: Path, per_batch: int = 100) -> Path:
    """CIFAR-10 batches in the official format (no CIFAR-10 offline here): 32×32 colour images whose class sets
    the mean colour of a noisy image, so a net can learn them, as it learns CIFAR, slowly."""
    g = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    palette = g.integers(60, 196, (10, 3, 1, 1))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        y = g.integers(0, 10, per_batch)
        x = np.clip(palette[y] + g.normal(0, 60, (per_batch, 3, 32, 32)), 0, 255).astype(np.uint8)
        cifar.write_cifar_batch(folder / name, x, y.tolist())
    cifar.write_cifar_meta(folder / "batches.meta")
    return root


def test_the_cifar10_tutorial_after_one_epoch_at_chance_level_is_too_early(tmp_path):
    # examples/cifar10_tutorial.yaml (linear activations, SGD 0.01): after 1 epoch near chance: was "good_fit"
    run = fit(None, None, tmp_path, config=str(EXAMPLES / "cifar10_tutorial.yaml"), epochs=1,
              data_dir=str(_cifar_shaped(tmp_path / "data")))
    assert run.config.model.channels == [32, 32, 64] and run.history[-1]["val_acc"] < 0.3
    d = run.diagnosis
    assert d.verdict == "too_early" and "good_fit" not in d.rules()
    assert d.findings[0].sets == {"epochs": 10}


# --- the learning rate -------------------------------------------------------------------------------------------


@needs_fashion
def test_linear_softmax_at_sgd_lr_3_on_fashion_mnist_is_lr_too_high(tmp_path):
    run = fashion(tmp_path, limit=5000, epochs=3, model_name="linear", lr=3.0, batch_size=64)
    d = run.diagnosis
    assert d.verdict == "lr_too_high" and "good_fit" not in d.rules() and "still_improving" not in d.rules()
    # it blew up inside the first epoch: the per-update curve of epoch 1 shows it, read once at its end
    curve = run.summary["first_epoch"]
    assert max(curve["loss_curve"]) >= 3 * curve["first_loss"]
    assert "inside epoch 1 the loss rose" in d.findings[0].message
    assert d.findings[0].sets == {"optimizer.lr": pytest.approx(0.3)}


@pytest.mark.parametrize("lr", [80.0, 5.0])
def test_lr_80_and_lr_5_are_lr_too_high_and_nothing_raises_the_lr(tmp_path, lr):
    d = diagnosed(lambda: fit(None, "moons", tmp_path, epochs=20, hidden=[32], lr=lr))
    assert d.verdict == "lr_too_high"  # was: "Dead ReLU: lower lr to 8" beside "Underfitting: raise lr to 240"
    assert raises_lr(d, lr) == [] and "exploding_gradients" not in d.rules()
    assert f"--set optimizer.lr={lr / 10:g}" in format_diagnosis(d)  # the remedy as a command-line change ...
    assert fit_call(d.findings[0].sets) == f"tl.fit(..., lr={lr / 10!r})"  # ... and as tl.fit's keyword


def test_lr_100_on_spiral_is_lr_too_high_without_a_normalize_remedy(tmp_path):
    d = diagnosed(lambda: fit(None, "spiral", tmp_path, epochs=20, hidden=[16, 16], lr=100.0))
    assert d.verdict == "lr_too_high"  # was: "Underfitting … raise lr to 300" beside a NaN finding's normalize
    assert raises_lr(d, 100.0) == []
    assert not any("data.normalize" in f.sets or "normalize" in f.remedy for f in d.findings)


def test_nan_at_an_early_update_of_a_momentum_run_from_normal_gradients_is_lr_too_high(tmp_path):
    with pytest.raises(TrainingError) as info:
        fit(None, "moons", tmp_path, epochs=5, hidden=[16], init="he", activation="relu", optimizer="momentum",
            lr=20.0, batch_size=16)
    facts, d = info.value.facts, info.value.outcome.diagnosis
    assert facts["epoch"] == 1 and facts["first_grad_norm"] < 10  # a normal gradient norm at init
    assert facts["max_grad_norm"] > 1e3  # ... huge by the time it broke: once read as "exploding gradients"
    assert d.verdict == "lr_too_high" and "exploding_gradients" not in d.rules()
    nan = next(f for f in d.findings if f.rule == "non_finite")
    assert nan.evidence["cause_id"] == "lr_too_high"


def test_nan_in_epoch_1_mentions_no_checkpoint_and_names_the_cause(tmp_path):
    with pytest.raises(TrainingError) as info:
        fit(None, "moons", tmp_path, epochs=5, hidden=[16], init="he", activation="relu", optimizer="momentum",
            lr=20.0, batch_size=16, name="nan1")
    msg = str(info.value)
    assert "at epoch 1, step" in msg and "No epoch had finished, so no checkpoint was written." in msg
    assert "last good checkpoint" not in msg and "\n" not in msg
    # the diagnosed cause, appended from the finding's evidence (facts as data): one line for the user
    assert "Likely cause: learning rate too high" in msg and msg.endswith("Try: lower optimizer.lr to 2 (now 20).")
    assert not (Path(tmp_path) / "nan1" / "checkpoints" / "last.pt").exists()


# --- the rest of the overfitting / config rows -------------------------------------------------------------------

@needs_fashion
def test_wide_mlp_memorising_200_images_is_overfitting_not_lr_too_high(tmp_path):
    run = fashion(tmp_path, limit=200, epochs=60, hidden=[512], lr=0.1, batch_size=16)
    d = run.diagnosis
    assert run.history[-1]["train_loss"] < 0.3  # memorised, with minibatch noise at a low level
    assert d.verdict == "overfitting" and "lr_too_high" not in d.rules()  # was: headline lr_too_high


def test_sgd_with_momentum_is_refused_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match=r"optimizer\.momentum must be left unset with optimizer\.name='sgd'.*"
                                          r"Did you mean optimizer\.name=momentum"):
        fit(mlp(), moons(), tmp_path, optimizer="sgd", momentum=0.9)  # as custom_cnn.ipynb once did
    assert not any(Path(tmp_path).iterdir())  # refused before a run directory was made


def test_perceptron_on_two_classes_with_the_default_loss_trains(tmp_path):
    run = fit(None, "gauss", tmp_path, model_name="perceptron", epochs=3)  # was: "must be used with 2 classes …"
    assert run.config.loss.name == "auto" and run._prepared.loss.name == "perceptron"
    assert run.history[-1]["val_acc"] > 0.8
