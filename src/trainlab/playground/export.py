"""From the playground to the CLI: "copy config" (YAML for ``trainlab train``) and "save as run".

Both give ``data.features``: the network's inputs as the engine's feature names (``x1_sq`` for x1², ...; one
table in state.py maps TF's URL keys to them), so the engine computes the same inputs from the same points.
"Copy config" names the toy set itself (or, for uploaded points, the CSV that "Download CSV" writes).

"Save as run" writes a normal ``runs/<name>/`` that ``trainlab evaluate / predict / report`` read: the
session's training points as ``train.csv`` and its test points as ``test.csv`` (columns ``x1, x2, label``),
``config.yaml`` naming them as ``data.path`` and ``data.test_path`` (so the engine's sealed test split *is*
the playground's test set) with ``data.features``, and ``checkpoints/{last,best}.pt`` in the engine's
checkpoint format holding the trained weights; ``trainlab predict`` then takes raw ``x1, x2`` rows. Two
conversions make the engine's model compute exactly what the playground's does:

- trainlab standardises CSV inputs (the features) with its training split's statistics (x' = (x − μ)/σ), so
  the first layer's weights are multiplied by those standard deviations and its bias shifted (W' = W·σ,
  b' = b + W·μ);
- TF's binary output tanh(s) with a square loss becomes the engine's ``bce`` on one logit 2s, whose
  probability sigmoid(2s) = (1 + tanh s)/2 is the playground's output read as a probability (same classes).

So ``trainlab evaluate`` reports the playground's test accuracy; its test loss is the playground's for
cross-entropy, twice it for regression (``mse`` is the mean of (out − y)², TF's loss half that), and the
bce of the same predictions for TF's binary tanh output.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainlab import files
from trainlab.config import TrainConfig, config_to_yaml, validate_config
from trainlab.errors import ConfigError, problem
from trainlab.playground.net import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS, model_config, schedule_config
from trainlab.playground.state import FEATURES, UPLOAD, seed_of, to_query
from trainlab.train.run import new_run_dir, prepare, write_run

if TYPE_CHECKING:
    from trainlab.playground.net import Trainer
    from trainlab.playground.session import Session

__all__ = ["config_yaml", "save_run", "to_config", "feature_names"]


def feature_names(session: "Session", which: str) -> list[str]:
    """Network ``which``'s inputs as ``data.features`` names them, in the network's input order."""
    return [FEATURES[k] for k in session.nets[which].trainer.net.spec.features]


def _loss_name(output: str) -> str:
    return {"tanh": "bce", "softmax": "cross_entropy", "linear": "mse"}[output]


def to_config(t: "Trainer", data: dict[str, Any] | None = None, **top: Any) -> TrainConfig:
    """The one mapping from a playground network (its trainer's settings and network) to the engine's config:
    copy config, save as run and the live verdict all read it. ``data``: the config's data section (None: the
    default, for a caller that reads only the training settings); ``top``: other top-level keys (seed, name...).
    Validated as ``--set`` is: a ConfigError names the field."""
    spec, s = t.net.spec, t.settings
    epochs = max(s.max_epochs or t.epochs, 1)
    # the playground's own schedule constants (step every quarter of the run, ×0.5; warm-up over a 20th), not the
    # engine's defaults for tens of epochs: a copied step schedule trained with step_epochs=10 and gamma=0.1
    schedule = schedule_config(s.schedule, s.max_epochs).model_dump()
    schedule["warmup_epochs"] = min(schedule["warmup_epochs"], epochs)  # a run shorter than the warm-up: all of it
    raw = {
        "epochs": epochs, "batch_size": s.batch_size,
        "shuffle": False,  # TF walks the training points in one fixed order
        "model": model_config(spec).model_dump(),
        "loss": {"name": _loss_name(spec.output), "l1": s.reg_rate if s.regularization == "L1" else 0.0,
                 "l2": s.reg_rate if s.regularization == "L2" else 0.0},
        "optimizer": {"name": s.optimizer, "lr": s.lr},
        "schedule": schedule,
        "stop": {"early_stopping": {"patience": s.patience or None}},
        **({"data": data} if data is not None else {}), **top,
    }
    return validate_config(raw)


def _differences(session: "Session", which: str) -> list[str]:
    spec = session.nets[which].trainer.net.spec
    notes = ["the engine carves a validation split off the training points, starts every epoch's first update "
             "afresh (TF carries leftover points over) and standardises CSV inputs"]
    if spec.output == "tanh":
        notes.append("TF's tanh output with 0.5·(out-label)² becomes bce on one logit: the same classes, "
                     "a different loss scale, so the learning rate is not comparable")
    if session.nets[which].trainer.settings.regularization == "L1":
        notes.append("L1 is a penalty in the loss there: weights that cross 0 are not frozen dead")
    return notes


def config_yaml(session: "Session", which: str) -> str:
    """YAML for ``trainlab train --config``, validated by trainlab's config, with what differs as comments."""
    s = session.state

    features = feature_names(session, which)
    if s["dataset"] != UPLOAD:
        n = len(session.points)
        data = {"name": s["dataset"], "n_points": n, "noise": s["noise"] / 100, "classes": s["classes"],
                "test_fraction": round(1 - s["percTrainData"] / 100, 4), "features": features}
        where = []
    else:  # "Download CSV" writes x1, x2, label: two columns, which data.features turns into the same inputs
        data = {"name": "csv", "path": "playground.csv", "target": "label", "task": session.points.task,
                "test_fraction": round(1 - s["percTrainData"] / 100, 4), "features": features}
        where = ["data: save the points with 'download CSV' as playground.csv first"]
    cfg = to_config(session.nets[which].trainer, data, seed=seed_of(session.state))  # what trainlab train accepts
    lines = [f"# trainlab train --config <this file>   (network {which.upper()} of the playground)"]
    lines += [f"# differs from the playground: {n}" for n in where + _differences(session, which)]
    return "\n".join(lines) + "\n" + config_to_yaml(cfg)


def _run_name(name: Any) -> str | None:
    if name in (None, ""):
        return None
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", name):
        raise ConfigError(problem("run name", "letters, digits, '.', '_' or '-' (at most 81, it names a directory)",
                                  name, "Type e.g. circle-4-2"))
    return name


def save_run(session: "Session", which: str, name: Any, runs_dir: Path) -> Path:
    """Write network ``which`` as ``runs_dir/<name>/`` (a new directory; never reused) and return it."""
    name = _run_name(name)
    holder = session.nets[which]
    t = holder.trainer
    base = name or f"playground-{session.state['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    raw_data = {"name": "csv", "path": "train.csv", "test_path": "test.csv", "target": "label",
                "task": session.points.task, "features": feature_names(session, which)}
    # the CPU, as the playground trained it: config's default "auto" put the model on a GPU to write a checkpoint
    top = {"seed": seed_of(session.state), "out_dir": str(runs_dir), "tensorboard": False, "threads": 1,
           "device": "cpu"}
    run_dir = new_run_dir(to_config(t, raw_data, name=base, **top))
    paths = {"path": run_dir / "train.csv", "test_path": run_dir / "test.csv"}
    _write_csv(paths["path"], session.train_pts)
    _write_csv(paths["test_path"], session.test_pts)
    data = raw_data | {k: str(v.resolve()) for k, v in paths.items()}
    p = prepare(to_config(t, data, name=run_dir.name, **top))  # the engine's data loading, loss, model build, checks
    p.model.load_state_dict(_engine_weights(t, p.bundle.stats["normalize"]))
    # the engine's run writer: config.yaml, checkpoints, metrics files and summary.json as a training run's
    write_run(p, run_dir, _history(t), stop_reason=f"playground: saved at epoch {t.epochs}",
              extra={"playground": {"query": to_query(session.state), "net": which},
                     "source": "trainlab playground (val_* = its validation points, its own loss)"})
    return run_dir


def _write_csv(path: Path, pts: Any) -> None:
    """``pts`` (playground Points) as CSV: ``x1, x2`` (data.features computes the inputs) and ``label``
    (a class id or a value)."""
    x = pts.xy
    if pts.task == "classification":
        y = pts.label if pts.label.dtype == torch.int64 else (pts.label > 0).long()
        labels = [str(int(v)) for v in y.tolist()]
    else:
        labels = [repr(float(v)) for v in pts.label.tolist()]
    header = "x1,x2,label"
    rows = [",".join([*(repr(float(v)) for v in row), lab]) for row, lab in zip(x.tolist(), labels)]
    files.write_text(path, header + "\n" + "\n".join(rows) + "\n")


@torch.no_grad()
def _engine_weights(t: Any, normalize: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The playground's state_dict converted for standardised inputs (and a doubled logit for bce)."""
    state = {k: v.clone() for k, v in t.net.module.state_dict().items()}
    mean = torch.as_tensor(normalize["mean"], dtype=torch.float32).flatten()
    std = torch.as_tensor(normalize["std"], dtype=torch.float32).flatten()
    first = "layers.0.linear" if t.net.spec.hidden else "head"
    w = state[f"{first}.weight"] * std  # the model now sees (x − μ)/σ: W'·(x − μ)/σ = W·x − W·μ when W' = W·σ
    state[f"{first}.weight"] = w
    if f"{first}.bias" in state:
        state[f"{first}.bias"] = state[f"{first}.bias"] + (w * (mean / std)).sum(1)
    elif t.net.spec.batchnorm:  # no bias before BatchNorm: the shift is absorbed by fixing the running mean
        state["layers.0.norm.running_mean"] = state["layers.0.norm.running_mean"] - (w * (mean / std)).sum(1)
    if t.net.spec.output == "tanh":
        state["head.weight"] = state["head.weight"] * 2
        state["head.bias"] = state["head.bias"] * 2
    return state


def _history(t: Any) -> list[dict[str, Any]]:
    rows = t.history[1:t.epochs + 1].tolist()
    lr = t.optimizer.param_groups[0]["lr"]
    acc = t.classification
    return [{"epoch": i + 1, "train_loss": r[TRAIN_LOSS], "val_loss": r[VAL_LOSS] if t.has_val else None,
             "train_acc": r[TRAIN_ACC] if acc else None, "val_acc": r[VAL_ACC] if acc and t.has_val else None,
             "lr": lr} for i, r in enumerate(rows)]
