"""``run_search``: one Optuna study, trials run by 1..N worker processes, results in ``search-<name>/``.

Every worker loops: fail trials whose process is gone, then — under a lock shared by this machine's
workers — count the study's trials and, if the budget is not spent, let ``study.optimize`` create one
(the lock is released as soon as the trial exists), so the workers together run exactly the requested
number of trials. Coarse-to-fine runs its rounds one after the other, each round shared by the workers.
A restarted search (same name) continues the same study: only the trials still missing are run; it is refused
(one line, nothing written) while workers of an earlier run of it still run trials — they outlive a killed
``trainlab search``, finish the trial they hold and start no other.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from trainlab import files
from trainlab.config import RUN_NAME, TrainConfig, config_to_dict, validate_config
from trainlab.errors import ConfigError, TrainlabError
from trainlab.registry import PRUNERS, SEARCH_METHODS
from trainlab.search.coarse_to_fine import ROUND_ATTR, CoarseToFine, plot_ranges
from trainlab.search.methods import grid_size, make_pruner, make_sampler
from trainlab.search.objective import Objective, search_bundle, search_metric
from trainlab.search.space import SearchSpace
from trainlab.search.storage import (fail_orphaned_trials, live_trials, load_study, open_storage, repair_journal,
                                     resolve_storage, tag_trial)
from trainlab.train import env

__all__ = ["SearchSpec", "run_search"]

SPEC_FILE = "search.json"
LOCK_TIMEOUT_S = 30
# What must match for a restarted search to continue a study rather than mix two different searches.
_SAME = ("method", "space", "metric", "direction", "epochs", "cv", "rounds", "top_k", "margin", "prune")


@dataclass
class SearchSpec:
    """Everything a worker needs, and what ``search.json`` records."""

    name: str
    search_dir: str
    storage: str
    method: str
    trials: int
    workers: int
    prune: str
    metric: str
    direction: str
    seed: int
    space: dict[str, Any]  # the space file's mapping, re-parsed by each worker
    config: dict[str, Any]  # the base config (a complete TrainConfig as plain data)
    epochs: int | None = None  # per trial; None: the base config's
    cv: int | None = None
    rounds: int = 3
    top_k: int | None = None
    margin: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trial_epochs(self) -> int:
        return self.epochs or int(self.config["epochs"])

    def objective(self, space: SearchSpace, threads: int | None) -> Objective:
        return Objective(validate_config(self.config), space, Path(self.search_dir) / "trials", self.metric,
                         epochs=self.epochs, cv=self.cv, threads=threads)


def check_args(method: str, trials: int, workers: int, prune: str, epochs: int | None, cv: int | None,
               rounds: int, top_k: int | None) -> None:
    """All argument problems at once, as house-style lines."""
    problems = []
    if method not in SEARCH_METHODS:
        problems.append(SEARCH_METHODS.unknown_message(method))
    if prune not in PRUNERS:
        problems.append(PRUNERS.unknown_message(prune))
    for flag, value, low in (("--trials", trials, 1), ("--workers", workers, 1), ("--epochs", epochs, 1),
                             ("--cv", cv, 2), ("--rounds", rounds, 1), ("--top-k", top_k, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            problems.append(f"{flag} must be a whole number >= {low}. Got {value!r}. Use e.g. {flag} {low + 1}.")
    if method == "coarse-to-fine" and isinstance(trials, int) and isinstance(rounds, int) and 1 <= trials < 2 * rounds:
        problems.append(f"--trials must be at least 2 per round for coarse-to-fine ({2 * rounds} for {rounds} rounds). "
                        f"Got {trials}. Raise --trials or lower --rounds.")
    if problems:
        raise ConfigError("\n".join(problems))


def _search_dir(out_dir: Path, name: str | None) -> tuple[Path, bool]:
    """``(dir, continuing)``: an existing search of that name is continued, else a new, unused path (not made yet)."""
    if name is not None:
        if not RUN_NAME.match(name):  # the same rule as a run's name: it names one directory inside out_dir
            raise ConfigError(f"--name must be letters, digits, '.', '_' or '-' (it names a directory). Got {name!r}. "
                              "Choose a name such as lr-sweep-1.")
        path = out_dir / f"search-{name}"
        if (path / SPEC_FILE).is_file():
            return path, True
        if path.exists():
            raise ConfigError(f"--name must not name a directory that is not a search. Got {name!r} ({path} exists "
                              "without search.json). Choose another name.")
        return path, False
    base = f"search-{datetime.now():%Y%m%d-%H%M%S}"
    for i in range(1, 1000):
        path = out_dir / (base if i == 1 else f"{base}-{i}")
        if not path.exists():
            return path, False
    raise ConfigError(f"--name must be given when {out_dir} is this full of searches. Got none. Pass --name.")


def _check_same(old: dict[str, Any], new: SearchSpec) -> None:
    for key in _SAME:
        if old.get(key) != getattr(new, key):
            raise ConfigError(f"{key} must match the search being continued ({new.name}). Got {getattr(new, key)!r}, "
                              f"it was {old.get(key)!r}. Use the same settings, or another --name for a new search.")


def _check_not_running(spec: SearchSpec) -> None:
    """DamagedFileError for a journal that cannot be read; ConfigError, before anything is written, when processes
    of an earlier run of this search still run trials
    (workers that outlived a killed ``trainlab search``): continuing now would count their trials as done and
    write trials.csv and best.yaml without them."""
    study = load_study(spec.name, spec.storage, "Restore the journal from a copy, or start a new search with "
                       "another --name")
    running = live_trials(study)
    if running:
        trials, pids = ", ".join(map(str, running)), " ".join(map(str, sorted(set(running.values()))))
        raise ConfigError(f"search {spec.name} must have no trial still running to be continued. Got trial(s) {trials} "
                          f"running in process(es) {pids}, workers of an earlier 'trainlab search' that outlived it. "
                          f"Wait for them to finish (their trials are kept) or stop them (kill {pids}), then run the "
                          "search again.")


def _parent_gone(parent: int | None) -> bool:
    """Whether the process that started this worker has died (the worker was re-parented): start no new trial."""
    return parent is not None and os.getppid() != parent


def trials_in(study: optuna.Study, round_: int | None) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False)
    return trials if round_ is None else [t for t in trials if t.user_attrs.get(ROUND_ATTR) == round_]


def _trial_line(t: FrozenTrial, metric: str, space: SearchSpace) -> str:
    params = " ".join(f"{k}={_short(v)}" for k, v in space.decode(t.params).items())
    state = t.state.name.lower()
    what = f"{metric} {t.value:.4f}" if t.state == TrialState.COMPLETE else state
    if t.state == TrialState.PRUNED:
        what += f" at epoch/fold {t.user_attrs.get('pruned_at', '?')}"
    if t.state == TrialState.FAIL and t.user_attrs.get("error"):
        what += f": {t.user_attrs['error']}"
    secs = f" · {t.duration.total_seconds():.1f}s" if t.duration else ""
    return f"trial {t.number:>3} · worker {t.user_attrs.get('worker', 0)} · {what} · {params}{secs}"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def work(spec: SearchSpec, worker: int, space: SearchSpace, round_: int | None, target: int, lock: Any = None,
         objective: Objective | None = None, log: Callable[[str], None] = print, parent: int | None = None) -> None:
    """Run trials until the study (or the round) holds ``target`` trials; the loop every worker runs.

    ``parent``: the pid of the search that started this worker process; once it is gone no new trial starts."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trainlab prints one line per trial itself
    study = optuna.load_study(study_name=spec.name, storage=open_storage(spec.storage))
    # Seeds differ per worker, round and restart, so no two workers draw the same configs.
    seed = spec.seed + 7919 * worker + 104_729 * (round_ or 0) + len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(spec.method, space, seed, spec.trials)
    study.pruner = make_pruner(spec.prune, spec.cv or spec.trial_epochs)
    if objective is None:
        threads = max(1, env.cores() // spec.workers) if spec.workers > 1 else None
        objective = spec.objective(space, threads)
    elif objective.space is not space:
        objective.space = space
    printer = lambda _study, t: log(_trial_line(t, spec.metric, space))  # noqa: E731
    while not _parent_gone(parent):
        fail_orphaned_trials(study)
        # Held for milliseconds (count + create); one held longer was taken by a worker killed meanwhile.
        held = [lock is not None and lock.acquire(timeout=LOCK_TIMEOUT_S)]
        try:
            if len(trials_in(study, round_)) >= target:
                break

            def run_one(trial: optuna.Trial) -> float:
                tag_trial(trial, worker)
                if round_ is not None:
                    trial.set_user_attr(ROUND_ATTR, round_)
                if held[0]:  # the trial exists now: other workers may count it and start theirs
                    lock.release()
                    held[0] = False
                return objective(trial)

            study.optimize(run_one, n_trials=1, catch=(Exception,), callbacks=[printer])
        finally:
            if held[0]:
                lock.release()


def _silent(_line: str) -> None:
    pass


def _flushed(line: str) -> None:  # a worker's stdout is often a pipe: show each trial as it ends
    print(line, flush=True)


def _worker_main(spec: SearchSpec, worker: int, space: SearchSpace, round_: int | None, target: int,
                 lock: Any, verbose: bool, parent: int) -> None:
    try:
        work(spec, worker, space, round_, target, lock, log=_flushed if verbose else _silent, parent=parent)
    except KeyboardInterrupt:
        sys.exit(130)
    except TrainlabError as exc:
        print(f"error: worker {worker}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def _parallel(spec: SearchSpec, study: optuna.Study, space: SearchSpace, round_: int | None, target: int,
              log: Callable[[str], None]) -> None:
    """Start ``spec.workers`` processes and supervise them: a dead worker's trial is failed and it is replaced."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no forked torch thread pools or open storages
    lock = ctx.Lock()

    def start(i: int) -> Any:
        p = ctx.Process(target=_worker_main, args=(spec, i, space, round_, target, lock, log is not _silent,
                                                   os.getpid()), daemon=False)
        p.start()
        return p

    procs = {i: start(i) for i in range(spec.workers)}
    replaced = 0
    try:
        while procs:
            for i, p in list(procs.items()):
                p.join(timeout=0.2)
                if p.exitcode is None:
                    continue
                del procs[i]
                if p.exitcode == 0:
                    continue
                failed = fail_orphaned_trials(study, pids={p.pid})
                log(f"worker {i} (pid {p.pid}) ended with exit code {p.exitcode}"
                    + (f"; trial {', '.join(map(str, failed))} marked failed" if failed else ""))
                if p.exitcode == 2:  # bad input: a replacement would fail the same way
                    raise ConfigError(f"--workers must be able to run trials. Got worker {i} stopped on bad input "
                                      "(its message is above). Fix the config or the space.")
                if len(trials_in(study, round_)) < target and replaced < spec.workers:
                    replaced += 1
                    procs[i] = start(i)
    except BaseException:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.join()
        fail_orphaned_trials(study, pids={p.pid for p in procs.values()})
        raise


def _phase(spec: SearchSpec, study: optuna.Study, space: SearchSpace, round_: int | None, target: int,
           objective: Objective | None, log: Callable[[str], None]) -> None:
    if spec.workers == 1:
        work(spec, 0, space, round_, target, objective=objective, log=log)
    else:
        _parallel(spec, study, space, round_, target, log)


def _rounds(spec: SearchSpec, study: optuna.Study, space: SearchSpace, objective: Objective | None,
            log: Callable[[str], None]) -> list[dict[str, Any]]:
    # The budget split over the rounds, the first rounds taking the remainder: 20 in 3 rounds → 7, 7, 6.
    per_round = [spec.trials // spec.rounds + (r < spec.trials % spec.rounds) for r in range(spec.rounds)]
    top_k = min(spec.top_k or max(2, per_round[-1] // 4), per_round[-1])
    c2f = CoarseToFine(space, rounds=spec.rounds, per_round=per_round[-1], top_k=top_k, margin=spec.margin,
                       direction=spec.direction, seed=spec.seed)
    ranges = []
    cur = space
    for r in range(spec.rounds):
        ranges.append(cur.ranges())
        log(f"round {r + 1}/{spec.rounds}: " + "; ".join(p.describe() for p in cur))
        _phase(spec, study, cur, r, per_round[r], objective, log)
        done = [t for t in trials_in(study, r) if t.state == TrialState.COMPLETE]
        if not done:
            log(f"round {r + 1}/{spec.rounds}: no trial completed; ranges kept")
            continue
        scored = [(float(t.value), space.decode(t.params)) for t in done]
        log(f"round {r + 1}/{spec.rounds}: best {spec.metric} {c2f.ranked(scored)[0][0]:.4f} of {len(done)} completed")
        cur = c2f.narrow(cur, scored)
    return ranges


def run_search(cfg: TrainConfig, space: SearchSpace, space_spec: dict[str, Any], *, method: str = "random",
               trials: int = 20, epochs: int | None = None, workers: int = 1, storage: str | None = None,
               prune: str = "none", cv: int | None = None, rounds: int = 3, top_k: int | None = None,
               name: str | None = None, seed: int | None = None, log: Callable[[str], None] | None = print):
    """Search ``space`` around the base config ``cfg``; returns a :class:`~trainlab.search.results.SearchResult`.

    Trials are scored on validation data only (the test split is sealed); results land in
    ``cfg.out_dir/search-<name>/``. Bad arguments raise ConfigError before anything is written.
    ``log`` gets one line per trial and round (from every worker); None keeps the search quiet.
    """
    from trainlab.search.results import summarize

    log = log or _silent
    check_args(method, trials, workers, prune, epochs, cv, rounds, top_k)
    bundle = search_bundle(cfg)  # checks the data before anything is written
    metric, direction = search_metric(bundle.task, cfg.monitor)
    if method == "grid":
        trials = min(trials, grid_size(space))
    search_dir, continuing = _search_dir(Path(cfg.out_dir), name)
    name = search_dir.name.removeprefix("search-")
    spec = SearchSpec(name=name, search_dir=str(search_dir.resolve()), method=method, trials=trials, workers=workers,
                      storage=resolve_storage(storage, search_dir, workers), prune=prune, metric=metric,
                      direction=direction, seed=cfg.seed if seed is None else seed, space=space_spec,
                      config=config_to_dict(cfg), epochs=epochs, cv=cv, rounds=rounds, top_k=top_k)
    if continuing:
        _check_same(files.read_json(search_dir / SPEC_FILE, fix="Start a new search with another --name"), spec)
        _check_not_running(spec)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # A database is checked before the directory is made; the default journal file lives inside it.
    db = None if spec.storage.startswith("journal:") else open_storage(spec.storage)
    try:
        with files.storage_errors(search_dir):
            search_dir.mkdir(parents=True, exist_ok=continuing)
            if continuing:
                repair_journal(spec.storage)  # a partial last line of a killed writer, before this search appends
                # loaded, not created again: create_study appends a record even for a study that exists
                study = optuna.load_study(study_name=name, storage=db or open_storage(spec.storage))
            else:
                study = optuna.create_study(study_name=name, storage=db or open_storage(spec.storage),
                                            direction=direction)
        files.write_json(search_dir / SPEC_FILE, asdict(spec), indent=2)  # the first write of a continuing search
    except files.StorageError:
        if not continuing:  # a full or read-only disk before the first trial leaves no half-made search
            shutil.rmtree(search_dir, ignore_errors=True)
        raise
    failed = fail_orphaned_trials(study)
    done = len(study.get_trials(deepcopy=False))
    log(f"search {name}: {method}, {trials} trials of {spec.trial_epochs} epochs, {workers} worker(s), "
        f"ranked on {metric}; storage {spec.storage}" + (f"; continuing with {done} trial(s) done" if done else "")
        + (f"; trial(s) {failed} of dead workers marked failed" if failed else ""))
    objective = spec.objective(space, threads=None)  # the in-process worker reuses the data loaded above
    objective.bundles[objective.bundle_key(cfg)] = bundle
    t0 = time.perf_counter()
    ranges = None
    if method == "coarse-to-fine":
        ranges = _rounds(spec, study, space, objective, log)
        files.write_json(search_dir / "rounds.json", ranges, indent=2)
        plot_ranges(ranges, search_dir / "ranges.png", space=space)
    else:
        _phase(spec, study, space, None, trials, objective, log)
    return summarize(search_dir, wall_time=time.perf_counter() - t0)
