"""K-fold cross-validation of one config: stratified folds over the training split, mean ± std per metric.

The CV pool is ``bundle.train ∪ bundle.val`` (in that order): the whole training split. The test split
never takes part, by construction: every fold's :class:`DataBundle` carries a :class:`SealedTest` that
is marked unavailable (so ``train`` skips its final test) and whose loader raises, so nothing that
receives a fold bundle can look at test data; the original bundle's ``test`` is never opened.
Normalisation, when the data has it, is refitted on each fold's training part only.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from matplotlib.figure import Figure

from trainlab import files
from trainlab.config import CLASS_SCORES, TrainConfig, as_config, config_to_dict, replace
from trainlab.data import DataBundle, SealedTest, Split, Standardizer, kfold_indices, load_data
from trainlab.errors import DataError
from trainlab.train.run import RunResult, new_run_dir, train

__all__ = ["CVResult", "cross_validate", "fold_bundles"]

# Per-fold columns: the best epoch's row (by cfg.monitor), then the last epoch's validation metrics.
METRICS = ("best_epoch", "val_loss", "val_acc", "val_balanced_acc", "val_macro_f1", "train_loss", "train_acc",
           "final_val_loss", "final_val_acc")
COLUMNS = ("fold", "n_train", "n_val", *METRICS, "run_dir")


NO_TEST = ("the test set is not available during cross-validation: folds are scored on their validation "
           "part only. Train the chosen config once with 'trainlab train' to get its test score.")


@dataclass
class CVResult:
    """Per-fold rows, ``mean``/``std`` (sample std, ddof=1) per metric, and where it was all written."""

    cv_dir: Path
    folds: list[dict[str, Any]]
    mean: dict[str, float]
    std: dict[str, float]
    headline: str  # to_table's last line: val_acc for classification (or the class score monitored), else val_loss
    val_indices: list[torch.Tensor] = field(repr=False)  # per fold, indices into the pool (train ∪ val)
    runs: list[RunResult] = field(repr=False)

    def to_table(self) -> str:
        """A plain text table, one row per fold plus mean and std, then ``val_acc 0.853 ± 0.012 over 5 folds``."""
        cols = [c for c in COLUMNS if c != "run_dir" and (c not in METRICS or c in self.mean)]
        rows = [[_fmt(r[c]) for c in cols] for r in self.folds]
        for label, stat in (("mean", self.mean), ("std", self.std)):
            rows.append([label if c == "fold" else _fmt(stat.get(c, "")) for c in cols])
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        line = lambda cells: "  ".join(s.rjust(w) for s, w in zip(cells, widths))  # noqa: E731
        out = [line(cols), line(["-" * w for w in widths]), *(line(r) for r in rows)]
        h = self.headline
        out.append(f"{h} {self.mean[h]:.3f} ± {self.std[h]:.3f} over {len(self.folds)} folds")
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"cv_dir": str(self.cv_dir), "n_folds": len(self.folds), "headline": self.headline,
                "folds": self.folds, "mean": self.mean, "std": self.std}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _pool(bundle: DataBundle) -> Split:
    """train ∪ val in raw units (normalisation undone, so each fold can refit it on its own train part)."""
    if not (isinstance(bundle.train, Split) and isinstance(bundle.val, Split)):
        raise DataError(f"data must be held in memory for cross-validation. Got {type(bundle.train).__name__}. "
                        "Use a dataset that fits in memory, or data.limit to take a subset.")
    x = torch.cat([bundle.train.x, bundle.val.x])
    if "normalize" in bundle.stats:
        x = Standardizer.from_state(bundle.stats["normalize"]).inverse(x)
    return Split(x, torch.cat([bundle.train.y, bundle.val.y]))


def fold_bundles(bundle: DataBundle, folds: int, *, seed: int) -> list[tuple[DataBundle, torch.Tensor]]:
    """``folds`` stratified (classification) folds of ``bundle.train ∪ bundle.val`` as ``(fold_bundle, val_idx)``.

    Each fold bundle's test split is sealed shut: opening it raises DataError. ConfigError for bad ``folds``.
    """
    pool = _pool(bundle)
    labels = pool.y if bundle.task == "classification" else None
    out = []
    for train_idx, val_idx in kfold_indices(len(pool), folds, seed, labels):
        tr, va = pool.subset(train_idx), pool.subset(val_idx)
        stats = dict(bundle.stats)
        if "normalize" in bundle.stats:
            std = Standardizer.fit(tr.x)
            tr, va = Split(std(tr.x), tr.y), Split(std(va.x), va.y)
            stats["normalize"] = std.state_dict()
        fb = DataBundle(train=tr, val=va, test=SealedTest.closed(NO_TEST), task=bundle.task,
                        n_classes=bundle.n_classes, input_shape=bundle.input_shape, class_names=bundle.class_names,
                        feature_names=bundle.feature_names, target_names=bundle.target_names, stats=stats,
                        meta={**bundle.meta, "cv_fold_of": len(pool)})
        out.append((fb, val_idx))
    return out


def _fold_row(i: int, run: RunResult, fb: DataBundle) -> dict[str, Any]:
    s = run.summary
    best, final = s["best_val"] or {}, s["final"] or {}
    return {"fold": i, "n_train": len(fb.train), "n_val": len(fb.val), "best_epoch": s["best_epoch"],
            "val_loss": best.get("val_loss"), "val_acc": best.get("val_acc"),
            "val_balanced_acc": best.get("val_balanced_acc"), "val_macro_f1": best.get("val_macro_f1"),
            "train_loss": best.get("train_loss"), "train_acc": best.get("train_acc"),
            "final_val_loss": final.get("val_loss"), "final_val_acc": final.get("val_acc"),
            "run_dir": str(run.run_dir)}


def _mean_std(rows: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for m in METRICS:
        vals = [r[m] for r in rows]
        if any(v is None for v in vals):  # e.g. accuracy on a regression task
            continue
        vals = [float(v) for v in vals]
        mu = sum(vals) / len(vals)
        mean[m] = mu
        std[m] = math.sqrt(sum((v - mu) ** 2 for v in vals) / (len(vals) - 1))
    return mean, std


def _cv_dir(cfg: TrainConfig, out_dir: str | Path | None) -> Path:
    if out_dir is not None:
        path = Path(out_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return new_run_dir(cfg, prefix="cv-")


def _write(result: CVResult, cfg: TrainConfig) -> None:
    d = result.cv_dir
    files.write_json(d / "cv.json", {**result.to_dict(), "config": config_to_dict(cfg)}, indent=2)
    def write_csv(f: Any) -> None:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(result.folds)
        w.writerow({"fold": "mean", **result.mean})
        w.writerow({"fold": "std", **result.std})

    files.write_atomic(d / "cv.csv", write_csv)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for row, run in zip(result.folds, result.runs):
        ax.plot([h["epoch"] for h in run.history], [h["val_loss"] for h in run.history], marker=".",
                label=f"fold {row['fold']}")
    ax.set(xlabel="epoch", ylabel="validation loss", title=f"{len(result.folds)}-fold CV: validation loss per fold")
    ax.legend(fontsize="small")
    files.write_atomic(d / "cv_curves.png", lambda f: fig.savefig(f, dpi=100, format="png"), binary=True)


def cross_validate(cfg: TrainConfig | str | Path | Mapping[str, Any], folds: int = 5, *, out_dir: str | Path | None = None, verbose: bool = False,
                   bundle: DataBundle | None = None,
                   on_fold: Callable[[int, dict[str, Any]], None] | None = None) -> CVResult:
    """Train ``cfg`` on each of ``folds`` stratified folds of the training split; mean ± std of each metric.

    Runs go to ``out_dir`` (default ``cfg.out_dir/cv-<name>``) with ``cv.json``, ``cv.csv`` and
    ``cv_curves.png``. The test split is never opened. ConfigError for bad ``folds``, before anything is written.
    ``on_fold(i, row)`` is called after fold ``i`` (1-based); a search uses it to report to its pruner.
    """
    cfg = as_config(cfg)
    bundle = bundle if bundle is not None else load_data(cfg.data, cfg.seed)
    parts = fold_bundles(bundle, folds, seed=cfg.seed)
    cv_dir = _cv_dir(cfg, out_dir)
    base = cv_dir.name.removeprefix("cv-")
    rows, runs = [], []
    try:
        for i, (fb, _) in enumerate(parts, start=1):
            run = train(replace(cfg, name=f"{base}-fold{i}", out_dir=str(cv_dir)), bundle=fb, verbose=False)
            rows.append(_fold_row(i, run, fb))
            runs.append(run)
            if on_fold is not None:
                on_fold(i, rows[-1])
            if verbose:
                print(f"fold {i}/{len(parts)}: val_loss {rows[-1]['val_loss']:.4f}"
                      + (f"  val_acc {rows[-1]['val_acc']:.4f}" if rows[-1]["val_acc"] is not None else ""))
        mean, std = _mean_std(rows)
        headline = (cfg.monitor if cfg.monitor in CLASS_SCORES and cfg.monitor in mean
                    else "val_acc" if "val_acc" in mean else "val_loss")
        result = CVResult(cv_dir, rows, mean, std, headline, [idx for _, idx in parts], runs)
        _write(result, cfg)
    except files.StorageError:
        files.remove_empty_tree(cv_dir)  # a full or read-only disk before any fold finished leaves no folder
        raise
    return result
