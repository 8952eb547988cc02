"""Searches killed mid-way ("search"): a worker killed, the whole search killed and continued, a search killed while
its workers run on (orphans) and then rerun — and a trial held by a live process that is not this search's.

What holds: a dead process's trial is marked failed, the study ends at exactly the requested number of trials,
trials.csv lists every trial, and a rerun while another process still runs trials of the study is refused in one
line with nothing written (it used to exit 0 with trials.csv and best.yaml missing the running trials).
"""
from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import alive
from tests.reliability.harness import SRC, Case, cli, one_line_error, refused, snapshot
from tests.reliability.world import TINY, case_dir, copy_run, world

LONG = ["--set", "data.name=circle", "--set", "data.n_points=2000", "--set", "model.activation=tanh", "--set",
        "batch_size=16", "--set", "threads=1", "--set", "tensorboard=false"]


def _study(search_dir: Path):
    import optuna

    from trainlab.search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=search_dir.name.removeprefix("search-"),
                             storage=open_storage(f"journal:{(search_dir / 'study.journal').resolve()}"))


def _states(search_dir: Path) -> list[str]:
    return [t.state.name for t in _study(search_dir).get_trials(deepcopy=False)]


def _csv_states(search_dir: Path) -> list[str]:
    with open(search_dir / "trials.csv", newline="") as f:
        return [row["state"] for row in csv.DictReader(f)]


class _Search:
    """``trainlab search`` as a process whose output goes to files: a pipe would stay open in orphaned workers,
    and waiting for its end would wait for them."""

    def __init__(self, argv: list, cwd: Path) -> None:
        self.out, self.err = cwd / "search.out", cwd / "search.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.p = subprocess.Popen([sys.executable, "-m", "trainlab.cli", *map(str, argv)], cwd=cwd,
                                      env=dict(os.environ, PYTHONPATH=str(SRC)), stdout=out, stderr=err)
        self.pid = self.p.pid

    def wait(self, timeout: float) -> tuple[int, str, str]:
        code = self.p.wait(timeout=timeout)
        return code, self.out.read_text(), self.err.read_text()

    def kill(self) -> None:
        self.p.kill()
        self.p.wait()


def _wait_running(search_dir: Path, n: int, timeout: float = 120) -> list:
    """The RUNNING trials once ``n`` of them have a worker's pid recorded."""
    from optuna.trial import TrialState

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (search_dir / "study.journal").exists():
            try:
                running = [t for t in _study(search_dir).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                           if "pid" in t.user_attrs]
                if len(running) >= n:
                    return running
            except (KeyError, ValueError):
                pass
        time.sleep(0.05)
    raise AssertionError(f"{n} trials never ran at once")


def _space(d: Path) -> Path:
    path = d / "space.yaml"
    path.write_text(yaml.safe_dump({"optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}}))
    return path


def trial_held_by_a_live_process(_: Path) -> None:
    """A RUNNING trial recorded with a live pid on this host (a worker that outlived its search): the rerun is
    refused in one line naming it, nothing written; once that process is gone the rerun fails the trial and ends
    at exactly the requested count."""
    d = case_dir("search-live-trial")
    w = world()
    search = copy_run(d, "search-s")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        study = _study(search)
        trial = study.ask()
        for k, v in {"host": socket.gethostname(), "pid": holder.pid, "worker": 1}.items():
            trial.set_user_attr(k, v)
        argv = ["search", *TINY, "--set", f"out_dir={d / 'runs'}", "--space", w.space, "--trials", "4", "--epochs", "1",
                "--name", "s", "--quiet"]
        o = refused(argv, d)
        assert f"trial(s) {trial.number} running in process(es) {holder.pid}" in o.err, o.err
    finally:
        holder.kill()
        holder.wait()
    o = cli(argv, d)
    assert o.code == 0, o.err[-600:]
    assert _states(search) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"], _states(search)
    assert _csv_states(search) == ["complete", "complete", "fail", "complete"], _csv_states(search)


def search_killed_then_continued(_: Path) -> None:
    """``trainlab search`` (one worker, in process) killed mid-trial: the rerun fails that trial, runs the missing
    ones and ends at exactly the requested count, trials.csv listing them all."""
    d = case_dir("search-killed-continued")
    argv = ["search", *LONG, "--set", "out_dir=runs", "--space", _space(d), "--trials", "3", "--epochs", "30",
            "--name", "k", "--quiet"]
    p = _Search(argv, d)
    try:
        _wait_running(d / "runs" / "search-k", 1)
        time.sleep(0.3)
    finally:
        p.kill()
    o = cli(argv, d)
    assert o.code == 0, o.err[-600:]
    states = _states(d / "runs" / "search-k")
    assert len(states) == 3 and states.count("FAIL") == 1 and states.count("COMPLETE") == 2, states
    assert _csv_states(d / "runs" / "search-k") == [s.lower() for s in states]


def worker_killed(_: Path) -> None:
    """One of two workers SIGKILLed: its trial is failed, it is replaced, the search exits 0 at the requested count."""
    d = case_dir("search-worker-killed")
    p = _Search(["search", *LONG, "--set", "out_dir=runs", "--space", _space(d), "--trials", "4", "--epochs", "30",
                 "--workers", "2", "--name", "w"], d)
    try:
        victim = _wait_running(d / "runs" / "search-w", 1)[0]
        os.kill(victim.user_attrs["pid"], signal.SIGKILL)
        code, out, err = p.wait(timeout=300)
    finally:
        p.kill()
    assert code == 0, err[-600:]
    states = _states(d / "runs" / "search-w")
    assert len(states) == 4 and states[victim.number] == "FAIL" and states.count("COMPLETE") == 3, states
    assert "marked failed" in out


def parent_killed_with_workers_running(_: Path) -> None:
    """The search killed while its two workers train: a rerun right away is refused in one line (nothing written);
    the orphans finish their trial and start no other; a rerun after them runs the rest, trials.csv complete."""
    d = case_dir("search-orphans")
    argv = ["search", *LONG, "--set", "out_dir=runs", "--space", _space(d), "--trials", "4", "--epochs", "60",
            "--workers", "2", "--name", "o", "--quiet"]
    p = _Search(argv, d)
    search = d / "runs" / "search-o"
    try:
        running = _wait_running(search, 2)
    finally:
        p.kill()  # SIGKILL: the workers are not told
    pids = {t.user_attrs["pid"] for t in running}
    assert all(alive(pid) for pid in pids), "the workers died with their search: nothing to test"
    # The orphans keep writing their trials and the journal; what the refused rerun would write is the rest.
    before = _own_files(search)
    o = cli(argv, d, process=True)
    one_line_error(o)
    assert _own_files(search) == before, "the refused rerun wrote files"
    assert "still running" in o.err and all(str(pid) in o.err for pid in pids), o.err
    end = time.monotonic() + 300
    while any(alive(pid) for pid in pids) and time.monotonic() < end:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "the orphaned workers never ended"
    assert _states(search) == ["COMPLETE", "COMPLETE"], f"the orphans started more trials: {_states(search)}"
    o = cli(argv, d, process=True)  # workers are spawned: a fresh interpreter, not this one's __main__
    assert o.code == 0, o.err[-600:]
    assert _states(search) == ["COMPLETE"] * 4 and _csv_states(search) == ["complete"] * 4, _states(search)


def _own_files(search: Path) -> dict[str, tuple[int, int, int]]:
    """The files a search command itself writes at the top of its folder (not the trials, not the journal)."""
    return {k: v for k, v in snapshot(search).items() if "/" not in k and k not in ("study.journal", "trials")}


def cases() -> list[Case]:
    return [Case("search", "trial-held-by-a-live-process-refused-then-continued", trial_held_by_a_live_process,
                 quick=True),
            Case("search", "search-killed-then-continued", search_killed_then_continued),
            Case("search", "worker-killed-trial-failed-budget-exact", worker_killed),
            Case("search", "parent-killed-orphans-refused-then-continued", parent_killed_with_workers_running)]
