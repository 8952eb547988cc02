import math

import numpy as np
import pytest
import torch

from trainlab.config import DataConfig
from trainlab.data import load_data
from trainlab.data.toy import TOY_SETS, make_toy
from trainlab.errors import ConfigError
from trainlab.registry import DATASETS

CLASSIFY = ["circle", "xor", "gauss", "spiral", "moons"]
REGRESS = ["plane", "multi-gauss"]


@pytest.mark.parametrize("name", CLASSIFY + REGRESS)
def test_shapes_dtypes_and_registration(name):
    x, y = make_toy(name, 300, 0.1, seed=0)
    assert x.shape == (300, 2) and x.dtype == torch.float32
    if name in CLASSIFY:
        assert y.shape == (300,) and y.dtype == torch.int64 and set(y.tolist()) == {0, 1}
    else:
        assert y.shape == (300, 1) and y.dtype == torch.float32
    assert DATASETS.get(name).kind == "toy"
    assert DATASETS.get(name).describe(DataConfig(n_points=300)) == {
        "available": True, "location": "generated", "sizes": {"points": 300}}


@pytest.mark.parametrize("name", CLASSIFY + REGRESS)
def test_deterministic_per_seed(name):
    a, b, c = make_toy(name, 200, 0.2, 1), make_toy(name, 200, 0.2, 1), make_toy(name, 200, 0.2, 2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", ["circle", "gauss", "spiral", "moons"])
def test_balanced_classes_without_noise(name):
    _, y = make_toy(name, 400, 0.0, seed=0)
    assert torch.bincount(y).tolist() == [200, 200]


def test_circle_label_is_radius_and_rings_match_tf():
    x, y = make_toy("circle", 2000, 0.0, seed=0)
    r = x.norm(dim=1)
    assert torch.equal(y, (r < 2.5).long())
    assert r[y == 1].max() < 2.5 and r[y == 0].min() >= 3.5 - 1e-5 and r.max() <= 5 + 1e-5
    # Noise moves labels (decided on a noisy copy), never the points.
    xn, yn = make_toy("circle", 2000, 0.5, seed=0)
    rn = xn.norm(dim=1)
    assert ((rn < 2.5) | (rn >= 3.5 - 1e-5)).all()
    assert (yn != (rn < 2.5).long()).any()


def test_xor_label_is_sign_of_product_with_padding():
    x, y = make_toy("xor", 2000, 0.0, seed=0)
    assert torch.equal(y, (x[:, 0] * x[:, 1] >= 0).long())
    assert x.abs().min() >= 0.3 - 1e-6 and x.abs().max() <= 5.3 + 1e-5
    xn, yn = make_toy("xor", 2000, 0.3, seed=0)
    assert (yn != (xn[:, 0] * xn[:, 1] >= 0).long()).any()


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_gauss_centres_and_variance(noise):
    x, y = make_toy("gauss", 20000, noise, seed=0)
    assert torch.allclose(x[y == 1].mean(0), torch.tensor([2.0, 2.0]), atol=0.1)
    assert torch.allclose(x[y == 0].mean(0), torch.tensor([-2.0, -2.0]), atol=0.1)
    expected_std = math.sqrt(0.5 + 7 * noise)  # TF: variance 0.5 → 4 over noise 0 → 0.5
    assert torch.allclose(x[y == 1].std(0), torch.full((2,), expected_std), rtol=0.05)


def _tf_spiral(m: int, delta: float) -> np.ndarray:
    """TF Playground's genSpiral for one arm, written as its loop."""
    pts = []
    for i in range(m):
        r = i / m * 5
        t = 1.75 * i / m * 2 * math.pi + delta
        pts.append((r * math.sin(t), r * math.cos(t)))
    return np.array(pts)


def _by_radius(a: np.ndarray) -> np.ndarray:
    return a[np.argsort(np.hypot(a[:, 0], a[:, 1]), kind="stable")]


def test_spiral_arms_match_tf_loop():
    x, y = make_toy("spiral", 500, 0.0, seed=0)
    pos, neg = x[y == 1].double().numpy(), x[y == 0].double().numpy()
    # Class 1 is TF's +1 arm (Δ = 0), class 0 its −1 arm (Δ = π).
    assert np.allclose(_by_radius(pos), _tf_spiral(250, 0.0), atol=1e-5)
    assert np.allclose(_by_radius(neg), _tf_spiral(250, math.pi), atol=1e-5)
    xn, _ = make_toy("spiral", 500, 0.5, seed=0)
    assert not torch.allclose(xn, x)


def test_spiral_more_arms_and_classes_rules():
    x, y = make_toy("spiral", 300, 0.0, seed=0, classes=3)
    assert torch.bincount(y).tolist() == [100, 100, 100]
    assert x.norm(dim=1).max() < 5
    with pytest.raises(ConfigError, match="data.classes must be 2 for 'circle'. Got 3"):
        make_toy("circle", 300, 0.0, seed=0, classes=3)
    with pytest.raises(ConfigError, match="data.noise must be between 0 and 0.5"):
        make_toy("xor", 300, 0.7, seed=0)


def test_plane_target_is_tf_linear_formula():
    x, y = make_toy("plane", 1200, 0.0, seed=0)
    assert torch.allclose(y[:, 0], (x[:, 0] + x[:, 1]) / 10, atol=1e-6)
    assert x.abs().max() <= 6
    xn, yn = make_toy("plane", 1200, 0.2, seed=0)
    resid = (yn[:, 0] - (xn[:, 0] + xn[:, 1]) / 10).abs()
    assert resid.max() > 0.01 and resid.max() <= 2 * 6 * 0.2 / 10 + 1e-6  # noise bounded by U(−6, 6)·n


def test_multi_gauss_matches_tf_loop():
    x, y = make_toy("multi-gauss", 300, 0.0, seed=0)
    bumps = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]
    for (px, py), got in zip(x.double().tolist(), y[:, 0].tolist()):
        label = 0.0
        for cx, cy, sign in bumps:  # TF's getLabel, literally
            new = sign * min(1.0, max(0.0, 1 - math.hypot(px - cx, py - cy) / 2))
            if abs(new) > abs(label):
                label = new
        assert got == pytest.approx(label, abs=1e-5)
    assert y.abs().max() <= 1 and (y > 0.5).any() and (y < -0.5).any()


def test_moons_lie_on_two_unit_half_circles():
    x, y = make_toy("moons", 400, 0.0, seed=0)
    p = x.double() / 2.5 + torch.tensor([0.5, 0.25], dtype=torch.float64)  # back to sklearn's units
    up, low = p[y == 0], p[y == 1]
    assert torch.allclose(up.norm(dim=1), torch.ones(len(up), dtype=torch.float64), atol=1e-5)
    assert torch.allclose((low - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1),
                          torch.ones(len(low), dtype=torch.float64), atol=1e-5)
    assert (up[:, 1] >= -1e-6).all() and (low[:, 1] <= 0.5 + 1e-6).all()
    xn, _ = make_toy("moons", 400, 0.1, seed=0)
    assert not torch.allclose(xn, x)


def test_all_sets_listed():
    assert set(TOY_SETS) == set(CLASSIFY + REGRESS)


def test_load_data_circle_sizes_and_sealed_test():
    cfg = DataConfig(name="circle", n_points=500, noise=0.1, val_fraction=0.1, test_fraction=0.2)
    bundle = load_data(cfg, seed=0)
    assert bundle.task == "classification" and bundle.n_classes == 2 and bundle.input_shape == (2,)
    assert bundle.feature_names == ["x1", "x2"]
    assert bundle.test.opened == 0
    test = bundle.test.open()
    assert bundle.test.opened == 1
    assert len(test) == 100 and len(bundle.val) == 40 and len(bundle.train) == 360
    assert len(bundle.train) + len(bundle.val) + len(test) == 500
    # The three splits are the generated points, each used once.
    x, _ = make_toy("circle", 500, 0.1, seed=0)
    all_rows = torch.cat([bundle.train.x, bundle.val.x, test.x])
    assert torch.equal(torch.sort(all_rows[:, 0]).values, torch.sort(x[:, 0]).values)


def test_load_data_regression_toy():
    bundle = load_data(DataConfig(name="plane", n_points=200), seed=0)
    assert bundle.task == "regression" and bundle.n_outputs == 1 and bundle.train.y.shape[1] == 1
    assert bundle.target_names == ["label"]
