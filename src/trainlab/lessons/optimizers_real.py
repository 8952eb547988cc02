"""Lesson ``optimizers-real``: SGD, Momentum, AdaGrad and Adam training a 784-100×4-10 ReLU net on Fashion-MNIST.

Saito's *Deep Learning from Scratch* §6.1.8 (``optimizer_compare_mnist.py``) on Fashion-MNIST: He init,
batch 128, 2000 updates, SGD 0.01, Momentum 0.01/0.9, AdaGrad 0.01, Adam 0.001 (``optimizers.REAL_SETTINGS``),
every run from the same start through ``trainlab.fit``. 51 200 training images (5 epochs = 2000 updates, where
Saito draws 2000 random batches from all 60 000), the 10 000 test images scored after every epoch.
About 25 s on one core.
"""
from __future__ import annotations

from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import fashion_mnist
from trainlab.lessons.optimizers import REAL_SETTINGS, SMOOTH, draw_real, opt_label, real_verdict, train_optimizers
from trainlab.report.plots import save_png

BATCH = 128


@lesson("optimizers-real", "Optimizers on Fashion-MNIST",
        "At their usual learning rates Momentum, AdaGrad and Adam train a deep ReLU net faster than plain SGD.")
def run(ctx: LessonContext) -> LessonOutput:
    n_train, n_test, epochs = (1280, 500, 20) if ctx.quick else (51200, 10000, 5)
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    res = train_optimizers(train, test, ctx, epochs)
    updates = len(res["SGD"]["step_losses"])
    fig = save_png(draw_real(res, f"Fashion-MNIST, 784-100×4-10 ReLU, He init: {updates} updates of {BATCH}",
                             {n: opt_label(n) for n in res}), ctx.figure_path("optimizers"))
    quarter = updates // 4
    table = [{"optimizer": n, "lr": REAL_SETTINGS[n]["lr"], f"smoothed loss @ {quarter}": r["smoothed"][quarter - 1],
              f"smoothed loss @ {updates}": r["final_loss"], "train acc": r["train_acc"], "test acc": r["test_acc"]}
             for n, r in res.items()]
    setup = (f"{n_train} Fashion-MNIST training images (pixels in [0, 1]), {n_test} test images. 784-100×4-10 "
             f"ReLU MLP, He init, the same start for every optimizer; batch {BATCH}, {epochs} epochs = {updates} "
             "updates, `trainlab.fit` with " + ", ".join(f"{n} lr {o['lr']}" for n, o in REAL_SETTINGS.items())
             + f" (momentum 0.9). Training loss per update, smoothed by a trailing mean of {SMOOTH}; test accuracy "
             "after every epoch.")
    early = sorted(res, key=lambda n: res[n]["smoothed"][quarter - 1])
    conclusion = (real_verdict(res) + f". Already after {quarter} updates the order is "
                  + " < ".join(f"{n} {res[n]['smoothed'][quarter - 1]:.3g}" for n in early) + ".")
    results = {"updates": updates, "n_train": n_train, "n_test": n_test,
               "optimizers": {n: {k: v for k, v in r.items() if k != "step_losses"} for n, r in res.items()}}
    return LessonOutput(setup=setup, results=results, conclusion=conclusion, figures=[fig], table=table)
