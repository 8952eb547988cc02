"""Lesson ``vanishing-gradients``: per-layer gradient norms of deep nets at initialisation and after training.

Four nets of ten hidden weight layers on the 2-D ``circle`` toy set, built by ``build_model``: sigmoid
MLPs with N(0, 1) and Xavier weights, a ReLU MLP with He weights, and the residual MLP (``resnet`` on
flat input, 5 blocks × 2 layers, the same sigmoid + Xavier). The norm of every Linear layer's weight
gradient comes from one backward pass of the training loss over the training set, once at
initialisation and once after ``trainlab.fit`` has trained the net with plain SGD.

Why Xavier-sigmoid stalls here although the course recommends it for sigmoid: Glorot's scale assumes a unit
of slope 1 at 0 (tanh, linear); the sigmoid's slope there is 1/4, so each Xavier layer multiplies the
gradient by ≈ 1/4 (measured per layer below) and ten of them starve the first layer. Where the product does
not compound — one hidden layer, on Fashion-MNIST whose 784 inputs saturate N(0, 1) units — Xavier wins:
the lesson trains that setting too. Runs in ~15 s.
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import nn

import trainlab
from trainlab.config import ModelConfig
from trainlab.data.toy import make_toy
from trainlab.diagnose import activation_stats
from trainlab.lessons.base import LessonContext, LessonOutput, lesson
from trainlab.lessons.fashion_subset import fashion_mnist
from trainlab.models import build_model
from trainlab.report.plots import save_png
from trainlab.train.losses import resolve_loss

WIDTH, DEPTH = 32, 10
MODELS: dict[str, ModelConfig] = {
    "sigmoid MLP, N(0, 1)": ModelConfig(name="mlp", hidden=[WIDTH] * DEPTH, activation="sigmoid", init="normal",
                                        init_std=1.0),
    "sigmoid MLP, Xavier": ModelConfig(name="mlp", hidden=[WIDTH] * DEPTH, activation="sigmoid", init="xavier"),
    "ReLU MLP, He": ModelConfig(name="mlp", hidden=[WIDTH] * DEPTH, activation="relu", init="he"),
    "residual MLP, sigmoid, Xavier": ModelConfig(name="resnet", hidden=[WIDTH], blocks=DEPTH // 2,
                                                 activation="sigmoid", init="xavier"),
}
XAVIER_STD = (2 / (WIDTH + WIDTH)) ** 0.5  # Glorot: Var W = 2 / (fan_in + fan_out) between hidden layers
TRAIN = {"optimizer": "sgd", "lr": 0.1, "batch_size": 32}
SIGMOID_SLOPE = 0.25  # σ'(0): what Xavier's unit-slope assumption misses for sigmoid
SHALLOW_HIDDEN = [100]  # the setting where the per-layer factor does not compound
LOSS = resolve_loss("auto", "classification", 2)  # cross-entropy, the loss fit trains with


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``circle`` points (n, 2), standardised so that only the weights decide the first layer's scale."""
    x, y = make_toy("circle", n, 0.0, seed)
    return (x - x.mean(0)) / x.std(0), y


def layer_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """‖∂loss/∂W‖ of every Linear layer, input → output, from one backward pass over (x, y)."""
    model.zero_grad()
    LOSS.fn(model(x), y).backward()
    norms = {name: float(m.weight.grad.norm()) for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    model.zero_grad()
    return norms


def first_last(norms: dict[str, float]) -> float:
    """First layer's gradient norm over the last (output) layer's."""
    values = list(norms.values())
    return values[0] / values[-1]


def measure(cfg: ModelConfig, data: dict[str, tuple[torch.Tensor, torch.Tensor]],
            ctx: LessonContext, epochs: int) -> dict:
    """Gradient norms at init, then after ``epochs`` of SGD through ``trainlab.fit``, and the final metrics."""
    model = build_model(cfg, (2,), 2, seed=ctx.seed)
    at_init = layer_grad_norms(model, *data["train"])
    acts = activation_stats(model, data["train"][0])[0].values()
    saturated = sum(a["saturated"] + a["dead"] for a in acts) / len(acts)  # sigmoid: saturated; ReLU: dead
    run = trainlab.fit(model, data["train"], val=data["val"], epochs=epochs, seed=ctx.seed, out_dir=ctx.runs_dir(),
                       verbose=False, report=False, tensorboard=False, threads=1, device=ctx.device, **TRAIN)
    trained = layer_grad_norms(run.model, *data["train"])
    last = run.history[-1]
    return {"init": at_init, "trained": trained, "ratio_init": first_last(at_init), "saturated_init": saturated,
            "ratio_trained": first_last(trained), "val_acc": last["val_acc"], "train_loss": last["train_loss"],
            "run_dir": str(run.run_dir)}


def draw(res: dict[str, dict], epochs: int) -> Figure:
    """Per-layer gradient norms (log scale), one line per net: at initialisation and after training."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    for i, (key, title) in enumerate((("init", "at initialisation"), ("trained", f"after {epochs} epochs of SGD"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for name, r in res.items():
            ax.plot(range(1, len(r[key]) + 1), list(r[key].values()), "o-", ms=3, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("Linear layer (1 = first, last = output head)")
        ax.set_ylabel("‖∂loss/∂W‖")
        ax.set_title(f"Weight-gradient norm per layer, {title}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def conclude(res: dict[str, dict], epochs: int) -> str:
    """The conclusion, worded from the measured ratios, saturation and accuracies."""
    worst = min(res, key=lambda n: res[n]["ratio_init"])
    why = " (the sigmoid's slope is at most 0.25)" if MODELS[worst].activation == "sigmoid" else ""
    mlp, resid, wide = res["sigmoid MLP, Xavier"], res["residual MLP, sigmoid, Xavier"], res["sigmoid MLP, N(0, 1)"]
    ranked = sorted(res, key=lambda n: -res[n]["val_acc"])
    least = [n for n in res if res[n]["val_acc"] == res[ranked[-1]]["val_acc"]]
    fate = ("not the one that learns least" if worst not in least else "the one that learns least" if len(least) == 1
            else f"among the {len(least)} that learn least")
    accs = "; ".join(f"{n}: {res[n]['val_acc']:.0%}" for n in ranked)
    return (f"At initialisation the {worst} passes its first layer a gradient {res[worst]['ratio_init']:.1e} times "
            f"its last layer's: ×{res[worst]['ratio_init'] ** (1 / DEPTH):.2f} per layer over {DEPTH} layers{why}. "
            f"The residual MLP with the same sigmoid and Xavier init keeps a first/last ratio of "
            f"{resid['ratio_init']:.1e}, {resid['ratio_init'] / mlp['ratio_init']:.0e} times the plain sigmoid "
            f"MLP's ({mlp['ratio_init']:.1e}): the identity path carries the gradient past every block. "
            f"With N(0, 1) weights the sigmoid MLP's ratio is {wide['ratio_init']:.1e}: weights "
            f"{1 / XAVIER_STD:.0f}× Xavier's scale multiply the gradient back up, while {wide['saturated_init']:.0%} "
            f"of its units sit saturated (< 0.1 or > 0.9; Xavier: {mlp['saturated_init']:.0%}). "
            f"Validation accuracy after {epochs} epochs of SGD: {accs}. "
            f"The net with the smallest ratio at initialisation is {fate}.")


def shallow_sigmoid(ctx: LessonContext) -> dict[str, dict[str, float]]:
    """One hidden sigmoid layer on Fashion-MNIST from N(0, 1) and from Xavier: final accuracies and saturation."""
    n_train, n_test, epochs = (1000, 500, 5) if ctx.quick else (2000, 1000, 10)
    train, test = fashion_mnist(n_train, n_test, ctx.seed)
    out = {}
    for name in ("sigmoid MLP, N(0, 1)", "sigmoid MLP, Xavier"):
        cfg = MODELS[name].model_copy(update={"hidden": SHALLOW_HIDDEN})
        model = build_model(cfg, (784,), 10, seed=ctx.seed)
        acts = list(activation_stats(model, train[0])[0].values())
        run = trainlab.fit(model, train, val=test, epochs=epochs, seed=ctx.seed, out_dir=ctx.runs_dir(),
                           name=f"shallow-{cfg.init}", verbose=False, report=False, tensorboard=False, threads=1,
                           device=ctx.device, **TRAIN)
        out[name] = {"saturated_init": acts[0]["saturated"], "test_acc": run.history[-1]["val_acc"],
                     "train_loss": run.history[-1]["train_loss"], "epochs": epochs, "n_train": n_train}
    return out


def condition(res: dict[str, dict], shallow: dict[str, dict[str, float]]) -> str:
    """Why Xavier-sigmoid stalls in the deep net, and whether it wins where the per-layer factor does not compound."""
    xav, wide = res["sigmoid MLP, Xavier"], res["sigmoid MLP, N(0, 1)"]
    per_layer = xav["ratio_init"] ** (1 / DEPTH)
    sx, sn = shallow["sigmoid MLP, Xavier"], shallow["sigmoid MLP, N(0, 1)"]
    wins = sx["test_acc"] > sn["test_acc"]
    setting = (f"With one hidden layer of {SHALLOW_HIDDEN[0]} on {sx['n_train']} Fashion-MNIST images ({sx['epochs']} "
               f"epochs, the same SGD), where the factor is paid once and N(0, 1) weights on 784 inputs saturate "
               f"{sn['saturated_init']:.0%} of the units (Xavier: {sx['saturated_init']:.0%}), ")
    verdict = (f"Xavier wins: test accuracy {sx['test_acc']:.3f} against {sn['test_acc']:.3f}. The course's advice "
               "holds for shallow sigmoid nets (and its histograms are of activations at init, not of training); "
               "in a deep plain sigmoid net, Xavier's scale is too small by the sigmoid's slope."
               if wins else f"Xavier does not win either ({sx['test_acc']:.3f} against {sn['test_acc']:.3f}).")
    return (f"Why the Xavier sigmoid MLP stalls here: Xavier's scale assumes units of slope 1 at 0; the sigmoid's is "
            f"{SIGMOID_SLOPE}, and the measured gradient shrinks ×{per_layer:.2f} per layer (first/last "
            f"{xav['ratio_init']:.1e} over {DEPTH} layers), so its first layers barely move and it ends at validation "
            f"accuracy {xav['val_acc']:.3f}, while N(0, 1)'s larger weights keep the gradient ({wide['ratio_init']:.1e}) "
            + (f"and reach {wide['val_acc']:.3f}. " if wide["val_acc"] > xav["val_acc"]
               else f"but in this run reach no more ({wide['val_acc']:.3f}). ") + setting + verdict)


@lesson("vanishing-gradients", "Vanishing gradients in deep sigmoid nets",
        "Backpropagation through many sigmoid layers shrinks the gradient geometrically; ReLU with He init and "
        "residual connections keep it alive, and only the nets whose early layers get a gradient learn.")
def run(ctx: LessonContext) -> LessonOutput:
    n, epochs = (200, 5) if ctx.quick else (600, 20)
    x, y = toy_data(n, ctx.seed)
    cut = 2 * n // 3
    data = {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}
    res = {name: measure(cfg, data, ctx, epochs) for name, cfg in MODELS.items()}
    shallow = shallow_sigmoid(ctx)
    fig = save_png(draw(res, epochs), ctx.figure_path("grad_norms"))
    table = [{"model": k, "saturated/dead at init": f"{r['saturated_init']:.0%}", "first/last at init": r["ratio_init"],
              f"first/last after {epochs} epochs": r["ratio_trained"], "val acc": r["val_acc"],
              "train loss": r["train_loss"]} for k, r in res.items()]
    setup = (f"`circle` toy set, {cut} training / {n - cut} validation points (standardised), 2 classes, "
             f"cross-entropy. Ten hidden weight layers of {WIDTH} units each: " + "; ".join(MODELS) + ". "
             f"Gradient norms ‖∂loss/∂W‖ of every Linear layer from one backward pass over the training set, "
             f"at initialisation and after `trainlab.fit` with SGD lr {TRAIN['lr']}, batch {TRAIN['batch_size']}, "
             f"{epochs} epochs. Ratio = first layer's norm / output head's norm.")
    table += [{"model": f"{k.split(',')[0]} 784-{SHALLOW_HIDDEN[0]}-10 on Fashion-MNIST,{k.split(',')[1]}",
               "saturated/dead at init": f"{r['saturated_init']:.0%}", "val acc": r["test_acc"],
               "train loss": r["train_loss"]} for k, r in shallow.items()]
    setup += (f" Then the two sigmoid inits in a net with one hidden layer of {SHALLOW_HIDDEN[0]} units on "
              f"{shallow['sigmoid MLP, Xavier']['n_train']} Fashion-MNIST training images (the same SGD, "
              f"{shallow['sigmoid MLP, Xavier']['epochs']} epochs), scored on held-out test images.")
    return LessonOutput(setup=setup, results={"epochs": epochs, "models": res, "shallow": shallow},
                        conclusion=conclude(res, epochs) + " " + condition(res, shallow), figures=[fig], table=table)
