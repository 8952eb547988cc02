"""Lesson ``search``: the course's hyperparameter search — random search of the learning rate and weight decay on a
log scale, narrowed round by round (coarse to fine), chosen on validation data, the test set opened once at the end.

The course's recipe (Saito, §6.5): 500 Fashion-MNIST training images with 20 % held out for validation, an MLP of
six ReLU layers of 100 units, lr = 10^U(−6, −2), weight decay = 10^U(−8, −4), a few epochs per trial. Here
``trainlab.search`` runs it with method ``coarse-to-fine``: 3 rounds of 10 trials of 50 epochs (SGD, batch 100);
each round samples inside the range its predecessor's best trials span (with a margin). The chosen config is then
trained once more by ``trainlab.train.run.train``, whose last step scores its best checkpoint on the 10 000 test
images — the only run of the lesson that opens them. About 1 min at full size on 2 cores.
"""
from __future__ import annotations

import json
import math
import statistics
from typing import Any

from matplotlib.figure import Figure

from trainlab.config import replace, resolve_config
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.report.plots import save_png
from trainlab.search import search
from trainlab.train.run import train

SPACE = {"optimizer.lr": {"low": 1e-6, "high": 1e-2, "log": True},
         "optimizer.weight_decay": {"low": 1e-8, "high": 1e-4, "log": True}}
KEYS = {"optimizer.lr": "learning rate", "optimizer.weight_decay": "weight decay"}
BASE = {"data.name": "fashion-mnist", "data.download": False, "data.val_fraction": 0.2, "model.hidden": [100] * 6,
        "model.activation": "relu", "model.init": "he", "optimizer.name": "sgd", "batch_size": 100,
        "tensorboard": False, "threads": 1}
ROUNDS = 3


def per_round(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round: the completed trials' validation accuracies, their best, their median."""
    out = []
    for r in range(ROUNDS):
        vals = [t["value"] for t in rows if t["round"] == r and t["state"] == "complete" and t["value"] is not None]
        out.append({"round": r + 1, "trials": len(vals), "best": max(vals, default=math.nan),
                    "median": statistics.median(vals) if vals else math.nan})
    return out


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation of two equally long lists (no ties expected: sampled floats)."""
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        out = [0.0] * len(v)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    den = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return num / den if den else 0.0


def dependence(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per key, the rank correlation of validation accuracy with the key's value over round 1's trials: drawn
    uniformly (on the log scale) from the whole space, they show what the accuracy depends on."""
    done = [t for t in rows if t["round"] == 0 and t["state"] == "complete" and t["value"] is not None]
    return {k: spearman([t[k] for t in done], [t["value"] for t in done]) if len(done) > 2 else 0.0 for k in KEYS}


def decades(span: list[float]) -> float:
    """Width of a log-scale range in powers of ten."""
    return math.log10(span[1] / span[0])


def draw(rows: list[dict[str, Any]], ranges: list[dict[str, list[float]]]) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    fig.suptitle("Coarse-to-fine search: each round's trials; the bars show the range each round sampled from")

    for k, (key, label) in enumerate(KEYS.items()):
        ax = fig.add_subplot(1, 2, k + 1)
        for r in range(ROUNDS):
            pts = [(t[key], t["value"]) for t in rows if t["round"] == r and t["state"] == "complete"]
            if pts:
                ax.scatter(*zip(*pts), s=22, color=f"C{r}", label=f"round {r + 1}")
            lo, hi = ranges[r][key]
            ax.hlines(-0.03 - 0.03 * r, lo, hi, color=f"C{r}", lw=4)  # the range the round sampled from
        ax.set(xscale="log", xlabel=label, ylabel="validation accuracy", ylim=(-0.13, 1.0), title=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return fig


def conclude(stats: list[dict[str, Any]], ranges: list[dict[str, list[float]]], chosen: dict[str, float],
             final: dict[str, Any], dependence_of: dict[str, float]) -> str:
    first, last = stats[0], stats[-1]
    lr0, lr1 = ranges[0]["optimizer.lr"], ranges[-1]["optimizer.lr"]
    wd0, wd1 = ranges[0]["optimizer.weight_decay"], ranges[-1]["optimizer.weight_decay"]
    text = (f"Round 1 sampled the learning rate over {decades(lr0):.1f} decades ({lr0[0]:.0e} … {lr0[1]:.0e}); by "
            f"round {last['round']} the best trials had narrowed it to {decades(lr1):.1f} ({lr1[0]:.1e} … "
            f"{lr1[1]:.1e}), and the weight decay from {decades(wd0):.1f} to {decades(wd1):.1f} decades. ")
    text += (f"The median validation accuracy of a round went from {first['median']:.3f} to {last['median']:.3f} "
             f"(best {first['best']:.3f} → {max(s['best'] for s in stats):.3f}): "
             + ("later rounds spend their trials where the good values are" if last["median"] > first["median"] else
                "narrowing did not raise the typical trial here") + ". ")
    rho = dependence_of
    focus = max(rho, key=lambda k: abs(rho[k]))
    other = next(k for k in KEYS if k != focus)
    text += (f"Over round 1's trials, drawn uniformly from the whole space, the validation accuracy rank-correlates "
             f"with the {KEYS[focus]} at ρ = {rho[focus]:+.2f} and with the {KEYS[other]} at ρ = {rho[other]:+.2f}: "
             + (f"the {KEYS[focus]} decides, the narrowing of the {KEYS[other]} follows the few best trials rather "
                f"than a trend. " if abs(rho[focus]) > 2 * abs(rho[other]) else "both matter at this budget. "))
    text += (f"Chosen on validation accuracy alone: lr {chosen['optimizer.lr']:.2e}, weight decay "
             f"{chosen['optimizer.weight_decay']:.1e}. Trained once more and scored once on the "
             f"{final['n']} test images: test accuracy {final['test_acc']:.3f} — the only time the test set was "
             f"opened, so it is an honest estimate of this choice.")
    return text


@lesson("search", "Hyperparameter search: coarse to fine, on validation data",
        "Search the learning rate and weight decay on a log scale, narrow the ranges round by round, choose on "
        "validation data, and open the test set once, for the chosen config.")
def run(ctx: LessonContext) -> LessonOutput:
    n, trials, epochs = (200, 9, 6) if ctx.quick else (500, 30, 50)
    cfg = resolve_config(overrides={**BASE, "data.limit": n, "epochs": epochs, "seed": ctx.seed, "device": ctx.device,
                                    "out_dir": ctx.runs_dir()})
    result = search(cfg, SPACE, method="coarse-to-fine", trials=trials, rounds=ROUNDS, name="lesson", log=None)
    rows = result.rows
    ranges = json.loads((result.search_dir / "rounds.json").read_text())
    best = result.best
    chosen = {k: best[k] for k in KEYS}
    final_run = train(replace(result.best_config, name="chosen"), verbose=False)  # its end opens the test split
    final = final_run.summary["test"]
    stats = per_round(rows)
    rho = dependence(rows)
    fig = save_png(draw(rows, ranges), ctx.figure_path("search"))
    trials_opened_test = sum(1 for p in (result.search_dir / "trials").glob("*/summary.json")
                             if json.loads(p.read_text()).get("test") is not None)
    table = [{"round": s["round"], "trials": s["trials"], "median val acc": round(s["median"], 4),
              "best val acc": round(s["best"], 4),
              **{f"{KEYS[k]} range": f"{ranges[s['round'] - 1][k][0]:.1e} … {ranges[s['round'] - 1][k][1]:.1e}"
                 for k in KEYS}} for s in stats]
    table.append({"round": "chosen", "trials": 1, "median val acc": round(best["value"], 4),
                  "best val acc": f"test acc {final['test_acc']:.4f}", **{f"{KEYS[k]} range": f"{chosen[k]:.2e}"
                                                                          for k in KEYS}})
    setup = (f"{n} Fashion-MNIST training images, 20 % of them held out for validation; MLP 784-{'-'.join(['100'] * 6)}"
             f"-10 ReLU, He init, SGD, batch {BASE['batch_size']}, {epochs} epochs per trial. `trainlab.search` "
             f"method coarse-to-fine: {ROUNDS} rounds, {trials} trials in all, lr = 10^U(−6, −2) and weight decay = "
             f"10^U(−8, −4) in round 1, each next round inside the span of the previous round's best trials. "
             f"Trials are scored on validation accuracy; the chosen config is trained once more and tested once on "
             f"the official test images.")
    results = {"rounds": stats, "ranges": ranges, "chosen": chosen, "best_val_acc": best["value"], "test": final,
               "trials_that_opened_test": trials_opened_test, "search_dir": str(result.search_dir),
               "rank_correlation_round_1": rho}
    return LessonOutput(setup=setup, results=results, conclusion=conclude(stats, ranges, chosen, final, rho),
                        figures=[fig], table=table)
