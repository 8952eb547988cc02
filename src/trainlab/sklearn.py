"""scikit-learn estimators over trainlab: ``TrainlabClassifier`` and ``TrainlabRegressor``.

    from trainlab.sklearn import TrainlabClassifier
    cross_val_score(make_pipeline(StandardScaler(), TrainlabClassifier(hidden=(32,))), X, y, cv=5)

They follow the scikit-learn estimator contract (the constructor only stores its arguments, ``fit``
returns ``self``, learned state ends in ``_``) and pass every check of ``sklearn.utils.estimator_checks``
(``tests/test_sklearn.py`` runs them all), so ``clone``, ``cross_val_score``, ``GridSearchCV`` and
``Pipeline`` work. Inputs are checked by scikit-learn's own validators first, so bad input raises the
``ValueError`` / ``TypeError`` scikit-learn users expect; every fit is then an ordinary ``trainlab.fit``
run with its run directory, history and verdict.

Validation split: as in scikit-learn's ``MLPClassifier``, ``val_fraction`` is carved out only when
``early_stopping`` is set. Otherwise the model trains on every example and the run's ``val_*`` metrics
are computed on the training data itself (a trainlab run always has a validation set); they then say
nothing about generalisation — use ``cross_val_score`` for that.

Run directories: each fit writes a normal trainlab run (config, metrics, checkpoints; about 100 KB for a
small MLP) under ``out_dir``; with ``out_dir=None`` under a fresh ``tempfile.mkdtemp(prefix="trainlab-sk-")``
directory, which is not deleted (it is the run's evidence; pass ``out_dir`` to keep runs in one place).
TensorBoard logging and the HTML report are off.

Needs scikit-learn >= 1.6 (``validate_data``, ``__sklearn_tags__``).
"""
from __future__ import annotations

import contextlib
import copy
import numbers
import os
import tempfile
from typing import Any

import numpy as np
import torch
from torch import nn

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - depends on the installed scikit-learn
    import sklearn

    raise ImportError(f"trainlab.sklearn needs scikit-learn >= 1.6. Got {sklearn.__version__}. "
                      "Upgrade it: pip install -U 'scikit-learn>=1.6'.") from None

from trainlab.errors import DataError, problem

__all__ = ["TrainlabClassifier", "TrainlabRegressor"]

_PREDICT_BATCH = 8192  # rows per forward pass at predict time, to bound memory on large inputs
_PROBA_LOSSES = ("auto", "cross_entropy", "bce")  # classification losses that define probabilities


class _TrainlabEstimator(BaseEstimator):
    """Shared by the classifier and the regressor: parameters, fit through ``trainlab.fit``, forward pass."""

    _task = ""  # "classification" or "regression", set by the subclasses

    def __init__(self, module: Any = None, *, hidden: tuple[int, ...] = (64,), activation: str = "relu",
                 init: str = "default", optimizer: str = "adam", lr: float = 0.01, batch_size: int = 32,
                 epochs: int = 30, weight_decay: float = 0.0, dropout: float = 0.0,
                 early_stopping: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                 device: str = "cpu", out_dir: str | None = None, verbose: bool = False,
                 options: dict[str, Any] | None = None) -> None:
        self.module = module
        self.hidden = hidden
        self.activation = activation
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.out_dir = out_dir
        self.verbose = verbose
        self.options = options

    # ---- fitting ------------------------------------------------------------------------------

    def _loss_name(self) -> str:
        return "auto"

    def _own_options(self) -> dict[str, Any]:
        """Further trainlab.fit keywords from a subclass's own parameters (the classifier's class_weight)."""
        return {}

    def _trainlab_options(self, n_train: int) -> dict[str, Any]:
        """The keyword options for ``trainlab.fit``: this estimator's parameters plus ``options``."""
        from trainlab.api import options_to_overrides

        hidden = [self.hidden] if isinstance(self.hidden, numbers.Integral) else list(self.hidden)
        batch = self.batch_size
        if isinstance(batch, numbers.Integral) and not isinstance(batch, bool) and batch > n_train:
            batch = n_train  # fewer examples than one batch: full-batch training rather than an error
        own = dict(model_name="mlp", hidden=hidden, activation=self.activation, init=self.init,
                   optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay, dropout=self.dropout,
                   batch_size=batch, epochs=self.epochs, seed=self.seed, device=self.device,
                   out_dir=self.out_dir, tensorboard=False, loss=self._loss_name())
        if self.early_stopping is not None:
            own["early_stopping"] = {"patience": self.early_stopping}
        own.update(self._own_options())
        extra = dict(self.options or {})
        clash = sorted(set(options_to_overrides(own)) & set(options_to_overrides(extra)))
        if clash:
            raise ValueError(problem("options", "free of keys this estimator sets from its own parameters", clash,
                                     f"Set them as parameters of {type(self).__name__} instead"))
        return {**own, **extra}

    def _validation(self, X: np.ndarray, y: np.ndarray) -> Any:
        """``val=`` for ``trainlab.fit``: a fraction when early stopping needs held-out data, else the training set."""
        if isinstance(self.early_stopping, bool):  # True would pass trainlab's int check as a patience of 1
            raise ValueError(problem("early_stopping", "a patience in epochs (a whole number >= 1) or None",
                                     self.early_stopping, "Use e.g. early_stopping=5"))
        if self.early_stopping is None:
            return (X, y)
        fraction = self.val_fraction
        n = len(X)
        if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1
                or not 1 <= round(n * fraction) <= n - 1):
            raise ValueError(problem("val_fraction", f"a fraction in (0, 1) that leaves examples on both sides of "
                                     f"n_samples={n} for early stopping", fraction,
                                     "Use more data, another val_fraction, or early_stopping=None"))
        return float(fraction)

    def _make_module(self, n_features: int, n_outputs: int) -> nn.Module | None:
        """A fresh module to train: a deep copy of an instance (never the user's own), or the factory's product."""
        spec = self.module
        if spec is None:
            return None
        if isinstance(spec, nn.Module):
            return copy.deepcopy(spec)
        if callable(spec):
            from trainlab.train.checkpoint import seed_rng

            # Layers draw their default init from torch's global RNG: seed it inside a fork so the same
            # seed gives the same network and the caller's random stream is left where it was.
            with torch.random.fork_rng(devices=[]):
                seed_rng(self.seed)  # the CPU's stream alone: fork_rng(devices=[]) puts back no GPU's
                built = spec(n_features, n_outputs)
            if not isinstance(built, nn.Module):
                raise TypeError(problem("module", "a factory returning an nn.Module", type(built).__name__,
                                        "Return the network from module(n_features, n_outputs)"))
            return built
        raise TypeError(problem("module", "None, an nn.Module, or a callable module(n_features, n_outputs)",
                                type(spec).__name__, "Pass e.g. lambda d, k: nn.Sequential(nn.Linear(d, k))"))

    def _fit_trainlab(self, X: np.ndarray, y: np.ndarray, n_classes: int | None) -> None:
        """Train with ``trainlab.fit`` on validated arrays and set the learned attributes."""
        from trainlab.api import fit
        from trainlab.train.losses import resolve_loss

        X = np.require(X, requirements="W")  # torch shares the memory and warns on read-only arrays
        val = self._validation(X, y)
        n_train = len(X) if not isinstance(val, float) else len(X) - round(len(X) * val)
        options = self._trainlab_options(n_train)
        loss = resolve_loss(self._loss_name(), self._task, n_classes)
        n_targets = 1 if y.ndim == 1 else y.shape[1]
        module = self._make_module(X.shape[1], loss.n_outputs(self._task, n_classes, n_targets))
        if self.out_dir is None:
            options["out_dir"] = tempfile.mkdtemp(prefix="trainlab-sk-")
        try:
            run = fit(module, (X, y), val=val, task=self._task, report=False, verbose=bool(self.verbose),
                      **options)
        except BaseException as exc:
            if self.out_dir is None:
                with contextlib.suppress(OSError):
                    os.rmdir(options["out_dir"])  # only if empty: a rejected config; a failed run keeps its evidence
            if isinstance(exc, DataError):  # scikit-learn callers catch ValueError for bad data
                raise ValueError(str(exc)) from exc
            raise
        self.run_ = run
        self.model_ = run.model
        self.history_ = run.history
        self.n_iter_ = len(run.history)
        self.run_dir_ = run.run_dir
        self._loss = loss.name
        # Run keeps the standardiser (options={"normalize": True}) only inside its bundle.
        self._input_stats = run.data_stats.get("normalize")

    # ---- prediction ---------------------------------------------------------------------------

    def _outputs(self, X: Any) -> torch.Tensor:
        """Model outputs (N, n_outputs) for new inputs, checked as scikit-learn checks them."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        x = torch.from_numpy(np.require(X, requirements="W"))
        if self._input_stats is not None:
            from trainlab.data import Standardizer

            x = Standardizer.from_state(self._input_stats)(x)
        model = self.model_
        from trainlab.models import device_of
        from trainlab.train.inference import per_pass
        from trainlab.train.loop import batched_outputs, memory_for

        device = device_of(model)
        size = per_pass((self.options or {}).get("eval_batch_size"), _PREDICT_BATCH, "options['eval_batch_size']",
                        "predict's rows per pass")
        fix = "Pass options={'eval_batch_size': {smaller}}"
        with memory_for(device, f"predicting {len(x)} rows", len(x), size, fix):
            return batched_outputs(model, x, size, device, forward=_forward64)  # (N, n_outputs) float64

    def __getstate__(self) -> dict[str, Any]:
        # The Run holds the training data and trainlab's loss functions: it is not pickled. The fitted
        # model, classes and history are, and run_dir_ still points at the run's evidence on disk.
        # A model on a GPU is pickled from the CPU: a machine without one unpickles it too.
        from trainlab.models import device_of

        state = super().__getstate__()
        state.pop("run_", None)
        model = state.get("model_")
        if model is not None and device_of(model).type != "cpu":
            state["model_"] = copy.deepcopy(model).cpu()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "model_" in state:
            self.run_ = None
            from trainlab.train.inference import inference_device

            self.model_ = self.model_.to(inference_device(self.device))  # its device where this machine has it


def _forward64(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` computed in float64 from the trained float32 weights (no copy of the module).

    A float32 matrix product rounds a row differently depending on how many rows share the call (BLAS picks its
    blocking by size): 3.6e-7 apart, above scikit-learn's 1e-7 for predicting a subset of X. In float64 that
    drift is ~1e-16, so a row's prediction does not depend on its batch. A module whose forward cannot run in
    float64 (it makes float32 tensors itself) is run in float32 as trained."""
    state = {k: v.double() if v.is_floating_point() else v for k, v in model.state_dict(keep_vars=True).items()}
    try:
        return torch.func.functional_call(model, state, (x.double(),)).double()
    except (RuntimeError, TypeError):
        return model(x).double()


class TrainlabClassifier(ClassifierMixin, _TrainlabEstimator):
    """A neural-network classifier trained by trainlab (default: an MLP with ``hidden`` layers, Adam).

    ``module``: None (trainlab's MLP of ``hidden`` sizes, a tuple or one int; ``()`` is a linear model), an
    ``nn.Module`` (deep-copied at each fit, never trained in place) or a factory
    ``module(n_features, n_outputs) -> nn.Module`` (clone-friendly; built under ``seed``).
    ``init``: trainlab's init scheme by name; ``default`` is torch's (trainlab's config default, ``normal``
    with std 0.01, is the Fashion-MNIST recipe). ``device``: ``cpu`` (default), ``cuda``, ``mps`` or ``auto``.
    ``loss``: ``auto``/``cross_entropy`` (softmax), ``bce`` (2 classes), ``mse``, ``hinge``, ``perceptron``;
    ``predict_proba`` exists for the first three. ``class_weight``: as scikit-learn's classifiers' — None,
    ``"balanced"`` (n / (n_classes · count) per class) or ``{label: weight}`` keyed by the labels of ``y`` (a
    label left out weighs 1); cross_entropy only. ``early_stopping``: patience in epochs (None: off);
    it holds out ``val_fraction`` of the data, stratified. ``options``: any further ``trainlab.fit``
    keyword (``{"schedule": "cosine", "l2": 1e-4, "normalize": True}``). Same ``seed`` → same predictions.

    Learned: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (DataFrame input), ``model_``,
    ``run_`` (the ``trainlab.api.Run``), ``run_dir_``, ``history_``, ``n_iter_`` (epochs run).
    """

    _task = "classification"

    def __init__(self, module: Any = None, *, hidden: tuple[int, ...] = (64,), activation: str = "relu",
                 init: str = "default", optimizer: str = "adam", lr: float = 0.01, batch_size: int = 32,
                 epochs: int = 30, weight_decay: float = 0.0, dropout: float = 0.0,
                 early_stopping: int | None = None, val_fraction: float = 0.1, loss: str = "auto",
                 class_weight: str | dict | None = None, seed: int = 0, device: str = "cpu", out_dir: str | None = None,
                 verbose: bool = False, options: dict[str, Any] | None = None) -> None:
        super().__init__(module, hidden=hidden, activation=activation, init=init, optimizer=optimizer, lr=lr,
                         batch_size=batch_size, epochs=epochs, weight_decay=weight_decay, dropout=dropout,
                         early_stopping=early_stopping, val_fraction=val_fraction, seed=seed, device=device,
                         out_dir=out_dir, verbose=verbose, options=options)
        self.loss = loss
        self.class_weight = class_weight

    def _loss_name(self) -> str:
        return self.loss

    def fit(self, X: Any, y: Any) -> "TrainlabClassifier":
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,) of any type; returns self."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, ids = np.unique(y, return_inverse=True)  # sorted labels; class id = position
        if len(self.classes_) < 2:
            raise ValueError(problem("y", "labels of at least 2 classes", f"1 class: {self.classes_[0]!r}",
                                     "A classifier needs examples of two classes or more"))
        self._fit_trainlab(X, ids.reshape(-1).astype(np.int64), len(self.classes_))
        return self

    def _own_options(self) -> dict[str, Any]:
        """class_weight as trainlab's loss.class_weights: "balanced" as is, a {label: weight} dict as one weight per
        class in the order of ``classes_`` (the ids trainlab trains on)."""
        spec = self.class_weight
        if spec is None or isinstance(spec, str):
            return {} if spec is None else {"class_weights": spec}
        if not isinstance(spec, dict):
            raise ValueError(problem("class_weight", "None, 'balanced' or a dict {label: weight}", spec,
                                     "Use e.g. class_weight={0: 1.0, 1: 5.0}"))
        labels = self.classes_.tolist()  # Python values: the line below names them as the user wrote them
        unknown = [k for k in spec if k not in labels]
        if unknown:
            raise ValueError(problem("class_weight", f"keyed by the labels of y ({', '.join(map(repr, labels[:10]))})",
                                     unknown[0], "Key each weight by one of those labels"))
        return {"class_weights": [float(spec.get(label, 1.0)) for label in labels]}

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (n_samples,), in the type of the training labels."""
        from trainlab.train.losses import LOSSES, predict_classes

        out = self._outputs(X)
        ids = predict_classes(LOSSES.get(self._loss), out)
        return self.classes_[ids.numpy()]

    def _has_proba(self) -> bool:
        return self.loss in _PROBA_LOSSES

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``; rows sum to 1."""
        from trainlab.train.losses import LOSSES

        out = self._outputs(X)  # softmax in float64: rows sum to 1 within 1e-15, not 1e-7
        return LOSSES.get(self._loss).probabilities(out).numpy()


class TrainlabRegressor(RegressorMixin, _TrainlabEstimator):
    """A neural-network regressor trained by trainlab with the mean squared error.

    Parameters as :class:`TrainlabClassifier` (without ``loss``). ``y`` may be (n_samples,) or
    (n_samples, n_targets); ``predict`` returns the same shape. ``score`` is R².

    Learned: ``n_features_in_``, ``feature_names_in_`` (DataFrame input), ``n_outputs_``, ``model_``,
    ``run_``, ``run_dir_``, ``history_``, ``n_iter_`` (epochs run).
    """

    _task = "regression"

    def fit(self, X: Any, y: Any) -> "TrainlabRegressor":
        """Train on ``X`` (n_samples, n_features) and numeric ``y`` (n_samples,) or (n_samples, n_targets)."""
        X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True)
        self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
        self._y_ndim = y.ndim
        self._fit_trainlab(X, y.astype(np.float64, copy=False), None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values: (n_samples,) when trained on 1-D ``y``, else (n_samples, n_targets)."""
        out = self._outputs(X).numpy()  # (N, T)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
