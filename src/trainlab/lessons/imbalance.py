"""Lesson ``imbalance``: one rare class among ten, what accuracy hides and what class weights change.

Fashion-MNIST: 400 training images of every class but 13 of "Shirt" (~30:1), and a held-out set of other images of
the training file in the same proportions (400 of each class, 13 shirts: the data the model will meet are as
imbalanced as the data it learned from; the test file stays closed). A 784-128-10 ReLU MLP, Adam lr 1e-3,
batch 64, 15 epochs, the same start for both runs: plain cross-entropy, then ``loss.class_weights=balanced`` (each
class weighs as much in total: the rare class's examples ~30× the others'). For each: accuracy, balanced accuracy
(the mean per-class recall), macro F1 and the rare class's recall on the held-out images, and the verdict. About
10 s on 2 cores.
"""
from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

import trainlab
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import Pair, _raw
from trainlab.report.plots import save_png

RARE = 6  # "Shirt": the class the others are most often mistaken for, so the hardest to keep when rare
HIDDEN, LR, BATCH = [128], 1e-3, 64
FULL = {"per_class": 400, "rare": 13, "held": 400, "epochs": 15}
QUICK = {"per_class": 200, "rare": 8, "held": 200, "epochs": 10}
RUNS = {"plain cross-entropy": None, "balanced class weights": "balanced"}


def imbalanced_subsets(per_class: int, rare: int, held: int, seed: int) -> tuple[Pair, Pair, list[str]]:
    """(train, held-out, class names): ``per_class`` training images of each class but ``rare`` of class RARE, then
    other images in the same proportions (``held`` of each class, fewer of RARE); images (n, 1, 28, 28) in [0, 1],
    drawn with ``seed``."""
    raw = _raw(seed)
    order = torch.randperm(len(raw.train), generator=torch.Generator().manual_seed(seed))
    y = raw.train.y[order]
    train_idx, held_idx = [], []
    for c in range(10):
        mine = order[y == c]  # (n_c,) this class's images, shuffled
        n = rare if c == RARE else per_class
        train_idx.append(mine[:n])
        n_held = max(1, round(held * rare / per_class)) if c == RARE else held
        held_idx.append(mine[per_class:per_class + n_held])  # never among any class's training images
    out = []
    for idx in (torch.cat(train_idx), torch.cat(held_idx)):
        part = raw.train.subset(idx).unit_pixels()
        out.append((part.x, part.y))
    return out[0], out[1], list(raw.class_names or range(10))


def train_with(label: str, train: Pair, held: Pair, epochs: int, ctx: LessonContext) -> dict[str, Any]:
    name = "-".join(label.split())
    run = trainlab.fit(None, train, val=held, hidden=HIDDEN, activation="relu", optimizer="adam", lr=LR,
                       batch_size=BATCH, epochs=epochs, class_weights=RUNS[label], out_dir=ctx.runs_dir(), name=name,
                       seed=ctx.seed, verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device)
    scores = run.evaluate(*held)  # the best checkpoint on the held-out images, per class
    recall = [r["recall"] for r in scores["per_class"]]
    return {"run": label, "acc": scores["acc"], "balanced_acc": scores["balanced_acc"],
            "macro_f1": scores["macro_f1"], "rare_recall": recall[RARE], "recall": recall,
            "verdict": run.diagnosis.verdict, "rules": run.diagnosis.rules()}


def draw(runs: list[dict[str, Any]], names: list[str]) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(runs)
    for i, (r, color) in enumerate(zip(runs, ("#d62728", "#1f77b4"))):
        xs = [c + (i - (len(runs) - 1) / 2) * width for c in range(len(names))]
        ax.bar(xs, r["recall"], width, color=color,
               label=f"{r['run']}: accuracy {r['acc']:.3f}, balanced {r['balanced_acc']:.3f}")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.get_xticklabels()[RARE].set_fontweight("bold")
    ax.set(ylabel="recall on held-out images", ylim=(0, 1.3), yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0],
           title=f"Per-class recall with '{names[RARE]}' rare in training")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return fig


def conclude(runs: list[dict[str, Any]], names: list[str], ratio: float) -> str:
    """What accuracy hid and what the class weights changed, from the numbers."""
    plain, weighted = runs
    rare = names[RARE]
    hidden = plain["acc"] - plain["balanced_acc"]
    parts = [f"With '{rare}' {ratio:.0f}× rarer than the others, plain cross-entropy scores accuracy "
             f"{plain['acc']:.3f} on held-out images in the same proportions but recalls only "
             f"{plain['rare_recall']:.2f} of the '{rare}' images; its balanced accuracy (each class counted equally) "
             f"is {plain['balanced_acc']:.3f}" + (f", {hidden:.3f} lower: what accuracy hides." if hidden > 0 else ".")]
    if "class_imbalance" in plain["rules"]:
        parts.append("The verdict names the imbalance (`class_imbalance`) before training starts.")
    else:
        parts.append(f"The verdict does not name the imbalance (`{plain['verdict']}`).")
    gain = weighted["rare_recall"] - plain["rare_recall"]
    acc_change = weighted["acc"] - plain["acc"]
    parts.append(f"Balanced class weights {'raise' if gain > 0 else 'do not raise'} the '{rare}' recall to "
                 f"{weighted['rare_recall']:.2f} ({gain:+.2f}) and move the balanced accuracy to "
                 f"{weighted['balanced_acc']:.3f} ({weighted['balanced_acc'] - plain['balanced_acc']:+.3f}) and the "
                 f"accuracy to {weighted['acc']:.3f} ({acc_change:+.3f})"
                 + (": the images the rare class gains come partly from the classes it is confused with."
                    if gain > 0 and acc_change < 0 else "."))
    return " ".join(parts)


@lesson("imbalance", "One rare class: what accuracy hides",
        "With one class 30× rarer in training, accuracy stays high while that class is rarely recognised; the "
        "balanced accuracy shows it, and balanced class weights trade some accuracy for it.")
def run(ctx: LessonContext) -> LessonOutput:
    sizes = QUICK if ctx.quick else FULL
    train, held, names = imbalanced_subsets(sizes["per_class"], sizes["rare"], sizes["held"], ctx.seed)
    runs = [train_with(label, train, held, sizes["epochs"], ctx) for label in RUNS]
    fig = save_png(draw(runs, names), ctx.figure_path("imbalance"))
    ratio = sizes["per_class"] / sizes["rare"]
    table = [{k: r[k] for k in ("run", "acc", "balanced_acc", "macro_f1", "rare_recall", "verdict")} for r in runs]
    setup = (f"Fashion-MNIST training images: {sizes['per_class']} of each class but {sizes['rare']} of "
             f"'{names[RARE]}' (~{ratio:.0f}:1); other images of the training file in the same proportions as the "
             f"held-out set (passed as `val=`; the test file stays closed). Net 784-{HIDDEN[0]}-10 ReLU, "
             f"`trainlab.fit` with Adam lr {LR:g}, batch {BATCH}, {sizes['epochs']} epochs, the same seed for both "
             "runs: plain cross-entropy, and `class_weights='balanced'`. Scores are the best checkpoint's on the "
             "held-out images (`run.evaluate`), per class as scikit-learn's classification_report.")
    results = {"ratio": ratio, "runs": {r["run"]: r for r in runs}, "class_names": names}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(runs, names, ratio), figures=[fig],
                        table=table)
