"""Using a finished run: test metrics of its best checkpoint, and predictions for new images or CSV rows."""
from __future__ import annotations

import copy
import csv
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import files
from trainlab.config import TrainConfig
from trainlab.data import Split, load_data
from trainlab.data.features import model_inputs, raw_columns
from trainlab.errors import CheckpointError, ConfigError, DataError, problem
from trainlab.models import build_model, uncompiled
from trainlab.train.checkpoint import load_checkpoint
from trainlab.train.loop import batched_outputs, evaluate, memory_for
from trainlab.train.losses import Loss, loss_for, predict_classes, weighted
from trainlab.train.run import class_scores, read_run_config

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class LoadedRun:
    """A run's config, best model (eval mode, on the device ``load_run`` was given) and what it knows about its data."""

    run_dir: Path
    cfg: TrainConfig
    model: nn.Module
    info: dict[str, Any]
    epoch: int

    @property
    def loss(self) -> Loss:
        return loss_for(self.info["loss"], self.cfg.loss.from_logits, self.cfg.loss.label_smoothing)

    def training_loss(self, bundle: Any) -> Loss:
        """The loss as training computed it, class weights included ("balanced": from ``bundle``'s training
        labels): the loss its logged and summarised values are comparable to."""
        train_y = bundle.train.y if isinstance(bundle.train, Split) else None
        return weighted(self.loss, self.cfg.loss.class_weights, train_y, self.info.get("n_classes"),
                        torch.device("cpu"))



def load_run(run_dir: str | Path, which: str = "best", model: nn.Module | None = None,
             device: torch.device | str = "cpu") -> LoadedRun:
    """Rebuild the model of ``run_dir`` from ``checkpoints/<which>.pt`` (weights only, no pickled code), on
    ``device`` whatever device it was trained on.

    A run of a user's own ``nn.Module`` needs an instance of it as ``model`` (a copy receives the weights).
    """
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    folder = run_dir / "checkpoints"
    have = sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []
    if have and which not in have:  # a run that has checkpoints, but not this one: name the ones it has
        raise CheckpointError(problem("which", f"a checkpoint {run_dir.name} holds ({', '.join(have)})", which,
                                      "Use which='best' (the monitored best) or 'last'"))
    ckpt = load_checkpoint(folder / f"{which}.pt")
    info = ckpt["data"]
    custom = info.get("custom_model")
    given = model is not None
    if model is not None:
        model = copy.deepcopy(uncompiled(model)[0])  # a torch.compile'd module: the module it wraps
    elif custom is not None:
        raise CheckpointError(f"model must be given for {run_dir.name}: it trained your own nn.Module. Got none. "
                              f"Pass an instance: trainlab.load({str(run_dir)!r}, model={custom}()).")
    else:
        model = build_model(cfg.model, tuple(info["input_shape"]), int(info["n_outputs"]), seed=cfg.seed)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        # torch's first line is only "Error(s) in loading state_dict for X:"; the next names the key and the shapes
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = (lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0])[:200].rstrip(".")
        if given:  # the caller's module
            raise CheckpointError(f"model must have the architecture {run_dir.name} trained ({custom or cfg.model.name}). "
                                  f"Got {type(model).__name__}: {detail}. Pass the same class.") from None
        described = f"mlp, hidden {cfg.model.hidden}" if cfg.model.name == "mlp" else cfg.model.name
        raise CheckpointError(f"checkpoints/{which}.pt of {run_dir.name} must hold the weights of the model its "
                              f"config.yaml describes ({described}). Got {detail}. "
                              "Restore the run's own checkpoint, or train the run again.") from None
    return LoadedRun(run_dir, cfg, model.to(device).eval(), info, int(ckpt["epoch"]))


def inference_device(name: str) -> torch.device:
    """Where to compute a finished run's predictions: its training device when this machine has it, else
    the CPU (a run trained on a GPU is still usable on a laptop)."""
    if name.startswith("cuda") or name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        device = torch.device("cuda" if name == "auto" else name)
        # "cuda:1" on a machine with one GPU: that machine's GPU, not an invalid device ordinal
        return device if device.index is None or device.index < torch.cuda.device_count() else torch.device("cuda")
    if name == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def per_pass(given: Any, default: int, field: str = "batch_size", default_is: str = "the run's eval_batch_size") -> int:
    """A ``batch_size`` given to evaluate or predict (None: ``default``), checked: a whole number ≥ 1."""
    if given is None:
        return default
    if isinstance(given, bool) or not isinstance(given, numbers.Integral) or given < 1:
        raise ConfigError(problem(field, "a whole number of examples per pass, at least 1", given,
                                  f"Pass 256, or leave it out for {default_is} ({default})"))
    return int(given)


def evaluate_run(run_dir: str | Path, batch_size: int | None = None) -> dict[str, Any]:
    """Test-set loss/accuracy of the run's best checkpoint (a classifier's: also its balanced accuracy, macro F1,
    per-class scores and confusion matrix, ``train.run.class_scores``), ``batch_size`` examples per pass (default the
    run's eval_batch_size); also written to ``evaluation.json``."""
    run = load_run(run_dir)
    size = per_pass(batch_size, run.cfg.eval_batch_size)
    bundle = load_data(run.cfg.data, run.cfg.seed)  # same config and seed → the same splits
    test = bundle.test.open()
    classification = run.info["task"] == "classification"
    with memory_for(torch.device("cpu"), f"scoring the {len(test)} test examples", len(test), size,
                    f"Pass fewer: trainlab evaluate {run.run_dir} --batch-size {{smaller}}"):
        m = evaluate(run.model, test, run.training_loss(bundle), size, classification, confusion=True)
    result = {"run": run.run_dir.name, "checkpoint": "best", "epoch": run.epoch, "n": len(test),
              "test_loss": m["loss"], "test_acc": m["acc"],
              **(class_scores(m["confusion"], bundle.class_names) if "confusion" in m else {})}
    files.write_json(run.run_dir / "evaluation.json", result, indent=2)
    return result


def _read_image(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {str(path)!r} must be a readable image file. Got {type(exc).__name__}. "
                        "Pass PNG or JPEG files.") from None
    x = data.view(h, w, c).permute(2, 0, 1).float().div(255)  # (C, H, W) in [0, 1]
    # MNIST-style data are light strokes on black; a photo or drawing on a white background is inverted
    # so that the model sees what it was trained on.
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
    if c == 1 and float(border.mean()) > 0.5:
        x = 1 - x
    return x


def _read_rows(path: Path, features: list[str]) -> tuple[torch.Tensor, list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as exc:
        raise DataError(files.not_utf8("predict's CSV", path, exc)) from None
    if not rows:
        raise DataError(f"CSV {str(path)!r} must have a header and at least one row. Got none. Add rows.")
    missing = [c for c in features if c not in rows[0]]
    if missing:
        raise DataError(f"CSV {str(path)!r} must have the feature column {missing[0]!r} the model was trained on. "
                        f"Got columns {list(rows[0])}. Add the column.")
    values = []
    for i, row in enumerate(rows, start=2):
        try:
            values.append([float(row[c]) for c in features])
        except (TypeError, ValueError):
            bad = next(c for c in features if not _is_float(row[c]))
            raise DataError(f"CSV {str(path)!r} column {bad!r} must be numeric. Got {row[bad]!r} on line {i}. "
                            "Fix or drop that row.") from None
    return torch.tensor(values, dtype=torch.float32), rows


def _is_float(text: Any) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def predict_run(run_dir: str | Path, inputs: list[str | Path], batch_size: int | None = None) -> list[dict[str, Any]]:
    """One dict per input example: the predicted class (and probabilities) or the predicted values; ``batch_size``
    examples per pass (default the run's eval_batch_size)."""
    run = load_run(run_dir)
    size = per_pass(batch_size, run.cfg.eval_batch_size)
    shape = tuple(run.info["input_shape"])
    stats = run.info.get("stats") or {}
    xs, sources = [], []
    for item in map(Path, inputs):
        if not item.is_file():
            raise DataError(f"input must be an existing file. Got {str(item)!r}. Check the path.")
        if item.suffix.lower() in IMAGE_SUFFIXES:
            if len(shape) != 3:
                raise DataError(f"input {str(item)!r} must be a CSV for this run: it was trained on {len(shape)}-D "
                                "features, not images. Pass a CSV with the feature columns.")
            xs.append(_read_image(item, shape)[None])
            sources.append({"input": str(item)})
        else:
            if len(shape) != 1:
                raise DataError(f"input {str(item)!r} must be an image for this run (trained on images of shape "
                                f"{shape}). Pass PNG or JPEG files.")
            x, rows = _read_rows(item, raw_columns(stats, run.info["feature_names"]))  # data.features: raw x1, x2
            xs.append(x)
            sources.extend({"input": f"{item}:{i}", **r} for i, r in enumerate(rows, start=2))
    x = model_inputs(torch.cat(xs), stats)
    cpu = torch.device("cpu")
    with memory_for(cpu, f"predicting {len(x)} examples", len(x), size, "Pass fewer: --batch-size {smaller}"):
        out = batched_outputs(run.model, x, size, cpu)
    return _describe(run, out, sources)


def _describe(run: LoadedRun, out: torch.Tensor, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if run.info["task"] == "regression":
        names = run.info.get("target_names") or [f"y{i}" for i in range(out.shape[1])]
        return [{**s, **{f"predicted_{n}": float(v) for n, v in zip(names, row)}}
                for s, row in zip(sources, out.tolist())]
    classes = predict_classes(run.loss, out).tolist()
    probs = run.loss.probabilities(out)
    names = run.info.get("class_names") or [str(i) for i in range(int(run.info["n_classes"]))]
    result = []
    for i, (s, k) in enumerate(zip(sources, classes)):
        row = {**s, "class": names[k], "class_id": k}
        if probs is not None:
            row["probability"] = float(probs[i, k])
            row["probabilities"] = {n: round(float(p), 6) for n, p in zip(names, probs[i])}
        result.append(row)
    return result
