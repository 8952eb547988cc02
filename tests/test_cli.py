"""The command line: verbs work, and every bad input is one line on stderr, exit 2, nothing written."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainlab.cli import main
from trainlab.data.idx import write_idx
from tests.conftest import write_fake_mnist

TOY = ["--set", "data.name=circle", "--set", "data.n_points=200", "--set", "model.hidden=[8]",
       "--set", "epochs=2", "--set", "batch_size=16", "--set", "tensorboard=false", "--quiet"]


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real cache, no download cache
    return tmp_path


def check_bad_input(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert __import__("re").search(match, err), err
    return err


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_train_evaluate_predict_csv_roundtrip(cwd, capsys):
    assert main(["train", *TOY, "--name", "toy"]) == 0
    out = capsys.readouterr().out
    assert "test (best epoch" in out and "run: runs/toy" in out
    summary = json.loads((cwd / "runs/toy/summary.json").read_text())
    assert main(["evaluate", "runs/toy", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_acc"] == pytest.approx(summary["test"]["test_acc"])  # same split, same checkpoint
    assert main(["evaluate", "runs/toy", "--json", "--batch-size", "7"]) == 0  # the same, 7 test points per pass
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(ev["test_acc"])
    points = _csv(cwd / "points.csv", "x1,x2", ["0,0", "4.5,0.5"])
    assert main(["predict", "runs/toy", str(points)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("input,x1,x2,class") and len(lines) == 3
    assert main(["predict", "runs/toy", str(points), "--batch-size", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == lines
    for verb in (["evaluate", "runs/toy"], ["predict", "runs/toy", str(points)]):
        check_bad_input(capsys, [*verb, "--batch-size", "0"], r"^error: batch_size must be a whole number of "
                        r"examples per pass, at least 1\. Got 0\. Pass 256, or leave it out for the run's "
                        r"eval_batch_size \(2048\)\.$")


def test_a_test_set_not_scored_for_memory_is_told_after_training(capsys):
    from trainlab.cli import _print_result

    _print_result({"test": None, "test_error": "the machine ran out of memory scoring the 300 test examples ...",
                   "stop_reason": "epochs: reached 2", "wall_time": 1.0}, "runs/x")
    assert capsys.readouterr().out.splitlines() == [
        "test: not scored: the machine ran out of memory scoring the 300 test examples ...",
        "stopped: epochs: reached 2 · 1.0s · run: runs/x"]


def test_predict_images_with_probabilities(cwd, capsys):
    from PIL import Image

    data = write_fake_mnist(cwd / "data" / "fashion-mnist", n_train=1000)
    assert main(["train", "--data-dir", str(data.parent), "--set", "data.download=false", "--set", "epochs=3",
                 "--set", "tensorboard=false", "--set", "optimizer.lr=0.5", "--quiet", "--name", "img"]) == 0
    capsys.readouterr()
    img = np.zeros((28, 28), dtype=np.uint8)
    img[2:6, 14:18] = 250  # class 2 of the fake set ("Pullover"): row 2, column 2 + 6·2
    Image.fromarray(img).save(cwd / "two.png")
    Image.fromarray(255 - img).save(cwd / "two_on_white.png")  # a drawing on white is inverted first
    assert main(["predict", "runs/img", "two.png", "two_on_white.png", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["class"] for r in rows] == ["Pullover", "Pullover"]
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_datasets_lists_sources_with_sizes(cwd, capsys):
    data = write_fake_mnist(cwd / "d" / "fashion-mnist", n_train=50, n_test=20)
    assert main(["datasets", "--data-dir", str(data.parent), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"fashion-mnist", "mnist", "cifar10", "circle", "spiral", "csv"} <= set(rows)
    assert rows["fashion-mnist"]["available"] and rows["fashion-mnist"]["sizes"] == {"train": 50, "test": 20}


@pytest.mark.parametrize("argv, match", [
    (["--set", "data.name=fashoin-mnist"], r"data.name must be one of .* Got 'fashoin-mnist'. Did you mean 'fashion-mnist'"),
    (["--set", "model.name=mlpp"], r"model.name .*Did you mean 'mlp'"),
    (["--set", "optimizer.name=adamm"], r"optimizer.name .*Did you mean 'adam'"),
    (["--set", "model.activation=rellu"], r"model.activation .*Did you mean 'relu'"),
    (["--set", "model.init=xavir"], r"model.init .*Did you mean 'xavier'"),
    (["--set", "optimizer.lr=-1"], r"optimizer.lr must be > 0.* Got -1"),
    (["--set", "optimizer.lr=0"], r"optimizer.lr must be > 0.* Got 0"),
    (["--set", "batch_size=0"], r"batch_size must be >= 1. Got 0"),
    (["--set", "model.hidden=[16,0]"], r"model.hidden must be each size must be > 0|model.hidden .*> 0"),
    (["--set", "nosuchkey=1"], r"nosuchkey is not a config key"),
    (["--set", "optimizer.lrr=0.1"], r"Did you mean 'optimizer.lr'"),
    (["--config", "missing-file.yaml"], r"--config must be an existing YAML file"),
])
def test_bad_config_is_one_line_and_writes_nothing(cwd, capsys, argv, match):
    check_bad_input(capsys, ["train", *argv], match)
    assert not (cwd / "runs").exists()


@pytest.mark.parametrize("argv, line", [
    (["train", "--out", "elsewhere"], "arguments must be ones 'trainlab train' takes. Got '--out elsewhere'. "
     "Did you mean '--set out_dir=elsewhere'? (config keys are set with --set)"),
    (["train", "--epochs", "3"], "Did you mean '--set epochs=3'?"),
    (["train", "--lr=0.01"], "Did you mean '--set optimizer.lr=0.01'?"),
    (["train", "--learning-rate", "0.1"], "Did you mean '--set optimizer.lr=0.1'?"),
    (["train", "--max-epochs", "5", "--quiet"], "Did you mean '--set epochs=5'?"),
    (["train", "--batch", "32"], "Did you mean '--set batch_size=32'?"),
    (["train", "--patience", "3"], "Did you mean '--set stop.early_stopping.patience=3'?"),
    (["train", "--quiett"], "Got '--quiett'. Did you mean '--quiet'?"),
    (["train", "--zzzz"], "Got '--zzzz'. See 'trainlab train --help'."),
    (["train", "fashion"], "Got 'fashion'. See 'trainlab train --help'."),
    (["evaluate", "runs/x", "--jsn"], "arguments must be ones 'trainlab evaluate' takes. Got '--jsn'. "
     "Did you mean '--json'?"),
    (["evaluate", "runs/x", "--epochs", "3"], "Got '--epochs 3'. See 'trainlab evaluate --help'."),  # no --set there
])
def test_an_unknown_flag_names_the_flag_or_the_config_key_it_meant(cwd, capsys, argv, line):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert line in err, err
    assert not (cwd / "runs").exists()


def test_print_model_prints_the_layer_table_and_writes_nothing_and_a_run_keeps_it(cwd, capsys):
    assert main(["train", *TOY, "--print-model"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["layer", "type", "output", "parameters"]
    assert [line.split()[:4] for line in out[1:-1]] == [["flatten", "Flatten", "(2,)", "0"],
                                                       ["layers.0.linear", "Linear", "(8,)", "24"],
                                                       ["layers.0.act", "ReLU", "(8,)", "0"],
                                                       ["head", "Linear", "(2,)", "18"]]
    assert out[-1] == "input (2,) · 42 parameters"
    assert not (cwd / "runs").exists()
    assert main(["train", *TOY, "--name", "toy"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "runs/toy", "--print-model"]) == 0
    assert capsys.readouterr().out.splitlines() == out  # from the run's summary.json
    (cwd / "runs/toy/summary.json").write_text("{")  # damaged: built again from the run's config.yaml
    assert main(["train", "--resume", "runs/toy", "--print-model"]) == 0
    assert capsys.readouterr().out.splitlines() == out
    check_bad_input(capsys, ["train", "--resume", "runs/nope", "--print-model"], r"run must be an existing run directory")


def test_batch_larger_than_data(cwd, capsys):
    check_bad_input(capsys, ["train", *TOY, "--set", "batch_size=100000"], r"batch_size must be <= the number of training examples")
    assert not (cwd / "runs").exists() or not any((cwd / "runs").iterdir())


def test_labels_out_of_range(cwd, capsys):
    data = write_fake_mnist(cwd / "d" / "fashion-mnist", n_train=50, n_test=20)
    write_idx(data / "train-labels-idx1-ubyte.gz", np.full(50, 12, dtype=np.uint8))
    check_bad_input(capsys, ["train", "--data-dir", str(data.parent), "--set", "data.download=false"], r"label.*12")


def test_corrupt_idx_file(cwd, capsys):
    data = write_fake_mnist(cwd / "d" / "fashion-mnist", n_train=50, n_test=20)
    blob = (data / "train-images-idx3-ubyte.gz").read_bytes()
    (data / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    check_bad_input(capsys, ["train", "--data-dir", str(data.parent), "--set", "data.download=false"], r"train-images")


def test_missing_data_directory(cwd, capsys):
    check_bad_input(capsys, ["train", "--data-dir", str(cwd / "nope")], r"data.dir must be an existing directory")


def test_csv_missing_target_and_non_numeric_feature(cwd, capsys):
    rows = [f"{i},{i % 7},{i % 2}" for i in range(40)]
    good = _csv(cwd / "t.csv", "a,b,label", rows)
    check_bad_input(capsys, ["train", *TOY, "--set", "data.name=csv", "--set", f"data.path={good}", "--set", "data.target=lable"],
         r"lable.*label")
    text = _csv(cwd / "s.csv", "a,b,label", rows[:-1] + ["x,1,0"])
    check_bad_input(capsys, ["train", *TOY, "--set", "data.name=csv", "--set", f"data.path={text}", "--set", "data.target=label"],
         r"'a'.*'x'")


def test_corrupt_checkpoint_and_missing_run(cwd, capsys):
    assert main(["train", *TOY, "--name", "toy"]) == 0
    best = cwd / "runs/toy/checkpoints/best.pt"
    best.write_bytes(best.read_bytes()[:100])
    check_bad_input(capsys, ["evaluate", "runs/toy"], r"corrupt or truncated")
    check_bad_input(capsys, ["evaluate", "runs/does-not-exist"], r"run must be an existing run directory")
    check_bad_input(capsys, ["train", "--resume", "runs/does-not-exist"], r"run must be an existing run directory")


def test_console_script_reports_bad_input_without_traceback(cwd):
    r = subprocess.run([sys.executable, "-m", "trainlab.cli", "train", "--set", "optimizer.lr=-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: optimizer.lr must be > 0.0. Got -1. Use a valid value such as the default 0.1."


def test_export_verb_and_its_bad_format(cwd, capsys):
    assert main(["train", *TOY, "--name", "toy"]) == 0
    capsys.readouterr()
    assert main(["export", "runs/toy", "--format", "safetensors"]) == 0
    assert (cwd / "runs/toy/export/model.safetensors").exists() and (cwd / "runs/toy/export/model.json").exists()
    check_bad_input(capsys, ["export", "runs/toy", "--format", "onx"], r"format must be one of .*Did you mean 'onnx'")


def test_search_study_and_cv_verbs(cwd, capsys):
    (cwd / "space.yaml").write_text("optimizer.lr: {low: 0.01, high: 1, log: true}\nmodel.hidden: [[4], [8]]\n")
    assert main(["search", *TOY, "--space", "space.yaml", "--trials", "3", "--epochs", "2", "--name", "s"]) == 0
    out = capsys.readouterr().out
    assert "3 trials: 3 complete, 0 pruned, 0 failed" in out and "best: trial " in out
    assert out.rstrip().splitlines()[-1].startswith("search: runs/search-s")
    assert main(["study", "runs/search-s", "--top", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    header = ["rank", "trial", "val_acc", "optimizer.lr", "model.hidden", "epochs", "seconds"]
    assert table[0].split() == header
    assert [line.split()[0] for line in table[2:4]] == ["1", "2"] and table[4].startswith("3 trials")
    assert main(["train", "--config", "runs/search-s/best.yaml", "--quiet", "--no-report", "--set", "epochs=1"]) == 0
    assert main(["cv", *TOY, "--folds", "3", "--name", "c"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^val_acc \d\.\d{3} ± \d\.\d{3} over 3 folds$", out, re.M) and "cv: runs/cv-c" in out


@pytest.mark.parametrize("argv, match", [
    (["search", "--space", "missing.yaml"], r"search space file must be an existing YAML file\. Got 'missing\.yaml'"),
    (["search", "--space", "space.yaml", "--method", "bayes"], r"--method must be one of .* Got 'bayes'"),
    (["study", "runs"], r"search must be a directory written by 'trainlab search'\. Got 'runs'"),
    (["datasets", "--data-dir", "no-such-dir"], r"--data-dir must be an existing directory\. Got 'no-such-dir'\."),
    (["study", "runs", "--top", "0"], r"--top must be at least 1\. Got 0\. Use e\.g\. --top 10\."),
    (["study", "runs", "--top", "-1"], r"--top must be at least 1\. Got -1\."),
    (["cv", "--folds", "1", "--set", "data.name=circle"], r"folds must be"),
])
def test_search_verbs_bad_input(cwd, capsys, argv, match):
    (cwd / "space.yaml").write_text("optimizer.lr: {low: 0.01, high: 1, log: true}\n")
    (cwd / "runs").mkdir()
    check_bad_input(capsys, argv, match)
    assert list((cwd / "runs").iterdir()) == []


def test_playground_refuses_a_public_host_without_the_flag(cwd, capsys):
    check_bad_input(capsys, ["playground", "--host", "0.0.0.0"], r"--host must be a loopback address .* Got '0\.0\.0\.0'")


def test_null_switches_a_stop_rule_off_from_set_and_yaml(cwd, capsys):
    # min_delta 100 can never be beaten: with patience 1 this rule stops every run after its second epoch.
    (cwd / "stops.yaml").write_text("epochs: 4\nstop:\n  early_stopping: {patience: 1, min_delta: 100}\n")
    (cwd / "off.yaml").write_text("epochs: 4\nstop:\n  early_stopping: null\n")
    # "on" is also a check that --name is taken as a string, not as YAML's boolean
    assert main(["train", *TOY, "--config", "stops.yaml", "--set", "epochs=4", "--name", "on", "--no-report"]) == 0
    assert main(["train", *TOY, "--config", "stops.yaml", "--set", "epochs=4", "--set", "stop.early_stopping=null",
                 "--name", "off", "--no-report"]) == 0
    assert main(["train", *TOY, "--config", "off.yaml", "--set", "epochs=4", "--name", "yaml", "--no-report"]) == 0
    reasons = {n: json.loads((cwd / "runs" / n / "summary.json").read_text())["stop_reason"] for n in ("on", "off", "yaml")}
    assert reasons["on"].startswith("early_stopping:")
    assert reasons["off"] == reasons["yaml"] == "epochs: reached 4"
    capsys.readouterr()
    assert main(["train", "--config", "stops.yaml", "--set", "stop.early_stopping=null", "--set", "stop.convergence=null",
                 "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "early_stopping:\n    patience: null\n    min_delta: 0.0\n    restore_best: true\n" in out


def test_print_config_and_config_errors_do_not_import_the_report_stack(cwd):
    # A subprocess: this test process may have imported matplotlib already.
    code = ("import sys, contextlib, io\nfrom trainlab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "    codes = [main(['train', '--print-config']), main(['train', '--set', 'optimizer.lr=-1'])]\n"
            "heavy = sorted(m for m in ('matplotlib', 'trainlab.workflow', 'trainlab.report', 'trainlab.diagnose',"
            " 'torch.utils.tensorboard', 'optuna', 'fastapi', 'pandas', 'scipy') if m in sys.modules)\n"
            "print(codes, heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[0, 2] []"


def test_importing_the_cli_stays_light():
    code = "import sys, trainlab.cli; print(sorted(m for m in ('torch', 'pydantic', 'yaml', 'matplotlib') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


END_PROGRAM = """
import atexit, pathlib, sys, threading, time
from trainlab.cli import main

class Teardown:
    def __del__(self):
        print("teardown ran")

keep = Teardown()  # a module global: deleted by the interpreter's teardown, which `trainlab train` skips
atexit.register(lambda: print("exit handler ran"))
if sys.argv[1] == "thread":  # a thread still running when train returns: a normal exit waits for it
    threading.Thread(target=lambda: (time.sleep(1.0), pathlib.Path("late.txt").write_text("done"))).start()
sys.argv = ["trainlab", "train", *sys.argv[2:]]
sys.exit(main())
"""


def test_train_ends_without_teardown_but_runs_exit_handlers_and_keeps_its_exit_code(cwd):
    r = subprocess.run([sys.executable, "-c", END_PROGRAM, "plain", *TOY], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "exit handler ran" in r.stdout and "teardown ran" not in r.stdout
    assert len(list(cwd.glob("runs/*/report.html"))) == 1
    r = subprocess.run([sys.executable, "-c", END_PROGRAM, "plain", "--set", "optimizer.lr=-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: optimizer.lr must be > 0.0")
    assert "exit handler ran" in r.stdout


def test_train_waits_for_a_thread_still_running(cwd):
    r = subprocess.run([sys.executable, "-c", END_PROGRAM, "thread", *TOY], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (cwd / "late.txt").read_text() == "done"
    assert "exit handler ran" in r.stdout


def test_a_reader_that_goes_away_stops_the_run_as_an_interrupt_does(cwd):
    # `trainlab train | head -1`: was a BrokenPipeError traceback, exit 1 and no summary.json
    args = [a if a != "epochs=2" else "epochs=1000" for a in TOY if a != "--quiet"]  # lines > a pipe's 64 KiB
    p = subprocess.Popen([sys.executable, "-m", "trainlab.cli", "train", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("epoch    1/1000")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141
    run = next(cwd.glob("runs/*"))
    assert err.splitlines() == [f"stopped: the reader of trainlab's output went away; the run so far is kept and can "
                                f"be resumed: trainlab train --resume {run.relative_to(cwd)}"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by"] == "interrupted" and 1 <= summary["epochs_run"] < 1000
    assert main(["train", "--resume", str(run), "--set", f"epochs={summary['epochs_run'] + 1}", "--quiet",
                 "--no-report"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == summary["epochs_run"] + 1


def test_a_config_file_with_resume_is_refused_not_ignored(cwd, capsys):
    assert main(["train", *TOY, "--name", "r"]) == 0
    (cwd / "other.yaml").write_text("model:\n  hidden: [99]\n")
    capsys.readouterr()
    assert main(["train", "--resume", "runs/r", "--config", "other.yaml", "--set", "epochs=3"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --config must be left out with --resume (a resumed run keeps its own config.yaml). Got "
                   "'other.yaml'. Change what may change with --set, e.g. --set epochs=20.\n")
    assert json.loads((cwd / "runs/r/summary.json").read_text())["epochs_run"] == 2  # untouched


def test_a_resumed_run_starts_cuda_for_the_device_in_its_config(tmp_path, monkeypatch):
    """trainlab train --resume: CUDA starts beside the torch import for the run's own device (config.yaml), or the
    one --set device= names; a config.yaml that cannot be read starts nothing and raises nothing here (the resume
    says what is wrong with it)."""
    from trainlab import cli, gpu_start

    started: list[str] = []
    monkeypatch.setattr(gpu_start, "start", lambda device: started.append(device))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\ndevice: cuda:1\n")
    cli._start_cuda({"resume_dir": str(run), "overrides": {}})
    cli._start_cuda({"resume_dir": str(run), "overrides": {"device": "cpu"}})
    (run / "config.yaml").write_text("device: [cuda\n")
    cli._start_cuda({"resume_dir": str(run), "overrides": {}})
    cli._start_cuda({"resume_dir": str(tmp_path / "missing"), "overrides": {}})
    (run / "config.yaml").write_bytes(b"\xff\xfe")
    cli._start_cuda({"resume_dir": str(run), "overrides": {}})
    assert started == ["cuda:1", "cpu"]


def test_sigterm_stops_a_run_in_one_line_with_its_summary_and_it_resumes(tmp_path):
    """SIGTERM (a scheduler's preemption, a kill) stops `trainlab train` as Ctrl-C does: the summary and the last
    checkpoint kept, one line naming the epoch to resume from, exit 143. It used to vanish without a word."""
    import signal

    from tests.conftest import train_until_checkpoint

    args = ["--no-report", "--set", "data.name=circle", "--set", "data.n_points=20000", "--set", "epochs=200",
            "--set", "tensorboard=false", "--name", "term"]
    job, env = train_until_checkpoint(tmp_path, args, "term")
    assert job.poll() is None, "the run ended before its first checkpoint"
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 143, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"^stopped \(SIGTERM\) during epoch \d+; the run so far is kept\. Resume from "
                                        r"its last checkpoint \(epoch \d+\): trainlab train --resume runs/term$",
                                        lines[0]), err
    summary = json.loads((tmp_path / "runs/term/summary.json").read_text())
    assert summary["stopped_by"] == "interrupted" and summary["epochs_run"] >= 1
    resumed = subprocess.run([sys.executable, "-m", "trainlab", "train", "--resume", "runs/term", "--no-report",
                              "--set", "epochs=" + str(summary["epochs_run"] + 1)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((tmp_path / "runs/term/summary.json").read_text())["epochs_run"] == summary["epochs_run"] + 1


def test_evaluating_a_run_of_data_passed_from_python_says_what_works_instead(tmp_path):
    import torch

    import trainlab as tl

    x = torch.randn(100, 3)
    run = tl.fit(None, (x, (x[:, 0] > 0).long()), epochs=1, batch_size=20, verbose=False, report=False,
                 out_dir=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "trainlab.cli", "evaluate", str(run.run_dir)], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "the run directory does not hold" in r.stderr and "run.evaluate()" in r.stderr
    assert "load(run, data" not in r.stderr  # named an argument trainlab.load never had


def test_a_gpu_out_of_memory_is_one_line_with_the_setting_that_fits_and_the_run_is_kept(cwd, capsys, monkeypatch):
    import torch

    import trainlab.train.loop as loop

    real = loop.gradients

    def gpu_of_80_examples(*args, micro_batch=None, **kw):  # passes over more than 80 examples do not fit
        if micro_batch is None or micro_batch > 80:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.50 GiB. GPU 0 has a total "
                                              "capacity of 79.19 GiB of which 1.06 GiB is free.")
        return real(*args, micro_batch=micro_batch, **kw)

    monkeypatch.setattr(loop, "gradients", gpu_of_80_examples)
    assert main(["train", *TOY, "--name", "big", "--set", "batch_size=128", "--no-report"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err == ("error: the machine ran out of memory in epoch 1, update 1 of 2, on passes of 128 examples (CUDA out "
                   "of memory. Tried to allocate 3.50 GiB). Set speed.micro_batch=64: the same updates, each in passes "
                   "of at most 64 examples, or use a smaller model. No epoch had finished, so no checkpoint was "
                   "written."), err
    assert "--set speed.micro_batch=64" in captured.out  # the verdict's remedy as a flag
    summary = json.loads(Path("runs/big/summary.json").read_text())
    assert summary["stopped_by"] == "out_of_memory"
    assert main(["fix", "runs/big", "--no-report"]) == 0  # the remedy trains: passes of 64 fit
    assert json.loads(Path("runs/big-fix/summary.json").read_text())["epochs_run"] >= 1


def test_a_run_out_of_memory_after_an_epoch_resumes_with_micro_batches_and_follows_the_run(cwd, capsys, monkeypatch):
    import torch

    import trainlab.train.loop as loop

    assert main(["train", *TOY, "--name", "ref", "--set", "epochs=3", "--no-report"]) == 0
    real, calls = loop.gradients, []

    def full_after_epoch_1(*args, micro_batch=None, **kw):  # 9 updates an epoch; the 10th does not fit
        calls.append(micro_batch)
        if micro_batch is None and len(calls) > 9:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")
        return real(*args, micro_batch=micro_batch, **kw)

    monkeypatch.setattr(loop, "gradients", full_after_epoch_1)
    capsys.readouterr()
    assert main(["train", *TOY, "--name", "big", "--set", "epochs=3", "--no-report"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("Resume from the last good checkpoint (epoch 1) with it: trainlab train --resume runs/big "
                        "--set speed.micro_batch=8"), err
    assert main(["train", "--resume", "runs/big", "--set", "speed.micro_batch=8", "--no-report", "--quiet"]) == 0
    rows = {name: [json.loads(line) for line in Path(f"runs/{name}/metrics.jsonl").read_text().splitlines()]
            for name in ("ref", "big")}
    assert len(rows["big"]) == 3 and calls[-1] == 8
    for a, b in zip(rows["ref"], rows["big"]):  # the same updates, in passes of 8
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=1e-5)


def test_the_end_of_run_test_line_names_the_balanced_accuracy_only_where_it_differs():
    from trainlab.cli import _test_line

    t = {"epoch": 3, "n": 100, "test_loss": 0.25, "test_acc": 0.95, "balanced_acc": 0.5, "macro_f1": 0.49}
    assert _test_line(t) == "test (best epoch 3, 100 examples): loss 0.2500  acc 0.9500  balanced acc 0.5000"
    assert _test_line(t | {"balanced_acc": 0.951}).endswith("acc 0.9500")
    assert _test_line(t, every_score=True).endswith("balanced acc 0.5000  macro F1 0.4900")
    assert _test_line({"epoch": 1, "n": 9, "test_loss": 2.0, "test_acc": None}).endswith("loss 2.0000")
