"""Datasets as tensors: image readers, 2-D toy sets, tabular CSV, input features, splits, normalisation, augmentation.

``load_data(cfg, seed)`` is the one entry point the engine uses: it loads a registered source, carves
the validation split from the training data (stratified), carves a test split where the source has none,
fits normalisation on the training split only, and seals the test split (see :class:`SealedTest`).
"""
from __future__ import annotations

from typing import Any

from trainlab.config import DataConfig
from trainlab.data.base import DataBundle, DatasetSource, RawData, SealedTest, Split
from trainlab.data import features, images, mnist1d, tabular, toy  # noqa: F401  (register the sources and features)
from trainlab.data.features import apply_features
from trainlab.data.memory import bundle_from_data
from trainlab.data.splits import kfold_indices, split_indices
from trainlab.data.transforms import Augmenter, Standardizer, make_augmenter
from trainlab.errors import DataError
from trainlab.registry import DATASETS

__all__ = [
    "DataBundle", "DatasetSource", "RawData", "SealedTest", "Split", "Standardizer", "Augmenter",
    "load_data", "apply_features", "bundle_from_data", "split_indices", "kfold_indices", "make_augmenter",
    "describe_datasets", "input_transform",
]


def load_data(cfg: DataConfig, seed: int = 0) -> DataBundle:
    """Load ``cfg.name`` and return train/val tensors plus the sealed test split."""
    source: DatasetSource = DATASETS.get(cfg.name)
    raw = source.load(cfg, seed)
    train_all = raw.train
    strat_y = raw.train.y if (raw.task == "classification" and cfg.stratify) else None

    test_load = raw.test
    if test_load is None:
        # No official test split: carve one off first, with its own seed stream, so that changing
        # val_fraction never moves an example between test and train.
        keep, held = split_indices(len(train_all), cfg.test_fraction, seed=seed + 1, labels=strat_y)
        held_split = train_all.subset(held)
        train_all = train_all.subset(keep)
        test_load = lambda: held_split  # noqa: E731
        strat_y = train_all.y if strat_y is not None else None

    if cfg.limit is not None and cfg.limit < len(train_all):
        keep, _ = split_indices(len(train_all), 1 - cfg.limit / len(train_all), seed=seed + 2,
                                labels=strat_y, exact_keep=cfg.limit)
        train_all = train_all.subset(keep)
        strat_y = train_all.y if strat_y is not None else None

    keep, held = split_indices(len(train_all), cfg.val_fraction, seed=seed, labels=strat_y)
    if len(keep) == 0 or len(held) == 0:
        raise DataError(f"data.val_fraction must leave examples on both sides. Got {cfg.val_fraction} of "
                        f"{len(train_all)} examples. Use more data or a fraction between them.")
    train, val = train_all.subset(keep).unit_pixels(), train_all.subset(held).unit_pixels()

    stats = {}
    transform = None
    # Tabular features are always standardised (with training statistics only): mixed units would
    # otherwise make one lr wrong for every feature but one.
    if cfg.normalize or source.kind == "tabular":
        std = Standardizer.fit(train.x)
        train, val = Split(std(train.x), train.y), Split(std(val.x), val.y)
        transform = std
        stats["normalize"] = std.state_dict()
    stats.update(raw.meta.get("stats", {}))

    return DataBundle(
        train=train, val=val, test=SealedTest(lambda: test_load().unit_pixels(), transform), task=raw.task,
        n_classes=raw.n_classes, input_shape=raw.input_shape, class_names=raw.class_names,
        feature_names=raw.feature_names, target_names=raw.target_names, stats=stats, meta=raw.meta,
    )


def _memory_only(cfg: DataConfig, seed: int) -> RawData:
    raise DataError("data.name must name a dataset trainlab can load. Got 'memory' (data passed from Python, which "
                    "the run directory does not hold). In Python, use the Run that trainlab.fit returned "
                    "(run.evaluate(), run.predict(X)), or trainlab.load(run_dir) for the trained model.")


DATASETS.add("memory", DatasetSource(
    "memory", "memory", "data passed from Python (tensors, arrays, DataFrames, Datasets)", _memory_only,
    lambda cfg: {"available": False, "location": None, "sizes": {}, "hint": "pass arrays to trainlab.fit(...)"}),
    "data passed from Python")


def describe_datasets(cfg: DataConfig | None = None) -> list[dict]:
    """One row per registered dataset: name, kind, description, availability, location, sizes."""
    cfg = cfg or DataConfig()
    rows = []
    for name, source in DATASETS.items():
        info = {"name": name, "kind": source.kind, "description": source.description}
        info.update(source.describe(cfg))
        rows.append(info)
    return rows


# How each kind of source turns what a user holds into the model's raw input, before features and normalisation.
_SOURCE_INPUTS = {
    "image": ("pixels / 255", "uint8 pixel values 0..255, channels first (C, H, W)", [{"op": "divide", "by": 255}]),
    "tabular": ("x", "the CSV's feature columns as numbers, in the order of feature_names", []),
    "toy": ("x", "the points' coordinates as generated (no scaling)", []),
    "memory": ("x", "the inputs as passed to trainlab.fit (no scaling)", []),
}


def input_transform(data_name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The exact transform from a user's raw inputs to what a run's model takes, as data (``steps``) and as one
    formula: pixels / 255 for image sources, then ``data.features`` (if any), then the training split's
    standardisation (if ``data.normalize`` was on, and always for CSV data). ``stats``: the run's data stats."""
    kind = DATASETS.get(data_name).kind if data_name in DATASETS else None
    raw, source, steps = _SOURCE_INPUTS.get(kind, ("x", "the inputs as the dataset's loader gives them", []))
    steps = [dict(s) for s in steps]
    formula = raw
    feats = stats.get("features")
    if feats:
        steps.append({"op": "features", "columns": feats["columns"], "names": feats["names"]})
        source = f"the raw columns {feats['columns']}"
        formula = f"[{', '.join(feats['names'])}] of x = [{', '.join(feats['columns'])}]"
    norm = stats.get("normalize")
    if norm is not None:
        steps.append({"op": "standardize", "mean": norm["mean"], "std": norm["std"], "axis": 1})
        formula = f"({formula} - mean) / std, per channel or feature (axis 1)"
    return {"from": source, "steps": steps, "formula": f"input = {formula}"}
