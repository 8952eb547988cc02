"""One trial: a config from the space, trained on data whose test split is sealed shut, scored on validation.

The objective never receives a bundle with an openable test split: :func:`search_bundle` seals it right
after loading (and for image datasets the test files are never even read), so no trial, pruner or
summary can look at test data. A trial reports its validation metric after every epoch (with ``cv``:
the running mean after every fold) so that pruners can stop it early.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna

from trainlab.config import CLASS_SCORES, TrainConfig, config_to_dict, replace
from trainlab.data import DataBundle, SealedTest, load_data
from trainlab.errors import TrainlabError
from trainlab.search.space import SearchSpace
from trainlab.train.callbacks import Callback, TrainState

__all__ = ["Objective", "search_bundle", "search_metric", "seal"]

NO_TEST = ("the test set is not available during a hyperparameter search: trials are scored on validation data "
           "only. Train the chosen config (best.yaml) with 'trainlab train --config' to get its test score.")


def seal(bundle: DataBundle) -> DataBundle:
    """A copy of ``bundle`` whose test split cannot be opened; the original's test split is left unopened."""
    return DataBundle(train=bundle.train, val=bundle.val, test=SealedTest.closed(NO_TEST), task=bundle.task,
                      n_classes=bundle.n_classes, input_shape=bundle.input_shape, class_names=bundle.class_names,
                      feature_names=bundle.feature_names, target_names=bundle.target_names, stats=bundle.stats,
                      meta=bundle.meta)


def search_bundle(cfg: TrainConfig) -> DataBundle:
    """Load ``cfg.data`` for searching: train and validation tensors, the test split sealed shut."""
    return seal(load_data(cfg.data, cfg.seed))


def search_metric(task: str, monitor: str = "val_loss") -> tuple[str, Literal["maximize", "minimize"]]:
    """Classification trials are ranked on validation accuracy — or on the class score the config monitors
    (val_balanced_acc, val_macro_f1: imbalanced labels) —, regression trials on validation loss."""
    if task != "classification":
        return "val_loss", "minimize"
    return (monitor if monitor in CLASS_SCORES else "val_acc"), "maximize"


class PruningReporter(Callback):
    """Reports the monitored metric to the trial each epoch and stops the run when the pruner says so."""

    name = "pruning"

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        value = metrics[self.metric]
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), int(metrics["epoch"]))
        if int(metrics["epoch"]) < state.cfg.epochs and self.trial.should_prune():  # a finished trial is complete
            self.pruned_at = int(metrics["epoch"])
            state.request_stop(f"pruned: {self.metric} {value:.4g} at epoch {self.pruned_at} is behind other trials",
                               "pruned")


@dataclass
class Objective:
    """``Objective(base, space, trials_dir)(trial)`` → the trial's best validation metric.

    ``epochs`` (if given) replaces the base config's for each trial; ``cv`` > 1 scores by K-fold mean.
    ``bundles`` caches the sealed data per data config, so a process loads each dataset once.
    """

    base: TrainConfig
    space: SearchSpace
    trials_dir: Path
    metric: str
    epochs: int | None = None
    cv: int | None = None
    threads: int | None = None
    bundles: dict[str, DataBundle] = field(default_factory=dict)

    def trial_config(self, params: dict[str, Any], number: int) -> TrainConfig:
        changes: dict[str, Any] = {**params, "name": f"trial-{number:04d}", "out_dir": str(self.trials_dir),
                                   "tensorboard": False, "monitor": self.metric}
        if self.epochs is not None:
            changes["epochs"] = self.epochs
        if self.threads is not None and self.base.threads is None:
            changes["threads"] = self.threads
        return replace(self.base, **changes)

    @staticmethod
    def bundle_key(cfg: TrainConfig) -> str:
        return json.dumps(config_to_dict(cfg)["data"], sort_keys=True) + f"|{cfg.seed}"

    def bundle(self, cfg: TrainConfig) -> DataBundle:
        key = self.bundle_key(cfg)
        if key not in self.bundles:
            self.bundles[key] = search_bundle(cfg)
        return self.bundles[key]

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        try:
            cfg = self.trial_config(params, trial.number)
            bundle = self.bundle(cfg)
            value = self._cv(trial, cfg, bundle) if self.cv else self._train(trial, cfg, bundle)
        except TrainlabError as exc:  # a config the space allows but the data rejects: this trial fails
            trial.set_user_attr("error", str(exc).splitlines()[0][:300])
            raise
        if not math.isfinite(value):
            trial.set_user_attr("error", f"{self.metric} is not finite ({value})")
        return value

    def _train(self, trial: optuna.Trial, cfg: TrainConfig, bundle: DataBundle) -> float:
        from trainlab.train.run import train

        reporter = PruningReporter(trial, self.metric)
        run = train(cfg, bundle=bundle, callbacks=[reporter], verbose=False)
        s = run.summary
        trial.set_user_attr("run_dir", str(run.run_dir))
        trial.set_user_attr("epochs_run", s["epochs_run"])
        trial.set_user_attr("best_epoch", s["best_epoch"])
        trial.set_user_attr("wall_time", round(s["wall_time"], 3))
        if reporter.pruned_at is not None:
            trial.set_user_attr("pruned_at", reporter.pruned_at)
            raise optuna.TrialPruned(s["stop_reason"])
        return float(s["best_value"])

    def _cv(self, trial: optuna.Trial, cfg: TrainConfig, bundle: DataBundle) -> float:
        from trainlab.search.cv import cross_validate

        scores: list[float] = []

        def on_fold(i: int, row: dict[str, Any]) -> None:
            scores.append(float(row[self.metric]))
            trial.report(sum(scores) / len(scores), i)
            if i < self.cv and trial.should_prune():  # after the last fold the trial is complete
                trial.set_user_attr("pruned_at", i)
                raise optuna.TrialPruned(f"pruned after fold {i}: mean {self.metric} {scores[-1]:.4g} is behind")

        res = cross_validate(cfg, self.cv, bundle=bundle, out_dir=self.trials_dir / cfg.name, on_fold=on_fold)
        trial.set_user_attr("run_dir", str(res.cv_dir))
        trial.set_user_attr("cv_std", res.std[self.metric])
        return float(res.mean[self.metric])
