"""Pre-flight facts: what the data, the model and the loss look like before the first update.

Measured once before training (≈ 0.1 s on the classic recipe, most of it the k-NN vote: statistics over at most
``SAMPLE`` training examples, a leave-one-out vote among ``KNN_N`` and one forward pass of an untrained batch) and saved as ``summary.json["preflight"]``. They are
facts, not judgements: the diagnosis (``diagnose.rules``, the pre-flight rules with their thresholds) turns
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


@torch.no_grad()
def preflight_facts(model: nn.Module, train: Any, loss_name: str, task: str, n_classes: int | None,
                    device: torch.device) -> dict[str, Any]:
    """Input scale, label counts, the untrained outputs' shape, layers whose weights are all equal, and how
    well the training inputs predict their own labels without any network (a leave-one-out k-NN vote)."""
    facts: dict[str, Any] = {"loss": loss_name, "task": task, "uniform_layers": _uniform_layers(model)}
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
    was = model.training
    model.eval()
    try:
        out = model(train.x[:PROBE].to(device)).float()  # (B, K) scores of the untrained model
    finally:
        model.train(was)
    if out.ndim == 2 and out.numel():
        facts["outputs"] = {"min": float(out.min()), "max": float(out.max()),
                            "row_sum_error": float((out.sum(1) - 1).abs().max()),
                            "zero_fraction": float((out == 0).float().mean()), "width": int(out.shape[1])}
    return facts


def _knn_accuracy(train: Split, n_classes: int) -> float:
    """Leave-one-out accuracy of a majority vote among each example's k nearest other training inputs: labels
    that the inputs explain are predicted well above chance by it; shuffled labels are not."""
    x, y = train.x[:KNN_N].flatten(1).float(), train.y[:KNN_N].long().flatten()
    d = torch.cdist(x, x)  # (n, n)
    d.fill_diagonal_(float("inf"))  # not its own neighbour
    near = d.topk(KNN_K, largest=False).indices  # (n, k)
    votes = torch.zeros(len(x), n_classes).scatter_add_(1, y[near], torch.ones(near.shape))
    return float((votes.argmax(1) == y).float().mean())


def _uniform_layers(model: nn.Module) -> list[str]:
    """Layers with more than one unit whose initial weights are all the same number (zeros, a constant)."""
    out = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and w is not None and w.shape[0] > 1 and w.numel() > 1:
            if bool((w == w.flatten()[0]).all()):
                out.append(name or type(m).__name__)
    return out
