"""The Python API: ``trainlab.fit`` any ``nn.Module`` on any data with the same engine as ``trainlab train``.

Keyword options are config keys — short names (``lr=0.01``, ``optimizer="adam"``,
``early_stopping=dict(patience=5)``), dotted keys (``**{"optimizer.lr": 0.01}``) or sklearn-style
double underscores (``optimizer__lr=0.01``) — validated by the same code as the config file, with the
same one-line errors and "did you mean" for a keyword that does not exist.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from trainlab.config import (ALIASES, ALL_KEYS, OTHER_NAMES, SECTIONS, TrainConfig, config_source, config_to_dict,
                              read_yaml, resolve_config)
from trainlab.errors import ConfigError, DataError, problem, shown
from trainlab.models.summary import ModelTable
from trainlab.train.callbacks import Callback

if TYPE_CHECKING:
    from trainlab.remedy import FixResult

# Config keys that ``fit`` takes as its own parameters rather than as options.
FIT_PARAMETERS = {"data.task": "task"}


def fit_keywords(sets: dict[str, Any]) -> str:
    """A remedy's config changes (``Finding.sets``) as keywords of :func:`fit`: ``{"optimizer.lr": 0.01}`` →
    ``lr=0.01``; keys without a short name as ``section__key=…``, which ``fit`` reads the same way."""
    short = {dotted: name for name, dotted in ALIASES.items()} | FIT_PARAMETERS
    # 3 / 10 prints as 0.30000000000000004: six significant digits say the same
    shown = {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in sets.items()}
    return ", ".join(f"{short.get(k, k.replace('.', '__'))}={v!r}" for k, v in shown.items())


def fit_call(sets: dict[str, Any]) -> str:
    """``tl.fit(..., lr=0.01)``: how a remedy reads on the Python path."""
    return f"tl.fit(..., {fit_keywords(sets)})"


class History(list):
    """The per-epoch metrics (a list of dicts); ``to_pandas()`` gives a DataFrame when pandas is installed."""

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(list(self))


def options_to_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword options → dotted config overrides; ConfigError (did you mean) for unknown keywords."""
    out: dict[str, Any] = {}
    known = sorted(set(ALIASES) | set(SECTIONS) | {k for k in ALL_KEYS if "." not in k})
    objects: list[tuple[str, Any, dict[str, Any]]] = []
    for key, value in options.items():
        dotted = key.replace("__", ".")
        settings = _torch_object(ALIASES.get(key, dotted), value)
        if settings is not None:  # torch.optim.Adam(...), nn.CrossEntropyLoss(): their names and settings
            objects.append((key, value, settings))
            continue
        if key in SECTIONS and isinstance(value, dict):
            out.update({f"{SECTIONS[key]}.{k}": v for k, v in value.items()})
        elif key in SECTIONS and value is None:  # early_stopping=None: the section's defaults (the rule off)
            out[SECTIONS[key]] = None
        elif key in ALIASES:
            out[ALIASES[key]] = value
        elif dotted in ALL_KEYS:
            out[dotted] = value
        else:
            close = difflib.get_close_matches(key, known + ALL_KEYS, n=1, cutoff=0.6)
            hint = f"Did you mean {close[0]!r}?" if close else "See trainlab.api.ALIASES or 'trainlab train --print-config'."
            if key in OTHER_NAMES:  # another library's name for one of ours
                ours, theirs = OTHER_NAMES[key]
                hint = f"Did you mean {ours!r}? ({theirs})" if ours else f"{theirs[0].upper()}{theirs[1:]}."
            raise ConfigError(f"{key} is not a trainlab option. Got {key}={shown(value)}. {hint}")
    for key, value, settings in objects:
        for dotted, v in settings.items():
            if dotted in out and out[dotted] != v:  # lr=0.01 beside torch.optim.Adam(..., lr=0.001)
                what = f"a torch.optim.{type(value).__name__}" if dotted.startswith("optimizer.") else shown(value)
                raise ConfigError(f"{dotted} must be given once. Got {out[dotted]!r} as a keyword and {v!r} in "
                                  f"{key}={what}. Drop one of them.")
            out[dotted] = v
    return out


def _torch_object(dotted: str, value: Any) -> dict[str, Any] | None:
    """Config overrides for a torch optimizer or loss (class, instance or function) given as ``optimizer=`` or
    ``loss=``; None for anything else (a name goes through the config as it is)."""
    if isinstance(value, str) or value is None:
        return None
    if dotted == "optimizer.name":
        from trainlab.train.optim import from_torch

        return from_torch(value)
    if dotted == "loss.name":
        from trainlab.train.losses import from_torch as loss_from_torch

        return loss_from_torch(value)
    return None


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Run:
    """A trained run: its history, verdict, model, and the test set kept sealed until ``evaluate``."""

    def __init__(self, outcome: Any, bundle: Any, model: nn.Module, *, init_state: dict[str, Any] | None = None,
                 data_args: dict[str, Any] | None = None) -> None:
        self._outcome, self._bundle = outcome, bundle
        # What ``fix`` needs to train the same run again: a user module's weights before training (None: built
        # from the config and seed) and the in-memory data as ``fit`` was given it (None: the config's dataset).
        self._init_state, self._data_args = init_state, data_args
        self.model = model
        self.run_dir: Path = outcome.run_dir
        result = outcome.result
        self.history = History(result.history if result else [])
        self.summary: dict[str, Any] = result.summary if result else {}
        self.config: TrainConfig = result.prepared.cfg
        self._prepared = result.prepared

    @property
    def diagnosis(self) -> Any:
        """The over/underfitting verdict with its findings (see ``trainlab.diagnose``)."""
        return self._outcome.diagnosis

    @property
    def data_stats(self) -> dict[str, Any]:
        """Statistics of the training split used on every input (e.g. ``normalize`` mean/std)."""
        return self._bundle.stats

    @property
    def report_path(self) -> Path | None:
        return self._outcome.report

    @property
    def model_table(self) -> ModelTable | None:
        """The model's layers with their output shapes and parameters (``print(run.model_table)``)."""
        return self._prepared.table

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else {}
        return (f"Run({str(self.run_dir)!r}, epochs={len(self.history)}, val_loss={last.get('val_loss')}, "
                f"verdict={self.diagnosis.verdict!r})")

    def plot(self) -> Any:
        """Learning curves (train vs validation loss and accuracy) as a matplotlib Figure."""
        from trainlab.report.plots import curves_figure

        return curves_figure(list(self.history), self.summary)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None) -> dict[str, Any]:
        """Metrics of the best checkpoint: on the sealed test set (no arguments; opened here, or once at the end of
        fit), or on examples you pass, as Keras' ``model.evaluate(X, y)``: ``run.evaluate(X, y)``,
        ``run.evaluate((X, y))``, or what ``fit`` takes as data (a DataFrame read with fit's ``target``, a
        Dataset or DataLoader). Those are read as the test set is: the training classes, columns and
        normalisation. ``batch_size``: examples per pass (default the run's eval_batch_size). Returns {"loss",
        "acc" (classification), "n", "epoch"} for passed examples, {"test_loss", "test_acc", "epoch", "n"} for the
        test set; a classifier's also "balanced_acc", "macro_f1" and, up to 100 classes, "per_class" (precision,
        recall, f1, support), its "macro" and "weighted" means and the "confusion" matrix (rows: true class)."""
        from trainlab.train.inference import per_pass

        size = per_pass(batch_size, self._prepared.cfg.eval_batch_size)
        if x is None and y is None:
            if self.summary.get("test"):
                return dict(self.summary["test"])
            if not self._bundle.test.available:
                raise ConfigError("test must be given to evaluate. Got no test set. Pass test=(X_test, y_test) to fit, "
                                  "or the examples to run.evaluate(X, y).")
            from trainlab.train.run import test_best

            return test_best(self._prepared, self.run_dir, size)
        from trainlab.data.memory import unwrap_loader
        from trainlab.train.run import score_best

        data, _ = unwrap_loader(x if y is None else (x, y), "data")  # a DataLoader stands for its dataset, as in fit
        examples = self._examples(data)
        m, epoch, _ = score_best(self._prepared, self.run_dir, examples, size, f"evaluating {len(examples)} examples",
                                 "Pass evaluate(..., batch_size={smaller})")
        classification = self._prepared.bundle.task == "classification"
        scores = {k: v for k, v in m.items() if k not in ("loss", "acc")}  # a classifier's per-class scores
        return {"loss": m["loss"], **({"acc": m["acc"]} if classification else {}), "n": len(examples), "epoch": epoch,
                **scores}

    def _examples(self, data: Any) -> Any:
        """(X, y) passed to ``evaluate`` as a Split the model scores like its validation split."""
        if self._bundle.read is not None:  # fit's in-memory data: read as its test set would be
            return self._bundle.read(data)
        from trainlab.data.base import Split
        from trainlab.data.memory import targets_beside

        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise DataError(problem("data", f"(X, y) tensors or arrays for a run trained on the named dataset "
                                            f"{self._prepared.cfg.data.name!r}", data, "Pass run.evaluate(X, y)"))
        x, y = data
        xt = self._inputs(x)
        ya = targets_beside(y, len(xt))  # numbers or text, no missing values, one per row
        if self._bundle.task == "regression":
            yt = torch.from_numpy(ya.astype("float32"))
            return Split(xt, yt if yt.ndim > 1 or self._bundle.n_targets == 1 else yt.reshape(len(yt), -1))
        n = int(self._bundle.n_classes or 0)
        if ya.dtype.kind not in "biuf" or ya.ndim != 1 or not (ya == ya.round()).all() or len(ya) and (
                ya.min() < 0 or ya.max() >= n):
            raise DataError(problem("y", f"class ids 0..{n - 1}, one per example", y, "Pass labels shaped (N,)"))
        return Split(xt, torch.from_numpy(ya.astype("int64")))

    def fix(self, *, model: nn.Module | None = None, verbose: bool | None = None, report: bool = True) -> FixResult:
        """Try the verdict's top remedy as a new run (same seed, data, split and starting weights) and judge it
        on validation metrics; returns a ``trainlab.remedy.FixResult`` whose ``run`` is the new :class:`Run`.

        ``model``: a fresh instance of your module, if this Run was not made by ``fit`` with it."""
        from trainlab.remedy import fix

        if model is None and self._init_state is not None:
            model = copy.deepcopy(self.model)
            model.load_state_dict(self._init_state)  # the exact weights the parent run started from
        data_args = dict(self._data_args or {})
        data = data_args.pop("data", None)
        show = sys.stdout.isatty() if verbose is None else verbose
        result = fix(self.run_dir, model=model, data=data, verbose=show, report=report, **data_args)
        out = result.outcome
        if out is not None and out.result is not None:
            result = dataclasses.replace(result, run=Run(out, out.result.prepared.bundle, out.result.model,
                                                         init_state=self._init_state, data_args=self._data_args))
        return result

    def export(self, fmt: str = "onnx", out: str | Path | None = None) -> Path:
        """Write the best checkpoint's model as onnx, torchscript or safetensors (+ model.json); returns the path."""
        from trainlab.export import export_run

        return export_run(self.run_dir, fmt, out, model=self.model)

    def _inputs(self, x: Any) -> torch.Tensor:
        """``x`` (one example or a batch, an array, tensor or list) as the model's inputs, checked and normalised
        as in training."""
        from trainlab.data.features import model_inputs
        from trainlab.data.memory import as_inputs

        stats = self._prepared.bundle.stats
        feats = stats.get("features")  # trained on data.features: X holds the raw points, as for trainlab predict
        shape = (len(feats["columns"]),) if feats else tuple(self._prepared.bundle.input_shape)
        xt = as_inputs(x)
        if tuple(xt.shape) == shape or (xt.shape[1:] == (1,) and (len(xt),) == shape):
            xt = xt.reshape(1, *shape)  # one example without a batch dimension
        if tuple(xt.shape[1:]) != shape:
            if feats:
                raise DataError(f"X must hold the raw columns {feats['columns']} (the run computes its features "
                                f"{feats['names']} itself). Got shape {tuple(xt.shape)}. "
                                f"Pass an array shaped (N, {shape[0]}).")
            raise DataError(f"X must have examples of shape {shape}, as in training. Got {tuple(xt.shape)}. "
                            "Pass an array shaped (N, *example shape).")
        return model_inputs(xt, stats)

    def predict(self, x: Any, proba: bool = False, batch_size: int | None = None) -> Any:
        """Class ids (or probabilities with ``proba=True``) for classification, values for regression.
        ``batch_size``: examples per pass (default the run's eval_batch_size), as Keras' ``predict``."""
        from trainlab.models import device_of
        from trainlab.train.inference import per_pass
        from trainlab.train.loop import batched_outputs, memory_for
        from trainlab.train.losses import predict_classes

        p = self._prepared
        xt = self._inputs(x)
        size = per_pass(batch_size, p.cfg.eval_batch_size)
        device = device_of(self.model)  # where the model is now (a user may move it)
        with memory_for(device, f"predicting {len(xt)} examples", len(xt), size,
                        "Pass predict(..., batch_size={smaller})"):
            out = batched_outputs(self.model, xt, size, device)
        if p.bundle.task == "regression":
            return out if out.shape[1] > 1 else out[:, 0]
        if proba:
            probs = p.loss.probabilities(out)
            if probs is None:
                raise ConfigError(f"proba must be False for loss {p.loss.name!r}. Got True. It gives no probabilities.")
            return probs
        return predict_classes(p.loss, out)


def _check_callbacks(callbacks: Any) -> list[Callback]:
    """The callbacks as a list of Callback instances; one ConfigError before anything is written otherwise (a
    function, the class itself or a number failed deep inside the loop, after the run directory was made)."""
    iterable = hasattr(callbacks, "__iter__") and not isinstance(callbacks, (Callback, str))
    items = list(callbacks) if iterable else [callbacks]
    for cb in items:
        if not isinstance(cb, Callback):
            hint = " (the class: pass an instance)" if isinstance(cb, type) and issubclass(cb, Callback) else ""
            raise ConfigError(problem("callbacks", f"a list of trainlab.Callback instances{hint}", cb,
                                      "Subclass trainlab.Callback, override its hooks (on_epoch_end, ...) and pass "
                                      "an instance: callbacks=[MyCallback()]"))
    return items


def _from_loaders(data: Any, val: Any, test: Any, options: dict[str, Any]) -> tuple[Any, Any, Any]:
    """DataLoaders given as data, val or test → their datasets. The training loader's batch size, workers and
    shuffling become this run's where the call does not set them (as a Lightning user's loader set them)."""
    from trainlab.data.memory import unwrap_loader

    data, said = unwrap_loader(data, "data")
    val, _ = unwrap_loader(val, "val")
    test, _ = unwrap_loader(test, "test")
    given = {k.replace("__", ".") for k in options}
    for key, value in said.items():
        if not ({key, ALIASES.get(key, key)} & given):
            options[key] = value
    return data, val, test


def _config_and_data(data: Any, val: Any, test: Any, target: str | None, task: str,
                      config: str | Path | dict | None, options: dict[str, Any]) -> tuple[TrainConfig, Any]:
    """The resolved config and (for in-memory data) the DataBundle that ``fit`` and ``lr_find`` train on."""
    overrides = options_to_overrides(options)
    if config is not None:
        config = config_source(config, "config")  # a TrainConfig or mapping as a dict; anything else: one line
    base = read_yaml(config) if isinstance(config, (str, Path)) else dict(config or {})
    bundle = None
    if isinstance(data, str):
        overrides["data.name"] = data
    elif data is not None:
        overrides["data.name"] = "memory"
        if isinstance(val, float):
            overrides["data.val_fraction"] = val
    cfg = resolve_config(base=base, overrides=overrides)
    if data is not None and not isinstance(data, str):
        from trainlab.data.memory import bundle_from_data

        bundle = bundle_from_data(data, target=target, val=val, test=test, task=task, seed=cfg.seed,
                                  stratify=cfg.data.stratify, normalize=cfg.data.normalize, workers=cfg.speed.workers)
    return cfg, bundle


def fit(model: nn.Module | None = None, data: Any = None, *, val: Any = 0.1, test: Any = None,
        target: str | None = None, task: str = "auto", config: str | Path | dict | None = None,
        callbacks: Sequence[Callback] = (), verbose: bool | None = None, report: bool = True,
        **options: Any) -> Run:
    """Train ``model`` (any ``nn.Module``; None → the config's model) on ``data`` and return a :class:`Run`.

    ``data``: (X, y) tensors / arrays, a DataFrame with ``target=``, a torch Dataset, or a dataset name;
    None uses the config's dataset. ``val``: fraction or explicit (X, y); ``test``: (X, y), kept sealed. A
    ``DataLoader`` stands for its dataset; the training one's batch size, workers and shuffling are the run's
    unless keywords set them.
    ``verbose``: None = progress bar + epoch lines in a terminal, live curves in Jupyter, quiet otherwise.

    On several processes: put this call in a script and start it with ``torchrun --nproc-per-node 2 script.py``;
    every process trains its part of each (global) batch and process 0 writes the run (train.distributed).
    """
    _check_model(model)
    cbs = _check_callbacks(callbacks)
    data, val, test = _from_loaders(data, val, test, options)
    cfg, bundle = _config_and_data(data, val, test, target, task, config, options)
    notebook = _in_notebook()
    show = (sys.stdout.isatty() or notebook) if verbose is None else verbose
    if notebook and show:
        from trainlab.report.notebook import NotebookLive

        cbs.append(NotebookLive())
    from trainlab.workflow import run

    initial = _InitialWeights()
    if model is not None:
        cbs.append(initial)
    data_args = (dict(data=data, val=val, test=test, target=target, task=task)
                 if data is not None and not isinstance(data, str) else None)
    outcome = run(cfg, callbacks=cbs, report=report, verbose=show and not notebook, bundle=bundle, model=model)
    if show and outcome.diagnosis is not None:  # the verdict as the CLI prints it (None: another DDP rank's)

        from trainlab.diagnose.verdict import format_diagnosis

        print(format_diagnosis(outcome.diagnosis, fix=fit_call))
    if outcome.result.summary.get("test_error"):  # trained and kept; the test set is scored later, in less memory
        warnings.warn(f"test set not scored: {outcome.result.summary['test_error']}", RuntimeWarning, stacklevel=2)
    return Run(outcome, outcome.result.prepared.bundle, outcome.result.model, init_state=initial.weights,
               data_args=data_args)


def summary(model: nn.Module, input_shape: Any) -> ModelTable:
    """The layer table of ``model`` (``print(tl.summary(net, (1, 28, 28)))``, as Keras's ``model.summary()``): each
    layer's type, output shape per example and parameters, in the order the forward pass calls them, and the totals.
    ``input_shape``: one example's shape (no batch dimension), or a batch of examples (a tensor or an array) whose
    shape after the first dimension is used."""
    from trainlab.models import model_table

    _check_model(model, optional=False)
    shape = _example_shape(input_shape)
    name = type(model).__name__
    try:
        return model_table(model, shape)
    except Exception as exc:  # noqa: BLE001 — the user's forward: named with its module, not re-raised raw
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"model {name}.forward must run on a batch of input shape {(2, *shape)}. Got "
                          f"{type(exc).__name__}: {first}. Pass the shape of one example your module takes (no batch "
                          "dimension).") from None


def _example_shape(value: Any) -> tuple[int, ...]:
    if hasattr(value, "shape") and not isinstance(value, (tuple, list)):
        if len(value.shape) < 2:
            raise ConfigError(f"input_shape must be one example's shape or a batch of examples. Got an array of shape "
                              f"{tuple(value.shape)}: a batch has the examples along its first dimension. Pass e.g. "
                              f"(1, 28, 28) or X[:2].")
        return tuple(int(s) for s in value.shape[1:])
    shape = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(shape, (tuple, list, torch.Size)) or not shape
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise ConfigError(f"input_shape must be one example's shape as positive whole numbers, e.g. (1, 28, 28) or "
                          f"(784,). Got {value!r}. Leave the batch dimension out.")
    return tuple(shape)


def _check_model(model: Any, optional: bool = True) -> None:
    """ConfigError unless ``model`` is an ``nn.Module`` instance or, where ``optional``, None (a class is named with
    its fix)."""
    if (model is None and optional) or isinstance(model, nn.Module):
        return
    if isinstance(model, type) and issubclass(model, nn.Module):
        got, fix = f"the class {model.__name__}", f"Pass an instance: {model.__name__}(...)"
    elif not optional:  # tl.summary: the module comes first, then one example's shape
        got = ("None" if model is None else _data_kind(model) if _data_like(model)
               else f"{type(model).__name__} {model!r}"[:80])
        fix = "Pass your module first, e.g. tl.summary(MyNet(), (1, 28, 28))"
    elif _data_like(model):  # tl.fit((X, y)) as sklearn's fit(X, y) or Keras' fit(x, y) put data first
        got = _data_kind(model)
        fix = ("That is data: pass it as data=..., e.g. tl.fit(data=(X, y)) to train the config's model or "
               "tl.fit(MyNet(), (X, y)) to train yours")
    else:
        got = f"{type(model).__name__} {model!r}"[:80]
        fix = ("Pass your nn.Module instance, or model=None to build the config's model (e.g. model_name='mlp')"
               + (f"; a dataset name goes in data={model!r}" if isinstance(model, str) else ""))
    raise ConfigError(f"model must be a torch.nn.Module instance{' or None' if optional else ''}. Got {got}. {fix}.")


def _data_like(x: Any) -> bool:
    from torch.utils.data import DataLoader, Dataset

    if isinstance(x, (tuple, list)):
        return not any(isinstance(v, nn.Module) for v in x)  # modules in a list are no data
    return isinstance(x, (torch.Tensor, Dataset, DataLoader)) or (
        hasattr(x, "shape") and hasattr(x, "__len__"))  # a NumPy array, a DataFrame


def _data_kind(x: Any) -> str:
    """``x`` described by kind and shape, not its values: "tuple of 2 (Tensor (400, 5), Tensor (400,))"."""
    def one(v: Any) -> str:
        shape = getattr(v, "shape", None)
        return f"{type(v).__name__} {tuple(shape)}" if shape is not None else type(v).__name__

    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__} of {len(x)} ({', '.join(one(v) for v in x[:3])}{', ...' if len(x) > 3 else ''})"
    return one(x)


class _InitialWeights(Callback):
    """A CPU copy of a user module's weights as training begins (one extra copy of the parameters), so that
    ``Run.fix`` starts its new run from exactly these weights. Taken then, not before: a lazy module
    (``nn.LazyLinear``) gets its weights from the run's first look at the data."""

    name = "initial_weights"

    def __init__(self) -> None:
        self.weights: dict[str, Any] | None = None

    def on_train_begin(self, state: Any) -> None:
        if self.weights is None:
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()}


def lr_find(model: nn.Module | None = None, data: Any = None, *, val: Any = 0.1, target: str | None = None,
            task: str = "auto", config: str | Path | dict | None = None, seeds: int | Sequence[int] = 3,
            min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100, run_dir: str | Path | Run | None = None,
            **options: Any) -> Any:
    """The learning-rate range test for the setup ``fit`` would train (same model, data, config keywords).

    Returns an :class:`~trainlab.train.lr_find.LRFindResult` (``lrs``, ``losses``, ``smoothed``, ``suggestion``,
    ``suggestions`` per seed, ``spread``). ``seeds``: how many (from the config's seed on) or which. ``model`` is
    copied for every seed and left untouched. ``run_dir``: a run (or its directory) to attach the result to:
    writes ``lr_find.json`` there, and the run's verdict and report are rewritten to quote it.
    """
    from trainlab.train.lr_find import find_lr

    _check_model(model)
    data, val, _ = _from_loaders(data, val, None, options)
    cfg, bundle = _config_and_data(data, val, None, target, task, config, options)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1. Got {seeds}. Use 3 (--seeds 3, seeds=3): the spread over 3 seeds is printed.")
        seeds = [cfg.seed + i for i in range(seeds)]
    target_run = run_dir.run_dir if isinstance(run_dir, Run) else run_dir
    if target_run is not None:  # a run that cannot take the result is named before the sweep, not after it
        _check_attachable(target_run)
    result = find_lr(cfg, bundle=bundle, model=model, seeds=list(seeds), min_lr=min_lr, max_lr=max_lr, steps=steps)
    if target_run is not None:
        attach_lr_find(result, target_run, model=model, bundle=bundle)
    return result


def _check_attachable(run_dir: str | Path) -> None:
    """One line when ``run_dir`` is not a run directory, or one whose files the verdict and report read back are
    damaged."""
    from trainlab.train.run import check_run_files, read_run_config

    if not isinstance(run_dir, (str, Path)):
        raise ConfigError(problem("run_dir", "a run directory (a path) or a Run", run_dir,
                                  "Pass e.g. run_dir='runs/<name>' or the Run that tl.fit returned"))
    read_run_config(run_dir)
    check_run_files(run_dir)


def attach_lr_find(result: Any, run_dir: str | Path, *, model: nn.Module | None = None, bundle: Any = None) -> Path:
    """Write ``run_dir/lr_find.json``, then the run's verdict (which quotes the suggestion) and, when the run has one,
    its report (with the finder's picture) again. Returns the path of lr_find.json."""
    from trainlab.diagnose.verdict import diagnose_run
    from trainlab.train.run import read_run_config

    run_dir = Path(run_dir)
    read_run_config(run_dir)  # one clear line if this is not a run directory
    path = result.save(run_dir)
    if (run_dir / "metrics.jsonl").is_file():
        diagnose_run(run_dir)
    if (run_dir / "report.html").is_file():
        from trainlab.report import write_report

        write_report(run_dir, model=model, bundle=bundle)
    return path


def load(run_dir: str | Path, model: nn.Module | None = None, which: str = "best") -> nn.Module:
    """The trained model of ``run_dir`` (weights of ``checkpoints/<which>.pt``), in eval mode.

    A run that trained your own ``nn.Module`` needs an instance of it: ``load(run, model=MyNN())`` returns a
    copy holding the trained weights.
    """
    from trainlab.train.inference import load_run

    _check_model(model)  # a class instead of an instance: one line, not load_state_dict's TypeError
    if not isinstance(run_dir, (str, Path)):
        raise ConfigError(problem("run_dir", "a run directory (a str or Path)", run_dir,
                                  "Pass the folder fit wrote, e.g. run.run_dir or 'runs/<run>'"))
    return load_run(run_dir, which, model=model).model  # one-line CheckpointErrors for a missing/wrong module


def config_of(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config of a run, as plain data."""
    from trainlab.train.run import read_run_config

    return config_to_dict(read_run_config(run_dir))
