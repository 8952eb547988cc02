"""A run from config to ``runs/<name>/``: check everything, train, checkpoint, test once, summarise.

Everything that can be wrong with the config and the data is checked *before* the run directory is
created, so a rejected run leaves nothing behind; a new run never reuses an existing directory.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import yaml
from torch import nn

from trainlab import files
from trainlab.config import (DEFAULT_MOMENTUM, MOMENTUM_OPTIMIZERS, TrainConfig, config_to_dict, cut_short, replace,
                             run_config_text, validate_config)
from trainlab.data import DataBundle, Split, load_data, make_augmenter
from trainlab.data.mixing import make_mixer
from trainlab.data.streaming import DatasetSplit, IterableSplit, steps_per_epoch
from trainlab.errors import (CheckpointError, ConfigError, DistributedError, OutOfMemory, OutputClosed, Terminated,
                             TrainingError, problem)
from trainlab.models import (ModelTable, build_model, check_fits, check_trainable, count_parameters,
                             has_lazy_parameters, uncompiled)
from trainlab.train import distributed, env, precision
from trainlab.train.callbacks import Callback, TrainState
from trainlab.train.checkpoint import (FORMAT, HistoryText, link_atomic, load_checkpoint, restore_rng, rng_state,
                                      save_atomic, seed_rng)
from trainlab.train.ema import WeightAverage
from trainlab.train.logs import ConsoleLogger, MetricsFiles, TensorBoardLogger
from trainlab.train.graphs import portable_optimizer_state
from trainlab.train.loop import LoopData, evaluate, memory_for, run_epochs
from trainlab.train.losses import Loss, on_probabilities, resolve_loss, smoothed, weighted, weights_by_class
from trainlab.train.metrics import class_report
from trainlab.train.optim import make_optimizer, make_scheduler
from trainlab.train.preflight import preflight_facts, shared_rows
from trainlab.monitor import better
from trainlab.train.stop import stop_rules


@dataclass
class Prepared:
    """A checked, ready-to-train setup: data, loss, model, device and thread count."""

    cfg: TrainConfig
    bundle: DataBundle
    loss: Loss
    model: nn.Module
    device: torch.device
    threads: int
    custom_model: str | None = None  # class name of a user nn.Module (None: built from cfg.model)
    compiled: nn.Module | None = None  # the torch.compile wrapper of ``model`` the user passed: the steps call it
    notes: list[str] = field(default_factory=list)  # lines said once before the first epoch (settings made here)
    table: ModelTable | None = None  # the model's layers: output shapes and parameters (models.summary)

    def data_info(self) -> dict[str, Any]:
        """What predict/evaluate need to rebuild the model and read new inputs, saved in checkpoints."""
        b = self.bundle
        return {"task": b.task, "n_classes": b.n_classes, "class_names": b.class_names,
                "input_shape": list(b.input_shape), "n_outputs": n_outputs(self.loss, b),
                "feature_names": b.feature_names, "target_names": b.target_names, "stats": b.stats,
                "loss": self.loss.name, "sizes": {"train": len(b.train), "val": len(b.val)},
                "custom_model": self.custom_model}


@dataclass
class RunResult:
    """What a finished (or stopped) run leaves: its directory, summary, history and trained model."""

    run_dir: Path
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    model: nn.Module
    prepared: Prepared = field(repr=False)
    # The best checkpoint's validation outputs as training computed them (None where it did not keep them, e.g. a
    # resumed run whose best epoch came before the resume): the report draws from them without a second pass
    best_val_outputs: torch.Tensor | None = field(default=None, repr=False)


def n_outputs(loss: Loss, bundle: DataBundle) -> int:
    return loss.n_outputs(bundle.task, bundle.n_classes, bundle.n_targets)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        env.check_gpu(name)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device must be available on this machine. Got 'mps'. Use device=cpu or device=auto.")
    return torch.device(name)


def choose_threads(n_params: int, batch_size: int, cores: int) -> int:
    """One thread for small per-step work, every core otherwise.

    Splitting a step of a few thousand multiply-adds across threads costs more in synchronisation than
    it saves (measured here: tiny toy nets run faster on 1 thread, much faster when the machine is busy);
    a step's work of params × batch ≥ 2M (the classic MLP: 203k × 256) pays for the threads.
    """
    return cores if n_params * batch_size >= 2_000_000 else 1


def check_data(cfg: TrainConfig, bundle: DataBundle, loss: Loss) -> None:
    """Config-vs-data problems, found before anything is written: all of them, in one error of one line (each
    problem its own sentences, numbered where there are several)."""
    problems = []
    n = len(bundle.train)
    if cfg.batch_size > n:
        problems.append(f"batch_size must be <= the number of training examples ({n}). Got {cfg.batch_size}. "
                        f"Use batch_size={n} for full-batch gradient descent.")
    if bundle.task == "classification" and isinstance(bundle.train, Split):  # streamed labels are mapped on read
        y = bundle.train.y
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= (bundle.n_classes or 0):
            bad = lo if lo < 0 else hi
            problems.append(f"labels must be in [0, {bundle.n_classes}). Got label {bad} in the training data. "
                            "Number the classes 0..n_classes-1.")
    elif cfg.monitor != "val_loss":
        problems.append(f"monitor must be val_loss for a regression dataset. Got {cfg.monitor!r}. Use monitor=val_loss.")
    elif not cfg.stop.target.metric.endswith("loss") and cfg.stop.target.value is not None:
        problems.append(f"stop.target.metric must be a loss for a regression dataset. Got "
                        f"{cfg.stop.target.metric!r}. Use stop.target.metric=val_loss.")
    if isinstance(bundle.train, Split) and not _all_finite(bundle.train.x):
        problems.append(f"data.name {cfg.data.name!r} must have finite inputs. Got NaN or Inf in the training "
                        "features. Remove or fill those values.")
    aug = cfg.data.augment
    on_images = {k: v for k, v in aug.model_dump().items() if v and k in aug.IMAGE_ONLY}
    if on_images and len(bundle.input_shape) != 3:
        problems.append(f"data.augment must be off for non-image data. Got {on_images} for input shape "
                        f"{tuple(bundle.input_shape)}. Remove " + ", ".join(f"data.augment.{k}" for k in on_images)
                        + (" (mixup mixes any inputs)." if "cutmix" in on_images else "."))
    mixing = aug.mixing
    if mixing and bundle.task != "classification":
        problems.append(f"data.augment.{mixing[0]} must be 0 for a {bundle.task} dataset: it mixes class labels. "
                        f"Got {getattr(aug, mixing[0])}. Set data.augment.{mixing[0]}=0.")
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(" ".join(f"({k}) {text}" for k, text in enumerate(problems, 1)))


def check_batchnorm_batches(model: nn.Module, n: int, batch_size: int, world: int = 1,
                            drop_last: bool = False, micro_batch: int | None = None) -> None:
    """One line where a BatchNorm layer would get a batch of one example: it normalises a batch by the batch's
    own mean and variance, and torch raises deep inside the first such step (at the end of epoch 1, for the
    last smaller batch). ``world``: processes sharing each batch (each takes its part); ``drop_last``: the last
    smaller batch is left out; ``micro_batch``: each batch runs in passes of at most that many (speed.micro_batch)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return

    def last_of(b: int) -> int:
        return b if drop_last else n % b or b

    def fine(b: int) -> bool:  # every process gets >= 2 examples of every batch, the last smaller one too
        return b // world >= 2 and last_of(b) // world >= 2

    if batch_size > n or fine(batch_size):
        if micro_batch is not None:
            _check_batchnorm_passes(n, batch_size, world, drop_last, micro_batch)
        return
    use = _nearest_that_work(batch_size, n, fine)
    split = f", split over {world} processes," if world > 1 else ""
    small = batch_size // world < 2
    why = (f"batches of {batch_size}{split} give {batch_size // world}" if small else
           f"{n} training examples in batches of {batch_size}{split} leave {last_of(batch_size) // world} for the "
           "last one")
    raise ConfigError(problem("batch_size", f"a size that gives BatchNorm layers at least 2 examples in every batch"
                                            f"{' per process' if world > 1 else ''}: {why}, and one example has no "
                                            "variance to normalise by", batch_size,
                              (f"Use batch_size={use}" if use else "Use more data")
                              + ("" if small else ", set drop_last=true (the last batch left out)")
                              + ", or a model without BatchNorm"))


def _check_batchnorm_passes(n: int, batch_size: int, world: int, drop_last: bool, micro_batch: int) -> None:
    """check_batchnorm_batches for speed.micro_batch: each process's part of a batch runs in passes of at most
    ``micro_batch`` examples, and a pass of one example has no variance either."""
    last = batch_size if drop_last or n % batch_size == 0 else n % batch_size
    parts = {size for b in (min(batch_size, n), last) for size in (b // world, -(-b // world)) if size > 0}

    def fine(m: int) -> bool:
        return all(part <= m or part % m != 1 for part in parts) and (m >= 2 or all(part <= 1 for part in parts))

    if fine(micro_batch):
        return
    use = _nearest_that_work(micro_batch, max(parts), fine)
    bad = next(part for part in sorted(parts) if part > micro_batch and (micro_batch < 2 or part % micro_batch == 1))
    per = " per process" if world > 1 else ""
    why = ("passes of 1 give every example a pass of its own" if micro_batch < 2 else
           f"batches of {bad} examples{per} in passes of {micro_batch} leave 1 for the last pass")
    raise ConfigError(problem("speed.micro_batch", "a size that gives BatchNorm layers at least 2 examples in every "
                              f"pass: {why}, and one example has no variance to normalise by", micro_batch,
                              f"Use speed.micro_batch={use}" if use else "Use speed.micro_batch=null"))


def _nearest_that_work(size: int, most: int, fine: Callable[[int], bool]) -> str:
    """The nearest sizes below and above ``size`` (2 to ``most``) that ``fine`` takes, as "a or b"; "" if none."""
    below = next((b for b in range(size - 1, 1, -1) if fine(b)), None)
    above = next((b for b in range(size + 1, most + 1) if fine(b)), None)
    return " or ".join(str(b) for b in (below, above) if b is not None)


def read_by_workers(split: Split | DatasetSplit, cfg: TrainConfig, device: torch.device) -> None:
    """A streamed Dataset's batches: read by speed.workers processes, pinned for a copy to a GPU."""
    if isinstance(split, DatasetSplit):
        split.workers, split.pin_memory = cfg.speed.workers, device.type == "cuda"


def _all_finite(x: torch.Tensor) -> bool:
    """Whether ``x`` holds no NaN/Inf. A sum carries any of them through, in one pass with no mask tensor
    (Fashion-MNIST: 7 ms in x's own float32, 90 ms accumulated in float64, 150 ms for ``isfinite(x).all()``);
    only a sum that overflows on finite values needs the full check."""
    if not x.is_floating_point():
        return True
    total = x.sum()
    return bool(torch.isfinite(total)) or bool(torch.isfinite(x).all())


def prepare(cfg: TrainConfig, bundle: DataBundle | None = None, model: nn.Module | None = None) -> Prepared:
    """Load data, resolve the loss, build (or take the user's) model and check that it fits the data.

    Raises one-line errors and writes nothing. ``model`` may be any ``nn.Module``; ``cfg.model`` is then
    not used to build one.
    """
    ranks = distributed.current()
    device = distributed.device_for(resolve_device(cfg.device), ranks)  # before anything (class weights) uses it
    precision.check(cfg.speed.precision, device)
    bundle = bundle if bundle is not None else load_data(cfg.data, cfg.seed)
    loss_name = cfg.loss.name
    if loss_name == "auto" and model is None and cfg.model.name == "perceptron" and bundle.n_classes == 2:
        loss_name = "perceptron"  # its one score needs a sign loss; cross-entropy would need two outputs
    loss = resolve_loss(loss_name, bundle.task, bundle.n_classes)
    if not cfg.loss.from_logits:
        loss = on_probabilities(loss)
    loss = smoothed(loss, cfg.loss.label_smoothing)
    cfg, notes = _whole_split_batches(cfg, len(bundle.train))
    bundle, notes = _overfit_batches(cfg, bundle, notes)
    check_data(cfg, bundle, loss)
    if isinstance(cfg.loss.class_weights, dict):  # {class: weight}: one weight per class, as the run keeps it
        cfg = replace(cfg, **{"loss.class_weights": weights_by_class(cfg.loss.class_weights, bundle.class_names,
                                                                      bundle.n_classes)})
    loss = weighted(loss, cfg.loss.class_weights, bundle.train.y if isinstance(bundle.train, Split) else None,
                    bundle.n_classes, device)
    outs = n_outputs(loss, bundle)
    model, compiled = uncompiled(model) if model is not None else (None, None)
    if compiled is not None and ranks.active:
        raise ConfigError(problem("model", "a module that is not torch.compile'd in a distributed run (DDP wraps the "
                                           "module itself, and the compiled wrapper's steps would go around DDP's "
                                           "gradient exchange)", f"torch.compile({type(model).__name__})",
                                  "Pass the module itself, or compile parts inside it"))
    custom = type(model).__name__ if model is not None else None
    if model is None:
        model = build_model(cfg.model, tuple(bundle.input_shape), outs, seed=cfg.seed)
    fits = dict(custom=custom is not None, class_names=bundle.class_names)
    if has_lazy_parameters(model):  # nn.LazyLinear, as d2l builds its networks: the dry run gives them their weights
        check_fits(model, tuple(bundle.input_shape), outs, **fits)
    check_trainable(model, custom=custom is not None)  # first: weights of another dtype would fail the dry run
    table = check_fits(model, tuple(bundle.input_shape), outs, **fits)  # the layer table of the same dry run
    check_batchnorm_batches(model, len(bundle.train), cfg.batch_size, ranks.world if ranks.active else 1,
                            cfg.drop_last, cfg.speed.micro_batch)
    if ranks.active and not isinstance(bundle.train, Split):
        raise ConfigError(f"data must be held in memory for a distributed run: each process takes its part of every "
                          f"batch by index. Got a streamed dataset ({bundle.meta.get('streamed') or cfg.data.name}). Train it "
                          "in one process, or hand over tensors (random transforms then as data.augment).")
    distributed.check_sizes(len(bundle.train), cfg.batch_size, ranks)  # before any run directory exists

    if isinstance(bundle.train, IterableSplit) and cfg.speed.workers:
        raise ConfigError(problem("speed.workers", "0 for an IterableDataset whose examples change between passes "
                                                   "(read afresh every epoch in this process: each worker would hand "
                                                   "out every example again)", cfg.speed.workers,
                                  "Set workers=0, or make it a map-style Dataset (__len__ and __getitem__)"))
    for split in (bundle.train, bundle.val):
        read_by_workers(split, cfg, device)

    # the machine's cores shared among the processes on it
    threads = cfg.threads or choose_threads(count_parameters(model), cfg.batch_size // ranks.world,
                                            max(env.cores() // ranks.local_world, 1))
    model = model.to(device)
    return Prepared(cfg, bundle, loss, model, device, threads, custom, compiled, notes, table)


def _whole_split_batches(cfg: TrainConfig, n: int) -> tuple[TrainConfig, list[str]]:
    """The default batch_size (the classic recipe's 256) on a training split of fewer examples: batches of the
    whole split, said in a note, as Keras, skorch and a DataLoader train a small dataset with their defaults. The
    run's config.yaml keeps the size used. A batch_size that was set stays the user's, and check_data refuses one
    larger than the split (the run would not do what it says)."""
    if cfg.batch_size <= n or "batch_size" in cfg.model_fields_set or n < 1:
        return cfg, []
    note = (f"note: batch_size={n}, the whole training split: the default {cfg.batch_size} is more than its {n} "
            f"examples (set batch_size to choose)")
    return replace(cfg, batch_size=n), [note]


def _overfit_batches(cfg: TrainConfig, bundle: DataBundle, notes: list[str]) -> tuple[DataBundle, list[str]]:
    """``overfit_batches=N``: the first N batches of the training split as both the training and the validation
    split (the sealed test split stays as it is), said in a note."""
    k = cfg.overfit_batches
    if not k:
        return bundle, notes
    if not isinstance(bundle.train, Split):
        raise ConfigError(problem("overfit_batches", "0 for a streamed dataset (its examples are read batch by batch, "
                                  "not held to be cut)", k, "Hand over tensors, or set data.limit for a small run"))
    n = min(k * cfg.batch_size, len(bundle.train))
    few = Split(bundle.train.x[:n], bundle.train.y[:n])
    note = (f"note: overfit_batches={k}: training and validating on the same {n} training examples; the training "
            "loss should fall to ~0 (set overfit_batches=0 to train on the whole split)")
    return dataclasses.replace(bundle, train=few, val=few), [*notes, note]


def new_run_dir(cfg: TrainConfig, model_name: str | None = None, prefix: str = "") -> Path:
    """Create ``out_dir/<prefix><name>`` exclusively; if taken, ``<name>-2``, ``-3``... Never reuse."""
    root = Path(cfg.out_dir)
    with files.storage_errors(root):
        root.mkdir(parents=True, exist_ok=True)
    base = prefix + (cfg.name or f"{cfg.data.name}-{model_name or cfg.model.name}-{datetime.now():%Y%m%d-%H%M%S}")
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"name must be unused in {root}. Got {base!r} with 9999 runs already. Choose another name.")


@contextlib.contextmanager
def threads_and_rng(threads: int, seed: int, device: torch.device) -> Iterator[None]:
    """Set torch's thread count and seed its global RNG (used by dropout) for the run only."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            seed_rng(seed, device)
            yield
    finally:
        torch.set_num_threads(old)


def epoch_file(epoch: int) -> str:
    """The name of epoch ``epoch``'s own checkpoint under ``checkpoint.keep=all``: epoch-001.pt, …"""
    return f"epoch-{epoch:03d}.pt"


class Checkpointer(Callback):

    """Saves ``checkpoints/last.pt`` every epoch and ``checkpoints/best.pt`` when ``monitor`` improves."""

    name = "checkpointer"

    def __init__(self, run_dir: Path, make: Any, monitor: str, keep: str = "last_best") -> None:
        self.dir, self.make, self.monitor, self.keep = run_dir / "checkpoints", make, monitor, keep
        self.best: float | None = None
        self.best_epoch = 0
        # best.pt's validation outputs, where an epoch of this process wrote it and its evaluation kept them
        self.best_outputs: torch.Tensor | None = None

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        value = metrics[self.monitor]
        improved = better(self.monitor, value, self.best)
        if improved:
            self.best, self.best_epoch = value, metrics["epoch"]
            self.best_outputs = state.val_outputs
        save_atomic(self.make(state), self.dir / "last.pt")
        if improved:  # last.pt is always replaced by a new file, so best.pt can share this one
            link_atomic(self.dir / "last.pt", self.dir / "best.pt")
        if self.keep == "all":  # checkpoint.keep=all: one file per epoch, sharing last.pt's bytes
            link_atomic(self.dir / "last.pt", self.dir / epoch_file(metrics["epoch"]))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


def _loop_data(p: Prepared) -> tuple[LoopData, torch.Generator, torch.Generator | None]:
    b, dev = p.bundle, p.device
    shuffle = torch.Generator().manual_seed(p.cfg.seed)
    aug = make_augmenter(p.cfg.data.augment, p.cfg.seed + 3) if len(b.input_shape) == 3 else None
    # mixup / CutMix draw from the augmenter's generator: one random stream for a checkpoint to keep
    gen = aug.generator if aug is not None else torch.Generator().manual_seed(p.cfg.seed + 3)
    mix = make_mixer(p.cfg.data.augment, gen)
    data = LoopData(train=on_device(b.train, dev), val=on_device(b.val, dev), loss=p.loss,
                    classification=b.task == "classification", shuffle=shuffle, augment=aug, mix=mix, device=dev,
                    reshuffle=p.cfg.shuffle)
    return data, shuffle, (gen if aug is not None or mix is not None else None)


def on_device(split: Split | DatasetSplit, device: torch.device) -> Split | DatasetSplit:
    """Tensors move to the device once; a DatasetSplit's batches move as they are read."""
    return Split(split.x.to(device), split.y.to(device)) if isinstance(split, Split) else split


def _build_state(p: Prepared) -> TrainState:
    cfg = p.cfg
    steps = steps_per_epoch(len(p.bundle.train), cfg.batch_size, cfg.drop_last)
    opt = make_optimizer(p.model.parameters(), cfg.optimizer)
    sched = make_scheduler(opt, cfg.schedule, steps, cfg.epochs)
    ema = WeightAverage(p.model, cfg.ema.decay, cfg.ema.warmup) if cfg.ema.decay is not None else None
    return TrainState(cfg=cfg, model=p.model, optimizer=opt, scheduler=sched, steps_per_epoch=steps,
                      scaler=precision.make_scaler(cfg.speed.precision, p.device), compiled=p.compiled, ema=ema)


# Builds callbacks that need the prepared data or the run directory (e.g. per-layer statistics on a
# validation probe batch); lets higher layers (diagnose, report) plug in without train importing them.
Setup = Callable[[Prepared, Path], Sequence[Callback]]


def execute(p: Prepared, run_dir: Path, *, callbacks: Sequence[Callback] = (), setup: Setup | None = None,
            console: Any = None, bar: bool | None = None, verbose: bool = True,
            resume_from: dict[str, Any] | None = None) -> RunResult:
    """Train ``p`` into ``run_dir`` (optionally continuing a checkpoint), test the best model once.

    In a distributed run (train.distributed) every rank trains; rank 0 alone writes ``run_dir``."""
    cfg = p.cfg
    ranks = distributed.current()
    if setup is not None and ranks.main:
        callbacks = [*setup(p, run_dir), *callbacks]
    if ranks.main:
        files.write_text(run_dir / "config.yaml", run_config_text(cfg))
    t_start = time.perf_counter()
    with threads_and_rng(p.threads, cfg.seed, p.device):
        state = _build_state(p)
        if ranks.active:
            from torch.nn.parallel import DistributedDataParallel

            state.ddp = DistributedDataParallel(p.model, device_ids=[p.device.index] if p.device.type == "cuda" else None)
            state.ranks = ranks
        data, shuffle, aug_gen = _loop_data(p)
        rules = stop_rules(cfg)
        ckpt_info = {"data": p.data_info(), "environment": env.environment(p.device, p.threads)}
        config = config_to_dict(cfg)  # the same at every epoch
        history_text = HistoryText()

        def make(st: TrainState) -> dict[str, Any]:
            # ema.decay: "model" holds the averaged weights every reader of a checkpoint uses, "train_model" the
            # trained ones that --resume goes on updating
            averaged = {"model": st.ema.model.state_dict(), "train_model": st.model.state_dict(),
                        "ema": st.ema.state_dict()} if st.ema is not None else {"model": st.model.state_dict()}
            return {"format": FORMAT, "epoch": st.epoch, "config": config,
                    **averaged, "optimizer": portable_optimizer_state(st.optimizer),
                    "scheduler": st.scheduler.state_dict(), "rng": rng_state(shuffle, aug_gen, p.device),
                    "history": history_text(st.history), "callbacks": {c.name: c.state_dict() for c in all_cbs},
                    **({"scaler": st.scaler.state_dict()} if st.scaler is not None else {}), **ckpt_info}

        checkpointer = Checkpointer(run_dir, make, cfg.monitor, cfg.checkpoint.keep)
        loggers: list[Callback] = [MetricsFiles(run_dir)]
        if cfg.tensorboard:
            loggers.append(TensorBoardLogger(run_dir, cfg.logging.every_n_steps, cfg.logging.histograms))
        if verbose:
            loggers.append(ConsoleLogger(console, bar, notes=_console_notes(p)))
        writers: list[Callback] = [checkpointer, *loggers] if ranks.main else []  # the other ranks write nothing
        all_cbs: list[Callback] = [*rules, *writers[:1], *callbacks, *writers[1:]]
        start_epoch = 1
        if resume_from is not None:
            start_epoch = _restore(state, resume_from, all_cbs, shuffle, aug_gen, p.device)
            prior = _prior_summary(run_dir)
            preflight = prior.get("preflight")  # the facts of the untrained model, kept
            state.first_epoch = prior.get("first_epoch")
        elif ranks.main:
            preflight = preflight_facts(p.model, p.bundle.train, p.loss.name, p.bundle.task, p.bundle.n_classes,
                                        p.device, val=None if cfg.overfit_batches else p.bundle.val)  # the same rows
        else:
            preflight = None
        error: str | None = None
        facts: dict[str, Any] | None = None
        memory: dict[str, Any] | None = None
        failure: type[TrainingError] = TrainingError
        try:
            with contextlib.ExitStack() as kept:  # a streamed split's reading processes serve every epoch's pass
                for split in (p.bundle.train, p.bundle.val):
                    if isinstance(split, DatasetSplit):
                        kept.enter_context(split.workers_kept())
                run_epochs(state, data, all_cbs, start_epoch)
        except RuntimeError as exc:
            if not ranks.active:
                raise
            # a collective (DDP's gradient all-reduce, the epoch's metrics) failed: another rank is gone
            kept = int(state.history[-1]["epoch"]) if state.history else 0
            raise DistributedError(
                f"every process of a distributed run must stay up until it ends. Got one gone during epoch "
                f"{state.epoch}: exchanging gradients with it failed ({type(exc).__name__}). "

                + (f"Resume from its last checkpoint (epoch {kept}): trainlab train --resume {run_dir}" if kept else
                   "No epoch had finished, so no checkpoint was written: start it again")) from None
        except TrainingError as exc:

            kept = _kept_epoch(state, run_dir)
            error = str(exc) + (f" The last good checkpoint (epoch {kept}) is checkpoints/last.pt." if kept else
                                " No epoch had finished, so no checkpoint was written.")
            failure = type(exc)
            if isinstance(exc, OutOfMemory):  # its facts are summary.json's "out_of_memory", not a NaN's
                memory = exc.facts
                sets = (memory or {}).get("sets") or {}
                if kept and sets:  # the epochs done are kept: go on from them with the setting that needs less
                    flags = " ".join(f"--set {k}={v}" for k, v in sets.items())
                    error = (f"{exc} Resume from the last good checkpoint (epoch {kept}) with it: trainlab train "
                             f"--resume {run_dir} {flags}")
                state.stop_reason, state.stopped_by = f"out of memory: {exc}", "out_of_memory"
            else:
                facts = exc.facts
                state.stop_reason, state.stopped_by = f"non-finite: {exc}", "non_finite"
        except KeyboardInterrupt as exc:
            if isinstance(exc, (OutputClosed, Terminated)):
                exc.run_dir = run_dir
            if isinstance(exc, Terminated):
                exc.epoch, exc.kept = state.epoch, _kept_epoch(state, run_dir)
            state.stopped_by = "interrupted"
            state.stop_reason = f"interrupted during epoch {state.epoch}; resume with: trainlab train --resume {run_dir}"
            if ranks.main:
                _finish(p, run_dir, state, checkpointer, t_start, test=None, error=None, preflight=preflight)
            raise
        finally:
            for cb in all_cbs:
                cb.on_train_end(state)
        if state.ema is not None and error is None:  # it ends with the averaged weights, as Keras' use_ema does
            p.model.load_state_dict(state.ema.model.state_dict())
        test = test_error = None
        if error is None and ranks.main and (run_dir / "checkpoints" / "best.pt").exists():
            try:
                test = test_best(p, run_dir) if p.bundle.test.available else None
            except OutOfMemory as exc:  # the run trained: it is kept, reported and its test scored later
                test_error = str(exc)
            if cfg.stop.early_stopping.patience is not None and cfg.stop.early_stopping.restore_best:
                p.model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"])
    summary = _finish(p, run_dir, state, checkpointer, t_start, test, error, facts, preflight,
                      extra={"out_of_memory": memory, "test_error": test_error}) if ranks.main else {}

    if error is not None:
        raise failure(error, run_dir=run_dir, facts=facts or memory)
    return RunResult(run_dir, summary, state.history, p.model, p, checkpointer.best_outputs)


def _console_notes(p: Prepared) -> list[str]:
    """Lines printed before the first epoch: the prepared run's notes, then what the epoch lines measure where
    that is not the obvious (emulated precision, a weight average validated, mixed training batches)."""
    cfg = p.cfg
    notes = [*p.notes]
    if (emulated := precision.emulated_note(cfg.speed.precision, p.device)):
        notes.append(emulated)
    if cfg.ema.decay:
        notes.append(f"validation, checkpoints and the test score use the weights' moving average (ema.decay="
                     f"{cfg.ema.decay:g}); the training loss is the trained weights'")
    if (mixing := " and ".join(cfg.data.augment.mixing)):
        notes.append(f"the training loss and accuracy are of {mixing}-mixed batches (accuracy: each mix's dominant "
                     "label); validation's of clean ones")
    return notes


def _kept_epoch(state: TrainState, run_dir: Path) -> int:
    """The epoch checkpoints/last.pt holds (the last finished one, this run's or, resumed, an earlier one's); 0 when
    none is on disk."""
    on_disk = (run_dir / "checkpoints" / "last.pt").exists()
    return int(state.history[-1]["epoch"]) if state.history and on_disk else 0


def _restore(state: TrainState, ckpt: dict[str, Any], cbs: Sequence[Callback], shuffle: torch.Generator,
             aug_gen: torch.Generator | None, device: torch.device) -> int:
    state.model.load_state_dict(ckpt.get("train_model", ckpt["model"]))  # an ema run's trained weights
    if state.ema is not None:
        state.ema.load_state_dict(ckpt["ema"], ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.scaler is not None and ckpt.get("scaler"):  # an fp16 run's loss scale; a fresh one for any other
        state.scaler.load_state_dict(ckpt["scaler"])
    restore_rng(ckpt["rng"], shuffle, aug_gen, device)
    state.history = list(ckpt["history"])
    saved = ckpt.get("callbacks", {})
    for cb in cbs:
        if cb.name in saved:
            cb.load_state_dict(saved[cb.name])
    state.epoch = int(ckpt["epoch"])
    return state.epoch + 1


def best_model(p: Prepared, run_dir: Path) -> tuple[nn.Module, int]:
    """A copy of the run's model with the weights of its best checkpoint, on the run's device, and that epoch."""
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=p.device)
    model = copy.deepcopy(p.model)  # same architecture, built-in or the user's own module
    model.load_state_dict(ckpt["model"])
    return model, int(ckpt["epoch"])


def score_best(p: Prepared, run_dir: Path, split: Split | DatasetSplit, batch_size: int, doing: str,
               fix: str) -> tuple[dict[str, Any], int, Split | DatasetSplit]:
    """The best checkpoint's loss and accuracy (``evaluate``) on ``split``, moved to the run's device (a streamed
    Dataset read as the training set was), ``batch_size`` examples per pass; memory that runs out is
    ``memory_for``'s one line (``doing``, ``fix``). A classifier's metrics also hold its per-class scores
    (``class_scores``). Returns (the metrics, the checkpoint's epoch, the split scored)."""
    model, epoch = best_model(p, run_dir)
    split = on_device(split, p.device)
    read_by_workers(split, p.cfg, p.device)
    with memory_for(p.device, doing, len(split), batch_size, fix):
        m = evaluate(model, split, p.loss, batch_size, p.bundle.task == "classification", p.device, confusion=True)
    if "confusion" in m:
        m.update(class_scores(m.pop("confusion"), p.bundle.class_names))
    return m, epoch, split


# Up to this many classes the per-class scores and the confusion matrix are kept (summary.json, evaluation.json);
# beyond, only their means: 1000 classes would write a million counts
DETAIL_CLASSES = 100


def class_scores(confusion: list[list[int]], names: list[str] | None) -> dict[str, Any]:
    """A classifier's balanced accuracy, macro F1 and per-class precision / recall / F1 / support
    (train.metrics.class_report), with the confusion matrix they came from (up to ``DETAIL_CLASSES`` classes)."""
    report = class_report(confusion, names)
    detail = {k: report[k] for k in ("per_class", "macro", "weighted")} | {"confusion": confusion}
    return {"balanced_acc": report["balanced_acc"], "macro_f1": report["macro_f1"],
            **(detail if len(confusion) <= DETAIL_CLASSES else {})}


def test_best(p: Prepared, run_dir: Path, batch_size: int | None = None) -> dict[str, Any]:
    """Open the sealed test split (the only place training does) and score the best checkpoint on it, in batches of
    ``batch_size`` (default eval_batch_size); memory that runs out is one OutOfMemory line naming a smaller one."""
    test = p.bundle.test.open()
    m, epoch, split = score_best(p, run_dir, test, batch_size or p.cfg.eval_batch_size,
                                 f"scoring the {len(test)} test examples",
                                 f"Score them in smaller batches: trainlab evaluate {run_dir} --batch-size {{smaller}} "
                                 "(Python: run.evaluate(batch_size={smaller}))")
    out = {"test_loss": m["loss"], "test_acc": m["acc"], "epoch": epoch, "n": len(split),
           **{k: v for k, v in m.items() if k not in ("loss", "acc")}}
    if isinstance(p.bundle.train, Split):  # test examples copied from training inflate these numbers (leakage)
        out["shared_with_train"] = shared_rows(p.bundle.train.x, split.x)
    return out


def write_run(p: Prepared, run_dir: Path, history: list[dict[str, Any]], *, stop_reason: str,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a model trained elsewhere (``p.model`` holds its weights, ``history`` its metrics rows) as a run
    directory every verb reads, with the writers a training run uses: config.yaml, checkpoints/last.pt and
    best.pt (the Checkpointer, for the last row), metrics.jsonl/csv (MetricsFiles), summary.json (as ``execute``
    writes it). ``extra`` goes into the checkpoint and the summary (where the run came from). No optimizer
    state: such a run is evaluated, reported and exported, not resumed."""
    files.write_text(run_dir / "config.yaml", run_config_text(p.cfg))
    rows = list(history) or [{"epoch": 1}]
    state = TrainState(p.cfg, p.model, None, None, 0, epoch=int(rows[-1]["epoch"]), history=list(history),
                       stop_reason=stop_reason)  # type: ignore[arg-type]  # no optimizer: nothing more to train
    info = {"data": p.data_info(), "environment": env.environment(p.device, p.threads)}

    def make(st: TrainState) -> dict[str, Any]:
        return {"format": FORMAT, "epoch": st.epoch, "config": config_to_dict(p.cfg), "model": st.model.state_dict(),
                "optimizer": {}, "scheduler": {}, "rng": {}, "history": list(st.history), "callbacks": {}, **info,
                **(extra or {})}

    ck = Checkpointer(run_dir, make, p.cfg.monitor)
    ck.on_epoch_end(state, {p.cfg.monitor: None} | rows[-1])
    if ck.best is None:  # nothing to monitor (no validation points): the one set of weights is also the best
        link_atomic(run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt")
        ck.best_epoch = state.epoch
    MetricsFiles(run_dir).on_train_begin(state)
    return _finish(p, run_dir, state, ck, time.perf_counter(), None, None, extra=extra)


def _finish(p: Prepared, run_dir: Path, state: TrainState, ck: Checkpointer, t_start: float,
            test: dict[str, Any] | None, error: str | None, facts: dict[str, Any] | None = None,
            preflight: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    last = state.history[-1] if state.history else {}
    summary = {
        "run": run_dir.name, "stop_reason": state.stop_reason, "error": error,
        "stopped_by": state.stopped_by,  # the stopping rule's id (callbacks.TrainState.stopped_by)
        "non_finite": facts,  # what the loop saw before a NaN/Inf (train.loop.non_finite_facts), else None
        "preflight": preflight,  # data, model and loss before the first update (train.preflight)
        "first_epoch": state.first_epoch,  # the first epoch's updates: loss checkpoints (train.loop.first_epoch_curve)
        # the run's first update alone (the same numbers): what the NaN and lr rules call "the start"
        "first_update": ({"loss": state.first_epoch["first_loss"], "grad_norm": state.first_epoch["first_grad_norm"]}
                         if state.first_epoch else None),
        "epochs_run": len(state.history), "best_epoch": ck.best_epoch, "monitor": p.cfg.monitor,
        "best_value": ck.best, "final": {k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        "best_val": _row(state.history, ck.best_epoch),
        "test": test, "wall_time": time.perf_counter() - t_start,
        "epoch_time_mean": (sum(h["epoch_time"] for h in state.history) / len(state.history))
        if state.history and all("epoch_time" in h for h in state.history) else None,

        "custom_model": p.custom_model,  # class name of a user nn.Module (trainlab fix needs it passed again)
        "n_parameters": count_parameters(p.model), "model_table": p.table.as_json() if p.table else None,
        "data": p.data_info()["sizes"] | ({"test": test["n"]} if test else {}),
        "environment": env.environment(p.device, p.threads),
        # how the training steps ran: one replayed CUDA graph each, or launched op by op (and why)
        "steps": {"cuda_graph": state.graph is not None, "eager_because": state.graph_off},
        # a Dataset read batch by batch every epoch (data.streaming) and why; None: held as tensors
        "streamed": ({"because": p.bundle.meta.get("streamed"), "workers": p.cfg.speed.workers}
                     if isinstance(p.bundle.train, DatasetSplit) else None),
        # labels read otherwise than as given (data.memory: one-hot rows as class ids); None: as given
        "labels": p.bundle.meta.get("labels"),
        **(extra or {}),
    }

    files.write_json(run_dir / "summary.json", summary, indent=2)
    return summary


def _prior_summary(run_dir: Path) -> dict[str, Any]:
    return files.read_json(run_dir / "summary.json", missing={},
                           fix="Delete summary.json (the checkpoints hold the run) and resume again")


def _row(history: list[dict[str, Any]], epoch: int) -> dict[str, Any] | None:
    return next((h for h in history if h["epoch"] == epoch), None)


def train(cfg: TrainConfig, *, callbacks: Sequence[Callback] = (), setup: Setup | None = None, console: Any = None,
          bar: bool | None = None, verbose: bool = True, bundle: DataBundle | None = None,
          model: nn.Module | None = None) -> RunResult:
    """Check ``cfg`` (and the given data / model, if any) and train into a new run directory (in a distributed
    run, rank 0 makes it and tells the others its name)."""
    p = prepare(cfg, bundle, model)
    ranks = distributed.current()
    name = distributed.broadcast(new_run_dir(cfg, p.custom_model).name if ranks.main else None, ranks)
    run_dir = Path(cfg.out_dir) / name
    p.cfg = cfg = replace(p.cfg, name=run_dir.name)  # p.cfg: as prepare resolved it (class weights as a list)
    try:
        return execute(p, run_dir, callbacks=callbacks, setup=setup, console=console, bar=bar, verbose=verbose)
    except files.StorageError:
        if not (run_dir / "checkpoints" / "last.pt").exists():  # nothing to resume: a failed start leaves no folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config a run was trained with (``config.yaml``), validated again."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"run must be an existing run directory. Got {str(run_dir)!r}. "
                              "Pass a directory under runs/ (see 'ls runs').")
    if not path.is_file():
        raise CheckpointError(f"run must contain config.yaml. Got {str(run_dir)!r} without it. "
                              "Pass a directory written by 'trainlab train'.")
    text = files.read_utf8(path, f"run config {str(path)!r}", CheckpointError)
    if cut_short(text):
        raise CheckpointError(f"run config {str(path)!r} must be the whole file trainlab wrote. Got one cut short "
                              f"after {len(text.encode())} bytes (its end line is missing). Restore it from a "
                              "checkpoint's 'config' or retrain.")
    try:
        return validate_config(_upgraded(files.parse_yaml(text)), stored=True)
    except (yaml.YAMLError, ConfigError) as exc:
        first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"run config {str(path)!r} must be a valid trainlab config. Got: {first}. "
                              "Restore it from a checkpoint's 'config' or retrain.") from None


def _upgraded(raw: Any) -> Any:
    """A config.yaml written by an older trainlab, in today's terms: before optimizer.momentum was refused for the
    optimizers that ignore it, every run saved the old default 0.9 there."""
    opt = raw.get("optimizer") if isinstance(raw, dict) else None
    if isinstance(opt, dict) and opt.get("name") not in MOMENTUM_OPTIMIZERS and opt.get("momentum") == DEFAULT_MOMENTUM:
        opt.pop("momentum")
    return raw


def resume(run_dir: str | Path, *, overrides: dict[str, Any] | None = None, callbacks: Sequence[Callback] = (),
           setup: Setup | None = None, console: Any = None, bar: bool | None = None, verbose: bool = True,
           bundle: DataBundle | None = None, model: nn.Module | None = None) -> RunResult:
    """Continue ``run_dir`` from ``checkpoints/last.pt`` exactly; ``overrides`` may raise ``epochs``.

    Runs on in-memory data or a user module need the same ``bundle`` / ``model`` passed again."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if overrides:
        # ... and the sizes that only change how much memory the same training needs (after running out of it)
        allowed = {"epochs", "device", "threads", "tensorboard", "speed.micro_batch", "eval_batch_size"}
        extra = sorted(set(overrides) - allowed)
        if extra:
            raise ConfigError(f"--set with --resume must only change {', '.join(sorted(allowed))}. Got {extra[0]}. "
                              "Start a new run to change anything else.")
        cfg = replace(cfg, **overrides)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    done = int(ckpt["epoch"])
    prior = _prior_summary(run_dir)
    check_run_files(run_dir)  # a damaged file is named now, before the resume rewrites any of them
    finished = prior.get("stopped_by") in {"early_stopping", "convergence", "target"}
    # A run killed after its last checkpoint but before its test and summary.json has work left: the resume
    # trains no epoch and does those.
    summarised = prior.get("epochs_run") == done and prior.get("stop_reason") is not None
    if (done >= cfg.epochs or finished) and summarised:
        raise ConfigError(f"epochs must be > the {done} epochs already run to resume {run_dir.name}. Got {cfg.epochs} "
                          f"(stopped: {prior.get('stop_reason', 'unknown')}). Use --set epochs={done + 10} to train longer.")
    p = prepare(cfg, bundle, model)
    ranks = distributed.current()
    if ranks.main:
        for folder in (run_dir, run_dir / "checkpoints"):
            files.remove_stale_temp_files(folder)  # half-written files of a killed process; the renamed ones are whole
    distributed.barrier(ranks)  # every rank has read the run's files before rank 0 rewrites any
    return execute(p, run_dir, callbacks=callbacks, setup=setup, console=console, bar=bar, verbose=verbose,
                   resume_from=ckpt)


def check_run_files(run_dir: str | Path) -> None:
    """DamagedFileError naming the first file of the run that the verbs read back and cannot be read (a partial
    last line of an append-only log is fine: readers drop it). Called by resume, report and fix before they
    write anything, so a damaged run is named in one line and left as it was."""
    run_dir = Path(run_dir)
    files.read_json(run_dir / "summary.json", fix="Delete summary.json (the checkpoints hold the run) and resume again")
    files.read_jsonl(run_dir / "metrics.jsonl", fix="Delete the damaged line(s); a resume rewrites the file")
    files.read_jsonl(run_dir / "layers.jsonl", fix="Delete the damaged line(s); a resume rewrites the file")
    files.read_json(run_dir / "activations.json", fix="Delete it; a resume writes it again")
    files.read_json(run_dir / "lr_find.json", fix="Delete it, or run trainlab lr-find --run again")
