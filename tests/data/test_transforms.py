import json

import pytest
import torch
import torch.nn.functional as F

from trainlab.config import AugmentConfig
from trainlab.data.transforms import Augmenter, Standardizer, make_augmenter
from trainlab.errors import ConfigError, DataError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- Standardizer --------------------------------------------------------------------------------


def test_standardizer_features_uses_train_statistics():
    g = _gen()
    train = torch.randn(500, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -3.0, 100.0])
    other = torch.randn(50, 3, generator=g) * 4 + 20
    std = Standardizer.fit(train)
    z = std(train)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std(0, correction=0), torch.ones(3), atol=1e-4)
    # The other split is transformed with the *training* mean/std, computed here a second way.
    mu, sd = train.double().mean(0), train.double().std(0, correction=0)
    assert torch.allclose(std(other).double(), (other.double() - mu) / sd, atol=1e-4)
    assert std(other).mean(0).abs().min() > 1  # not re-centred on its own statistics


def test_standardizer_constant_feature_stays_finite():
    x = torch.randn(100, 2, generator=_gen())
    x[:, 1] = 3.0
    std = Standardizer.fit(x)
    assert std.std_[1] == 1.0
    out = std(torch.tensor([[0.0, 3.0 + 1e-7]]))
    assert torch.isfinite(out).all() and abs(float(out[0, 1])) < 1e-5


def test_standardizer_per_channel_for_images_and_chunked_fit():
    g = _gen(1)
    # Big enough that fit() reduces over several row chunks.
    x = torch.rand(200, 2, 64, 200, generator=g) * torch.tensor([1.0, 5.0]).view(1, 2, 1, 1) + 0.5
    std = Standardizer.fit(x)
    assert std.mean_.shape == (2,) and std.std_.shape == (2,)
    d = x.double()
    assert torch.allclose(std.mean_.double(), d.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.std_.double(), d.std((0, 2, 3), correction=0), atol=1e-6)
    z = std(x[:20])
    assert z.shape == (20, 2, 64, 200) and z.dtype == torch.float32


def test_standardizer_state_roundtrip_is_json():
    x = torch.randn(64, 1, 5, 5, generator=_gen(2)) * 3 + 1
    std = Standardizer.fit(x)
    state = json.loads(json.dumps(std.state_dict()))
    again = Standardizer.from_state(state)
    assert torch.equal(again(x), std(x))
    assert torch.allclose(again.inverse(again(x)), x, atol=1e-5)


def test_standardizer_rejects_wrong_width():
    std = Standardizer.fit(torch.randn(10, 3))
    with pytest.raises(DataError, match=r"inputs must be shaped \(N, 3, ...\)"):
        std(torch.randn(10, 4))


# --- Augmenter -----------------------------------------------------------------------------------


def _images(b: int = 64, c: int = 2, h: int = 9, w: int = 11) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=_gen(5)) + 1  # strictly positive: zeros mean "filled"


def test_make_augmenter_none_when_off():
    assert make_augmenter(AugmentConfig(), seed=0) is None
    assert isinstance(make_augmenter(AugmentConfig(flip=True), seed=0), Augmenter)


def test_flip_flips_exactly_the_selected_samples():
    x = _images()
    aug = make_augmenter(AugmentConfig(flip=True), seed=0)
    params = aug.sample(len(x))
    out = aug.apply(x, params)
    sel = params.flip
    assert 0 < int(sel.sum()) < len(x)
    assert torch.equal(out[sel], torch.flip(x[sel], dims=[3]))
    assert torch.equal(out[~sel], x[~sel])


def _manual_crop(x, dy, dx, p):
    padded = F.pad(x, (p, p, p, p))
    H, W = x.shape[2:]
    return torch.stack([padded[b, :, p + int(dy[b]):p + int(dy[b]) + H, p + int(dx[b]):p + int(dx[b]) + W]
                        for b in range(len(x))])


def test_crop_matches_manual_pad_and_slice():
    x = _images()
    aug = make_augmenter(AugmentConfig(crop_padding=3), seed=1)
    params = aug.sample(len(x))
    assert len(set(params.crop_dy.tolist())) > 1  # offsets really differ per sample
    assert torch.equal(aug.apply(x, params), _manual_crop(x, params.crop_dy, params.crop_dx, 3))


def test_translate_keeps_shape_and_zero_fills():
    x = _images()
    aug = make_augmenter(AugmentConfig(translate=2), seed=2)
    params = aug.sample(len(x))
    out = aug.apply(x, params)
    assert out.shape == x.shape and out.dtype == x.dtype
    H, W = x.shape[2:]
    kept = (H - params.shift_dy.abs()) * (W - params.shift_dx.abs())  # pixels still inside the image
    zeros = (out == 0).flatten(2).sum(2)  # (B, C)
    assert torch.equal(zeros, (H * W - kept).view(-1, 1).expand_as(zeros))
    assert torch.equal(out, _manual_crop(x, params.shift_dy, params.shift_dx, 2))


def test_all_three_equal_composition_of_manual_steps():
    x = _images(b=128)
    aug = make_augmenter(AugmentConfig(crop_padding=2, flip=True, translate=3), seed=3)
    params = aug.sample(len(x))
    y = _manual_crop(x, params.crop_dy, params.crop_dx, 2)
    y = torch.where(params.flip.view(-1, 1, 1, 1), torch.flip(y, dims=[3]), y)
    y = _manual_crop(y, params.shift_dy, params.shift_dx, 3)
    assert torch.equal(aug.apply(x, params), y)


def test_same_seed_same_output_and_resume_from_generator_state():
    x = _images()
    cfg = AugmentConfig(crop_padding=4, flip=True, translate=1)
    a, b = make_augmenter(cfg, seed=9), make_augmenter(cfg, seed=9)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), make_augmenter(cfg, seed=10)(x))
    state = a.generator.get_state()
    first = a(x)
    a.generator.set_state(state)
    assert torch.equal(a(x), first)


def test_global_rng_untouched_and_uint8_kept():
    x = (torch.rand(8, 1, 6, 6, generator=_gen()) * 255).to(torch.uint8) + 1
    before = torch.get_rng_state()
    out = make_augmenter(AugmentConfig(crop_padding=1, flip=True), seed=0)(x)
    assert torch.equal(torch.get_rng_state(), before)
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_non_image_input_is_config_error():
    aug = make_augmenter(AugmentConfig(flip=True), seed=0)
    state = aug.generator.get_state()
    with pytest.raises(ConfigError, match=r"data.augment must be used only with image batches .* Got \(16, 2\)"):
        aug(torch.randn(16, 2))
    assert torch.equal(aug.generator.get_state(), state)
