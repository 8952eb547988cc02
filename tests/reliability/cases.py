"""Every case of the reliability suite, in the order the benchmark runs them, and the cases issue 18 lists by name.

Two more kinds of case live here: a run killed between its last checkpoint and its test evaluation ("kills"),
and the two contracts the issue names ("contracts": scikit-learn's checks on the defaults, model.json's input
transform).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.reliability import api_cases, cli_cases, disk_cases, kill_cases, playground_cases, search_cases
from tests.reliability.harness import CATEGORIES, Case, cli
from tests.reliability.world import case_dir, copy_run


def killed_after_last_checkpoint(_: Path) -> None:
    """A run killed after its last checkpoint, before its test and summary.json (the files exactly as such a kill
    leaves them: the finished run without summary.json, its report and verdict): ``--resume`` trains no epoch,
    evaluates the test set once and writes the summary, with the test result of the uninterrupted run."""
    d = case_dir("kills-after-last-checkpoint")
    run = copy_run(d, "toy")
    want = json.loads((run / "summary.json").read_text())
    for name in ("summary.json", "diagnosis.json", "report.html"):
        (run / name).unlink(missing_ok=True)
    o = cli(["train", "--resume", run, "--quiet", "--no-report"], d)
    assert o.code == 0, f"exit {o.code}: {o.err[-600:]}"
    got = json.loads((run / "summary.json").read_text())
    assert got["epochs_run"] == want["epochs_run"] and got["test"] == want["test"], (got["test"], want["test"])
    assert got["stopped_by"] == want["stopped_by"], (got["stopped_by"], want["stopped_by"])


def regressor_defaults(_: Path) -> None:
    """TrainlabRegressor() as users make it passes check_methods_subset_invariance (it failed with float32)."""
    try:
        from sklearn.utils.estimator_checks import check_methods_subset_invariance
    except ImportError as exc:
        from tests.reliability.harness import Skip

        raise Skip(f"needs scikit-learn: {exc}") from None
    import tempfile

    from trainlab.sklearn import TrainlabRegressor

    old = tempfile.tempdir
    tempfile.tempdir = str(case_dir("contracts-sklearn"))
    try:
        for seed in range(4):
            check_methods_subset_invariance("TrainlabRegressor", TrainlabRegressor(seed=seed))
    finally:
        tempfile.tempdir = old


def model_json_transform(_: Path) -> None:
    """An exported image run's model.json says inputs are pixels / 255 (data.normalize off)."""
    d = case_dir("contracts-model-json")
    run = copy_run(d, "img")
    o = cli(["export", run, "--format", "safetensors"], d)
    assert o.code == 0, o.err[-600:]
    transform = json.loads((run / "export" / "model.json").read_text())["input"]["transform"]
    assert transform["formula"] == "input = pixels / 255" and transform["steps"] == [{"op": "divide", "by": 255}], \
        transform
    shutil.rmtree(run / "export")


def extra_cases() -> list[Case]:
    return [Case("kills", "after-last-checkpoint-resume-finishes-test-and-summary", killed_after_last_checkpoint,
                 quick=True),
            Case("contracts", "sklearn-regressor-defaults-subset-invariance", regressor_defaults),
            Case("contracts", "model-json-states-pixels-over-255", model_json_transform, quick=True)]


def all_cases() -> list[Case]:
    cases = [*kill_cases.cases(), *cli_cases.cli_cases(), *api_cases.cases(), *cli_cases.files_cases(),
             *disk_cases.cases(), *search_cases.cases(), *playground_cases.cases(), *extra_cases()]
    order = {c: i for i, c in enumerate((*CATEGORIES, "contracts"))}
    return sorted(cases, key=lambda c: order[c.category])  # stable: each category keeps its own order


# Issue 18, bullet by bullet → the cases that try exactly what it describes.
ISSUE_CASES = {
    "non-UTF-8 CSV to train, predict; a binary --space": [
        "cli:train-csv-latin1", "cli:train-csv-binary", "cli:predict-csv-latin1", "cli:search-space-binary",
        "cli:search-space-latin1"],
    "--set seed=-5; optimizer.lr=.inf; lr=inf in tl.fit": [
        "cli:train-set-seed-negative", "cli:train-set-optimizer.lr-inf", "api:option-lr-inf"],
    "read-only run directory: evaluate, report, export, train --resume": [
        "disk:read-only-evaluate", "disk:read-only-report", "disk:read-only-export", "disk:read-only-resume"],
    "files written in place and read back: a truncated one under resume, compare, report": [
        "files:resume-summary.json-truncated", "files:compare-summary.json-truncated",
        "files:report-summary.json-truncated", "files:resume-activations.json-truncated",
        "files:resume-config.yaml-truncated", "files:resume-metrics.jsonl-bad_middle_line",
        "files:report-layers.jsonl-bad_middle_line", "files:study-search.json-truncated"],
    "disk full: a 2 MB tmpfs, and no space at all": ["disk:full-mid-run-keeps-whole-files", "disk:full-train-new"],
    "path traversal: search --name 'a/../../../escaped'": ["cli:search-name-traversal", "cli:train-name_traversal"],
    "kill between the last checkpoint and the final test": [
        "kills:after-last-checkpoint-resume-finishes-test-and-summary"],
    "temp files left by kills": ["kills:quick-01-at-a-write-then-compare", "kills:full-09-at-a-write-then-compare"],
    "Python API: empty tensors, forward raising TypeError/Exception, a string model, no parameters, a test set of "
    "5 columns, a label 5 among 0/1": [
        "api:data-empty", "api:model-forward-typeerror", "api:model-forward-exception", "api:model-a-string",
        "api:model-no-parameters", "api:test-five-columns", "api:label-5-among-0-1"],
    "rerun of a search while orphaned workers still run": ["search:parent-killed-orphans-refused-then-continued"],
    "a killed search worker's trial failed, the study at the requested count": [
        "search:worker-killed-trial-failed-budget-exact"],
    "playground: foreign Origins and Hosts, message and upload caps, out-of-range values": [
        "playground:host-foreign", "playground:socket-foreign-origin", "playground:message-too-big",
        "playground:upload-too-big", "playground:url-noise-huge"],
    "contracts: TrainlabRegressor() defaults; model.json's input transform": [
        "contracts:sklearn-regressor-defaults-subset-invariance", "contracts:model-json-states-pixels-over-255"],
}
