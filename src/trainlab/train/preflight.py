"""Pre-flight facts: what the data, the model and the loss look like before the first update.

Measured once before training (≈ 0.1 s on the classic recipe, most of it the k-NN vote: statistics over at most
``SAMPLE`` training examples, a leave-one-out vote among ``KNN_N`` and one forward pass of an untrained batch)
and saved as ``summary.json["preflight"]``. They are facts, not judgements: the diagnosis (``diagnose.rules``, the pre-flight rules with their thresholds) turns
them into findings such as "inputs not scaled" or "softmax applied twice", for built-in models and any
user ``nn.Module`` alike, because it looks at the module's outputs rather than its source.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.data.base import Split

SAMPLE = 8192  # examples for the input statistics: enough for a scale, cheap on any dataset
PROBE = 256  # examples for the untrained forward pass
KNN_N, KNN_K = 2048, 5  # a leave-one-out k-nearest-neighbour vote: ~3 GFLOP on 784-pixel images
# Duplicates between splits: every validation/test example up to LEAK_OTHER is looked up among the first
# LEAK_TRAIN training examples (a random sample: the split was shuffled), so a leak of 1 % of the validation split
# still shows as ~30 found copies on Fashion-MNIST (16384 of 54000 train). Hashing costs ~4 ms per 1000 rows of
# 784 floats here (54000 rows: 0.2 s, too much for the pre-flight budget; 16384 + 6000: 0.08 s).
LEAK_TRAIN, LEAK_OTHER = 16384, 8192
HASH_CHUNK = 1024  # rows hashed at a time: a (1024, D/2) int64 product, 3 MB on 784-pixel images
TARGET_DISTINCT = 64  # distinct regression targets counted up to here (enough to tell class indices apart)


@torch.no_grad()
def preflight_facts(model: nn.Module, train: Any, loss_name: str, task: str, n_classes: int | None,
                    device: torch.device, val: Any = None) -> dict[str, Any]:
    """Input scale, label counts, the untrained outputs' shape, layers whose weights are all equal, the largest
    dropout p, the share of each ReLU layer's units that never fire before any update, how well the training
    inputs predict their own labels or targets without any network (a leave-one-out k-NN vote: accuracy, or R²
    beside the targets' variance), and how many validation examples also sit in the training split."""

    facts: dict[str, Any] = {"loss": loss_name, "task": task, "uniform_layers": _uniform_layers(model),
                             "dropout_max": _dropout_max(model)}
    if not isinstance(train, Split) or len(train) == 0:
        return facts  # a streamed dataset: reading it here would cost a pass over the data
    x = train.x[:SAMPLE].flatten(1).float()  # (n, D)
    mean, std = x.mean(0), x.std(0) if len(x) > 1 else torch.zeros(x.shape[1])
    facts["inputs"] = {"min": float(x.min()), "max": float(x.max()), "abs_mean_max": float(mean.abs().max()),
                       "std_max": float(std.max()), "n": len(x), "features": int(x.shape[1])}
    if task == "classification" and n_classes:
        facts["class_counts"] = torch.bincount(train.y.long().flatten().cpu(), minlength=n_classes).tolist()
        if len(train) > KNN_K:
            facts["knn_acc"] = _knn_accuracy(train, n_classes)
    elif task == "regression":
        facts["targets_min"] = float(train.y.min())
        facts["targets"] = _target_facts(train.y[:SAMPLE])
        sample = train.y[:SAMPLE].float()
        facts["targets_var"] = float(sample.reshape(len(sample), -1).var(0, unbiased=False).mean())
        if len(train) > KNN_K:
            facts["knn_r2"] = _knn_r2(train)
    if isinstance(val, Split) and len(val):
        facts["shared_with_val"] = shared_rows(train.x, val.x)
    was = model.training
    model.eval()
    try:
        out = model(train.x[:PROBE].to(device)).float()  # (B, K) scores of the untrained model
        from trainlab.diagnose.stats import measure_activations

        stats, _ = measure_activations(model, train.x[:PROBE].to(device))  # histograms left as tensors
    except Exception as exc:
        from trainlab.train.loop import is_out_of_memory

        if not is_out_of_memory(exc):
            raise
        # a probe too big for the device's memory: the rules that read the untrained outputs stay silent, and
        # training itself says what to change if its batches do not fit either (train.loop.out_of_memory)
        facts["probe"] = "out of memory"
        return facts
    finally:
        model.train(was)
    # ReLU units that never fire on the probe batch before any update: what training found, not what it did
    facts["dead_at_init"] = {n: s["dead"] for n, s in stats.items() if s["kind"] in ("relu", "leaky_relu")}
    # ... and sigmoid/tanh outputs in their flat tails before any update: saturation the init or the input scale
    # made, told apart from the saturation the first steps make (diagnose: saturated_units, lr_too_high)
    facts["saturated_at_init"] = {n: s["saturated"] for n, s in stats.items() if s["kind"] in ("sigmoid", "tanh")}
    if out.ndim == 2 and out.numel():
        facts["outputs"] = {"min": float(out.min()), "max": float(out.max()),
                            "row_sum_error": float((out.sum(1) - 1).abs().max()),
                            "zero_fraction": float((out == 0).float().mean()), "width": int(out.shape[1])}
    return facts


def _knn_accuracy(train: Split, n_classes: int) -> float:
    """Leave-one-out accuracy of a majority vote among each example's k nearest other training inputs: labels
    that the inputs explain are predicted well above chance by it; shuffled labels are not."""
    y = train.y[:KNN_N].long().flatten()
    near = _nearest(train)  # (n, k)
    votes = torch.zeros(len(y), n_classes).scatter_add_(1, y[near], torch.ones(near.shape))
    return float((votes.argmax(1) == y).float().mean())


def _knn_r2(train: Split) -> float:
    """Leave-one-out R² of the mean target among each example's k nearest other training inputs: what the inputs
    explain of the targets without any network (the regression twin of ``_knn_accuracy``)."""
    y = train.y[:KNN_N].float().reshape(min(len(train), KNN_N), -1)
    pred = y[_nearest(train)].mean(1)  # (n, targets)
    var = y.var(0, unbiased=False).clamp_min(1e-12)
    return float(1 - (((pred - y) ** 2).mean(0) / var).mean())


def _nearest(train: Split) -> torch.Tensor:
    """(n, KNN_K) indices of each of the first KNN_N training inputs' nearest *other* inputs (Euclidean)."""
    x = train.x[:KNN_N].flatten(1).float()
    d = torch.cdist(x, x)  # (n, n)
    d.fill_diagonal_(float("inf"))  # not its own neighbour
    return d.topk(KNN_K, largest=False).indices



def _dropout_max(model: nn.Module) -> float:
    """The largest drop probability of the model's dropout layers (0 without any): built-in or the user's own."""
    return max((float(m.p) for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)), default=0.0)


def _uniform_layers(model: nn.Module) -> list[str]:
    """Layers with more than one unit whose initial weights are all the same number (zeros, a constant)."""
    out = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and w is not None and w.shape[0] > 1 and w.numel() > 1:
            if bool((w == w.flatten()[0]).all()):
                out.append(name or type(m).__name__)
    return out


def _target_facts(y: torch.Tensor) -> dict[str, Any]:
    """Whether regression targets are whole numbers, how many distinct values they take (up to
    TARGET_DISTINCT + 1), and whether each row is one-hot (0/1 with a single 1): class labels in disguise."""
    y = y.float()
    distinct = torch.unique(y.flatten()[:SAMPLE * 4])
    rows = y.reshape(len(y), -1)
    onehot = rows.shape[1] > 1 and bool(((rows == 0) | (rows == 1)).all()) and bool((rows.sum(1) == 1).all())
    return {"integer": bool((y == y.round()).all()), "distinct": min(len(distinct), TARGET_DISTINCT + 1),
            "onehot": onehot, "columns": int(rows.shape[1])}


def row_hashes(x: torch.Tensor) -> torch.Tensor:
    """(n,) int64 hashes of each example's exact values: its bit patterns times fixed random odd 64-bit weights,
    summed with wrap-around (a linear hash mod 2^64). Equal rows hash equal on any device and in any order;
    two different rows collide with probability ~2^-64."""
    flat = x.reshape(len(x), -1).contiguous()
    if flat.is_floating_point():
        flat = flat.float()
        # two float32 bit patterns as one int64: half the multiply-adds (the cost here)
        flat = flat.view(torch.int64) if flat.shape[1] % 2 == 0 else flat.view(torch.int32)
    g = torch.Generator().manual_seed(0)
    w = (torch.randint(-2 ** 62, 2 ** 62, (flat.shape[1],), generator=g, dtype=torch.int64) | 1).to(flat.device)
    out = torch.empty(len(flat), dtype=torch.int64, device=flat.device)
    for i in range(0, len(flat), HASH_CHUNK):
        out[i:i + HASH_CHUNK] = (flat[i:i + HASH_CHUNK].long() * w).sum(1)  # (chunk,)
    return out


def shared_rows(train_x: torch.Tensor, other_x: torch.Tensor) -> dict[str, Any]:
    """How many of the first LEAK_OTHER examples of ``other_x`` (validation or test inputs) are exact copies of
    one of the first LEAK_TRAIN training examples, and the share of ``other_x`` that this estimates is copied
    from the whole training split: ``{"n", "of", "train_checked", "train_n", "share"}``."""
    other, sample = other_x[:LEAK_OTHER], train_x[:LEAK_TRAIN]
    inside = torch.isin(row_hashes(other), row_hashes(sample).to(other.device))
    count = int(inside.sum())
    seen = len(sample) / max(len(train_x), 1)  # the chance that a copied example's original is in the sample
    return {"n": count, "of": len(other), "train_checked": len(sample), "train_n": len(train_x),
            "share": min(1.0, count / max(len(other), 1) / max(seen, 1e-12))}
