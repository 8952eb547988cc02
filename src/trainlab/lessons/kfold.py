"""Lesson ``kfold``: 5-fold cross-validation of two configs, per-fold scores, mean ± std, and whether their
difference is larger than the spread.

2000 Fashion-MNIST training images form the CV pool; ``trainlab.search.cross_validate`` trains each config on
the same 5 stratified folds (the test file is never opened). Both configs: MLP 784-100-10 ReLU, He init, SGD,
batch 100, 10 epochs; they differ in the learning rate only (0.1 vs 0.01). Full size about 11 s on 2 cores.
"""
from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure

from trainlab.config import resolve_config
from trainlab.data import bundle_from_data
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import fashion_subsets
from trainlab.report.plots import save_png
from trainlab.search import cross_validate

FOLDS = 5
CONFIGS: dict[str, dict[str, Any]] = {"SGD lr 0.1": {"optimizer.lr": 0.1}, "SGD lr 0.01": {"optimizer.lr": 0.01}}
BASE = {"data.name": "memory", "model.hidden": [100], "model.init": "he", "optimizer.name": "sgd", "batch_size": 100,
        "tensorboard": False, "threads": 1}


def mean_std(xs: list[float]) -> tuple[float, float]:
    mu = sum(xs) / len(xs)
    return mu, math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))


def compare(scores: dict[str, list[float]]) -> dict[str, Any]:
    """Mean ± std (ddof 1) of each config's fold scores, the difference of means against the larger std, and the
    paired per-fold differences (the folds are the same for both configs)."""
    (a, sa), (b, sb) = scores.items()
    diffs = [x - y for x, y in zip(sa, sb)]
    d_mean, d_std = mean_std(diffs)
    stats = {name: dict(zip(("mean", "std"), mean_std(s))) for name, s in scores.items()}
    spread = max(v["std"] for v in stats.values())
    return {"stats": stats, "difference": d_mean, "spread": spread, "larger_than_spread": abs(d_mean) > spread,
            "paired_diffs": diffs, "paired_std": d_std, "same_sign": all(x > 0 for x in diffs) or all(x < 0 for x in diffs),
            "better": a if d_mean > 0 else b}


def draw(scores: dict[str, list[float]], c: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    for k, (name, s) in enumerate(scores.items()):
        folds = list(range(1, len(s) + 1))
        ax.plot(folds, s, "o-", label=f"{name}: {c['stats'][name]['mean']:.3f} ± {c['stats'][name]['std']:.3f}")
        ax.axhspan(c["stats"][name]["mean"] - c["stats"][name]["std"], c["stats"][name]["mean"] + c["stats"][name]["std"],
                   alpha=0.12, color=f"C{k}")
    ax.set(xlabel="fold", ylabel="validation accuracy (final epoch)", xticks=list(range(1, FOLDS + 1)),
           title="Per-fold scores; bands: mean ± std")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def conclude(c: dict[str, Any]) -> str:
    names = list(c["stats"])
    text = (f"{names[0]} scores {c['stats'][names[0]]['mean']:.3f} ± {c['stats'][names[0]]['std']:.3f} and "
            f"{names[1]} {c['stats'][names[1]]['mean']:.3f} ± {c['stats'][names[1]]['std']:.3f} over {FOLDS} folds. "
            f"The difference of the means, {c['difference']:+.3f}, is ")
    if c["larger_than_spread"]:
        text += f"larger than the spread between folds (std up to {c['spread']:.3f}): {c['better']} is the better config"
    else:
        text += (f"within the spread between folds (std up to {c['spread']:.3f}): these folds do not separate the "
                 "two configs")
    sign = ("the same sign on every fold" if c["same_sign"] else "not the same sign on every fold")
    return text + (f". Paired fold by fold the differences are {', '.join(f'{d:+.3f}' for d in c['paired_diffs'])} "
                   f"({sign}, std {c['paired_std']:.3f}).")


@lesson("kfold", "k-fold cross-validation: is one config really better?",
        "Scores vary from fold to fold; a difference between two configs means something only when it is larger "
        "than that spread.")
def run(ctx: LessonContext) -> LessonOutput:
    n_pool, epochs = (600, 5) if ctx.quick else (2000, 10)
    x, y = fashion_subsets({"pool": n_pool}, ctx.seed)["pool"]
    bundle = bundle_from_data((x, y), val=0.2, seed=ctx.seed)
    scores, rows = {}, []
    for name, changes in CONFIGS.items():
        cfg = resolve_config(overrides={**BASE, **changes, "epochs": epochs, "seed": ctx.seed, "device": ctx.device,
                                        "out_dir": ctx.runs_dir()})
        cv = cross_validate(cfg, FOLDS, bundle=bundle, out_dir=ctx.out / "runs" / name.replace(" ", "-"))
        scores[name] = [r["final_val_acc"] for r in cv.folds]
        rows += [{"config": name, "fold": r["fold"], "n_train": r["n_train"], "n_val": r["n_val"],
                  "val acc": r["final_val_acc"]} for r in cv.folds]
    c = compare(scores)
    rows += [{"config": n, "fold": "mean ± std", "val acc": f"{s['mean']:.3f} ± {s['std']:.3f}"}
             for n, s in c["stats"].items()]
    fig = save_png(draw(scores, c), ctx.figure_path("kfold"))
    setup = (f"{n_pool} Fashion-MNIST training images as the CV pool, {FOLDS} stratified folds "
             f"(`trainlab.search.cross_validate`, the same folds for both configs; no test set). MLP 784-100-10 ReLU, "
             f"He init, SGD, batch {BASE['batch_size']}, {epochs} epochs; "
             + " vs ".join(CONFIGS) + ". Each fold's score is the validation accuracy after the last epoch.")
    return LessonOutput(setup=setup, results={"scores": scores, **c}, conclusion=conclude(c), figures=[fig], table=rows)
