"""The search driver: budgets, files, pruning, the sealed test split, restarts, workers and dead workers."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from PIL import Image

from trainlab.config import resolve_config
from trainlab.data import SealedTest
from trainlab.errors import ConfigError
from trainlab.search import search
from trainlab.search.results import load_search, summarize
from trainlab.search.storage import open_storage

SPACE = {"optimizer.lr": {"low": 1e-3, "high": 1.0, "log": True}, "model.hidden": {"choices": [[4], [16, 16]]}}
TOY = {"data.name": "circle", "data.n_points": 300, "model.activation": "tanh", "model.init": "xavier",
       "batch_size": 16, "epochs": 12, "tensorboard": False}


def _cfg(tmp_path, **more):
    return resolve_config(overrides={**TOY, "out_dir": str(tmp_path / "runs"), **more})


def test_random_search_runs_the_budget_and_writes_its_results(tmp_path):
    res = search(_cfg(tmp_path), SPACE, trials=5, epochs=3, name="r", log=None)
    d = tmp_path / "runs" / "search-r"
    assert res.search_dir == d and len(res.rows) == 5 and res.counts["complete"] == 5
    with open(d / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == [0, 1, 2, 3, 4]
    best = max(res.rows, key=lambda r: r["value"])
    assert res.best["trial"] == best["trial"]
    # every trial trained the requested epochs on validation data and its value is its best val_acc
    for r in res.rows:
        hist = [json.loads(line) for line in open(d / "trials" / f"trial-{r['trial']:04d}" / "metrics.jsonl")]
        assert len(hist) == 3 and r["value"] == pytest.approx(max(h["val_acc"] for h in hist))
        assert 1e-3 <= r["optimizer.lr"] <= 1.0 and r["model.hidden"] in ([4], [16, 16])
    # best.yaml is a complete config that train accepts: the base config's epochs, the best trial's values
    cfg = resolve_config(d / "best.yaml")
    assert cfg.epochs == 12 and cfg.optimizer.lr == pytest.approx(best["optimizer.lr"])
    assert cfg.model.hidden == best["model.hidden"] and cfg.data.name == "circle"
    for name in ("history.png", "parallel_coordinates.png", "importance.png"):
        with Image.open(d / name) as im:
            assert im.format == "PNG" and im.width >= 300 and im.height >= 200
    assert "5 trials: 5 complete, 0 pruned, 0 failed" in res.table()


def test_the_test_split_is_never_opened_nor_read(tmp_path, fake_mnist, monkeypatch):
    import trainlab.data.images as images

    read = []
    real_open, real_read = SealedTest.open, images.read_idx
    monkeypatch.setattr(SealedTest, "open", lambda self: read.append("opened") or real_open(self))
    monkeypatch.setattr(images, "read_idx", lambda path: read.append(str(path)) or real_read(path))
    cfg = _cfg(tmp_path, **{"data.name": "fashion-mnist", "data.dir": str(fake_mnist.parent), "model.hidden": [16],
                            "model.activation": "relu", "batch_size": 64, "epochs": 2})
    res = search(cfg, {"optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}}, trials=2, cv=None, log=None)
    assert res.counts["complete"] == 2
    assert read and all("t10k" not in p for p in read) and "opened" not in read
    assert all(json.loads((tmp_path / "runs" / res.search_dir.name / "trials" / f"trial-{i:04d}" / "summary.json")
                          .read_text())["test"] is None for i in range(2))


def test_median_pruning_stops_bad_trials_early(tmp_path):
    # on gauss (separable) every lr >= 1e-3 reaches ~100 % within 8 epochs; far smaller ones stay near chance
    cfg = _cfg(tmp_path, **{"data.name": "gauss", "data.n_points": 600, "model.hidden": [8]})
    res = search(cfg, {"optimizer.lr": {"low": 1e-6, "high": 1.0, "log": True}}, trials=12, epochs=8,
                 prune="median", log=None)
    pruned = [r for r in res.rows if r["state"] == "pruned"]
    assert len(pruned) >= 2 and all(r["optimizer.lr"] < 1e-3 for r in pruned)
    assert all(r["epochs_run"] < 8 and r["pruned_at"] == r["epochs_run"] for r in pruned)
    for r in pruned:  # the run really stopped: fewer epochs in its metrics file
        lines = (res.search_dir / "trials" / f"trial-{r['trial']:04d}" / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == r["epochs_run"]
    assert all(r["epochs_run"] == 8 for r in res.rows if r["state"] == "complete")
    assert f"{len(pruned)} pruned" in res.table()


def test_cv_scores_a_trial_by_the_fold_mean(tmp_path):
    res = search(_cfg(tmp_path), SPACE, trials=2, epochs=3, cv=3, log=None)
    for r in res.rows:
        cv = json.loads((res.search_dir / "trials" / f"trial-{r['trial']:04d}" / "cv.json").read_text())
        assert cv["n_folds"] == 3 and r["value"] == pytest.approx(cv["mean"]["val_acc"])


def test_grid_visits_every_combination_once(tmp_path):
    space = {"optimizer.lr": {"choices": [0.01, 0.1, 1.0]}, "model.hidden": {"choices": [[4], [8]]}}
    res = search(_cfg(tmp_path), space, method="grid", trials=50, epochs=1, log=None)
    seen = {(r["optimizer.lr"], tuple(r["model.hidden"])) for r in res.rows}
    assert len(res.rows) == 6 and len(seen) == 6


def test_coarse_to_fine_narrows_the_ranges_round_by_round(tmp_path):
    space = {"optimizer.lr": {"low": 1e-5, "high": 10.0, "log": True}}
    lines = []
    res = search(_cfg(tmp_path), space, method="coarse-to-fine", trials=18, rounds=3, epochs=4, log=lines.append)
    rounds = json.loads((res.search_dir / "rounds.json").read_text())
    widths = [hi / lo for lo, hi in (r["optimizer.lr"] for r in rounds)]
    assert len(rounds) == 3 and widths[0] == pytest.approx(1e6) and widths[2] < widths[1] < widths[0]
    assert [sum(r["round"] == k for r in res.rows) for k in range(3)] == [6, 6, 6]
    for k in (1, 2):  # each round sampled only inside its own ranges
        lo, hi = rounds[k]["optimizer.lr"]
        assert all(lo <= r["optimizer.lr"] <= hi for r in res.rows if r["round"] == k)
    assert sum(line.startswith("round ") and " in [" in line for line in lines) == 3
    assert (res.search_dir / "ranges.png").is_file()


def test_a_restarted_search_continues_the_same_study(tmp_path):
    first = search(_cfg(tmp_path), SPACE, trials=3, epochs=2, name="again", log=None)
    before = [(r["trial"], r["value"], r["optimizer.lr"]) for r in first.rows]
    lines = []
    second = search(_cfg(tmp_path), SPACE, trials=5, epochs=2, name="again", log=lines.append)
    assert len(second.rows) == 5 and [(r["trial"], r["value"], r["optimizer.lr"]) for r in second.rows[:3]] == before
    assert "continuing with 3 trial(s) done" in lines[0]
    assert len({r["optimizer.lr"] for r in second.rows}) == 5  # the restart did not redraw the same configs
    with pytest.raises(ConfigError, match=r"^method must match the search being continued \(again\)\. Got 'tpe'"):
        search(_cfg(tmp_path), SPACE, method="tpe", trials=6, epochs=2, name="again", log=None)


def test_a_missing_journal_is_named_and_not_recreated(tmp_path):
    from trainlab.files import DamagedFileError

    search(_cfg(tmp_path), SPACE, trials=1, epochs=1, name="gone", log=None)
    d = tmp_path / "runs" / "search-gone"
    (d / "study.journal").unlink()  # opening it would create an empty journal, then report "no such study"
    for reader in (lambda: load_search(d), lambda: search(_cfg(tmp_path), SPACE, trials=2, epochs=1, name="gone", log=None)):
        with pytest.raises(DamagedFileError, match=r"study\.journal must be the journal trainlab search wrote\. Got no "
                                                   r"such file \(deleted or moved\)\. Restore the journal from a copy"):
            reader()
        assert not (d / "study.journal").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "bayes"}, r"--method must be one of random, tpe, grid, coarse-to-fine\. Got 'bayes'\."),
    ({"prune": "medain"}, r"--prune must be one of .*Got 'medain'\. Did you mean 'median'\?"),
    ({"trials": 0}, r"--trials must be a whole number >= 1\. Got 0\."),
    ({"workers": 2, "storage": "sqlite:///x.db"}, r"--storage must be safe for several writers with --workers 2"),
    ({"storage": "nonsense"}, r"--storage must be a database URL"),
    ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, r"--storage must be a reachable database\. Got "),
])
def test_bad_arguments_are_one_line_each_and_write_nothing(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        search(_cfg(tmp_path), SPACE, name="bad", log=None, **kwargs)
    assert "Traceback" not in str(err.value) and len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "runs" / "search-bad").exists()


def _running_trial(storage_url: str, name: str, timeout: float = 60):
    storage = open_storage(storage_url)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if "pid" in t.user_attrs and t.user_attrs.get("epochs_run") is None:
                    return t
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.05)
    raise AssertionError("no trial started running")


LONG = ["--set", "data.name=circle", "--set", "data.n_points=2000", "--set", "model.activation=tanh",
        "--set", "model.init=xavier", "--set", "batch_size=16", "--set", "tensorboard=false"]


def _space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return path


def test_two_workers_share_one_study_and_run_exactly_the_budget(tmp_path):
    # Trials of ~1 s each (batch 4, 8 epochs): with the 2-epoch trials this had (0.1 s), the first worker up took
    # all 7 before the other had imported torch, whenever the machine was busy (CI, 2026-12-06).
    r = subprocess.run([sys.executable, "-m", "trainlab.cli", "search", *LONG, "--set", "batch_size=4",
                        "--set", f"out_dir={tmp_path}/runs", "--space", str(_space_file(tmp_path)), "--trials", "7",
                        "--epochs", "8", "--workers", "2", "--name", "two"], capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr
    spec, study, _ = load_search(tmp_path / "runs" / "search-two")
    trials = study.get_trials()
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {0, 1} and len({t.user_attrs["pid"] for t in trials}) >= 2
    assert spec["storage"].startswith("journal:") and "Traceback" not in r.stderr


def test_a_killed_worker_leaves_a_failed_trial_and_the_search_finishes(tmp_path):
    cmd = [sys.executable, "-m", "trainlab.cli", "search", *LONG, "--set", f"out_dir={tmp_path}/runs",
           "--space", str(_space_file(tmp_path)), "--trials", "5", "--epochs", "5", "--workers", "2",
           "--name", "kill"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"journal:{(tmp_path / 'runs' / 'search-kill' / 'study.journal').resolve()}"
        for _ in range(200):  # the journal appears once the parent has created the study
            if (tmp_path / "runs" / "search-kill" / "study.journal").exists():
                break
            time.sleep(0.05)
        victim = _running_trial(url, "kill")
        os.kill(victim.user_attrs["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    study = optuna.load_study(study_name="kill", storage=open_storage(url))
    states = {t.number: t.state for t in study.get_trials()}
    assert states[victim.number] == TrialState.FAIL
    assert len(states) == 5 and sum(s == TrialState.COMPLETE for s in states.values()) == 4
    assert "marked failed" in out and "5 trials: 4 complete, 0 pruned, 1 failed" in out


def test_workers_share_a_study_in_postgresql(tmp_path, postgres_url):
    # ~1 s trials, as in the two-worker test above: 0.05 s ones could all go to the worker that started first
    cfg = _cfg(tmp_path, **{"data.n_points": 2000, "batch_size": 4})
    res = search(cfg, SPACE, trials=6, epochs=4, workers=2, storage=postgres_url, name="pg", log=None)
    assert res.counts["complete"] == 6 and {r["worker"] for r in res.rows} == {0, 1}
    # a second machine would see the same study through the same URL
    again = optuna.load_study(study_name="pg", storage=open_storage(postgres_url))
    assert len(again.get_trials()) == 6 and again.best_value == pytest.approx(res.best["value"])
    assert summarize(res.search_dir, plots=False).best["trial"] == res.best["trial"]


def test_quiet_workers_print_nothing(tmp_path, capfd):
    search(_cfg(tmp_path), SPACE, trials=2, epochs=1, workers=2, log=None)
    out = capfd.readouterr().out
    assert "trial" not in out and out.strip() == ""


def test_a_config_monitoring_a_class_score_is_searched_on_it(tmp_path):
    res = search(_cfg(tmp_path, monitor="val_macro_f1"), SPACE, trials=3, epochs=3, name="f1", log=None)
    spec = json.loads((tmp_path / "runs" / "search-f1" / "search.json").read_text())
    assert spec["metric"] == "val_macro_f1" and spec["direction"] == "maximize"
    for r in res.rows:
        trial = tmp_path / "runs" / "search-f1" / "trials" / f"trial-{r['trial']:04d}"
        hist = [json.loads(line) for line in open(trial / "metrics.jsonl")]
        assert r["value"] == pytest.approx(max(h["val_macro_f1"] for h in hist))
