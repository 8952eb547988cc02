"""Lesson ``init-real``: N(0, 0.01²), Xavier and He initialising a 784-100×4-10 ReLU net trained on Fashion-MNIST.

Saito's *Deep Learning from Scratch* §6.2.4 (``weight_init_compare.py``) on Fashion-MNIST: the net of
``optimizers-real``, SGD lr 0.01, batch 128, 2000 updates, the three inits of the engine's registry (the
same seed draws each). 51 200 training images (5 epochs), the 10 000 test images. About 20 s on one core.
"""
from __future__ import annotations

import math
from typing import Any

from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import fashion_mnist, fit_logged, smooth
from trainlab.lessons.optimizers import SMOOTH, draw_real
from trainlab.report.plots import save_png

INITS: dict[str, dict[str, Any]] = {
    "N(0, 0.01²)": {"init": "normal", "init_std": 0.01},
    "Xavier": {"init": "xavier"},
    "He": {"init": "he"},
}
NET = {"hidden": [100] * 4, "activation": "relu", "batch_size": 128, "optimizer": "sgd", "lr": 0.01}
CLASSES = 10
# "Stuck": the smoothed loss still within 5 % of ln(10) = 2.30, the loss of guessing each class equally, where a
# net whose outputs are all ≈ 0 starts; a net that learns anything leaves it within a few hundred updates.
STUCK = 0.05


def conclude(res: dict[str, dict[str, Any]]) -> str:
    """Which inits learned, which stayed at chance, and how the learners compare, from the measured losses."""
    chance = math.log(CLASSES)
    updates = len(res["He"]["step_losses"])
    stuck = [n for n, r in res.items() if r["final_loss"] > (1 - STUCK) * chance]
    learned = sorted((n for n in res if n not in stuck), key=lambda n: res[n]["final_loss"])
    parts = [f"After {updates} updates of SGD the smoothed training loss is "
             + ", ".join(f"{n} {res[n]['final_loss']:.3g} (test accuracy {res[n]['test_acc']:.3f})" for n in res)
             + f"; guessing each class equally costs ln {CLASSES} = {chance:.3g}."]
    if stuck:
        parts.append(f"{' and '.join(stuck)} never left it (within {STUCK:.0%}): with weights this small every "
                     "layer shrinks the signal about tenfold, the output barely depends on the input and the "
                     "gradients reaching the first layers are as small, so SGD at lr 0.01 cannot move them.")
    if len(learned) >= 2:
        best, other = learned[0], learned[1]
        parts.append(f"{best} learns fastest, ending {res[other]['final_loss'] / res[best]['final_loss']:.2g}× below "
                     f"{other}" + (": the He scale (std √(2/fan_in)) keeps a ReLU layer's output variance, Xavier's "
                                   "halves it in every 100 → 100 layer." if best == "He" else "."))
    return " ".join(parts)


@lesson("init-real", "Weight initialisation on Fashion-MNIST",
        "A deep ReLU net does not learn from N(0, 0.01²) weights; Xavier and He learn, He fastest.")
def run(ctx: LessonContext) -> LessonOutput:
    n_train, n_test, epochs = (1280, 500, 20) if ctx.quick else (51200, 10000, 5)
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    res = {}
    for label, init in INITS.items():
        r = fit_logged(train, test, ctx, init["init"], epochs=epochs, **NET, **init)
        r["smoothed"] = smooth(r["step_losses"], SMOOTH)
        r["final_loss"] = r["smoothed"][-1]
        res[label] = r
    updates = len(res["He"]["step_losses"])
    fig = save_png(draw_real(res, f"Fashion-MNIST, 784-100×4-10 ReLU, SGD lr 0.01: {updates} updates of 128",
                             {n: n for n in res}), ctx.figure_path("init"))
    table = [{"init": n, "smoothed train loss": r["final_loss"], "train acc": r["train_acc"],
              "test acc": r["test_acc"], "verdict": r["verdict"]} for n, r in res.items()]
    setup = (f"{n_train} Fashion-MNIST training images, {n_test} test images. 784-100×4-10 ReLU MLP trained by "
             f"`trainlab.fit` with SGD lr 0.01, batch 128, {epochs} epochs = {updates} updates, from each init: "
             "N(0, 0.01²) (`init='normal', init_std=0.01`), Xavier (Glorot uniform), He (Kaiming normal); biases 0. "
             f"Training loss smoothed over {SMOOTH} updates; the verdict is `run.diagnosis`.")
    results = {"updates": updates, "inits": {n: {k: v for k, v in r.items() if k != "step_losses"}
                                             for n, r in res.items()}}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(res), figures=[fig], table=table)
