"""``trainlab fix`` / ``run.fix()``: the verdict's top remedy trained as a new run with the same seed, data,
split and starting weights, judged before → after on validation metrics, recorded in both runs.

Every run here is a toy run (≤ 300 points or 600 moons, ≤ 8 epochs, 1 thread)."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

import trainlab as tl
import trainlab.remedy as fix_mod
from trainlab.cli import main
from trainlab.config import config_to_dict, replace, resolve_config
from trainlab.diagnose.rules import RULES, Finding, RunContext
from trainlab.errors import FixError, TrainingError
from trainlab.remedy import judge
from tests.diagnose.test_preflight import mlp, moons

TOY = ["--set", "data.name=circle", "--set", "data.n_points=300", "--set", "model.hidden=[8]",
       "--set", "model.activation=tanh", "--set", "model.init=xavier", "--set", "batch_size=16",
       "--set", "threads=1", "--set", "tensorboard=false", "--quiet"]


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_exit_2(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert __import__("re").search(match, err), err
    return err


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def test_fix_lowers_a_too_high_lr_and_the_validation_accuracy_improves(cwd, capsys):
    # SGD lr 5 on a 2-unit-wide problem (50× the default): the loss ends far above ln 2 and val acc peaks at 0.75
    assert main(["train", *TOY, "--set", "optimizer.lr=5", "--set", "epochs=5", "--name", "hot"]) == 0
    capsys.readouterr()
    assert main(["fix", "runs/hot", "--quiet"]) == 0
    out = capsys.readouterr().out
    rec = json.loads((cwd / "runs/hot/fix.json").read_text())["fix_tried"]
    assert json.loads((cwd / "runs/hot-fix/fix.json").read_text()) == {"fixed_from": rec}  # the same record
    assert rec["rule"] == "lr_too_high" and rec["sets"] == {"optimizer.lr": 0.5}
    before, after = rec["before"], rec["after"]
    assert rec["improved"] is True and after["val_acc"] > before["val_acc"] + 0.1
    assert after["val_loss"] < before["val_loss"]
    line = f"improved val accuracy {before['val_acc']:.2f} → {after['val_acc']:.2f}"
    assert line in out and line in rec["judgement"] and "runs/hot-fix" in out
    # same seed, data and split: the new config differs from the old by the remedy (and its name) only
    old = flat(yaml.safe_load((cwd / "runs/hot/config.yaml").read_text()))
    new = flat(yaml.safe_load((cwd / "runs/hot-fix/config.yaml").read_text()))
    assert {k for k in old if old[k] != new[k]} == {"optimizer.lr", "name"} and new["optimizer.lr"] == 0.5
    summaries = [json.loads((cwd / f"runs/{r}/summary.json").read_text()) for r in ("hot", "hot-fix")]
    assert summaries[0]["data"] == summaries[1]["data"]
    # both reports: the parent points to the new run, the new run names its parent, both with before → after
    parent = (cwd / "runs/hot/report.html").read_text()
    child = (cwd / "runs/hot-fix/report.html").read_text()
    assert '<section id="fix">' in parent and "Fix tried" in parent and 'href="../hot-fix/report.html"' in parent
    assert '<section id="fixed-from">' in child and "Fixed from" in child and 'href="../hot/report.html"' in child
    for page in (parent, child):
        assert "improved" in page and "optimizer.lr=0.5" in page
        assert f"{before['val_acc']:.4g}" in page and f"{after['val_acc']:.4g}" in page


def test_a_remedy_that_did_not_help_says_so_and_a_fix_of_the_fix_keeps_both_records(cwd, capsys):
    # lr 50 → 5 still overshoots: the loss falls 20 → 0.9 but val accuracy moves by one example of 24 (0.71 →
    # 0.75), within chance; fixing that run again (5 → 0.5) helps. The middle run is both a fix and fixed.
    assert main(["train", *TOY, "--set", "optimizer.lr=50", "--set", "epochs=5", "--name", "hot"]) == 0
    capsys.readouterr()
    assert main(["fix", "runs/hot", "--quiet"]) == 0
    first = json.loads((cwd / "runs/hot/fix.json").read_text())["fix_tried"]
    assert first["sets"] == {"optimizer.lr": 5.0} and first["improved"] is False
    assert first["judgement"].startswith(f"did not help: val accuracy {first['before']['val_acc']:.2f} → "
                                         f"{first['after']['val_acc']:.2f}")
    assert "did not help" in capsys.readouterr().out
    assert main(["fix", "runs/hot-fix", "--quiet"]) == 0
    middle = json.loads((cwd / "runs/hot-fix/fix.json").read_text())
    assert middle["fixed_from"] == first and middle["fix_tried"]["fix_name"] == "hot-fix-fix"
    assert middle["fix_tried"]["sets"] == {"optimizer.lr": 0.5} and middle["fix_tried"]["improved"] is True
    page = (cwd / "runs/hot-fix/report.html").read_text()
    assert "Fixed from" in page and "Fix tried" in page and "did not help" in page


def test_a_fix_run_that_breaks_too_is_judged_and_exits_1(cwd, capsys):
    # lr 1e6: NaN within epoch 1; the remedy (÷10) still breaks, and so do the follow-ups (÷10 each, up to
    # MAX_FOLLOW_UPS): recorded as not helping, every try kept and listed, exit 1 as train's
    assert main(["train", *TOY, "--set", "model.activation=relu", "--set", "model.init=normal", "--set",
                 "optimizer.lr=1e6", "--set", "epochs=3", "--name", "nan"]) == 1
    capsys.readouterr()
    assert main(["fix", "runs/nan", "--quiet", "--no-report"]) == 1
    out = capsys.readouterr().out
    rec = json.loads((cwd / "runs/nan/fix.json").read_text())["fix_tried"]
    assert fix_mod.MAX_FOLLOW_UPS == 3
    assert rec["rule"] == "lr_too_high" and rec["sets"] == {"optimizer.lr": 100.0}  # the cause, above its NaN
    assert [d["optimizer.lr"] for d in rec["diverged"]] == [1e5, 1e4, 1e3]
    assert [d["run_dir"].split("/")[-1] for d in rec["diverged"]] == ["nan-fix", "nan-fix2", "nan-fix3"]
    assert rec["fix_name"] == "nan-fix4" and all("nan" in d["error"].lower() for d in rec["diverged"])


    assert rec["before"] is None and rec["after"] is None and rec["improved"] is False and "nan" in rec["error"]
    assert "did not help: no finite epoch before or after" in out and "the fix run stopped: " in out
    assert "the tries at 100000, 10000, 1000 stopped on NaN/Inf" in out


def test_a_fix_run_that_diverges_again_lowers_the_lr_until_it_stays_finite(cwd, capsys):
    # lr 1000 → the remedy's 100 still breaks in epoch 1; fix follows up with 10, which trains, and judges that run
    assert main(["train", *TOY, "--set", "model.activation=relu", "--set", "model.init=normal", "--set",
                 "optimizer.lr=1000", "--set", "epochs=3", "--name", "hot"]) == 1
    capsys.readouterr()
    assert main(["fix", "runs/hot", "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    rec = json.loads((cwd / "runs/hot/fix.json").read_text())["fix_tried"]
    assert rec["sets"] == {"optimizer.lr": 10.0} and [d["optimizer.lr"] for d in rec["diverged"]] == [100.0]
    assert rec["error"] is None and rec["after"]["val_acc"] > 0.5 and rec["fix_name"] == "hot-fix2"
    assert json.loads((cwd / "runs/hot-fix2/fix.json").read_text()) == {"fixed_from": rec}
    assert (cwd / "runs/hot-fix/summary.json").exists()  # the diverged try is kept, as a record
    assert "(at optimizer.lr=10: the tries at 100 stopped on NaN/Inf)" in out



def test_each_lower_lr_try_of_a_users_module_starts_from_the_same_weights_not_the_nan_ones(tmp_path):
    # the tries trained one module in place: the second started from the first's NaN weights and its pre-flight
    # died in torch.histc with a raw RuntimeError
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g) * 50
    y = (x[:, 0] * x[:, 1] > 0).long()

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))

    with pytest.raises(TrainingError) as err:
        tl.fit(net(), (x, y), epochs=3, batch_size=32, lr=1e4, out_dir=str(tmp_path), verbose=False, report=False,
               tensorboard=False)
    r = fix_mod.fix(err.value.run_dir, model=net(), data=(x, y), verbose=False, report=False)
    assert [d["optimizer.lr"] for d in r.diverged] == [1e4, 1e3] and r.sets["optimizer.lr"] == 100
    assert r.error is None and r.after["val_acc"] > 0.5


def test_good_fit_has_nothing_to_fix(cwd, capsys):
    assert main(["train", *TOY, "--set", "model.hidden=[16,16]", "--set", "optimizer.name=adam",
                 "--set", "optimizer.lr=0.01", "--set", "epochs=40", "--name", "good"]) == 0
    capsys.readouterr()
    assert main(["fix", "runs/good"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("nothing to fix — Good fit:") and len(out.splitlines()) == 1
    assert sorted(p.name for p in (cwd / "runs").iterdir()) == ["good"] and not (cwd / "runs/good/fix.json").exists()


def test_not_a_run_directory_is_one_line(cwd, capsys):
    one_line_exit_2(capsys, ["fix", "runs/nope"], r"run must be an existing run directory\. Got 'runs/nope'")
    assert not (cwd / "runs").exists()  # nothing written beside a run that is not there
    (cwd / "empty").mkdir()
    one_line_exit_2(capsys, ["fix", "empty"], r"run must contain config\.yaml")
    assert sorted(p.name for p in cwd.iterdir()) == ["empty"] and not any((cwd / "empty").iterdir())


def test_a_cause_no_config_key_can_change_is_named_and_nothing_is_trained(tmp_path, capsys):
    # a ReLU after the last layer: only the module can change (a final softmax has a config remedy: test_preflight)
    run = tl.fit(mlp(nn.ReLU()), moons(), epochs=8, batch_size=32, lr=0.1, out_dir=str(tmp_path),
                 verbose=False, report=False, tensorboard=False, threads=1)
    assert run.diagnosis.verdict == "loss_output_mismatch"
    one_line_exit_2(capsys, ["fix", str(run.run_dir)], r"the top finding, Loss and output do not match "
                    r"\(loss_output_mismatch\), has no remedy fix can apply as config changes: "
                    r"remove the ReLU after the last layer")

    with pytest.raises(FixError, match="has no remedy fix can apply"):
        run.fix(verbose=False)
    assert [p.name for p in tmp_path.iterdir()] == [run.run_dir.name]


def test_run_fix_on_your_own_module_and_in_memory_data(tmp_path, capsys):
    x, y = moons()
    run = tl.fit(mlp(), (x * 1000 + 5000, y), epochs=8, batch_size=32, lr=0.1, out_dir=str(tmp_path),
                 verbose=False, report=True, tensorboard=False, threads=1)
    assert run.diagnosis.verdict == "inputs_not_scaled"
    # the command line holds neither the module nor the data: one line saying how to do it from Python
    one_line_exit_2(capsys, ["fix", str(run.run_dir)], r"model must be passed again to fix .*: it trained your own "
                    r"nn\.Module Sequential.*run\.fix\(\)")
    result = run.fix(verbose=False)
    assert result.sets == {"data.normalize": True} and result.improved
    assert result.after["val_acc"] > result.before["val_acc"] + 0.2
    assert isinstance(result.run, tl.Run) and result.run.run_dir == result.run_dir
    assert result.run.run_dir.name == run.run_dir.name + "-fix" and result.run.config.data.normalize
    assert "inputs_not_scaled" not in result.run.diagnosis.rules()
    assert "Fix tried" in (run.run_dir / "report.html").read_text()
    assert run.model is not result.run.model


class ZeroInit(nn.Module):
    """A user's module that starts every weight at 0 (model.init is not applied to one's own module)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # the biases' default init
        self.hidden, self.out = nn.Linear(2, 32), nn.Linear(32, 2)
        for layer in (self.hidden, self.out):
            nn.init.zeros_(layer.weight)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def test_symmetric_init_of_your_own_module_is_fixed_by_re_initialising_the_named_layers(tmp_path, capsys):
    run = tl.fit(ZeroInit(), moons(), epochs=8, batch_size=32, lr=0.1, out_dir=str(tmp_path), verbose=False,
                 report=True, tensorboard=False, threads=1)
    top = run.diagnosis.findings[0]
    assert top.rule == "symmetric_init" and top.evidence["layers"] == ["hidden", "out"] and top.sets == {}
    assert "remove the constant init (nn.init.zeros_ / constant_) from ZeroInit.__init__" in top.remedy
    # was a FixError: the remedy set model.init, which a user's module does not read
    given = ZeroInit()
    state = torch.random.get_rng_state()
    result = run.fix(verbose=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # seeded by the run's seed, the caller's RNG untouched
    assert result.action == "reset_parameters() of hidden, out (seed 0)" and result.sets == {}
    assert result.improved and result.after["val_acc"] > result.before["val_acc"] + 0.3  # 0.52 → 0.90
    assert "symmetric_init" not in result.run.diagnosis.rules()
    assert all(bool((p == 0).all()) for p in (given.hidden.weight, given.out.weight))  # a copy was re-initialised
    again = fix_mod.fix(run.run_dir, model=ZeroInit(), data=moons(), verbose=False, report=False)
    assert again.after == result.after  # the same seed: the same re-initialised weights and run
    html = (run.run_dir / "report.html").read_text()
    assert "applied as <code>reset_parameters() of hidden, out (seed 0)</code>" in html


class HeavyDropout(nn.Module):
    """A user's module that drops 90 % of its hidden units at every update."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.9), nn.Linear(32, 32), nn.ReLU(),
                                  nn.Dropout(0.9), nn.Linear(32, 4))

    def forward(self, x):
        return self.body(x)


def gauss4(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    centres = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    return centres[y] + 0.6 * torch.randn(n, 2, generator=g), y


def test_underfitting_under_your_modules_heavy_dropout_is_fixed_by_lowering_its_p(tmp_path):
    run = tl.fit(HeavyDropout(), gauss4(), epochs=15, batch_size=32, lr=0.1, out_dir=str(tmp_path), verbose=False,
                 report=False, tensorboard=False, threads=1)
    top = run.diagnosis.findings[0]
    assert top.rule == "underfitting" and top.evidence["dropout_p"] == pytest.approx(0.9) and top.sets == {}
    # was a FixError: "has no remedy fix can apply as config changes" (model.dropout does not reach a user's module)
    result = run.fix(verbose=False)
    assert result.action == "dropout p=0.2 (was 0.9) in body.2, body.5" and result.sets == {}
    assert result.improved and result.after["val_acc"] > result.before["val_acc"] + 0.1  # 0.75 → 0.92
    assert [m.p for m in run.model.modules() if isinstance(m, nn.Dropout)] == [0.9, 0.9]  # the run's own: untouched


@pytest.mark.parametrize("kind", ["config dataset, built-in model", "in-memory data, own module"])
def test_a_fix_that_changes_nothing_reproduces_the_run_exactly(tmp_path, monkeypatch, kind):
    """Same seed, data, split and starting weights: with a remedy that changes nothing training reads (TensorBoard
    files on), the new run's best validation metrics equal the parent's to the last bit: "did not help"."""
    if kind.startswith("config"):
        cfg = resolve_config(overrides={"out_dir": str(tmp_path), "data.name": "circle", "data.n_points": 300,
                                        "model.hidden": [8], "optimizer.lr": 5.0, "epochs": 4, "batch_size": 16,
                                        "threads": 1, "tensorboard": False})
        run = tl.fit(config=config_to_dict(cfg), verbose=False, report=False)
    else:
        run = tl.fit(mlp(), moons(), epochs=4, batch_size=32, lr=5.0, dropout=0.0, out_dir=str(tmp_path),
                     verbose=False, report=False, tensorboard=False, threads=1)
    same = Finding("lr_too_high", "warning", "Learning rate too high", "m", {}, "log it", {"tensorboard": True})
    monkeypatch.setattr(fix_mod, "top_problem", lambda findings: same)
    result = run.fix(verbose=False, report=False)
    assert result.after == result.before and result.improved is False
    assert result.judgement.startswith("did not help")


def test_judgement_needs_more_than_chance():
    b = {"epoch": 3, "val_loss": 0.5, "val_acc": 0.80, "n_val": 100}
    # two accuracies on 100 examples near 0.8 differ by ~0.057 by chance
    assert judge(b, {**b, "val_acc": 0.84})[1] is False
    assert judge(b, {**b, "val_acc": 0.87})[1] is True
    assert judge(b, {**b, "val_acc": 0.70})[1] is False
    reg = {"epoch": 3, "val_loss": 1.0, "val_acc": None, "n_val": 100}
    assert judge(reg, {**reg, "val_loss": 0.97})[:2] == ("val_loss", False)
    assert judge(reg, {**reg, "val_loss": 0.90})[:2] == ("val_loss", True)
    assert judge(None, reg)[1] is True and judge(reg, None)[1] is False  # from / to a run with no finite epoch
    # a regression on class labels fixed into a classifier: a squared error and a cross-entropy are not compared
    # (was a TypeError formatting the regression's missing accuracy)
    metric, improved, line = judge(reg, b)
    assert (metric, improved) == ("val_acc", None) and line == (
        "not judged: one run is a regression (val loss 1, a squared error), the other a classifier (val accuracy "
        "0.80, val loss 0.5, a cross-entropy): compare their predictions")


# ---------------------------------------------------------------------------------------------
# Every remedy's `sets` is a valid config override (fix applies them through the same validation as --set).

def _ctx(history=(), layers=(), summary=None, n_classes=None, **config):
    cfg = resolve_config(overrides={"data.name": "circle", **config})
    return RunContext(list(history), list(layers), {"stop_reason": "epochs: reached 10", **(summary or {})},
                      config_to_dict(cfg), n_classes)


def _rows(train_loss, val_loss=None, train_acc=None, grad_norm=None):
    val_loss = val_loss or train_loss
    return [{"epoch": i + 1, "train_loss": t, "val_loss": val_loss[i], "train_acc": train_acc[i] if train_acc else None,
             "val_acc": train_acc[i] if train_acc else None, "grad_norm": grad_norm[i] if grad_norm else 0.5}
            for i, t in enumerate(train_loss)]


def _nan(**facts):
    base = {"what": "loss", "value": "nan", "epoch": 2, "first_loss": 1.0, "peak_loss": 1.0, "first_grad_norm": 1.0,
            "max_grad_norm": 1.0, "last_loss": 0.5}
    return {"non_finite": {**base, **facts}}


def _contexts():
    falling, rising = [1.0 - 0.05 * i for i in range(10)], [0.5 + 0.1 * i for i in range(10)]
    over = _rows([1.0 * 0.7 ** i for i in range(10)], [0.5, 0.4, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    low_acc = _rows(falling, train_acc=[0.5, 0.55] * 5)
    tanh = {"l": {"kind": "tanh", "saturated": 0.9}}
    memory = {"phase": "training", "device": "cuda:0", "epoch": 1, "step": 3, "steps_per_epoch": 9, "batch_size": 64,
              "micro_batch": None, "eval_batch_size": 2048, "error": "CUDA out of memory"}
    return [
        *(_ctx([], summary={"out_of_memory": {**memory, **m}}) for m in (
            {"sets": {"speed.micro_batch": 32}}, {"phase": "validation", "sets": {"eval_batch_size": 1024}})),
        *(_ctx(_rows([1.0]), summary=s, **c) for c in ({}, {"data.normalize": True}) for s in
          (_nan(first_loss=None), _nan(first_grad_norm=1e4), _nan(peak_loss=3.0), _nan())),
        *(_ctx(_rows([1.0, 1.0], grad_norm=[1.0, 5e3]), **c) for c in
          ({"model.init": "normal"}, {"model.init": "xavier"}, {"model.init": "xavier", "grad_clip": 1.0})),
        _ctx(_rows([1.0, 2.0, 3.0])),
        _ctx(_rows([1.0] * 3), [{"epoch": 3, "activations": {"l": {"kind": "relu", "dead": 0.9, "units": 8}}}]),
        *(_ctx(_rows([1.0] * 3), [{"epoch": 1, "activations": tanh}, {"epoch": 3, "activations": tanh}], **c) for c in
          ({"model.init": "normal"}, {"model.init": "xavier"}, {"model.init": "xavier", "data.normalize": True})),
        *(_ctx(_rows([1.0 - 0.001 * i for i in range(10)]), **c) for c in
          ({"optimizer.lr": 0.05}, {"optimizer.lr": 0.001})),  # below the usual 0.1: barely moved; a tenth: low
        *(_ctx(_rows([1.0] * 3), [{"epoch": e, "grad_norm": {"first": 1e-5, "head": 1.0}} for e in (1, 2, 3)],
               summary=s, **c) for c, s in (({"model.activation": "sigmoid"}, {}), ({}, {}),
                                            ({}, {"custom_model": "Net"}))),
        *(_ctx(over, **c) for c in ({}, {"optimizer.name": "adam"}, {"stop.early_stopping.patience": 3})),
        *(_ctx(low_acc, n_classes=2, **c) for c in
          ({"loss.l2": 0.01}, {"model.name": "linear"}, {"model.hidden": [8]}, {"model.hidden": [64]})),
        _ctx(_rows([1.0, 0.8], [1.0, 0.8]), epochs=2),
        _ctx(_rows(rising), summary={"preflight": {"inputs": {"min": 0, "max": 255, "abs_mean_max": 100.0,
                                                               "std_max": 80.0}}}),
        *(_ctx(_rows([1.0] * 3), summary={"preflight": {"uniform_layers": ["layers.0"]}}, **c)
          for c in ({}, {"model.activation": "tanh"})),
    ]


def test_every_rules_remedy_sets_are_a_valid_config_override():
    fired: dict[str, list[dict]] = {}
    for ctx in _contexts():
        base = resolve_config(overrides={"data.name": "circle", **flat(ctx.config)})
        for rule in RULES:  # every rule on every context: a new rule that fires here is checked too
            f = rule(ctx)
            if f is not None and f.sets:
                fired.setdefault(f.rule, []).append(f.sets)
                new = replace(base, **f.sets)  # raises ConfigError on an invalid key or value
                changed = {k for k, v in flat(config_to_dict(new)).items() if flat(config_to_dict(base))[k] != v}
                assert changed <= set(f.sets) and changed, (f.rule, f.sets)  # it changes what it says, and something
    assert {"out_of_memory", "non_finite", "exploding_gradients", "lr_too_high", "dead_units", "saturated_units", "lr_too_low",
            "overfitting", "underfitting", "too_early", "inputs_not_scaled", "symmetric_init",
            "vanishing_gradients"} <= set(fired)


def test_tl_fix_of_in_memory_data_needs_the_same_data_again(tmp_path, capsys):
    x, y = moons()
    run = tl.fit(None, (x, y), epochs=4, batch_size=32, lr=50.0, hidden=[8], out_dir=str(tmp_path), verbose=False,
                 report=False, tensorboard=False, threads=1)
    assert run.diagnosis.verdict == "lr_too_high"
    one_line_exit_2(capsys, ["fix", str(run.run_dir)], r"data must be passed again to fix .*data\.name='memory'")
    with pytest.raises(tl.DataError, match=r"data must be what .* trained on \(540 training and 60 validation "
                                           r"examples\)\. Got 450 and 50"):
        tl.fix(run.run_dir, data=(x[:500], y[:500]), verbose=False)
    result = tl.fix(run.run_dir, data=(x, y), verbose=False, report=False)
    assert result.sets == {"optimizer.lr": 5.0} and result.improved and result.run_dir.name.endswith("-fix")
    from torch.utils.data import DataLoader, TensorDataset

    again = tl.fix(run.run_dir, data=DataLoader(TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), batch_size=32),
                   verbose=False, report=False)  # a DataLoader stands for its dataset, as in tl.fit
    assert again.sets == result.sets and again.improved
