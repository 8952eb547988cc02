"""The one typed config tree, resolved once at the edge: defaults → YAML file → ``--set a.b=value``.

Every problem found is collected into one :class:`ConfigError` whose message has one line per problem
in the house form ``<field> must be <constraint>. Got <value>. <fix>.``  The resolved config is what
goes into ``runs/<run>/config.yaml`` and into every checkpoint.
"""
from __future__ import annotations

import difflib
import numbers
import os
import re
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from trainlab import files
from trainlab.errors import ConfigError, shown
from trainlab import registry as _reg


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


class _Section(BaseModel):
    # inf/NaN are never a setting: lr=inf would start a run that can only blow up, noise=nan one that is garbage
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_false_for_numbers(cls, v: Any, info: Any) -> Any:
        # pydantic takes true as 1 and false as 0 for a number: ``batch_size: true`` would train on batches of one
        kind = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool) and not _takes_bool(kind) and not _is_section(kind):  # a section says it takes keys
            raise PydanticCustomError("true_false", "a number, not true or false")
        if isinstance(v, os.PathLike):  # out_dir=Path("runs"), data.dir=tmp_path: a path is its string
            return os.fspath(v)
        return v

    @model_validator(mode="before")
    @classmethod
    def _null_or_a_name_for_a_section(cls, data: Any) -> Any:
        # ``--set stop.early_stopping=null`` or a YAML section left empty (``augment:`` with every key
        # commented out) means "this section's defaults"; for the stop rules and augmentation that is "off".
        # A name for a section that has one (``--set optimizer=adamw``, ``loss: mse``) is that section's name, as
        # tl.fit(optimizer="adamw") is.
        if isinstance(data, dict) and any(v is None or isinstance(v, str) for v in data.values()):
            return {k: section_value(cls.model_fields[k].annotation, v) if k in cls.model_fields else v
                    for k, v in data.items()}
        return data


def section_value(annotation: Any, value: Any) -> Any:
    """What a value given for a field of type ``annotation`` means when the field is a section: None → its
    defaults ({}), a string → its ``name`` where it has one ({"name": value}); anything else as given."""
    if not _is_section(annotation):
        return value
    if value is None:
        return {}
    if isinstance(value, str) and "name" in annotation.model_fields:
        return {"name": value}
    return value


def _stored(info: ValidationInfo) -> bool:
    """Validating the config.yaml of a run already trained: checks added since it was written are left out, so
    its report, evaluation and export still read it (they are for the settings of a run to come)."""
    return bool(info.context and info.context.get("stored"))


def _takes_bool(annotation: Any) -> bool:
    """Whether a field of this type means true/false somewhere (bool, bool | None), not a number or a name."""
    return annotation is bool or bool in typing.get_args(annotation)


def _check_name(reg: _reg.Registry, value: str) -> str:
    _reg.load_plugins()
    if value not in reg:
        raise PydanticCustomError("registry", reg.unknown_message(value))
    return value


# Other libraries' names for our losses (Keras' strings, torch's class names), read case-insensitively as are all
# registered names ("Adam", Keras' "RMSprop"): a Keras loss string means probabilities (its from_logits=False), which
# the pre-flight check finds and names if the model's outputs are not (loss_output_mismatch)
OTHER_LOSS_NAMES = {"sparse_categorical_crossentropy": "cross_entropy", "categorical_crossentropy": "cross_entropy",
                    "crossentropyloss": "cross_entropy", "crossentropy": "cross_entropy", "mean_squared_error": "mse",
                    "mseloss": "mse", "binary_crossentropy": "bce", "bcewithlogitsloss": "bce"}


def _their_name(reg: _reg.Registry, v: Any, others: dict[str, str] | None = None) -> Any:
    """``v`` as the registered name it stands for: itself, its lower case, or another library's name for it."""
    if not isinstance(v, str):
        return v
    _reg.load_plugins()
    if v in reg:
        return v
    low = v.strip().lower()
    return (others or {}).get(low, low if low in reg else v)


def _check_names(reg: _reg.Registry, field: str, values: list[str]) -> list[str]:
    """Every name of a list checked against ``reg``; each misspelt one is its own line, naming its position."""
    _reg.load_plugins()
    unknown = [reg.unknown_message(n, f"{field}[{i}]") for i, n in enumerate(values) if n not in reg]
    if unknown:
        raise PydanticCustomError("registry", "\n".join(unknown))
    return values


def _comma_list(v: Any) -> Any:
    """``--set key=a,b,c`` arrives as one string: a list of its names."""
    return [s.strip() for s in v.split(",")] if isinstance(v, str) else v


class AugmentConfig(_Section):
    """Augmentation of the training batches only: image transforms, and mixing examples (mixup, CutMix)."""

    crop_padding: int = Field(0, ge=0, le=16)  # random crop back to size after zero-padding this many px
    flip: bool = False  # random horizontal flip with probability 1/2
    translate: int = Field(0, ge=0, le=16)  # random shift of up to this many px, zero fill
    # mixup (Zhang et al. 2018): each batch becomes λ·x + (1 - λ)·x[perm], trained towards λ·y + (1 - λ)·y[perm],
    # λ ~ Beta(α, α) per batch; this is α (0: off, 0.2-0.4 usual). Classification, any inputs (data/mixing.py)
    mixup: float = Field(0.0, ge=0, le=10)
    # CutMix (Yun et al. 2019): a box of x[perm] pasted over each image, labels weighted by the pixels kept; α of its
    # Beta(α, α) (0: off, 1.0 usual); images only. With mixup too, each batch uses one of them (probability 1/2)
    cutmix: float = Field(0.0, ge=0, le=10)

    IMAGE_ONLY: ClassVar[tuple[str, ...]] = ("crop_padding", "flip", "translate", "cutmix")
    MIXING: ClassVar[tuple[str, ...]] = ("mixup", "cutmix")  # the ones that mix examples and their labels

    @property
    def mixing(self) -> list[str]:
        """The mixing augmentations switched on, in MIXING's order: their training metrics are of mixed batches."""
        return [k for k in self.MIXING if getattr(self, k)]


class Mnist1dConfig(_Section):
    """Sizes of the generated MNIST-1D (data.name=mnist1d); the defaults are the published dataset."""

    n_train: int = Field(4000, ge=10, le=1_000_000)
    n_test: int = Field(1000, ge=10, le=1_000_000)
    length: int = Field(40, ge=12, le=1000)  # values per sequence (the package's final_seq_length)


class DataConfig(_Section):
    name: str = "fashion-mnist"
    dir: str | None = None  # looked in first; then $TRAINLAB_DATA, ~/.cache/trainlab, /usr/share/datasets
    download: bool = True  # fetch from the official mirrors when no local copy is found
    val_fraction: float = Field(0.1, gt=0, lt=1)  # carved from the training data, stratified
    test_fraction: float = Field(0.2, gt=0, lt=1)  # only for data without an official test split
    stratify: bool = True
    normalize: bool = False  # standardise inputs with statistics of the training split
    limit: int | None = Field(None, gt=0)  # use at most this many training examples (quick runs)
    augment: AugmentConfig = AugmentConfig()
    # 2-D toy sets (TF Playground)
    n_points: int = Field(500, ge=10, le=1_000_000)
    noise: float = Field(0.0, ge=0, le=0.5)  # as TF Playground's 0–50 %
    classes: int = Field(2, ge=2, le=10)  # arms of a spiral / clusters of gauss
    # tabular CSV
    path: str | None = None
    # a CSV with data.path's columns used as the test split, read only when the final evaluation opens it;
    # data.test_fraction is then not carved off data.path
    test_path: str | None = None
    target: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    # inputs computed from 2-D points (TF Playground's), any of x1, x2, x1_sq, x2_sq, x1_x2, sin_x1, sin_x2
    # (registry.FEATURES, data/features.py); None: the data's own columns. Only for toy sets and CSVs with
    # 2 feature columns: the dataset kind is checked here, a CSV's column count when it loads (data/tabular.py).
    features: list[str] | None = None
    mnist1d: Mnist1dConfig = Mnist1dConfig()

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name(_reg.DATASETS, v)

    @field_validator("features", mode="before")
    @classmethod
    def _features_list(cls, v: Any) -> Any:
        return _comma_list(v)

    @field_validator("features")
    @classmethod
    def _known_features(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise PydanticCustomError("registry", "data.features must be a non-empty list of feature names, or null. "
                                      "Got []. Name e.g. [x1, x2], or remove data.features to use the data's columns.")
        _check_names(_reg.FEATURES, "data.features", v)
        repeated = sorted({n for n in v if v.count(n) > 1})
        if repeated:
            raise PydanticCustomError("registry", "data.features must name each feature once. Got {repeated} more "
                                      "than once. Remove the repeats.", {"repeated": repeated})
        return v

    @model_validator(mode="after")
    def _features_for_2d_only(self) -> "DataConfig":
        if self.features is None or self.name not in _reg.DATASETS:
            return self
        if _reg.DATASETS.get(self.name).kind not in ("toy", "tabular"):  # images (and memory data) are not 2-D points
            raise PydanticCustomError(
                "registry", "data.features must be left out unless data.name is a 2-D set (a toy set such as circle, "
                "or csv with 2 feature columns). Got data.features={features} with data.name='{name}'. Remove "
                "data.features, or pick a 2-D dataset.", {"features": self.features, "name": self.name})
        return self

    @model_validator(mode="after")
    def _test_path_for_csv_only(self) -> "DataConfig":
        if self.test_path is not None and self.name != "csv":  # other datasets would silently ignore it
            raise PydanticCustomError("registry", "data.test_path must be left out unless data.name is csv. Got "
                                      "data.name='{name}'. Remove data.test_path, or set data.name=csv.",
                                      {"name": self.name})
        return self


class ModelConfig(_Section):
    name: str = "mlp"
    hidden: list[int] = [256]  # hidden layer sizes (mlp, head of cnn); [] means none
    activation: str = "relu"
    batchnorm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)
    init: str = "normal"
    init_std: float = Field(0.01, gt=0)  # std of the normal init
    init_bound: float = Field(0.05, gt=0)  # half-width of the uniform init
    init_bias: float | None = None  # every Linear/Conv bias set to this after model.init (TF Playground: 0.1)
    channels: list[int] = [32, 64]  # cnn: conv channels per block; resnet: width per stage
    kernel: int = Field(3, ge=1, le=15)
    pool: Literal["max", "avg", "none"] = "max"
    blocks: int = Field(1, ge=1, le=16)  # residual blocks per stage (resnet)
    # mlp only: one activation name per hidden layer, overriding model.activation; None: model.activation for all
    activations: list[str] | None = None

    def hidden_activations(self) -> list[str]:
        """The activation of each hidden layer: ``activations`` if given, else ``activation`` for every one."""
        return list(self.activations) if self.activations is not None else [self.activation] * len(self.hidden)

    @field_validator("hidden", "channels")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if s <= 0]
        if bad:
            raise PydanticCustomError("sizes", "each size must be > 0")
        return v

    @field_validator("kernel")
    @classmethod
    def _odd_kernel(cls, v: int) -> int:
        if v % 2 == 0:
            raise PydanticCustomError("odd", "an odd number (so 'same' padding keeps the size)")
        return v

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return _check_name(_reg.MODELS, v)

    @field_validator("activation")
    @classmethod
    def _known_act(cls, v: str) -> str:
        return _check_name(_reg.ACTIVATIONS, v)

    @field_validator("init")
    @classmethod
    def _known_init(cls, v: str) -> str:
        return _check_name(_reg.INITS, v)

    @field_validator("activations", mode="before")
    @classmethod
    def _activations_list(cls, v: Any) -> Any:
        return _comma_list(v)

    @field_validator("activations")
    @classmethod
    def _known_acts(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _check_names(_reg.ACTIVATIONS, "model.activations", v)

    @model_validator(mode="after")
    def _activations_per_hidden_layer(self) -> "ModelConfig":
        if self.activations is None:
            return self
        if self.name != "mlp":  # cnn and resnet would silently ignore it
            raise PydanticCustomError("registry", "model.activations must be left out unless model.name is mlp. Got "
                                      "model.name='{name}'. Remove model.activations, or set model.name=mlp.",
                                      {"name": self.name})
        if len(self.activations) != len(self.hidden):
            raise PydanticCustomError("registry", "model.activations must have one name per hidden layer ({n}). Got "
                                      "{got}. List {n} names or leave it out.",
                                      {"n": len(self.hidden), "got": self.activations})
        return self


class LossConfig(_Section):
    name: str = "auto"  # auto: cross_entropy for classification, mse for regression
    l1: float = Field(0.0, ge=0)  # λ·Σ|w| over weights (not biases)
    l2: float = Field(0.0, ge=0)  # λ/2·Σw² over weights (not biases)
    # cross-entropy only: each class's loss weighted; "balanced" = n / (C · count of the class) as in
    # scikit-learn, so every class weighs as much in total (for heavily imbalanced labels); None: unweighted
    # ... or a dict {class: weight} as Keras' and scikit-learn's class_weight: keys are class ids (0, 1, ...) or the
    # data's class names, a class left out weighs 1; a run's config.yaml holds it as the list it becomes
    class_weights: Literal["balanced"] | list[float] | dict[int | str, float] | None = None
    # cross_entropy and bce only: false when the model's outputs are already probabilities (it ends in a softmax
    # or sigmoid), as Keras's from_logits=False: the loss then takes their log instead of applying softmax again
    from_logits: bool = True
    # cross_entropy and bce only: the target of each example is (1 - ε)·its class + ε spread evenly over all C
    # classes (torch's CrossEntropyLoss(label_smoothing=ε), Keras' label_smoothing; bce: y·(1 - ε) + ε/2), so the
    # network is not pushed towards infinitely confident scores. The logged losses are the smoothed ones: their
    # floor is then above 0 (≈ 0.50 for 10 classes at ε = 0.1). 0: off
    label_smoothing: float = Field(0.0, ge=0, lt=1)

    @field_validator("name", mode="before")
    @classmethod
    def _other_names(cls, v: Any) -> Any:
        return _their_name(_reg.LOSSES, v, OTHER_LOSS_NAMES)

    @field_validator("class_weights", mode="before")
    @classmethod
    def _weights_shape(cls, v: Any) -> Any:
        def number(w: Any) -> bool:
            return isinstance(w, numbers.Real) and not isinstance(w, bool)

        if hasattr(v, "tolist") and not isinstance(v, (list, tuple, dict)):  # a NumPy array or tensor of weights
            v = v.tolist()  # (scikit-learn's compute_class_weight gives an array)
        if (v is None or v == "balanced" or isinstance(v, (list, tuple)) and all(number(w) for w in v)
                or isinstance(v, dict) and all(number(w) and isinstance(k, (int, str)) and not isinstance(k, bool)
                                               for k, w in v.items())):
            return v
        raise PydanticCustomError("class_weights", "'balanced', a list of one weight per class (e.g. [1.0, 5.0]) or "
                                  "a mapping {class: weight} (e.g. {0: 1.0, 1: 5.0})")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name(_reg.LOSSES, v)


MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")  # the optimizers that read optimizer.momentum
DEFAULT_MOMENTUM = 0.9


class OptimizerConfig(_Section):
    name: str = "sgd"
    lr: float = Field(0.1, gt=0)
    # momentum / nesterov only; None: 0.9 there. Refused for the others, which would silently ignore it.
    momentum: float | None = Field(None, ge=0, lt=1)
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = Field(0.99, gt=0, lt=1)  # rmsprop smoothing
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # decoupled for adamw, coupled (L2 in the gradient) otherwise

    @field_validator("name", mode="before")
    @classmethod
    def _other_names(cls, v: Any) -> Any:
        return _their_name(_reg.OPTIMIZERS, v)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name(_reg.OPTIMIZERS, v)

    @model_validator(mode="after")
    def _momentum_only_where_used(self) -> "OptimizerConfig":
        if self.momentum is not None and self.name not in MOMENTUM_OPTIMIZERS:
            plain = " (plain SGD has no momentum term)" if self.name == "sgd" else ""
            raise PydanticCustomError(
                "registry", "optimizer.momentum must be left unset with optimizer.name='{name}', which ignores "
                "it{plain}. Got {momentum}. Did you mean optimizer.name=momentum (heavy ball) or nesterov? Otherwise "
                "remove optimizer.momentum.", {"name": self.name, "momentum": self.momentum, "plain": plain})
        return self

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise PydanticCustomError("betas", "two numbers in [0, 1)")
        return v


class ScheduleConfig(_Section):
    name: str = "constant"
    step_epochs: int = Field(10, ge=1)  # step: multiply lr by gamma every this many epochs
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: float = Field(0.0, ge=0)  # linear warm-up from ~0 before any schedule
    min_lr: float = Field(0.0, ge=0)  # the floor of cosine and plateau
    # plateau: multiply lr by gamma after this many epochs in a row without a better monitored metric (Keras'
    # ReduceLROnPlateau(patience=p); torch's ReduceLROnPlateau counts one more: patience=p-1 there). Keras and torch
    # default to 10 epochs; 5 here, for runs of tens of epochs
    patience: int = Field(5, ge=1)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name(_reg.SCHEDULES, v)


class EarlyStoppingConfig(_Section):
    patience: int | None = Field(None, ge=1)  # None: off. Stop after this many epochs without improvement
    min_delta: float = Field(0.0, ge=0)  # smaller improvements of the monitored metric do not count
    restore_best: bool = True  # end with the weights of the best epoch


class ConvergenceConfig(_Section):
    tol: float | None = Field(None, gt=0)  # None: off. Stop when |Δ train_loss| < tol ...
    patience: int = Field(3, ge=1)  # ... for this many epochs in a row


class TargetConfig(_Section):
    metric: Literal["val_acc", "val_loss", "train_acc", "train_loss", "val_balanced_acc", "val_macro_f1"] = "val_acc"
    value: float | None = None  # None: off. Stop once the metric reaches it (≥ for acc, ≤ for loss)


# A classifier's validation scores that weigh every class equally (train.metrics): monitor, stop.target.metric, the
# search objective and the cross-validation headline take them by these names
CLASS_SCORES = ("val_balanced_acc", "val_macro_f1")


class EmaConfig(_Section):
    # An exponential moving average of the weights (Keras' use_ema, timm's ModelEma, Lightning's EMAWeightAveraging):
    # after every update avg ← d·avg + (1 - d)·w for each parameter and BatchNorm statistic. Validation, the
    # checkpoints, the test score, predict and export use the average; the updates use the weights themselves.
    # None: off. 0.999 averages over roughly the last 1000 updates, 0.99 the last 100.
    decay: float | None = Field(None, gt=0, lt=1)
    # the first updates keep less, min(decay, (1 + t) / (10 + t)) at update t (TensorFlow's ExponentialMovingAverage
    # with num_updates), so the average does not start out as mostly the untrained weights; false: decay throughout
    warmup: bool = True


class StopConfig(_Section):
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    convergence: ConvergenceConfig = ConvergenceConfig()
    target: TargetConfig = TargetConfig()


LIGHTNING_PRECISION = {"bf16-mixed": "bf16", "16-mixed": "fp16", "16": "fp16", 16: "fp16", "32": "fp32", 32: "fp32",
                       "32-true": "fp32"}


class SpeedConfig(_Section):
    # CUDA only: record each full training step (batch gather, forward, backward, update, metrics) once as
    # a CUDA graph and replay it; the step then costs one launch instead of dozens. The run falls back to
    # ordinary (eager) steps where capture is unsafe, and says why in summary.json. false: always eager.
    graphs: bool = True
    # Mixed precision for the training steps: fp32 computes in float32; bf16 runs each update's forward pass and
    # loss under torch.autocast in bfloat16 (a GPU's tensor cores, Ampere or newer), fp16 in float16 with loss
    # scaling (any CUDA GPU; its steps stay eager); the weights and the update in float32. Validation, test and
    # predictions stay float32. Most CPUs compute bfloat16 and float16 slower than float32.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    @field_validator("precision", mode="before")
    @classmethod
    def _lightning_names(cls, v: Any) -> Any:
        # Lightning's names for the same settings: precision="bf16-mixed" there is bf16 here
        return LIGHTNING_PRECISION.get(v, v) if isinstance(v, (str, int)) and not isinstance(v, bool) else v

    # Worker processes that read a streamed Dataset's batches (DataLoader's num_workers; pinned memory on a GPU):
    # a Dataset too big for memory, or one whose examples change between reads (a random transform), is read
    # batch by batch every epoch. 0: in the training process. Data held as tensors has no per-example reads.
    workers: int = Field(0, ge=0, le=64)
    # Gradient accumulation: examples per forward/backward pass. Each update's batch (batch_size) then runs as
    # passes of at most this many examples whose gradients add up to the whole batch's, so a batch too big for the
    # GPU's memory makes the same updates (BatchNorm sees each pass's examples; the steps stay eager). None: the whole
    # batch in one pass. Lightning's accumulate_grad_batches=4 at batch_size 64 is batch_size=256, micro_batch=64.
    micro_batch: int | None = Field(None, ge=1)


class CheckpointConfig(_Section):
    # last_best: checkpoints/last.pt (every epoch, what --resume reads) and best.pt (the monitored best), as Keras's
    # ModelCheckpoint(save_best_only=True) beside a "last" one; all: also checkpoints/epoch-<NNN>.pt for every
    # epoch, as the course's seed 001 saves one per epoch (each a hard link to that epoch's last.pt: no second write)
    keep: Literal["last_best", "all"] = "last_best"


class LoggingConfig(_Section):
    # TensorBoard (tensorboard: true) beside the per-epoch scalars: the training loss of every Nth update as
    # loss/train_step over the update count (seed 001 logs every 100), read from the epoch's on-device buffer once
    # at its end, so the steps never wait for the host; None: per epoch only
    every_n_steps: int | None = Field(None, ge=1)
    # ... and a histogram of each layer's weights (weights/<name>) and of its last update's gradient
    # (gradients/<name>) at the end of every epoch
    histograms: bool = False


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TrainConfig(_Section):
    """The complete description of a run. Defaults are the classic Fashion-MNIST MLP recipe."""

    name: str | None = None  # run name; default <dataset>-<model>-<time>. Never reuses a directory
    out_dir: str = "runs"
    seed: int = Field(0, ge=0, le=2**63 - 1)  # torch.Generator and numpy's default_rng take 0 … 2**63-1
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1)
    shuffle: bool = True  # reshuffle the training split every epoch; false: always the same order (TF Playground)
    # leave out an epoch's last batch when it is smaller than batch_size (DataLoader's drop_last): every update
    # then averages batch_size examples; shuffled, the examples left out differ from epoch to epoch
    drop_last: bool = False
    # a sanity check before a long run (Lightning's overfit_batches, "overfit one batch" in Karpathy's recipe):
    # train and validate on the same first N batches of the training split; a network that cannot drive their loss
    # to ~0 has a bug in its data, loss or layers, or an lr far off. 0: off
    overfit_batches: int = Field(0, ge=0)
    eval_batch_size: int = Field(2048, ge=1)
    # decides the best checkpoint, early stopping and the plateau schedule; val_balanced_acc (the mean per-class
    # recall) and val_macro_f1 weigh every class equally: for imbalanced labels, where accuracy rewards the majority
    monitor: Literal["val_loss", "val_acc", "val_balanced_acc", "val_macro_f1"] = "val_loss"
    grad_clip: float | None = Field(None, gt=0)  # clip the global gradient norm to this
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    threads: int | None = Field(None, ge=1, le=256)  # None: chosen from the model size
    tensorboard: bool = True
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    ema: EmaConfig = EmaConfig()
    stop: StopConfig = StopConfig()
    speed: SpeedConfig = SpeedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None and not RUN_NAME.match(v):
            raise PydanticCustomError("run_name", "letters, digits, '.', '_' or '-' (it names a directory)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            gpu = re.fullmatch(r"gpu(:\d+)?", v.strip().lower())  # Keras' and Lightning's word for it
            raise PydanticCustomError("device", "one of auto, cpu, cuda, cuda:N, mps" + (
                f" (torch calls an NVIDIA GPU {'cuda' + (gpu.group(1) or '')!r})" if gpu else ""))
        return v

    @model_validator(mode="after")
    def _schedule_fits_the_run(self, info: ValidationInfo) -> "TrainConfig":
        if _stored(info):
            return self
        s, lr = self.schedule, self.optimizer.lr
        if s.min_lr and s.name not in ("cosine", "plateau"):  # the other schedules would silently ignore it
            raise PydanticCustomError(
                "registry", "schedule.min_lr must be left at 0 unless schedule.name is cosine or plateau (the floor "
                "they lower the lr to). Got {min_lr} with schedule.name='{name}'. Set schedule.name=cosine, or remove "
                "schedule.min_lr.", {"min_lr": s.min_lr, "name": s.name})
        if s.name in ("cosine", "plateau") and s.min_lr >= lr:  # the "decay" would raise the lr, or keep it flat
            raise PydanticCustomError(
                "registry", "schedule.min_lr must be below optimizer.lr ({lr}): {name} lowers the lr down to it. "
                "Got {min_lr}. Use e.g. schedule.min_lr={hint}, or schedule.name=constant.",
                {"lr": lr, "min_lr": s.min_lr, "hint": f"{lr / 100:g}", "name": s.name})
        if s.warmup_epochs > self.epochs:  # the lr would never reach optimizer.lr
            raise PydanticCustomError(
                "registry", "schedule.warmup_epochs must be at most epochs ({epochs}): the lr reaches optimizer.lr "
                "only at the warm-up's end. Got {warmup}. Use fewer warm-up epochs (often 1-5) or more epochs.",
                {"epochs": self.epochs, "warmup": s.warmup_epochs})
        return self

    @model_validator(mode="after")
    def _target_can_be_reached(self, info: ValidationInfo) -> "TrainConfig":
        t = self.stop.target
        if t.value is None or _stored(info):
            return self
        if not t.metric.endswith("loss") and not 0 < t.value <= 1:  # -1: stops after epoch 1; 2 or 90: never
            fix = f"Use {t.value / 100:g} for {t.value:g} %" if 1 < t.value <= 100 else "Use e.g. 0.9 for 90 %"
            raise PydanticCustomError(
                "registry", "stop.target.value must be {what} in (0, 1] for stop.target.metric='{metric}'. "
                "Got {value}. {fix}, or null to switch the rule off.",
                {"metric": t.metric, "value": t.value, "fix": fix,
                 "what": "an accuracy" if t.metric.endswith("acc") else "a score"})
        if t.metric.endswith("loss") and t.value <= 0:  # a loss is never below 0: the rule would never stop
            raise PydanticCustomError(
                "registry", "stop.target.value must be a loss > 0 for stop.target.metric='{metric}'. Got {value}. "
                "Use e.g. 0.3, or null to switch the rule off.", {"metric": t.metric, "value": t.value})
        return self


# ---------------------------------------------------------------------------------------------
# Resolution and error formatting


def _field_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    """All dotted keys of the tree, e.g. ``optimizer.lr``."""
    out = []
    for name, info in model.model_fields.items():
        key = prefix + name
        out.append(key)
        if _is_section(info.annotation):
            out.extend(_field_names(info.annotation, key + "."))
    return out


ALL_KEYS = _field_names(TrainConfig)


def keys_in(parent: str) -> list[str]:
    """The keys directly in section ``parent`` (``""``: the top-level keys), in config order."""
    return [k for k in ALL_KEYS if k.rpartition(".")[0] == parent]

# tl.fit's short keywords → config keys (every config key also works dotted or with "__"). Here, beside the keys,
# so that an unknown key on the command line or in a file is pointed to the same place.
ALIASES = {
    "optimizer": "optimizer.name", "lr": "optimizer.lr", "momentum": "optimizer.momentum",
    "betas": "optimizer.betas", "weight_decay": "optimizer.weight_decay", "eps": "optimizer.eps",
    "loss": "loss.name", "l1": "loss.l1", "l2": "loss.l2", "class_weights": "loss.class_weights",
    "from_logits": "loss.from_logits", "label_smoothing": "loss.label_smoothing", "ema_decay": "ema.decay",

    "schedule": "schedule.name", "warmup_epochs": "schedule.warmup_epochs",
    "model_name": "model.name", "hidden": "model.hidden", "activation": "model.activation",
    "dropout": "model.dropout", "batchnorm": "model.batchnorm", "init": "model.init", "init_std": "model.init_std",
    "dataset": "data.name", "data_dir": "data.dir", "normalize": "data.normalize", "limit": "data.limit",
    "precision": "speed.precision", "workers": "speed.workers", "micro_batch": "speed.micro_batch",
}
# Keyword names of Keras / Lightning / skorch that are trainlab options under another name: (ours, what theirs is);
# ours None: trainlab does it without an option
OTHER_NAMES = {
    "validation_split": ("val", "Keras' validation_split: the fraction of the training data held out, as 0.2"),
    "validation_data": ("val", "Keras' validation_data: val=(X_val, y_val)"),
    "learning_rate": ("lr", "the optimizer's learning_rate"),
    "max_epochs": ("epochs", "Lightning's and skorch's max_epochs"),
    "accelerator": ("device", "Lightning's accelerator: device='cuda' or 'cpu'"),
    "num_workers": ("workers", "DataLoader's num_workers"),
    "criterion": ("loss", "skorch's criterion: loss=nn.CrossEntropyLoss() or loss='cross_entropy'"),
    "class_weight": ("class_weights", "Keras' class_weight: class_weights={0: 1, 1: 5} takes the same dict, or a "
                     "list of one weight per class, or 'balanced'"),
    "gradient_clip_val": ("grad_clip", "Lightning's gradient_clip_val: the gradients' global norm is clipped to it"),
    "clip_grad_norm": ("grad_clip", "torch's clip_grad_norm_: the gradients' global norm is clipped to it"),
    "patience": ("early_stopping", "early_stopping=dict(patience=3)"),
    "metrics": (None, "Keras' metrics: trainlab records the loss and, for classes, the accuracy of every split each "
                "epoch (run.history); leave it out"),
    "accumulate_grad_batches": ("micro_batch", "Lightning's accumulate_grad_batches=k at batch_size=b is "
                                "batch_size=k*b, micro_batch=b: batch_size is each update's batch"),
    "use_ema": ("ema_decay", "Keras' use_ema=True with ema_momentum=0.99 is ema_decay=0.99"),
    "ema_momentum": ("ema_decay", "Keras' ema_momentum: the share of the average kept at each update"),
    "gradient_accumulation_steps": ("micro_batch", "Keras' and Hugging Face's gradient_accumulation_steps=k at "
                                    "batch_size=b is batch_size=k*b, micro_batch=b"),
}
# tl.fit parameters that are no config key, → the config key a file or --set uses for the same thing
FIT_ONLY = {"val": "data.val_fraction"}
SECTIONS = {"early_stopping": "stop.early_stopping", "convergence": "stop.convergence", "target": "stop.target",
            "augment": "data.augment", "ema": "ema"}
# (keywords that take a dict of that section's keys, or None for its defaults)


def nearest_keys(key: str) -> list[str]:
    """The config keys someone who typed ``key`` most likely meant: a close spelling of a key of the section it
    names (``optimizer.nam``, ``epoch``), else the keys whose last part it is (``lr`` → ``optimizer.lr``), else the
    closest spelling of the whole key or of its last part anywhere (``optimzer.lr``, ``moment`` →
    ``optimizer.momentum``). Empty when nothing is near (``optimizer.foo``)."""
    parent, _, leaf = key.rpartition(".")
    if not parent or parent in ALL_KEYS:
        here = {k.rpartition(".")[2]: k for k in keys_in(parent)}
        close = difflib.get_close_matches(leaf, list(here), n=1, cutoff=0.75)
        if close:
            return [here[close[0]]]
    same = [k for k in ALL_KEYS if k.rpartition(".")[2] == leaf]
    top = key.partition(".")[0]
    if any(k.startswith(top + ".") for k in same):  # `stop.early_stoping.patience`: the stop section's, not schedule's
        same = [k for k in same if k.startswith(top + ".")]
    if same:
        return same[:3]
    if parent in ALL_KEYS:  # a section it does not have: its keys are listed instead
        return []

    def score(k: str) -> float:
        whole = difflib.SequenceMatcher(None, key, k).ratio()
        last = difflib.SequenceMatcher(None, leaf, k.rpartition(".")[2]).ratio()
        return max(whole if whole >= 0.6 else 0.0, last if last >= 0.75 else 0.0)

    best = max(ALL_KEYS, key=score)
    return [best] if score(best) > 0 else []


def _did_you_mean(keys: list[str]) -> str:
    return f"Did you mean {' or '.join(repr(k) for k in keys)}?"


def _dotted(ours: str) -> str:
    """The config key one of tl.fit's names stands for: ``val`` (FIT_ONLY), a short keyword (ALIASES), a section
    keyword (SECTIONS), else the name itself."""
    return FIT_ONLY.get(ours) or ALIASES.get(ours) or SECTIONS.get(ours) or ours


def keys_named(name: str) -> list[str]:
    """The config keys a bare name stands for, as a flag (``--epochs``, ``--lr``, ``--learning-rate``): the key
    itself, tl.fit's short keyword (ALIASES), another library's name for it (OTHER_NAMES), else the nearest
    spellings. Empty when nothing is near."""
    if name in ALL_KEYS:
        return [name]
    ours = OTHER_NAMES[name][0] if name in OTHER_NAMES else name
    dotted = _dotted(ours) if ours else None
    if dotted and f"{dotted}.{name}" in ALL_KEYS:  # a section's key: --patience → stop.early_stopping.patience
        return [f"{dotted}.{name}"]
    return [dotted] if dotted in ALL_KEYS else nearest_keys(name)


def key_hint(key: str) -> str | None:
    """"Did you mean ...?" for an unknown config key: the keys with its last part, else the key another library's
    name stands for (``learning_rate`` → ``optimizer.lr``: OTHER_NAMES, with what theirs is; ``metrics``: why none
    is needed), else a near spelling (nearest_keys). None: nothing near."""
    leaf = key.rpartition(".")[2]
    if key in OTHER_NAMES and not any(k.rpartition(".")[2] == leaf for k in ALL_KEYS):
        ours, theirs = OTHER_NAMES[key]
        dotted = _dotted(ours) if ours else None
        if dotted in ALL_KEYS:
            return f"Did you mean {dotted!r}? ({theirs})"
        if ours is None:
            return f"{theirs[:1].upper()}{theirs[1:]}."
    near = nearest_keys(key)
    return _did_you_mean(near) if near else None


def _default_of(loc: tuple) -> Any:
    node: Any = TrainConfig
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            info = node.model_fields[part]
            if _is_section(info.annotation):
                node = info.annotation
            else:
                return info.default
        else:
            return None
    return None


_CONSTRAINT = {
    "greater_than": lambda c: f"> {c['gt']}",
    "greater_than_equal": lambda c: f">= {c['ge']}",
    "less_than": lambda c: f"< {c['lt']}",
    "less_than_equal": lambda c: f"<= {c['le']}",
    "int_parsing": lambda c: "a whole number",
    "int_from_float": lambda c: "a whole number",
    "int_type": lambda c: "a whole number",
    "float_parsing": lambda c: "a number",
    "float_type": lambda c: "a number",
    "finite_number": lambda c: "a finite number",
    "bool_parsing": lambda c: "true or false",
    "bool_type": lambda c: "true or false",
    "string_type": lambda c: "a string",
    "list_type": lambda c: "a list, e.g. [256, 128]",
    "tuple_type": lambda c: "a pair, e.g. [0.9, 0.999]",
    "too_short": lambda c: "longer",
    "too_long": lambda c: "shorter",
    "literal_error": lambda c: f"one of {c['expected']}",
    "model_type": lambda c: "a mapping of keys to values",
    "model_attributes_type": lambda c: "a mapping of keys to values",
}


def _format_error(err: dict) -> str:
    loc = tuple(p for p in err["loc"] if not isinstance(p, int))
    field = ".".join(str(p) for p in loc) or "config"
    kind = err["type"]
    got = err.get("input")
    if kind == "registry":
        return err["msg"]
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        candidates = [k for k in ALL_KEYS if k.rsplit(".", 1)[0] == parent or "." not in k and not parent]
        hint = key_hint(field) or f"Valid keys here: {', '.join(sorted(candidates))}."
        return f"{field} is not a config key. {hint}"
    constraint = " or ".join(dict.fromkeys(_constraint(e) for e in err.get("branches", [err])))
    default = _default_of(loc)
    if kind in ("model_type", "model_attributes_type"):
        first = next((k for k in ALL_KEYS if k.startswith(field + ".")), field + ".<key>")
        off = field.startswith("stop.") or field == "data.augment"  # their defaults are "off"
        fix = f"Set its keys one by one (e.g. --set {first}=...), or null for its defaults" + (
            " (off)" if off else "")
    elif default is not None:
        fix = f"Use a valid value such as the default {default!r}"
    else:
        fix = "Fix it in the config file or with --set"
    return f"{field} must be {constraint}. Got {shown(got)}. {fix}."


def _constraint(err: dict) -> str:
    kind = err["type"]
    if kind in _CONSTRAINT:
        return _CONSTRAINT[kind](err.get("ctx") or {})
    return err["msg"].removeprefix("Value error, ")


def _merge_union_branches(errors: list[dict]) -> list[dict]:
    """One error per config key: pydantic reports a value that fits no type of a union (``class_weights``:
    'balanced' or a list) once per type, with the type's name appended to ``loc``; those become one error
    listing every branch, so a single bad value is a single line."""
    out: list[dict] = []
    merged: dict[tuple, dict] = {}
    for err in errors:
        names = tuple(str(p) for p in err["loc"] if not isinstance(p, int))
        key = names
        while key and ".".join(key) not in ALL_KEYS and err["type"] != "extra_forbidden":
            key = key[:-1]
        if not key or key == names or len(names) - len(key) != 1:
            out.append(err)
            continue
        if key not in merged:
            merged[key] = {**err, "loc": key, "branches": []}
            out.append(merged[key])
        merged[key]["branches"].append(err)
    return out


def validate_config(raw: dict[str, Any], stored: bool = False) -> TrainConfig:
    """Build a :class:`TrainConfig` from a plain mapping, or raise one ConfigError listing every problem.
    ``stored``: the config of a run already trained (see ``_stored``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a mapping of keys to values. Got {type(raw).__name__}. "
                          "Write it as YAML 'key: value' lines.")
    try:
        return TrainConfig.model_validate(raw, context={"stored": stored})
    except ValidationError as exc:
        lines = list(dict.fromkeys(_format_error(e) for e in _one_per_list(_merge_union_branches(exc.errors()))))
        raise ConfigError("\n".join(lines)) from None


def _one_per_list(errors: list[dict]) -> list[dict]:
    """The first bad element of a list (``model.hidden=[a, b]``) stands for the others: one key, one line."""
    out, seen = [], set()
    for err in errors:
        loc = tuple(err["loc"])
        if any(isinstance(p, int) for p in loc):
            key = tuple(p for p in loc if not isinstance(p, int))
            if key in seen:
                continue
            seen.add(key)
        out.append(err)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``'optimizer.lr=0.05'`` → ``('optimizer.lr', 0.05)``; values are parsed as YAML scalars/lists."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set must be key=value. Got {text!r}. Write e.g. --set optimizer.lr=0.05.")
    try:
        parsed = files.parse_yaml(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    if key not in ALL_KEYS:
        parent = key.rpartition(".")[0]
        here = keys_in(parent) if parent in ALL_KEYS else []
        hint = (key_hint(key) or (f"Valid keys here: {', '.join(here)}." if here else
                                  "See every key with 'trainlab train --print-config'."))
        raise ConfigError(f"{key} is not a config key. Got {key}={shown(value)}. {hint}")
    node, kind = raw, TrainConfig
    parts = key.split(".")
    for part in parts[:-1]:
        kind = kind.model_fields[part].annotation
        child = section_value(kind, node.get(part))  # optimizer=adamw, then optimizer.lr=0.01: both kept
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    last = parts[-1]
    if isinstance(node.get(last), dict) and isinstance(value, str):  # optimizer.lr=0.01, then optimizer=adamw
        value = {**node[last], **section_value(kind.model_fields[last].annotation, value)}
    node[last] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping, with one-line errors for missing or malformed files."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config must be an existing YAML file. Got {str(path)!r}. Check the path.")
    text = files.read_utf8(p, "--config", ConfigError)
    if not text.strip():  # an empty file is a mistake (a truncated copy, the wrong path), not "all defaults"
        raise ConfigError(f"--config must hold a mapping of keys to values. Got the empty file {str(path)!r}. "
                          "Write 'key: value' lines, or leave --config out for the defaults.")
    try:
        data = files.parse_yaml(text)
        data = {} if data is None else data  # only comments: every key commented out
    except files.DuplicateKeyError as exc:
        raise ConfigError(exc.problem("--config", path)) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"--config must be valid YAML. Got a syntax error in {str(path)!r}{at}. "
                          "Fix the file's indentation or quoting.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config must hold a mapping of keys to values. Got {type(data).__name__} in "
                          f"{str(path)!r}. Write it as 'key: value' lines.")
    return data


def resolve_config(path: str | Path | None = None,
                   overrides: list[str | tuple[str, Any]] | dict[str, Any] | None = None,
                   base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults → ``base`` mapping → YAML file at ``path`` → ``overrides``, applied in order: ``key=value``
    strings (the value parsed as YAML), ``(key, value)`` pairs (taken as they are), or a dict."""
    import copy

    raw: dict[str, Any] = copy.deepcopy(base) if base else {}
    if path is not None:
        _deep_merge(raw, read_yaml(path))
    items = overrides.items() if isinstance(overrides, dict) else (
        o if isinstance(o, tuple) else parse_override(o) for o in overrides or [])
    problems = []
    for key, value in items:
        try:
            _set_dotted(raw, key, value)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        cfg = validate_config(raw)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def config_source(cfg: Any, field: str = "cfg") -> str | Path | dict[str, Any]:
    """What a Python caller passes as a config, as the path of a YAML config file or a plain mapping of config
    keys (a TrainConfig as its dict); anything else is one ConfigError naming ``field``."""
    if isinstance(cfg, TrainConfig):
        return config_to_dict(cfg)
    if isinstance(cfg, (str, Path)):
        return cfg
    if isinstance(cfg, dict) or hasattr(cfg, "keys") and hasattr(cfg, "items"):
        return dict(cfg)
    got = f"the class {cfg.__name__}" if isinstance(cfg, type) else f"{type(cfg).__name__} {cfg!r:.60}"
    raise ConfigError(f"{field} must be a TrainConfig, the path of a YAML config file, or a dict of config keys. "
                      f"Got {got}. Pass e.g. {{'epochs': 5, 'optimizer': {{'lr': 0.05}}}}.")


def as_config(cfg: Any, field: str = "cfg") -> TrainConfig:
    """A TrainConfig from what a Python caller passes (see ``config_source``): a mapping may use nested sections
    or dotted keys."""
    if isinstance(cfg, TrainConfig):
        return cfg
    source = config_source(cfg, field)
    return resolve_config(source) if isinstance(source, (str, Path)) else resolve_config(overrides=source)


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The complete config as plain data (lists, not tuples), as written to config.yaml and checkpoints."""
    return cfg.model_dump(mode="json")


def config_to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


# A run's config.yaml opens and closes with these comment lines, so a file cut short (damaged on disk, copied
# partly) is told from a whole one: YAML would read its first half as a valid config and defaults would fill in
# the rest. A config.yaml without the first line was written by an older trainlab and is read as it is.
RUN_CONFIG_HEAD = "# the resolved config of this run (trainlab): every key; the last line marks its end\n"
RUN_CONFIG_END = "# end of config\n"


def run_config_text(cfg: TrainConfig) -> str:
    """``config_to_yaml`` framed by RUN_CONFIG_HEAD and RUN_CONFIG_END: what a run's config.yaml holds."""
    return RUN_CONFIG_HEAD + config_to_yaml(cfg) + RUN_CONFIG_END


def cut_short(text: str) -> bool:
    """Whether a run's config.yaml text lost its end (it has trainlab's head line but not the end line)."""
    return text.startswith(RUN_CONFIG_HEAD) and not text.endswith(RUN_CONFIG_END)


def replace(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``cfg`` with dotted-key changes, validated: ``replace(cfg, **{"optimizer.lr": 0.05})``.

    The copy's top-level keys count as set where ``cfg``'s were or a change sets them (``model_fields_set``: a
    default left alone stays a default, e.g. the batch_size that train.run fits to a small training split)."""
    new = resolve_config(base=config_to_dict(cfg), overrides=changes)
    given = set(cfg.model_fields_set) | {key.split(".", 1)[0] for key in changes}
    object.__setattr__(new, "__pydantic_fields_set__", given & set(new.model_fields_set))  # frozen: as pydantic does
    return new
