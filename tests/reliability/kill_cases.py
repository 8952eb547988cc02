"""SIGKILL of ``trainlab train`` at random moments and at the moment a file is being written ("kills").

A victim run is started as a real process and killed with SIGKILL, resumed with ``--resume`` and killed again,
several times; then resumed to its end without a kill. After every kill: each checkpoint loads with
``torch.load(weights_only=True)`` and every JSON/YAML file the run holds parses (the atomic-write promise). At
the end: the victim's weights, per-epoch metrics and test result equal an uninterrupted run's exactly, and no
temp file is left. Half of the kills wait for a ``.<name>.tmp-<pid>`` file to appear (a checkpoint or another
file mid-write) and kill then; the others land at a random moment after start-up.

Each kill is one case. The case of a victim's last kill also carries the comparison with the uninterrupted run.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.reliability.harness import SRC, Case
from tests.reliability.world import case_dir

TIME_KEYS = ("epoch_time", "time", "wall_time", "lr_time")


def _args(epochs: int) -> list[str]:
    return ["--set", "data.name=circle", "--set", "data.n_points=400", "--set", "model.hidden=[64,64]",
            "--set", "batch_size=32", "--set", f"epochs={epochs}", "--set", "threads=1", "--set", "tensorboard=false",
            "--set", "optimizer.name=adam", "--set", "optimizer.lr=0.003", "--set", "model.dropout=0.2", "--quiet",
            "--no-report"]


def _popen(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-m", "trainlab.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _temp_files(run_dir: Path) -> list[Path]:
    return [p for folder in (run_dir, run_dir / "checkpoints") if folder.is_dir()
            for p in folder.iterdir() if ".tmp-" in p.name]


def _whole_files(run_dir: Path) -> None:
    """Every checkpoint loads with weights_only=True; every JSON and YAML file parses."""
    import torch

    for p in sorted((run_dir / "checkpoints").glob("*.pt")):
        ckpt = torch.load(p, weights_only=True)
        assert ckpt.get("format") is not None and "model" in ckpt, f"{p.name}: not a trainlab checkpoint"
    for p in sorted(run_dir.glob("*.json")):
        json.loads(p.read_text())
    if (run_dir / "config.yaml").exists():
        assert isinstance(yaml.safe_load((run_dir / "config.yaml").read_text()), dict)


def _result(run_dir: Path) -> dict:
    from trainlab.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")  # its history rows read back from their JSON text
    history = [{k: v for k, v in h.items() if k not in TIME_KEYS} for h in ckpt["history"]]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"model": ckpt["model"], "history": history, "test": summary.get("test"),
            "epochs_run": summary.get("epochs_run")}


def _same(got: dict, want: dict) -> str:
    import torch

    if got["epochs_run"] != want["epochs_run"]:
        return f"epochs_run {got['epochs_run']} != {want['epochs_run']}"
    if got["history"] != want["history"]:
        i = next(i for i, (a, b) in enumerate(zip(got["history"], want["history"])) if a != b) \
            if len(got["history"]) == len(want["history"]) else -1
        return f"per-epoch metrics differ (first at row {i})"
    if got["test"] != want["test"]:
        return f"test result {got['test']} != {want['test']}"
    bad = [k for k, v in want["model"].items() if not torch.equal(v, got["model"][k])]
    return f"weights differ: {bad[:3]}" if bad else ""


@dataclass
class KillLoop:
    """Victims of ``epochs`` epochs, ``per_victim`` kills each, ``kills`` kills in all (cases run in order)."""

    label: str
    epochs: int
    kills: int
    per_victim: int
    seed: int = 0
    done: dict[int, str] = field(default_factory=dict)  # kill index → '' (held) or what fell short
    at_write: dict[int, str | None] = field(default_factory=dict)  # kill index → the temp file seen, if any
    _folder: Path | None = None
    _reference: dict | None = None
    _startup: float = 2.0
    _rng: random.Random = field(default_factory=random.Random)

    def _setup(self) -> None:
        if self._folder is not None:
            return
        self._rng.seed(self.seed)
        self._folder = case_dir(f"kills-{self.label}")
        t0 = time.monotonic()
        p = _popen(["train", *_args(self.epochs), "--set", "out_dir=runs", "--name", "reference"], self._folder)
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"the uninterrupted run failed: {err[-800:]}"
        self._reference = _result(self._folder / "runs" / "reference")
        self._startup = min(3.0, (time.monotonic() - t0) / 3)  # a guess at imports before training starts

    def result(self, i: int) -> str:
        """Run kills up to ``i`` (each victim's last one finishes and compares it); what kill ``i`` found."""
        self._setup()
        while i not in self.done:
            self._victim(len(self.done))
        return self.done[i]

    def _victim(self, first: int) -> None:
        assert self._folder is not None
        n = min(self.per_victim, self.kills - first)
        name = f"victim-{first:02d}"
        run_dir = self._folder / "runs" / name
        for k in range(first, first + n):
            self.done[k] = self._kill_once(k, name, run_dir)
        last = first + n - 1
        if not self.done[last]:
            self.done[last] = self._finish(run_dir)

    def _start(self, name: str, run_dir: Path) -> subprocess.Popen:
        if not (run_dir / "checkpoints" / "last.pt").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # killed before its first checkpoint: start it again
            return _popen(["train", *_args(self.epochs), "--set", "out_dir=runs", "--name", name], self._folder)
        return _popen(["train", "--resume", str(run_dir), "--quiet"], self._folder)

    def _kill_once(self, k: int, name: str, run_dir: Path) -> str:
        p = self._start(name, run_dir)
        during_write = k % 2 == 1
        deadline = time.monotonic() + self._startup + self._rng.uniform(0.2, 1.5)
        seen = None
        while p.poll() is None:
            if during_write:
                temps = _temp_files(run_dir)
                if temps:
                    seen = temps[0].name
                    break
                if time.monotonic() > deadline + 4:
                    break  # no write seen in time: kill anyway
                time.sleep(0.0002)
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.005)
        if p.poll() is not None:
            _, err = p.communicate()
            if p.returncode != 0:
                return f"kill {k}: the run ended by itself with exit {p.returncode}: {err[-600:]}"
            return f"kill {k}: the run finished before the kill (raise epochs)"
        os.kill(p.pid, signal.SIGKILL)
        p.communicate()
        self.at_write[k] = seen
        try:
            if run_dir.exists():
                _whole_files(run_dir)
        except Exception as exc:  # noqa: BLE001 — a file that does not load is what this case is about
            return f"kill {k} ({'at ' + seen if seen else 'random moment'}): {type(exc).__name__}: {str(exc)[:300]}"
        return ""

    def _finish(self, run_dir: Path) -> str:
        p = self._start(run_dir.name, run_dir)
        _, err = p.communicate(timeout=600)
        summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
        finished = summary.get("epochs_run") == self.epochs and summary.get("stop_reason")
        if p.returncode != 0 and not (p.returncode == 2 and finished):  # 2: it had already finished
            return f"the final resume failed with exit {p.returncode}: {err[-600:]}"
        left = _temp_files(run_dir)
        if left:
            return f"temp files left after the resume: {[q.name for q in left]}"
        assert self._reference is not None
        diff = _same(_result(run_dir), self._reference)
        return f"the resumed run differs from the uninterrupted one: {diff}" if diff else ""


LOOPS = {"quick": KillLoop("quick", epochs=60, kills=2, per_victim=2, seed=1),
         "full": KillLoop("full", epochs=300, kills=25, per_victim=5, seed=2)}


def _case(loop: KillLoop, i: int) -> Case:
    def run(_: Path) -> None:
        found = loop.result(i)
        assert not found, found

    kind = "at-a-write" if i % 2 else "random-moment"
    last = (i + 1) % loop.per_victim == 0 or i == loop.kills - 1
    return Case("kills", f"{loop.label}-{i:02d}-{kind}" + ("-then-compare" if last else ""), run,
                quick=loop.label == "quick")


def cases() -> list[Case]:
    return [_case(loop, i) for loop in LOOPS.values() for i in range(loop.kills)]
