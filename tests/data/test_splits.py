import pytest
import torch

from trainlab.data.splits import kfold_indices, split_indices
from trainlab.errors import ConfigError


def _check_partition(keep: torch.Tensor, held: torch.Tensor, n: int) -> None:
    assert keep.dtype == held.dtype == torch.int64
    both = torch.cat([keep, held])
    assert len(both) == n
    assert torch.equal(torch.sort(both).values, torch.arange(n))  # disjoint and covering


@pytest.mark.parametrize("n,fraction", [(10, 0.1), (101, 0.2), (1000, 0.33), (7, 0.5), (5, 0.0), (5, 1.0)])
def test_unstratified_sizes_exact_disjoint_covering(n, fraction):
    keep, held = split_indices(n, fraction, seed=0)
    assert len(held) == round(n * fraction)
    _check_partition(keep, held, n)


def test_exact_keep_overrides_fraction():
    labels = torch.arange(97) % 3
    keep, held = split_indices(97, 0.5, seed=3, labels=labels, exact_keep=40)
    assert len(keep) == 40 and len(held) == 57
    _check_partition(keep, held, 97)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_proportions_within_one(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (1003,), generator=g) ** 2  # class ids need not be 0..K-1
    keep, held = split_indices(1003, 0.17, seed=seed, labels=labels)
    _check_partition(keep, held, 1003)
    assert len(held) == round(1003 * 0.17)
    for c in labels.unique():
        n_c = int((labels == c).sum())
        held_c = int((labels[held] == c).sum())
        assert abs(held_c - n_c * len(held) / 1003) < 1


def test_stratified_small_classes_on_both_sides():
    labels = torch.tensor([0] * 50 + [1] * 2 + [2] * 3 + [3])
    for fraction in (0.05, 0.1, 0.9):
        keep, held = split_indices(len(labels), fraction, seed=1, labels=labels)
        _check_partition(keep, held, len(labels))
        assert len(held) == round(len(labels) * fraction)
        for c in (0, 1, 2):  # every class with >= 2 members appears in both parts
            assert (labels[held] == c).any() and (labels[keep] == c).any()


def test_stratified_impossible_minimum_still_exact():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    keep, held = split_indices(8, 0.25, seed=0, labels=labels)  # 2 held slots for 4 classes
    assert len(held) == 2
    _check_partition(keep, held, 8)


def test_deterministic_per_seed_and_global_rng_untouched():
    labels = torch.arange(200) % 5
    before = torch.get_rng_state()
    a = split_indices(200, 0.3, seed=7, labels=labels)
    b = split_indices(200, 0.3, seed=7, labels=labels)
    c = split_indices(200, 0.3, seed=8, labels=labels)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    u1, u2 = split_indices(200, 0.3, seed=7)[1], split_indices(200, 0.3, seed=8)[1]
    assert not torch.equal(u1, u2)


def test_held_part_not_sorted_by_class():
    labels = torch.arange(400) // 100  # sorted input: 100 of each class in a row
    _, held = split_indices(400, 0.5, seed=0, labels=labels)
    assert not torch.equal(labels[held], torch.sort(labels[held]).values)


def test_bad_arguments_raise_config_error():
    with pytest.raises(ConfigError, match="fraction must be between 0 and 1. Got 1.5"):
        split_indices(10, 1.5, seed=0)
    with pytest.raises(ConfigError, match="labels must be a 1-D tensor of 10"):
        split_indices(10, 0.5, seed=0, labels=torch.zeros(9))


@pytest.mark.parametrize("labels", [None, torch.arange(103) % 4])
def test_kfold_cover_disjoint_balanced(labels):
    folds = kfold_indices(103, 5, seed=0, labels=labels)
    assert len(folds) == 5
    vals = torch.cat([v for _, v in folds])
    assert torch.equal(torch.sort(vals).values, torch.arange(103))  # every example validated exactly once
    sizes = [len(v) for _, v in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        _check_partition(train, val, 103)
    if labels is not None:
        for c in range(4):
            per_fold = [int((labels[v] == c).sum()) for _, v in folds]
            assert max(per_fold) - min(per_fold) <= 1


def test_kfold_deterministic():
    a = kfold_indices(50, 3, seed=1)
    b = kfold_indices(50, 3, seed=1)
    c = kfold_indices(50, 3, seed=2)
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[1], y[1]) for x, y in zip(a, c))


@pytest.mark.parametrize("k", [1, 11, 0])
def test_kfold_bad_k(k):
    with pytest.raises(ConfigError, match=rf"folds must be a whole number between 2 and .*\(10\)\. Got {k}\."):
        kfold_indices(10, k, seed=0)
