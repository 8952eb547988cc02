"""The playground's logic against TF Playground's semantics: data, features, init, gradients, the update rule,
URL state parse/clamp/round trip, and the session's message handling (exports: test_export.py)."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError, DataError
from trainlab.playground import check_host
from trainlab.playground import data as pdata
from trainlab.playground.net import TRAIN_LOSS, VAL_LOSS, NetSpec, Network, Trainer, TrainSettings, square_loss, targets
from trainlab.playground.state import LEARNING_RATES, default_state, parse_query, parse_state, to_query

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- data ----------------------------------------------------------------------------------------------


def test_sizes_and_split_follow_tf():
    pts = pdata.make_points("circle", 0, seed=3)
    assert len(pts) == 500 and pts.n_classes == 2
    assert set(pts.label.tolist()) == {-1.0, 1.0}
    train, test = pdata.split_points(pts, 50)
    assert (len(train), len(test)) == (250, 250)
    assert torch.equal(train.xy, pts.xy[:250])  # TF: the first ⌊N·ratio⌋ of the shuffled points
    assert len(pdata.make_points("plane", 0, seed=3)) == 1200
    assert len(pdata.split_points(pdata.make_points("plane", 0, 1), 30)[0]) == 360


def test_generators_match_tf_formulas():
    c = pdata.make_points("circle", 0, seed=1)
    r = c.xy.norm(dim=1)
    assert bool((r[c.label > 0] < 2.5).all()) and bool(((r[c.label < 0] >= 3.5) & (r[c.label < 0] <= 5)).all())
    x = pdata.make_points("xor", 0, seed=1)
    assert bool((x.xy.abs() >= 0.3).all())  # TF's 0.3 padding
    assert torch.equal(x.label > 0, x.xy[:, 0] * x.xy[:, 1] >= 0)
    g = pdata.make_points("gauss", 0, seed=1)
    pos = g.xy[g.label > 0]
    assert torch.allclose(pos.mean(0), torch.tensor([2.0, 2.0]), atol=0.15)
    assert abs(float(pos.var(0).mean()) - 0.5) < 0.1  # var = 0.5 + 7·noise
    p = pdata.make_points("plane", 0, seed=1)
    assert torch.allclose(p.label, p.xy.sum(1) / 10, atol=1e-6)
    s = pdata.make_points("spiral", 0, seed=1)
    assert math.isclose(float(s.xy.norm(dim=1).max()), 5 * 249 / 250, rel_tol=1e-5)  # r = 5i/250


def test_features_computed_two_ways():
    xy = torch.tensor([[1.5, -2.0], [-0.3, 0.7]])
    keys = ["x", "y", "xSquared", "ySquared", "xTimesY", "sinX", "sinY"]
    f = pdata.features(xy, keys)
    for row, (a, b) in zip(f.tolist(), xy.tolist()):
        assert row == pytest.approx([a, b, a * a, b * b, a * b, math.sin(a), math.sin(b)], rel=1e-6)


def test_csv_upload_good_and_bad():
    text = "x1,x2,label\n" + "\n".join(f"{i % 5 - 2},{i % 3 - 1},{1 if i % 2 else -1}" for i in range(20))
    pts = pdata.parse_csv(text, seed=0)
    assert len(pts) == 20 and pts.task == "classification" and pts.n_classes == 2
    three = pdata.parse_csv("\n".join(f"{i % 4},{i % 3},{i % 3}" for i in range(12)), seed=0)
    assert three.n_classes == 3 and three.label.dtype == torch.int64
    reg = pdata.parse_csv("\n".join(f"{i % 4},{i % 3},{i / 7}" for i in range(12)), seed=0)
    assert reg.task == "regression"
    with pytest.raises(DataError, match=r"CSV row 2 x1 must be within \[-6, 6\].*Got 9\.0"):
        pdata.parse_csv("1,1,1\n9,0,1\n1,2,-1\n0,0,1\n", 0)
    with pytest.raises(DataError, match=r"CSV row 1 column 2 must be a finite number. Got 'nan'"):
        pdata.parse_csv("1,nan,1\n", 0)
    with pytest.raises(DataError, match=r"CSV row 1 must be 3 columns"):
        pdata.parse_csv("1,2\n", 0)
    with pytest.raises(DataError, match=r"at most 5000 rows"):
        pdata.parse_csv("1,1,1\n" * 5001, 0)


# --- network, gradients, the update rule ------------------------------------------------------------


def _trainer(hidden=(4, 2), act="tanh", output="tanh", settings=TrainSettings(), n=40, seed=0, n_val=0,
             **spec_kw):
    """Trained on the first ``n`` training points; the next ``n_val`` are its validation points (0: none)."""
    pts = pdata.make_points("circle" if output != "linear" else "plane", 0, seed=seed)
    k = 2
    tr, te = pdata.split_points(pts, 50)
    spec = NetSpec(("x", "y"), hidden, (act,) * len(hidden), output, 1 if output != "softmax" else k, **spec_kw)
    feats = list(spec.features)
    part = lambda xy, label: (pdata.features(xy, feats), targets(label, output))  # noqa: E731
    val = part(tr.xy[n:n + n_val], tr.label[n:n + n_val]) if n_val else None
    return Trainer(Network(spec, seed=seed), part(tr.xy[:n], tr.label[:n]), part(te.xy, te.label), settings, val=val)


def test_tf_init():
    net = Network(NetSpec(("x", "y"), (4, 2), ("tanh", "tanh"), "tanh", 1), seed=5)
    for lin in net.linears:
        assert float(lin.weight.detach().abs().max()) <= 0.5 and torch.all(lin.bias == 0.1)
    same = Network(NetSpec(("x", "y"), (4, 2), ("tanh", "tanh"), "tanh", 1), seed=5)
    assert all(torch.equal(a, b) for a, b in zip(net.params, same.params))
    zero = Network(NetSpec(("x", "y"), (3,), ("relu",), "tanh", 1, init_zero=True), seed=5)
    assert all(float(p.detach().abs().sum()) == 0 for p in zero.params)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("output", ["tanh", "linear", "softmax"])
def test_hand_written_gradients_equal_autograd(act, output):
    t = _trainer(hidden=(5, 3), act=act, output=output)
    assert t.net.spec.fast
    xb, yb = t.x[:10], t.y[:10]
    manual, auto = t._manual_gradients(xb, yb), t._autograd_gradients(xb, yb)
    assert len(manual) == len(auto) == len(t.net.params)
    for m, a in zip(manual, auto):
        assert torch.allclose(m, a, atol=1e-6), (act, output)


def test_square_loss_is_tf():
    out, y = torch.tensor([[0.5], [-1.0]]), torch.tensor([[1.0], [1.0]])
    assert float(square_loss(out, y)) == pytest.approx((0.5 * 0.25 + 0.5 * 4) / 2)


def test_sgd_update_equals_torch_sgd_and_tf_rule():
    t = _trainer()
    ref = [p.detach().clone() for p in t.net.params]
    xb, yb = t.x[:10], t.y[:10]
    grads = t._autograd_gradients(xb, yb)
    t.update(xb, yb)
    for p, r, g in zip(t.net.params, ref, grads):
        assert torch.allclose(p, r - 0.03 * g, atol=1e-7)  # w −= lr · mean grad
    opt = torch.optim.SGD([r.requires_grad_() for r in ref], lr=0.03)
    for r, g in zip(ref, grads):
        r.grad = g
    opt.step()
    assert all(torch.allclose(p, r, atol=1e-7) for p, r in zip(t.net.params, ref))


def test_l2_and_l1_steps_follow_tf_including_dead_weights():
    t = _trainer(settings=TrainSettings(regularization="L2", reg_rate=0.1))
    w0 = [w.detach().clone() for w in t.net.weights]
    b0 = [lin.bias.detach().clone() for lin in t.net.linears]
    grads = t._autograd_gradients(t.x[:10], t.y[:10])
    t.update(t.x[:10], t.y[:10])
    gw = grads[0::2]
    for w, w_0, g in zip(t.net.weights, w0, gw):
        assert torch.allclose(w, (w_0 - 0.03 * g) - 0.03 * 0.1 * w_0, atol=1e-7)  # R' taken before the update
    for lin, b, g in zip(t.net.linears, b0, grads[1::2]):
        assert torch.allclose(lin.bias, b - 0.03 * g, atol=1e-7)  # biases are not regularised

    t = _trainer(settings=TrainSettings(regularization="L1", reg_rate=10.0, lr=0.01))
    with torch.no_grad():
        t.net.weights[0][0, 0] = 0.05  # the L1 step (lr·rate = 0.1) pushes it across 0: it dies
        w0 = [w.detach().clone() for w in t.net.weights]
    gw = t._autograd_gradients(t.x[:10], t.y[:10])[0::2]
    t.update(t.x[:10], t.y[:10])
    for w, w_0, g in zip(t.net.weights, w0, gw):
        w1 = w_0 - 0.01 * g
        w2 = w1 - 0.01 * 10.0 * torch.sign(w_0)
        assert torch.allclose(w, torch.where(w1 * w2 < 0, 0.0, w2), atol=1e-7)
    assert float(t.net.weights[0][0, 0].detach()) == 0.0 and not bool(t.alive[0][0, 0])
    for _ in range(5):
        t.update(t.x[:10], t.y[:10])
    assert float(t.net.weights[0][0, 0].detach()) == 0.0  # and stays dead


def test_batches_carry_leftovers_into_next_epoch():
    t = _trainer(settings=TrainSettings(batch_size=15), n=40)  # 40 = 2·15 + 10 left over
    sizes = []
    real = t.update
    t.update = lambda xb, yb: (sizes.append(len(xb)), real(xb, yb))
    t.epoch()
    t.epoch()
    assert sizes == [15, 15, 25, 15]  # epoch 2's first update also holds epoch 1's last 10 points


def test_default_setup_learns_circle():
    t = _trainer(n=250)  # seed 0 is the slowest of seeds 0-9 here: test loss < 0.05 at epoch 343 (others 38-74)
    for _ in range(400):
        t.epoch()
    rows = t.rows(0)
    assert rows[0][0] == 0 and len(rows) == 401
    assert rows[-1][2] < 0.05 and rows[-1][4] > 0.95  # test loss, test accuracy
    again = _trainer(n=250)
    for _ in range(400):
        again.epoch()
    assert again.rows(400) == t.rows(400)  # same seed → same numbers


def test_autograd_path_with_batchnorm_and_dropout_trains():
    t = _trainer(n=250, batchnorm=True, dropout=0.1, settings=TrainSettings(optimizer="adam", lr=0.01))
    assert not t.net.spec.fast
    for _ in range(30):
        t.epoch()
    rows = t.rows(0)
    assert rows[-1][2] < rows[0][2] and all(math.isfinite(v) for r in rows for v in r)


def test_stop_rules():
    t = _trainer(settings=TrainSettings(max_epochs=3))
    for _ in range(3):
        t.epoch()
    assert t.stopped == "epochs: reached 3" and t.stopped_by == "epochs"  # the engine's EpochLimit and reason
    t = _trainer(settings=TrainSettings(patience=2, lr=0.00001), n_val=20)
    for _ in range(50):
        if t.stopped:
            break
        t.epoch()
    assert t.stopped is not None and t.stopped.startswith("early_stopping: val_loss did not improve for 2 epochs")
    assert t.stopped_by == "early_stopping"  # the rule as data: the verdict reads this, not the prose
    rows = t.history[1:t.epochs + 1, VAL_LOSS]  # the validation column decides, not the test one
    best = rows.min().item()
    assert f"(best {best:.4g} at epoch {int(rows.argmin()) + 1})" in t.stopped and t.epochs == int(rows.argmin()) + 3
    t = _trainer(settings=TrainSettings(patience=2, lr=0.00001))  # no validation points: no early stopping
    for _ in range(10):
        t.epoch()
    assert t.stopped is None


@pytest.mark.parametrize("n_val, column", [(20, VAL_LOSS), (0, TRAIN_LOSS)])
def test_a_plateau_schedule_halves_the_lr_after_epochs_without_a_lower_loss(n_val, column):
    # the validation loss decides, or the training loss where there are no validation points; max_epochs 100:
    # patience max(5, 100 // 20) = 5 epochs, gamma 0.5 (the playground's schedule constants)
    t = _trainer(settings=TrainSettings(schedule="plateau", lr=3.0, max_epochs=100), n_val=n_val)
    lrs = []
    for _ in range(60):
        lrs.append(t.optimizer.param_groups[0]["lr"])
        t.epoch()
    losses = t.history[1:61, column].tolist()
    best, bad, expected = float("inf"), 0, [3.0]
    for loss in losses[:-1]:
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        cut = bad == 5
        bad = 0 if cut else bad
        expected.append(expected[-1] / 2 if cut else expected[-1])
    assert lrs == pytest.approx(expected) and lrs[-1] < 3.0


def test_stop_rules_follow_setting_changes():
    from dataclasses import replace

    t = _trainer(n_val=20)
    for _ in range(3):
        t.epoch()
    t.apply(replace(t.settings, max_epochs=2))  # a limit already passed stops at once, by the same rule
    assert (t.stopped, t.stopped_by) == ("epochs: reached 2", "epochs")
    t.apply(replace(t.settings, max_epochs=5))  # raising it lets training go on, up to the new limit
    assert t.stopped is None
    while t.stopped is None and t.epochs < 10:
        t.epoch()
    assert (t.epochs, t.stopped) == (5, "epochs: reached 5")
    # maxEpochs past the engine's cap of 100,000 epochs still builds early stopping from the engine's config
    t = _trainer(settings=TrainSettings(patience=3, max_epochs=1_000_000), n_val=20)
    assert [r.name for r in t._rules] == ["early_stopping", "epochs"]
    t.epoch()
    es = t._rules[0]
    t.apply(replace(t.settings, lr=0.01))  # another setting keeps early stopping's best and count ...
    assert t._rules[0] is es and es.best_epoch == 1
    t.apply(replace(t.settings, patience=4))  # ... a new patience starts it afresh
    assert t._rules[0] is not es and t._rules[0].patience == 4 and t._rules[0].best is None


def test_a_diverging_epoch_is_undone_and_stops_training():
    from dataclasses import replace

    t = _trainer(hidden=(4, 2), output="linear", settings=TrainSettings(lr=10), n=250)  # plane at lr 10: NaN at once
    start = [p.detach().clone() for p in t.net.params]
    t.epoch()
    assert t.stopped.startswith("diverged: the training loss became NaN in epoch 1. Lower the learning rate (now 10)")
    assert t.stopped_by == "non_finite"
    assert t.epochs == 0 and all(torch.equal(p, q) for p, q in zip(t.net.params, start))  # the epoch is undone
    assert all(math.isfinite(v) for r in t.rows(0) for v in r)
    t.apply(replace(t.settings, lr=0.03))  # a lower learning rate goes on from the last finite weights
    assert t.stopped is None
    for _ in range(5):
        t.epoch()
    assert t.stopped is None and t.epochs == 5 and t.rows(5)[0][1] < t.rows(0)[0][1]


# --- URL state --------------------------------------------------------------------------------------


def test_url_round_trip_restores_exactly():
    state, notes = parse_state(parse_query("?dataset=spiral&classes=3&networkShape=8,8,8&activation=relu&seed=42"
                                           "&learningRate=0.1&xSquared=true&compare=true&b.networkShape=2"))
    assert notes == [] or all("cross_entropy" in n for n in notes)
    again, notes2 = parse_state(parse_query(to_query(state)))
    assert again == state and notes2 == []
    assert state["b.networkShape"] == [2] and state["b.activation"] == "relu"  # B defaults to A


@pytest.mark.parametrize("query, key, value, message", [
    ("noise=80", "noise", 50, r"noise must be a whole number from 0 to 50. Got '80'. Using 50."),
    ("noise=nan", "noise", 0, r"noise must be a whole number from 0 to 50. Got 'nan'. Using the default 0."),
    ("learningRate=0.05", "learningRate", 0.03, r"learningRate must be one of .*Got '0.05'. Using the nearest, 0.03."),
    ("learningRate=inf", "learningRate", 0.03, r"learningRate must be one of"),
    ("batchSize=-3", "batchSize", 1, r"batchSize must be a whole number from 1 to 30. Got '-3'. Using 1."),
    ("networkShape=4,999,x", "networkShape", [4, 32], r"networkShape must be a comma-separated list"),
    ("networkShape=" + ",".join(["2"] * 12), "networkShape", [2] * 10, r"at most 10 layer sizes"),
    ("activation=evil", "activation", "tanh", r"activation must be one of relu, leaky_relu"),
    ("dataset=reg-plane", "dataset", "plane", None),  # TF's name
    ("x=false&y=false", "x", True, r"x must be on when every other input is off"),
    ("dropout=1e308", "dropout", 0.9, r"dropout must be a number from 0 to 0.9"),
    ("batchnorm=true&batchSize=1", "batchSize", 2, r"batchSize must be at least 2 while batchnorm is on"),
    ("batchnorm=true&batchSize=2", "batchSize", 2, None), ("batchSize=1", "batchSize", 1, None),
])
def test_url_values_clamped_with_a_message(query, key, value, message):
    state, notes = parse_state(parse_query(query))
    assert state[key] == value
    if message is None:
        assert notes == []
    else:
        assert any(__import__("re").search(message, n) for n in notes), notes
    with pytest.raises(ConfigError) if message else _nothing():
        parse_state(parse_query(query), strict=True)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.mark.parametrize("query, problem, dataset, message", [
    ("problem=regression&dataset=reg-plane", "regression", "plane", None),
    # a TF link writes both sets: in regression its set is regDataset
    ("problem=regression&dataset=circle&regDataset=reg-gauss", "regression", "multi-gauss", None),
    ("problem=classification&dataset=xor&regDataset=reg-gauss", "classification", "xor", None),
    ("dataset=multi-gauss", "regression", "multi-gauss", None),  # no problem (an older link): the set decides
    ("problem=regression", "regression", "plane", None),  # no set: the problem's first
    ("problem=regression&dataset=spiral", "regression", "plane",
     r"dataset must be a regression set \(plane, multi-gauss\) when problem is regression. Got 'spiral'. Using plane."),
    ("problem=clasification&dataset=plane", "regression", "plane",
     r"problem must be one of classification, regression. Got 'clasification'. "
     r"Using regression, the problem of plane."),
])
def test_problem_type_and_dataset_agree(query, problem, dataset, message):
    state, notes = parse_state(parse_query(query))
    assert (state["problem"], state["dataset"]) == (problem, dataset)
    if message is None:
        assert notes == []
    else:
        assert len(notes) == 1 and __import__("re").fullmatch(message, notes[0]), notes
        with pytest.raises(ConfigError, match=message):
            parse_state(parse_query(query), strict=True)
    assert f"problem={problem}&dataset={dataset}" in to_query(state)  # written back under TF's key
    # a change of the problem alone (over the current state) picks that problem's first set
    other = "classification" if problem == "regression" else "regression"
    changed, notes = parse_state({"problem": other}, base=state)
    assert changed["problem"] == other and notes == []
    assert changed["dataset"] == {"classification": "circle", "regression": "plane"}[other]


def test_session_problem_follows_uploads(session):
    session.post({"type": "init", "query": "?problem=regression&dataset=upload"})
    st = session.out.until("state")
    assert (st["state"]["problem"], st["state"]["dataset"]) == ("classification", "circle")  # nothing uploaded yet
    text = "x1,x2,label\n" + "\n".join(f"{i % 7 - 3},{i % 5 - 2},{i / 10}" for i in range(40))
    session.post({"type": "upload", "text": text})
    st = session.out.until("state")
    assert (st["state"]["problem"], st["state"]["dataset"], st["task"]) == ("regression", "upload", "regression")
    assert "problem=regression&dataset=upload" in st["query"]
    session.post({"type": "set", "changes": {"problem": "classification"}})  # another problem leaves the upload
    st = session.out.until("state")
    assert (st["state"]["problem"], st["state"]["dataset"], st["notes"]) == ("classification", "circle", [])


def test_all_tf_learning_rates_accepted():
    for lr in LEARNING_RATES:
        state, notes = parse_state({"learningRate": str(lr)})
        assert state["learningRate"] == lr and notes == []
    assert parse_state({})[0] == default_state()


def test_remote_host_needs_the_flag():
    check_host("127.0.0.1", False)
    check_host("localhost", False)
    with pytest.raises(ConfigError, match=r"--host must be a loopback address .* Got '0.0.0.0'. Add --allow-remote"):
        check_host("0.0.0.0", False)
    check_host("0.0.0.0", True)


# --- session (without a server) ---------------------------------------------------------------------


def test_session_survives_hostile_messages_and_keeps_torch_threads(session):
    torch.set_num_threads(2)  # the fixture's 1 is restored afterwards
    threads = torch.get_num_threads()
    session.post({"type": "init", "query": "?networkShape=3"})
    assert session.out.until("state")["state"]["networkShape"] == [3]
    for bad in [{"type": "nope"}, {"type": "__init__"}, {"type": "set", "changes": 5},
                {"type": "set", "changes": {"noise": {"a": 1}}}, {"type": "edit", "net": "a", "layer": 99},
                {"type": "edit", "net": "a", "layer": 0, "kind": "w", "i": 0, "j": 0, "value": "nan"},
                {"type": "frame", "hover": ["a", "x", None]}, {"type": "upload", "text": "1,2\n"}]:
        session.post(bad)
    errors = [session.out.until("message") for _ in range(6)]
    assert all(m["level"] == "error" for m in errors)
    assert any("weight must be a finite number. Got 'nan'" in m["text"] for m in errors)
    session.post({"type": "step"})
    session.post({"type": "frame"})
    frame = session.out.frame(1)
    assert frame["nets"]["a"]["epoch"] == 1 and session.thread.is_alive()
    assert torch.get_num_threads() == threads  # the session's 1-thread setting stayed in its own thread


def test_an_error_in_training_pauses_the_session_and_says_so(session, monkeypatch):
    from trainlab.playground.net import Trainer

    session.post({"type": "init", "query": ""})
    session.out.until("state")
    real = Trainer.epoch
    monkeypatch.setattr(Trainer, "epoch", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    session.post({"type": "play"})
    msg = session.out.until("message")
    assert msg["level"] == "error" and msg["text"] == "training paused: internal error: RuntimeError: boom"
    while session.out.until("frame")["playing"]:
        pass  # frames sent before the error
    assert session.thread.is_alive() and not session.playing
    assert len([m for m in session.out.log if m["type"] == "message"]) == 1  # said once, not at every frame
    monkeypatch.setattr(Trainer, "epoch", real)
    session.post({"type": "step"})
    session.post({"type": "frame"})
    assert session.out.frame(1)["nets"]["a"]["epoch"] == 1  # it trains again


def test_session_edit_weight_and_compare(session):
    session.post({"type": "init", "query": ""})
    session.out.until("state")
    session.post({"type": "edit", "net": "a", "layer": 0, "kind": "w", "i": 1, "j": 0, "value": 0.25})
    session.post({"type": "frame"})
    while (f := session.out.until("frame"))["nets"]["a"]["weights"][0]["w"][1][0] != 0.25:
        pass  # frames sent before the edit
    assert f["nets"]["a"]["epoch"] == 0
    session.post({"type": "set", "changes": {"compare": True, "b.networkShape": "1"}})
    st = session.out.until("state")
    assert set(st["nets"]) == {"a", "b"} and st["nets"]["b"]["hidden"] == [1]
    session.post({"type": "step"})
    session.post({"type": "frame"})
    nets = session.out.frame(1)["nets"]
    assert nets["a"]["epoch"] == nets["b"]["epoch"] == 1


def test_upload_makes_a_dataset(session):
    session.post({"type": "init", "query": ""})
    session.out.until("state")
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 5, (60, 2))
    text = "x1,x2,label\n" + "\n".join(f"{a:.3f},{b:.3f},{int(a > 0)}" for a, b in xy)
    session.post({"type": "upload", "text": text})
    st = session.out.until("state")
    assert st["state"]["dataset"] == "upload" and len(st["train"]) + len(st["test"]) == 60


def test_session_stops_a_diverging_network_with_finite_numbers(session):
    session.post({"type": "init", "query": "?dataset=plane&learningRate=10"})
    session.out.until("state")
    session.post({"type": "play"})
    session.post({"type": "frame"})
    end = time.monotonic() + 10
    while not (f := session.out.until("frame"))["nets"]["a"]["stopped"] and time.monotonic() < end:
        session.post({"type": "frame", "force": True})
    a = f["nets"]["a"]
    assert a["stopped"].startswith("diverged: the training loss became NaN in epoch 1")
    assert "Lower the learning rate (now 10)" in a["stopped"]
    session.post({"type": "frame", "force": True})
    last = session.out.until("frame")
    assert last["playing"] is False and last["nets"]["a"]["epoch"] == 0
    numbers = [v for m in session.out.log if m["type"] == "frame" for r in m["nets"]["a"]["rows"] for v in r]
    assert numbers and all(v is not None and math.isfinite(v) for v in numbers)  # Collect also refuses NaN in JSON
    assert not [m for m in session.out.log if m["type"] == "message" and m["level"] == "error"]
