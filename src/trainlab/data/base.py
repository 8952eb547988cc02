"""The in-memory shapes every dataset is turned into: tensors, never per-sample Python objects.

A source (IDX files, CIFAR batches, a toy generator, a CSV) produces a :class:`RawData`; ``load_data``
turns it into a :class:`DataBundle` whose test split is *sealed*: the training loop receives only
``bundle.train`` and ``bundle.val``, and the test tensors exist only behind :meth:`SealedTest.open`,
which the final evaluation calls once. For image datasets the test files are not even read before that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Split:
    """One split held as tensors. ``x``: (N, ...) float32; ``y``: (N,) int64 class ids, or (N, T) float32.

    An image source hands ``load_data`` its pixels as uint8 (see :meth:`unit_pixels`)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        assert len(self.x) == len(self.y), (self.x.shape, self.y.shape)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: torch.Tensor) -> "Split":
        """The examples at ``index`` (1-D int64), in its order (index_select: half the time of x[index] here)."""
        return Split(self.x.index_select(0, index.to(self.x.device)), self.y.index_select(0, index.to(self.y.device)))

    def unit_pixels(self) -> "Split":
        """uint8 pixels as float32 in [0, 1]; any other split as it is. ``load_data`` calls it after splitting:
        one float copy of each split instead of a float copy of the whole file that the splits then copy again
        (Fashion-MNIST: 190 MB written instead of 380 MB, 0.05 s; CIFAR-10's 50000 images: 0.6 GB less at peak)."""
        return Split(self.x.float().div_(255), self.y) if self.x.dtype == torch.uint8 else self


@dataclass
class RawData:
    """What a dataset source returns, before splitting and normalisation.

    ``test`` is a zero-argument callable so sources can postpone reading test files; ``None`` when the
    source has no official test split (toy sets, CSV): one is then carved off with ``test_fraction``.
    """

    train: Split
    test: Callable[[], Split] | None
    task: Task
    n_classes: int | None  # None for regression
    input_shape: tuple[int, ...]  # per example, e.g. (1, 28, 28) or (2,)
    class_names: list[str] | None = None
    feature_names: list[str] | None = None  # tabular / toy columns
    target_names: list[str] | None = None  # regression targets
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. where the files were found


class SealedTest:
    """The test split behind a door that only the final evaluation opens (once per process).

    ``opened`` counts the openings so tests can prove that training and model selection never look.
    """

    def __init__(self, load: Callable[[], Split], transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 available: bool = True):
        self._load = load
        self._transform = transform
        self.available = available  # False when no test set was given (data passed from Python without one)
        self._cache: Split | None = None
        self.opened = 0

    @classmethod
    def closed(cls, why: str) -> "SealedTest":
        """A test split that cannot be opened at all: ``open`` raises DataError(``why``).

        Cross-validation and hyperparameter search hand their runs only such bundles, so no code they
        run can score on the test set."""
        from trainlab.errors import DataError

        def refuse() -> Split:
            raise DataError(why)

        return cls(refuse, available=False)

    def open(self) -> Split:
        """Load (first time) and return the test split, normalised like the training data."""
        self.opened += 1
        if self._cache is None:
            split = self._load()
            if self._transform is not None:
                split = Split(self._transform(split.x), split.y)
            self._cache = split
        return self._cache

    def __repr__(self) -> str:
        return f"SealedTest(opened={self.opened})"


@dataclass
class DataBundle:
    """Train and validation tensors for the loop, the sealed test split, and what a model must fit."""

    train: Split
    val: Split
    test: SealedTest
    task: Task
    n_classes: int | None
    input_shape: tuple[int, ...]
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    target_names: list[str] | None = None
    # Statistics from the training split (normalisation mean/std...), saved with the run for predict.
    stats: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # Another set of examples (X, y) read as the test set would be: the training classes, columns and
    # normalisation (Run.evaluate on data passed later; a streamed run's big Dataset stays a streaming.DatasetSplit).
    # None: the run's dataset has no such reader.
    read: Callable[[Any], Split] | None = field(default=None, repr=False, compare=False)

    @property
    def n_targets(self) -> int:
        """Target values per example: 1 for class labels and single regression targets, else T."""
        tail = getattr(self.train, "target_shape", None)  # a streamed split knows it without its targets
        if tail is None:
            tail = tuple(self.train.y.shape[1:])
        return int(tail[0]) if tail else 1

    @property
    def n_outputs(self) -> int:
        """Output units a model needs for cross-entropy / MSE: classes, or regression targets."""
        if self.task == "classification":
            assert self.n_classes is not None
            return self.n_classes
        return self.n_targets


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: ``load(cfg, seed)`` gives its :class:`RawData`; ``describe(cfg)`` says
    where it is (for ``trainlab datasets``) without loading it, as a dict with at least ``available``
    (bool), ``location`` (str or None) and ``sizes`` (e.g. ``{"train": 60000, "test": 10000}``)."""

    name: str
    kind: Literal["image", "toy", "tabular", "memory", "sequence"]
    description: str
    load: Callable[[Any, int], RawData]
    describe: Callable[[Any], dict[str, Any]]
