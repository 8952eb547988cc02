"""The live verdict: per-layer statistics measured like the engine's, the rules' remedies in the page's words,
and a session that shows the vanishing-gradient finding for a deep sigmoid network."""
from __future__ import annotations

import math
import re

import pytest
import torch

from trainlab.diagnose import diagnose
from trainlab.diagnose.rules import PREFLIGHT_RULES, RULE_IDS
from trainlab.playground import data as pdata
from trainlab.playground.net import TEST_ACC, TEST_LOSS, VAL_LOSS, NetSpec, Network, Trainer, TrainSettings, targets
from trainlab.playground.verdict import MAX_LAYER_ROWS, add_layer_row, in_playground_terms, layer_row, live_verdict

# What a CLI config key looks like in a remedy: dotted names (optimizer.lr, model.hidden, best.pt) or key=value.
CLI_KEY = re.compile(r"\b[a-z_]+\.[a-z_]+\b|\w=|grad_clip|\binit\b")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trainer(hidden, act, dataset="circle", lr=0.03, **spec_kw) -> Trainer:
    pts = pdata.make_points(dataset, 0, seed=0)
    tr, te = pdata.split_points(pts, 50)
    out = "linear" if pts.task == "regression" else "tanh"
    spec = NetSpec(("x", "y"), hidden, (act,) * len(hidden), out, 1, **spec_kw)
    f = list(spec.features)
    fit, val = pdata.split_validation(tr, 10, seed=0)
    part = lambda p: (pdata.features(p.xy, f), targets(p.label, out))  # noqa: E731
    return Trainer(Network(spec, seed=0), part(fit), part(te), TrainSettings(lr=lr), val=part(val))


class Spy(torch.Tensor):
    """A tensor that records every torch operation on it (indexing, len, arithmetic, a module call)."""

    reads: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.reads.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


def test_the_live_verdict_never_reads_the_test_points():
    t = _trainer((4, 2), "tanh")
    for _ in range(40):
        t.epoch()
    rows: list = []
    add_layer_row(rows, t)
    before = live_verdict(t, rows)
    assert before and before["verdict"]
    Spy.reads.clear()
    t.xt, t.yt = t.xt.as_subclass(Spy), t.yt.as_subclass(Spy)
    # a test loss that explodes and a test accuracy of 0: "overfitting" at once, were they read
    n = t.epochs + 1
    t.history[:n, TEST_LOSS] = torch.linspace(0.01, 50.0, n)
    t.history[:n, TEST_ACC] = 0.0
    layer_row(t)
    assert live_verdict(t, rows) == before
    assert Spy.reads == []
    t.confusion()  # the page's test confusion matrix does read them: the spy sees it
    assert Spy.reads
    # and the verdict does follow the validation column
    t.history[:n, VAL_LOSS] = torch.linspace(0.01, 50.0, n)
    assert live_verdict(t, rows) != before


def test_saturated_units_from_the_inputs_scale_get_a_remedy_the_page_has():
    # TF's raw inputs (x, y in [-6, 6]) at lr 3: the first tanh layer saturates; the engine's remedy for that,
    # data.normalize, is no control of the page (it was shown as "set data.normalize=true")
    t = _trainer((4, 2), "tanh", lr=3.0)
    rows: list = []
    for _ in range(120):
        t.epoch()
        add_layer_row(rows, t)
    v = live_verdict(t, rows)
    assert v["verdict"] == "saturated_units"
    assert v["text"].endswith("Try: turn on BatchNorm, or lower the learning rate to 0.3 (now 3)"), v["text"]
    assert not CLI_KEY.search(v["text"])


def test_no_validation_points_no_verdict():
    t = _trainer((4, 2), "tanh")
    t.xv, t.yv = t.xv[:0], t.yv[:0]
    for _ in range(12):
        t.epoch()
    v = live_verdict(t)
    assert v["verdict"] is None and "Validation above 0" in v["text"]


@pytest.mark.parametrize("spec_kw", [{}, {"batchnorm": True, "dropout": 0.2}])
def test_layer_row_measures_like_the_engine_and_changes_nothing(spec_kw):
    t = _trainer((4, 3), "relu", **spec_kw)
    for _ in range(3):
        t.epoch()
    before = [p.detach().clone() for p in t.net.params] + [b.clone() for b in t.net.module.buffers()]
    rng = torch.get_rng_state()
    row = layer_row(t)
    after = [p.detach() for p in t.net.params] + list(t.net.module.buffers())
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # no update, no BatchNorm statistics moved
    assert torch.equal(torch.get_rng_state(), rng)  # no dropout mask drawn: training stays reproducible
    assert row["epoch"] == 3 and list(row["grad_norm"]) == ["hidden layer 1", "hidden layer 2", "output layer"]
    # grad_norm: per layer, the RMS over the epoch's batches of ‖(∂W, ∂b)‖, computed here with autograd
    m = t.net.module.eval()
    sq = torch.zeros(3)
    n = 0
    for a in range(0, len(t.x) - t.batch_size + 1, t.batch_size):
        loss = t.loss_fn(m(t.x[a:a + t.batch_size]), t.y[a:a + t.batch_size])
        grads = torch.autograd.grad(loss, t.net.params, allow_unused=True)
        by_param = {id(p): g for p, g in zip(t.net.params, grads)}
        for k, lin in enumerate(t.net.linears):
            sq[k] += sum(float(by_param[id(q)].square().sum()) for q in (lin.weight, lin.bias) if q is not None)
        n += 1
    m.train()
    assert list(row["grad_norm"].values()) == pytest.approx((sq / n).sqrt().tolist(), rel=1e-4)
    # activations: each hidden layer's outputs on the training points (dead = never positive)
    outs, _ = t.net.activations(t.x)
    acts = row["activations"]
    assert list(acts) == ["hidden layer 1", "hidden layer 2"] and acts["hidden layer 2"]["units"] == 3
    for name, o in zip(acts, outs):
        assert acts[name]["dead"] == pytest.approx(float((o.amax(0) <= 0).float().mean()))
        assert acts[name]["mean"] == pytest.approx(float(o.mean()), rel=1e-5)


def test_layer_rows_keep_the_first_and_stay_bounded():
    t = _trainer((2,), "tanh")
    rows: list = []
    for _ in range(3 * MAX_LAYER_ROWS):
        t.epoch()
        add_layer_row(rows, t)
        add_layer_row(rows, t)  # the same epoch twice: one row
    assert len(rows) <= MAX_LAYER_ROWS and rows[0]["epoch"] == 1 and rows[-1]["epoch"] == t.epochs
    epochs = [r["epoch"] for r in rows]
    assert epochs == sorted(set(epochs))


def _rows(train, val, acc=None, val_acc=None):
    val_acc = val_acc or acc
    return [{"epoch": i + 1, "train_loss": a, "val_loss": b, "train_acc": None if acc is None else acc[i],
             "val_acc": None if val_acc is None else val_acc[i], "lr": 0.03} for i, (a, b) in enumerate(zip(train, val))]


def _config(act="tanh", hidden=(4, 2), l2=0.0, dropout=0.0, patience=None, epochs=100, lr=0.03):
    # the shape live_verdict passes: no model.init (TF's init is not a choice in the playground)
    return {"epochs": epochs, "optimizer": {"name": "sgd", "lr": lr},
            "model": {"name": "mlp", "hidden": list(hidden), "activation": act, "dropout": dropout, "batchnorm": False},
            "loss": {"l1": 0.0, "l2": l2}, "stop": {"early_stopping": {"patience": patience}}}


def _layers(epoch, first, last, kind="tanh", dead=0.0, saturated=0.0):
    return {"epoch": epoch, "grad_norm": {"hidden layer 1": first, "output layer": last},
            "activations": {"hidden layer 1": {"kind": kind, "mean": 0.0, "std": 1.0, "dead": dead,
                                               "saturated": saturated, "units": 4}}}


N = 40
FLAT, FALLING = [0.5] * N, [0.5 * 0.97 ** i for i in range(N)]
RISING_VAL = [0.3 - 0.01 * i if i < 10 else 0.2 + 0.02 * (i - 10) for i in range(N)]
SCENARIOS = [  # (history, layers, summary, config): together they make every rule fire
    (_rows([0.5, math.nan, math.nan], [0.5, math.nan, math.nan]), [], {}, _config(lr=3)),
    (_rows(FALLING, FALLING), [_layers(1, 1, 1, "relu", dead=0.9), _layers(N, 5e3, 1, "relu", dead=0.9)], {},
     _config("relu")),
    (_rows(FALLING, FALLING), [_layers(1, 1e-5, 1, "sigmoid", saturated=0.9), _layers(N, 1e-5, 1, "sigmoid", saturated=0.9)],
     {}, _config("sigmoid")),
    (_rows(FALLING, FALLING), [_layers(1, 1e-5, 1, "relu"), _layers(N, 1e-5, 1, "relu")], {}, _config("relu", (8,) * 6)),
    (_rows([0.5 + 0.05 * i for i in range(N)], FLAT), [], {}, _config(lr=10)),
    (_rows([0.5 - 0.0001 * i for i in range(N)], FLAT, [0.5] * N), [], {}, _config(lr=0.003)),
    (_rows(FALLING, RISING_VAL), [], {}, _config()),
    (_rows(FALLING, RISING_VAL), [], {}, _config(patience=50)),
    (_rows(FLAT, FLAT, [0.55] * N), [], {}, _config(l2=0.03, dropout=0.1)),
    (_rows(FLAT, FLAT, [0.55] * N), [], {}, _config(hidden=())),
    (_rows(FLAT, FLAT, [0.55] * N), [], {}, _config(hidden=(8,) * 6)),
    (_rows(FALLING, FALLING, [0.99] * N), [], {"stop_reason": f"epochs: reached {N}", "stopped_by": "epochs"}, _config(epochs=N)),
    (_rows([0.5, 0.3], [0.5, 0.3]), [], {"stop_reason": "epochs: reached 2"}, _config(epochs=2)),  # too early
    (_rows(FALLING, [v + 0.3 for v in FALLING], [0.98] * N, [0.8] * N), [], {"data": {"train": 50}},
     _config()),  # a generalisation gap: few points, a net that fits them all
]


def test_every_rules_remedy_is_in_the_pages_words():
    fired = {}
    for history, layers, summary, config in SCENARIOS:
        for f in diagnose(history, layers, summary, config, n_classes=2).findings:
            fired.setdefault(f.rule, []).append(f"{f.message}. Try: {f.remedy}")
    # a new rule must get a scenario here (and its keys a rewrite); the pre-flight rules read facts the
    # playground never has (its inputs are TF's features, its net the engine's own MLP)
    # ... nor memory a GPU runs out of (its nets are a few hundred weights on the CPU), nor overfit_batches (its
    # training set is a few hundred points already)
    assert set(fired) == set(RULE_IDS) - {r.__name__ for r in PREFLIGHT_RULES} - {"out_of_memory", "memorization"}
    for rule, texts in fired.items():
        for raw in texts:
            assert CLI_KEY.search(raw), raw  # the engine's text names CLI keys ...
            text = in_playground_terms(raw, max_epochs=N)
            assert not CLI_KEY.search(text), (rule, text)  # ... the page's does not
            assert "val_loss" not in text and "test" not in text and "  " not in text  # validation points, not test
            for lr in re.findall(r"learning rate to ([\d.e-]+)", text):
                assert float(lr) in (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10)  # a menu step


@pytest.mark.parametrize("raw, page", [
    ("lower optimizer.lr to 0.003 (now 0.03) and set grad_clip=1.0", "lower the learning rate to 0.003 (now 0.03)"),
    ("lower optimizer.lr to 0.0003 (now 0.003)", "lower the learning rate to 0.0001 (now 0.003)"),  # snapped
    ("raise optimizer.lr to 30 (now 3)", "raise the learning rate to 10 (now 3)"),
    ("use model.activation=relu with model.init=he (now sigmoid with None), or set model.batchnorm=true",
     "use the relu activation (now sigmoid), or turn on BatchNorm"),
    ("give the model capacity: model.hidden=[64] (now [])",
     "give the model capacity: 32 neurons per hidden layer (now no hidden layer)"),  # 32: the playground's limit
    ("val_loss rose", "validation loss rose"),  # the validation points: never renamed the test loss
    ("for calibrated probabilities stop at epoch 1 (stop.early_stopping.patience) or regularise with "
     "optimizer.weight_decay=1e-4", "for calibrated probabilities stop at epoch 1 (early-stop patience) or regularise "
     "with L2 regularization at rate 0.001"),  # was shown with the CLI key
    ("raise optimizer.lr to 0.003 (now 0.001); with optimizer.lr=0.01 from “Learning rate too low” above",
     "raise the learning rate to 0.003 (now 0.001); for the setting they share, follow “Learning rate too low” above"),

])
def test_remedy_rewrites(raw, page):
    assert in_playground_terms(raw) == page


def test_train_longer_names_max_epochs_only_when_set():
    raw = "train longer (epochs=200, now 100) or raise optimizer.lr to 0.09 (now 0.03)"
    assert in_playground_terms(raw) == "train longer or raise the learning rate to 0.1 (now 0.03)"
    assert in_playground_terms(raw, max_epochs=100).startswith("train longer (max epochs 200, now 100) or")


def test_deep_sigmoid_network_shows_vanishing_gradients_in_the_session(session):
    session.post({"type": "init", "query": "?networkShape=8,8,8,8,8,8&activation=sigmoid"})
    session.out.until("state")
    for _ in range(30):
        session.post({"type": "step"})
    v = session.out.verdict(session)
    assert v["verdict"] == "vanishing_gradients" and v["severity"] == "warning", v
    assert "hidden layer 1" in v["text"] and "output layer" in v["text"]
    assert "use the relu activation (now sigmoid), or turn on BatchNorm" in v["text"]
    assert not CLI_KEY.search(v["text"]), v["text"]
    # the same network with ReLU and BatchNorm: the first layer learns; no vanishing finding
    session.post({"type": "set", "changes": {"activation": "relu", "batchnorm": True}})
    session.out.until("state")
    for _ in range(30):
        session.post({"type": "step"})
    assert session.out.verdict(session)["verdict"] != "vanishing_gradients"


def test_live_verdict_without_layer_rows_stays_on_the_fit():
    t = _trainer((8,) * 6, "sigmoid")
    for _ in range(30):
        t.epoch()
    assert live_verdict(t)["verdict"] != "vanishing_gradients"  # the layer rules need the samples
    rows: list = []
    add_layer_row(rows, t)
    assert live_verdict(t, rows)["verdict"] == "vanishing_gradients"
