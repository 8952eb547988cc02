"""Per-class scores of a classifier from its confusion matrix: precision, recall, F1 and support per class, their
macro and support-weighted means, and the balanced accuracy, as scikit-learn's ``classification_report`` and
``balanced_accuracy_score`` compute them (a ratio with nothing to divide is 0; the means take the classes that
occur among the labels or the predictions). Accuracy alone hides a class the model never gets right when that
class is rare: on labels 95 % one class, predicting it always scores 0.95 and a balanced accuracy of 0.5.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

# The test card and the end-of-run line name the balanced accuracy (the mean of the per-class recalls) where it
# differs from the accuracy by this much: then the classes' sizes change the picture (a rare class the model misses);
# otherwise it is clutter
BALANCED_SHOWN = 0.005


def confusion_counts(y: torch.Tensor, pred: torch.Tensor, k: int) -> torch.Tensor:
    """(k, k) int64 counts: row = true class, column = predicted class; on the tensors' device, no host read.
    scatter_add_ rather than bincount: on a GPU under torch.use_deterministic_algorithms(True) it has a
    deterministic form, where bincount may raise."""
    cell = (y.long() * k + pred.long()).flatten()  # (N,)
    return torch.zeros(k * k, dtype=torch.int64, device=cell.device).scatter_add_(
        0, cell, torch.ones_like(cell)).view(k, k)


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b > 0, a / b.clamp_min(1e-300), torch.zeros_like(a))


def confusion_margins(confusion: torch.Tensor) -> torch.Tensor:
    """(3, K): each class's right predictions (the diagonal), examples (row sums) and predictions (column sums) —
    all the scores need, K numbers a row where the matrix has K²."""
    return torch.stack([confusion.diagonal(), confusion.sum(1), confusion.sum(0)])


def balanced_scores(margins: Sequence[Sequence[float]] | torch.Tensor) -> tuple[float, float]:
    """(balanced accuracy, macro F1) from ``confusion_margins``: what every epoch logs."""
    report = class_report(None, margins=margins, per_class=False)
    return report["balanced_acc"], report["macro_f1"]


def class_report(confusion: Sequence[Sequence[int]] | torch.Tensor | None, names: Sequence[str] | None = None, *,
                 margins: Sequence[Sequence[float]] | torch.Tensor | None = None, per_class: bool = True
                 ) -> dict[str, Any]:
    """``{"per_class": [{"class", "precision", "recall", "f1", "support"}], "macro": {...}, "weighted": {...},
    "balanced_acc", "macro_f1"}`` from a (K, K) confusion matrix (rows true, columns predicted), or from its
    ``margins`` (``confusion_margins``); without ``per_class`` the per-class rows are left out."""
    if margins is None:
        margins = confusion_margins(torch.as_tensor(confusion, dtype=torch.float64))
    hit, true, said = torch.as_tensor(margins, dtype=torch.float64)  # (K,) each
    k = len(hit)
    names = [str(n) for n in names] if names is not None and len(names) == k else [str(i) for i in range(k)]
    precision, recall = _ratio(hit, said), _ratio(hit, true)
    f1 = _ratio(2 * precision * recall, precision + recall)
    seen = (true + said) > 0  # classes among the labels or the predictions
    rows = [{"class": names[i], "precision": float(precision[i]), "recall": float(recall[i]),
             "f1": float(f1[i]), "support": int(true[i])} for i in range(k)] if per_class else []
    weights = true / true.sum().clamp_min(1)

    def mean(v: torch.Tensor) -> float:
        return float(v[seen].mean()) if bool(seen.any()) else 0.0

    macro = {"precision": mean(precision), "recall": mean(recall), "f1": mean(f1)}
    weighted = {"precision": float((precision * weights).sum()), "recall": float((recall * weights).sum()),
                "f1": float((f1 * weights).sum())}
    labelled = true > 0
    balanced = float(recall[labelled].mean()) if bool(labelled.any()) else 0.0
    return {"per_class": rows, "macro": macro, "weighted": weighted, "balanced_acc": balanced,
            "macro_f1": macro["f1"]}


def format_report(report: dict[str, Any]) -> str:
    """``classification_report``'s table: a row per class, then the macro and weighted means."""
    rows = report["per_class"]
    width = max([len(r["class"]) for r in rows] + [len("weighted avg")])
    support = sum(r["support"] for r in rows)
    lines = [f"{'':{width}}  precision  recall     f1  support"]
    lines += [f"{r['class']:{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  {r['support']:7d}"
              for r in rows]
    for name in ("macro", "weighted"):
        m = report[name]
        lines.append(f"{name + ' avg':{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  "
                     f"{support:7d}")
    return "\n".join(lines)
