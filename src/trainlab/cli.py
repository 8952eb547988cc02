"""``trainlab`` command line: each verb parses its arguments and calls one public Python function.

Exit codes: 0 success (``fix``: also when the remedy did not help, or nothing to fix); 1 the run (or the
fix run) stopped on NaN/Inf; 2 bad input, or a run ``fix`` cannot change by config (one line on stderr,
nothing written); 130 interrupted (the run can be resumed); 141 the reader of the output went away
(``trainlab train | head``: the run stopped as an interrupted one does).
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import difflib
import gc
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Sequence

from trainlab.errors import OutputClosed, Terminated, TrainingError, TrainlabError, drop_stdout

if TYPE_CHECKING:
    from trainlab.report.painter import Painter


def _registry_help() -> str:
    from trainlab import registry as r

    r.load_plugins()
    import trainlab.search.methods  # noqa: F401  (fills the search method and pruner registries)

    kinds = [r.DATASETS, r.FEATURES, r.MODELS, r.ACTIVATIONS, r.INITS, r.LOSSES, r.OPTIMIZERS, r.SCHEDULES, r.SEARCH_METHODS,
             r.PRUNERS]
    return "\n".join(f"  {k.field:<18} {', '.join(k.names())}" for k in kinds)


class _Parser(argparse.ArgumentParser):
    """argparse with trainlab's promise for bad input: one line on stderr and exit 2 (not the usage block)."""

    given: list[str] | None = None  # the arguments parse_args was handed: an unknown flag is judged by its verb's

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self.given = list(sys.argv[1:] if args is None else args)
        return super().parse_args(self.given, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (?P<args>.*)$", message)
        if unknown and self.given is not None:
            self.exit(2, f"error: {_unknown_arguments(self, self.given, unknown['args'])}\n")
        self.exit(2, f"error: {usage_problem(self.prog, message)}\n")


def _unknown_arguments(parser: argparse.ArgumentParser, given: list[str], got: str) -> str:
    """The line for arguments no verb takes, with the flag or the config key the first unknown flag most likely
    meant: ``--nam`` → ``--name``; ``--out runs2`` → ``--set out_dir=runs2``, ``--lr 0.01`` → ``--set
    optimizer.lr=0.01``, as Keras and Lightning users type them (config keys go through --set)."""
    verbs = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    verb = next((g for g in given if g in verbs), None)
    prog = f"trainlab {verb}" if verb else "trainlab"
    line = f"arguments must be ones '{prog}' takes. Got {got!r}."
    tokens = got.split(" ")
    first = next((i for i, t in enumerate(tokens) if t.startswith("--") and len(t) > 2), None)
    if verb is None or first is None:
        return f"{line} See '{prog} --help'."
    flag, eq, value = tokens[first].partition("=")
    if not eq:
        value = tokens[first + 1] if first + 1 < len(tokens) and not tokens[first + 1].startswith("-") else "..."
    flags = [s for s in verbs[verb]._option_string_actions if s.startswith("--")]
    close = difflib.get_close_matches(flag, flags, n=1, cutoff=0.75)
    if close:
        return f"{line} Did you mean {close[0]!r}?"
    if "--set" in flags:
        from trainlab.config import keys_named

        keys = keys_named(flag[2:].replace("-", "_"))
        if keys:
            sets = " or ".join(f"'--set {k}={value}'" for k in keys)
            return f"{line} Did you mean {sets}? (config keys are set with --set)"
    return f"{line} See '{prog} --help'."


# argparse's messages → the house form '<field> must be <constraint>. Got <value>. <fix>.'
_ARGPARSE = [
    (re.compile(r"argument (?P<arg>[^:/]+)(/\S+)?: invalid (?P<type>\w+) value: '(?P<got>.*)'$"),
     lambda m, prog: f"{m['arg']} must be {_TYPES.get(m['type'], 'a ' + m['type'])}. Got {m['got']!r}. "
                     f"See '{prog} --help'."),
    (re.compile(r"argument (?P<arg>[^:/]+)(/\S+)?: invalid choice: '(?P<got>.*)' \(choose from (?P<choices>.*)\)$"),
     lambda m, prog: f"{m['arg']} must be one of {m['choices'].replace(chr(39), '')}. Got {m['got']!r}. "
                     + _did_you_mean(m["got"], m["choices"].replace("'", "").split(", "), prog)),
    (re.compile(r"the following arguments are required: (?P<args>.*)$"),
     lambda m, prog: f"{m['args']} must be given. Got none. See '{prog} --help'."),
    (re.compile(r"unrecognized arguments: (?P<args>.*)$"),
     lambda m, prog: f"arguments must be ones '{prog}' takes. Got {m['args']!r}. See 'trainlab <verb> --help'."),
]
_TYPES = {"int": "a whole number", "float": "a number"}


def _did_you_mean(got: str, choices: list[str], prog: str) -> str:
    close = difflib.get_close_matches(got, choices, n=1)
    return f"Did you mean {close[0]!r}?" if close else f"See '{prog} --help'."


def usage_problem(prog: str, message: str) -> str:
    """One line for an argparse error (a flag's type, a missing argument, an unknown verb or argument)."""
    for pattern, say in _ARGPARSE:
        m = pattern.match(message)
        if m:
            return say(m, prog)
    return f"{message[:1].upper()}{message[1:]}. See '{prog} --help'."


def _parser(names: str = "  (run 'trainlab names')") -> argparse.ArgumentParser:
    p = _Parser(prog="trainlab", description="Train neural networks fast and see why a run went wrong.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    t = sub.add_parser("train", help="train a network (default: the classic Fashion-MNIST MLP recipe)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a network and write runs/<name>/ (config, metrics, checkpoints, summary).",
                       epilog="Names accepted by the config:\n" + names + "\n\nExamples:\n"
                       "  trainlab train\n  trainlab train --config examples/fashion_cnn.yaml --set optimizer.lr=0.05\n"
                       "  trainlab train --set data.name=spiral --set model.hidden=[16,16] --set epochs=200\n"
                       "  trainlab train --resume runs/<run>")
    t.add_argument("--config", help="YAML config file (keys as in --print-config)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optimizer.lr=0.05, or name a section's choice: "
                        "--set optimizer=adamw (repeatable)")
    t.add_argument("--data-dir", help="directory holding the dataset files (same as --set data.dir=...)")
    t.add_argument("--name", help="run name (same as --set name=...); a taken name gets a -2 suffix")
    t.add_argument("--resume", metavar="RUN", help="continue runs/<run> exactly from its last checkpoint")
    t.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    t.add_argument("--print-model", action="store_true",
                   help="print the model's layers (output shape, parameters) for the config's data and exit")
    t.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    t.add_argument("--no-report", action="store_true", help="skip the live curves and the HTML report")
    d = t.add_argument_group("data-parallel training (torchrun + DDP; batch_size stays the global batch)")
    d.add_argument("--nproc-per-node", type=int, default=1, metavar="N", help="processes on this machine (default 1)")
    d.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines taking part (default 1)")
    d.add_argument("--node-rank", type=int, default=0, metavar="R", help="this machine's rank, 0 … M-1")
    d.add_argument("--master-addr", default="127.0.0.1", metavar="HOST", help="address of the node with rank 0")
    d.add_argument("--master-port", type=int, default=None, metavar="PORT",
                   help="a free port on that node (default: any free port on one machine, 29500 across machines)")

    rp = sub.add_parser("report", help="(re)write a run's verdict (diagnosis.json) and report.html with its pictures")
    rp.add_argument("run", help="run directory")

    fx = sub.add_parser("fix", help="try the verdict's top remedy as a new run (same seed and data) and judge it",
                        description="Apply the config changes of the run's top-ranked problem as runs/<run>-fix, then "
                        "compare the validation metrics of both best checkpoints (fix.json and both reports).")
    fx.add_argument("run", help="run directory")
    fx.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    fx.add_argument("--no-report", action="store_true", help="do not write the two reports")

    cp = sub.add_parser("compare", help="overlay the learning curves of several runs, with a table of what differs")
    cp.add_argument("runs", nargs="+", help="run directories")
    cp.add_argument("--out", default="runs/compare", help="output directory for compare.html and compare.png")

    e = sub.add_parser("evaluate", help="test-set metrics of a run's best checkpoint")
    e.add_argument("run", help="run directory, e.g. runs/fashion-mnist-mlp-20261123-101500")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="test examples per pass (default: the run's eval_batch_size; less memory with fewer)")

    pr = sub.add_parser("predict", help="class + probabilities for images, or predictions for CSV rows")
    pr.add_argument("run", help="run directory")
    pr.add_argument("inputs", nargs="+", help="image files (image runs) or CSV files (tabular / 2-D runs)")
    pr.add_argument("--json", action="store_true", help="print JSON lines instead of a table / CSV")
    pr.add_argument("--batch-size", type=int, default=None, metavar="N",
                    help="inputs per pass (default: the run's eval_batch_size; less memory with fewer)")

    ex = sub.add_parser("export", help="write a run's best model as ONNX, TorchScript or safetensors (+ model.json)")
    ex.add_argument("run", help="run directory")
    ex.add_argument("--format", default="onnx", help="onnx (default), torchscript or safetensors")
    ex.add_argument("--out", help="output file or directory (default: runs/<run>/export/)")

    le = sub.add_parser("lesson", help="classic experiments as runnable lessons: list, or run one / all")
    lsub = le.add_subparsers(dest="lesson_verb", metavar="ACTION")
    lsub.add_parser("list", help="the lessons and what each shows")
    lr = lsub.add_parser("run", help="run a lesson (or 'all'): lesson.md, figures, results.json")
    lr.add_argument("name", help="a lesson name from 'trainlab lesson list', or all")
    lr.add_argument("--out", help="output directory (default lessons/<name>, or lessons/ for all)")
    lr.add_argument("--seed", type=int, default=0)
    lr.add_argument("--quick", action="store_true", help="smaller sizes (seconds instead of a minute)")

    se = sub.add_parser("search", help="hyperparameter search on validation data (random, TPE, grid, coarse-to-fine)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Search a space of config keys; trials are scored on validation data only "
                        "(the test set stays sealed). Writes runs/search-<name>/: trials.csv, best.yaml, plots.",
                        epilog="Names accepted (--method, --prune and the config keys):\n" + names + "\n\n"
                        "Space file (YAML), one dotted config key per line:\n"
                        "  optimizer.lr: {low: 1.0e-4, high: 1, log: true}\n"
                        "  model.hidden: {choices: [[128], [256, 128]]}\n\n"
                        "Examples:\n  trainlab search --config examples/fashion_mlp.yaml --space examples/space.yaml "
                        "--trials 30 --epochs 2\n  trainlab search ... --method coarse-to-fine --rounds 3 --workers 2 "
                        "--prune median\n  trainlab study runs/search-<name>")
    _config_args(se)
    se.add_argument("--space", required=True, help="search space YAML file")
    se.add_argument("--method", default="random", help="search method (default random; the choices are listed below)")
    se.add_argument("--trials", type=int, default=20, help="trials in the study in all (default 20)")
    se.add_argument("--epochs", type=int, help="epochs per trial (default: the config's)")
    se.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default 1)")
    se.add_argument("--storage", help="database URL shared by machines, e.g. postgresql://user@host/db "
                    "(default: a journal file in the search directory)")
    se.add_argument("--prune", default="none", help="pruner stopping hopeless trials early (default none; see below)")
    se.add_argument("--rounds", type=int, default=3, help="coarse-to-fine rounds (default 3)")
    se.add_argument("--top-k", type=int, help="coarse-to-fine: trials whose span sets the next ranges")
    se.add_argument("--cv", type=int, help="score each trial by the mean over K folds of the training split")
    se.add_argument("--seed", type=int, help="sampler seed (default: the config's seed)")

    lf = sub.add_parser("lr-find", help="learning-rate range test: sweep the lr, suggest one, show the spread over seeds",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Raise the lr exponentially over minibatches of the training split (a copy of the "
                        "model per seed), smooth the loss, and suggest a tenth of the lr at its minimum; prints the "
                        "suggestion of each seed and their spread.",
                        epilog="Examples:\n  trainlab lr-find\n  trainlab lr-find --config examples/fashion_cnn.yaml "
                        "--set optimizer.name=adam\n  trainlab lr-find --run runs/<run>   # its config; writes "
                        "lr_find.json, the verdict and report quote it")
    _config_source_args(lf)
    lf.add_argument("--run", help="a run directory: sweep its config and attach lr_find.json (verdict and report too)")
    lf.add_argument("--seeds", type=int, default=3, help="seeds to sweep, from the config's seed on (default 3)")
    lf.add_argument("--min-lr", type=float, default=1e-7, help="first lr of the sweep (default 1e-7)")
    lf.add_argument("--max-lr", type=float, default=10.0, help="last lr of the sweep (default 10)")
    lf.add_argument("--steps", type=int, default=100, help="updates per seed (default 100)")

    st = sub.add_parser("study", help="a search's top trials, best config and plots")
    st.add_argument("search", help="search directory, e.g. runs/search-<name>")
    st.add_argument("--top", type=int, default=10, help="rows in the table (default 10)")

    cv = sub.add_parser("cv", help="k-fold cross-validation of one config on its training split: mean ± std")
    _config_args(cv)
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")

    pg = sub.add_parser("playground", help="the browser playground (TF Playground and beyond), trained by this engine")
    pg.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    pg.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    pg.add_argument("--allow-remote", action="store_true",
                    help="allow a non-loopback --host (anyone who can reach it can use it: there is no login)")
    pg.add_argument("--runs-dir", default="runs", help="where 'save as run' writes (default runs)")

    d = sub.add_parser("datasets", help="which datasets are available offline, where, and their sizes")
    d.add_argument("--data-dir", help="also look in this directory")
    d.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("names", help="the registered names of datasets, models, activations, inits, losses, optimizers, schedules")
    return p


def _config_source_args(p: argparse.ArgumentParser) -> None:
    """--config, --set and --data-dir: where a verb's TrainConfig comes from."""
    p.add_argument("--config", help="YAML config file (keys as in 'trainlab train --print-config')")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable)")
    p.add_argument("--data-dir", help="directory holding the dataset files")


def _config_args(p: argparse.ArgumentParser) -> None:
    _config_source_args(p)
    p.add_argument("--name", help="name of the search / CV directory; an existing search of that name is continued")
    p.add_argument("--quiet", action="store_true", help="print only the result")


def _named_args(a: argparse.Namespace, *keys: tuple[str, str]) -> list[tuple[str, Any]]:
    """``--data-dir`` / ``--name`` as config overrides, taken as strings: not parsed as YAML, so a run named
    ``on`` or ``2024`` keeps its name instead of becoming ``True`` or a number."""
    return [(key, getattr(a, attr)) for attr, key in keys if getattr(a, attr, None)]


def _resolve(a: argparse.Namespace):
    from trainlab.config import resolve_config

    return resolve_config(a.config, [*a.overrides, *_named_args(a, ("data_dir", "data.dir"))])


def cmd_search(a: argparse.Namespace) -> int:
    from trainlab.search import search

    result = search(_resolve(a), a.space, method=a.method, trials=a.trials, epochs=a.epochs, workers=a.workers,
                    storage=a.storage, prune=a.prune, rounds=a.rounds, top_k=a.top_k, cv=a.cv, name=a.name,
                    seed=a.seed, log=None if a.quiet else (lambda s: print(s, flush=True)))
    _print_search(result, 10)
    print(f"search: {result.search_dir}" + (f" · {result.wall_time:.1f}s" if result.wall_time else ""))
    return 0


def _print_search(result, top: int) -> None:
    print(result.table(top))
    if result.best_config is not None:
        b = result.best
        print(f"best: trial {b['trial']} {result.metric} {b['value']:.4f} → {result.search_dir / 'best.yaml'} "
              f"(train it: trainlab train --config {result.search_dir / 'best.yaml'})")
    else:
        print("best: none yet (no trial completed)")
    if result.plots:
        print("plots: " + ", ".join(p.name for p in result.plots))


def cmd_lr_find(a: argparse.Namespace) -> int:
    from trainlab.config import config_to_dict, resolve_config

    overrides = [*a.overrides, *_named_args(a, ("data_dir", "data.dir"))]
    if a.run:
        from trainlab.train.run import read_run_config

        base = config_to_dict(read_run_config(a.run))
        _check_rebuildable(a.run, base)
        cfg = resolve_config(base=base, overrides=overrides)
    else:
        cfg = resolve_config(a.config, overrides)
    from trainlab.api import lr_find  # after the config resolved: a config error never imports the engine

    result = lr_find(config=config_to_dict(cfg), seeds=a.seeds, min_lr=a.min_lr, max_lr=a.max_lr, steps=a.steps,
                     run_dir=a.run)
    for sw in result.sweeps:
        found = "none" if sw.suggestion is None else f"{sw.suggestion:.2g}"
        print(f"seed {sw.seed}: suggested {found} ({len(sw.lrs)} steps; stopped: {sw.stop_reason})")
    print(result.summary_line())
    if result.suggestion is not None:
        print(f"try: trainlab train{f' --config {a.config}' if a.config and not a.run else ''} "
              f"--set optimizer.lr={result.suggestion:.2g}")
    if a.run:
        print(f"lr_find: {result.path}")
        report = Path(a.run) / "report.html"
        if report.is_file():
            print(f"report: {report}")
    return 0


def _check_rebuildable(run: str, cfg: dict[str, Any]) -> None:
    """A run on a user module or in-memory data cannot be swept from the command line: say where to do it."""
    from trainlab.errors import ConfigError

    if (cfg.get("data") or {}).get("name") == "memory":
        raise ConfigError(f"run must have been trained on a named dataset for 'trainlab lr-find --run'. Got {run!r}, "
                          "trained on in-memory data from Python. Call tl.lr_find(model, data, run_dir=...) instead.")
    from trainlab.train.checkpoint import load_checkpoint

    for name in ("last.pt", "best.pt"):
        path = Path(run) / "checkpoints" / name
        custom = (load_checkpoint(path).get("data") or {}).get("custom_model") if path.is_file() else None
        if custom:
            raise ConfigError(f"run must have trained a built-in model for 'trainlab lr-find --run'. Got {run!r}, which "
                              f"trained your module {custom}. Call tl.lr_find({custom}(), data, run_dir=...) instead.")
        if path.is_file():
            return


def cmd_study(a: argparse.Namespace) -> int:
    from trainlab.errors import ConfigError, problem
    from trainlab.search.results import summarize

    if a.top < 1:  # was: no rows for 0, the last row dropped for -1
        raise ConfigError(problem("--top", "at least 1", a.top, "Use e.g. --top 10"))
    _print_search(summarize(a.search), a.top)
    return 0


def cmd_cv(a: argparse.Namespace) -> int:
    from trainlab.config import replace
    from trainlab.search.cv import cross_validate

    cfg = _resolve(a)
    result = cross_validate(replace(cfg, name=a.name) if a.name else cfg, a.folds, verbose=not a.quiet)
    print(result.to_table())
    print(f"cv: {result.cv_dir}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from trainlab.config import config_to_yaml, parse_override, resolve_config

    if (a.nproc_per_node != 1 or a.nnodes != 1) and not (a.print_config or a.print_model):
        from trainlab.train import distributed

        if not distributed.from_env().active:
            return _launch_torchrun(a)

    overrides = [*a.overrides, *_named_args(a, ("data_dir", "data.dir"), ("name", "name"))]
    if a.resume and a.config:  # was: the file silently ignored
        from trainlab.errors import ConfigError, problem

        raise ConfigError(problem("--config", "left out with --resume (a resumed run keeps its own config.yaml)",
                                  a.config, "Change what may change with --set, e.g. --set epochs=20"))
    if a.resume:
        kwargs = dict(resume_dir=a.resume, overrides=dict(o if isinstance(o, tuple) else parse_override(o)
                                                          for o in overrides))
        if a.print_model:
            return _print_model(None, a.resume)
    else:
        cfg = resolve_config(a.config, overrides)
        if a.print_config:
            print(config_to_yaml(cfg), end="")
            return 0
        if a.print_model:
            return _print_model(cfg, None)
        kwargs = dict(cfg=cfg)
    painter = _start_painter(a)  # before anything imports torch (trainlab.train does)
    _start_cuda(kwargs)
    try:
        with _sigterm_stops_the_run():
            return _train(a, kwargs, painter)
    finally:
        if painter is not None:
            painter.close()


def _print_model(cfg: Any, run: str | None) -> int:
    """``trainlab train --print-model``: the layer table of the model the config builds for its data, or of a run's
    model as its summary.json keeps it; no run directory is made."""
    from trainlab.models import ModelTable
    from trainlab.train.run import prepare, read_run_config

    if run is not None:
        cfg = read_run_config(run)  # the directory checked first: one line when it is not a run
        from trainlab import files

        try:  # missing or damaged (a killed run): the table is built again from the run's config
            summary = files.read_json(Path(run) / "summary.json", missing={})
        except (OSError, files.DamagedFileError):
            summary = {}
        if summary.get("model_table"):
            print(ModelTable.from_json(summary["model_table"]))
            return 0
        if summary.get("custom_model"):
            from trainlab.errors import CheckpointError

            raise CheckpointError(f"run must keep its model's layer table in summary.json. Got {run!r}, a run of "
                                  f"your module {summary['custom_model']} trained before trainlab kept it. Print "
                                  f"tl.summary(model, input_shape) for your module instead.")
    print(prepare(cfg).table)
    return 0


@contextlib.contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """SIGTERM during ``trainlab train`` raises :class:`Terminated` in the main thread, once: the run then stops as
    Ctrl-C stops it (summary and last checkpoint kept) and says so. A second SIGTERM while it finishes is ignored
    (SIGKILL still ends it); the handler that was there comes back afterwards."""

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _start_painter(a: argparse.Namespace) -> Painter | None:
    """Picture workers for a run that draws a report in this one process (trainlab.report.painter says why):
    their server imports matplotlib on another core while this process imports torch. None: draw here."""
    if a.no_report or a.nproc_per_node != 1 or a.nnodes != 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    from trainlab.report.painter import start_painter

    return start_painter()


def _start_cuda(kwargs: dict[str, Any]) -> None:
    """A GPU run's CUDA context, started in a thread beside the torch import that follows (trainlab.gpu_start).
    A resumed run's device is the one --set device= names, else the one in its config.yaml."""
    from trainlab import gpu_start

    if "cfg" in kwargs:
        device = kwargs["cfg"].device
    else:
        device = kwargs["overrides"].get("device") or _stored_device(kwargs["resume_dir"])
    if isinstance(device, str):
        gpu_start.start(device)


def _stored_device(run_dir: str) -> Any:
    """The ``device`` in a run's config.yaml (read without torch), or None where it cannot be read: the resume
    itself reads that file again and says, in one line, what is wrong with it."""
    import yaml

    from trainlab import files

    try:
        raw = files.parse_yaml((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TrainlabError, yaml.YAMLError):
        return None
    return raw.get("device") if isinstance(raw, dict) else None


def _train(a: argparse.Namespace, kwargs: dict[str, Any], painter: Painter | None) -> int:
    from trainlab.train import distributed

    if not distributed.from_env().main:
        a.quiet = True  # another rank of a distributed run: rank 0 prints (and writes) everything
    # Imported only now: the workflow pulls in the report and diagnosis modules (matplotlib among them),
    # which --print-config and a config error never need.
    from trainlab.diagnose.verdict import format_diagnosis
    from trainlab.workflow import run

    try:
        outcome = run(**kwargs, report=not a.no_report, verbose=not a.quiet, painter=painter)
    except TrainlabError as exc:
        if not distributed.from_env().main:
            return 1 if isinstance(exc, TrainingError) else 2  # rank 0 says it (or, if it is gone, the launcher)
        if not isinstance(exc, TrainingError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "outcome", None) is not None:
            print(format_diagnosis(exc.outcome.diagnosis))
            if exc.outcome.report:
                print(f"report: {exc.outcome.report}")
        return 1
    if outcome.diagnosis is None:  # another rank of a distributed run
        return 0
    _print_result(outcome.result.summary, outcome.run_dir)
    print(format_diagnosis(outcome.diagnosis))
    if outcome.report:
        print(f"report: {outcome.report}")
    return 0


DDP_FLAGS = ("--nproc-per-node", "--nnodes", "--node-rank", "--master-addr", "--master-port")


def _launch_torchrun(a: argparse.Namespace) -> int:
    """``trainlab train --nproc-per-node N …``: the same command under torchrun (torch.distributed.run), N
    processes here (× --nnodes machines), each running ``python -m trainlab train`` with the other arguments."""
    import socket
    import subprocess

    from trainlab.errors import ConfigError, problem

    for flag, value, low in (("--nproc-per-node", a.nproc_per_node, 1), ("--nnodes", a.nnodes, 1)):
        if value < low:
            raise ConfigError(problem(flag, f"at least {low}", value, "Give a positive number of processes"))
    if not 0 <= a.node_rank < a.nnodes:
        raise ConfigError(problem("--node-rank", f"0 … {a.nnodes - 1} (--nnodes {a.nnodes})", a.node_rank,
                                  "Number the machines from 0; the one with rank 0 serves --master-addr"))
    # One machine, no port given: torchrun's --standalone rendezvous binds a free port itself, the moment it listens.
    # A port picked here and bound later by rank 0 (seconds on, after its torch import) could be taken meanwhile
    # (seen: EADDRINUSE with two test workers starting servers beside it).
    standalone = a.nnodes == 1 and a.master_port is None
    port = a.master_port if a.master_port is not None else 29500
    if not 1 <= port <= 65535:
        raise ConfigError(problem("--master-port", "a port number 1 … 65535", port, "Use e.g. --master-port 29500"))
    if a.node_rank == 0 and not standalone:  # the rendezvous binds this port on rank 0's machine: say so now if taken
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                raise ConfigError(problem("--master-port", "a free port on this machine", port,
                                          "Pick another with --master-port, or stop what listens there")) from None
    rest, skip = [], False
    for arg in a.argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in DDP_FLAGS:
            skip = "=" not in arg
            continue
        rest.append(arg)
    where = (["--standalone"] if standalone else
             [f"--nnodes={a.nnodes}", f"--node-rank={a.node_rank}", f"--master-addr={a.master_addr}",
              f"--master-port={port}"])
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={a.nproc_per_node}", *where,
           "-m", "trainlab", *rest]
    env = dict(os.environ)
    # torchrun sets 1 thread per process and prints a banner saying so unless it is set: the cores shared out
    env.setdefault("OMP_NUM_THREADS", str(max((os.cpu_count() or 1) // a.nproc_per_node, 1)))
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) as proc:
        said = _relay_stderr(proc.stderr)  # the processes' own stderr (they inherit this pipe), torchrun's left out
    if proc.returncode and not said:  # no process said why (the one that would is gone): one line here
        print(f"error: every process of a distributed run must stay up until it ends. Got one stopped (torchrun "
              f"exit {proc.returncode}). Resume from its last checkpoint: trainlab train --resume runs/<run>",
              file=sys.stderr)
    return 2 if proc.returncode and not said else proc.returncode



# torchrun's own log lines (glog form: "E1205 07:37:51.703000 13195 file.py:1002] ...") and the ChildFailedError
# report it prints when a process fails: the processes' one-line errors say what happened, in trainlab's words.
_TORCHRUN_LOG = __import__("re").compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")


def _relay_stderr(stream: Any) -> bool:
    """Copy the processes' stderr lines through, leaving torchrun's own out; True when one said ``error: …``."""
    said, held = False, []
    for line in stream:
        if _TORCHRUN_LOG.match(line):
            continue
        if held or line.startswith("Traceback (most recent call last):"):
            held.append(line)  # a traceback: torchrun's report of a failed process, or a process's own crash
            continue
        said = said or line.startswith("error: ")
        sys.stderr.write(line)
    if held and not any("torch.distributed.elastic" in line for line in held):
        sys.stderr.writelines(held)  # not torchrun's: a process's own traceback stays visible
    return said


def cmd_report(a: argparse.Namespace) -> int:

    from trainlab.diagnose.verdict import diagnose_run, format_diagnosis
    from trainlab.report import write_report
    from trainlab.train.run import check_run_files, read_run_config

    read_run_config(a.run)  # one clear line if this is not a run directory
    check_run_files(a.run)  # and for a damaged file it reads, before diagnosis.json and the pictures are rewritten
    print(format_diagnosis(diagnose_run(a.run)))
    print(f"report: {write_report(a.run)}")
    return 0


def cmd_fix(a: argparse.Namespace) -> int:
    from trainlab.remedy import fix, format_fix

    result = fix(a.run, verbose=not a.quiet, report=not a.no_report)
    print(format_fix(result))
    return 1 if result.error else 0


def cmd_compare(a: argparse.Namespace) -> int:
    from trainlab.report import compare_runs

    print(f"compare: {compare_runs(a.runs, a.out)}")
    return 0


def _test_line(t: dict[str, Any], every_score: bool = False) -> str:
    """The test scores in one line; a classifier's balanced accuracy and macro F1 with ``every_score``, else the
    balanced accuracy only where it differs from the accuracy (as the report's test card)."""
    from trainlab.train.metrics import BALANCED_SHOWN

    acc = f"  acc {t['test_acc']:.4f}" if t["test_acc"] is not None else ""
    if "balanced_acc" in t and every_score:
        acc += f"  balanced acc {t['balanced_acc']:.4f}  macro F1 {t['macro_f1']:.4f}"
    elif "balanced_acc" in t and abs(t["balanced_acc"] - t["test_acc"]) >= BALANCED_SHOWN:
        acc += f"  balanced acc {t['balanced_acc']:.4f}"
    return f"test (best epoch {t['epoch']}, {t['n']} examples): loss {t['test_loss']:.4f}{acc}"


def _print_result(s: dict[str, Any], run_dir: Any) -> None:
    t = s.get("test")
    if t:
        print(_test_line(t))
    elif s.get("test_error"):
        print(f"test: not scored: {s['test_error']}")
    print(f"stopped: {s['stop_reason']} · {s['wall_time']:.1f}s · run: {run_dir}")


def cmd_evaluate(a: argparse.Namespace) -> int:
    from trainlab.train.inference import evaluate_run

    r = evaluate_run(a.run, batch_size=a.batch_size)
    if a.json:
        print(json.dumps(r))
    else:
        from trainlab.train.metrics import format_report

        print(_test_line(r, every_score=True))
        if r.get("per_class"):
            print(format_report(r))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from trainlab.train.inference import IMAGE_SUFFIXES, predict_run

    rows = predict_run(a.run, a.inputs, batch_size=a.batch_size)
    if a.json:
        for r in rows:
            print(json.dumps(r))
    elif all(Path(i).suffix.lower() in IMAGE_SUFFIXES for i in a.inputs):
        for r in rows:
            top = sorted(r.get("probabilities", {}).items(), key=lambda kv: -kv[1])[:3]
            p = f" ({r['probability']:.1%})  top-3: " + ", ".join(f"{k} {v:.1%}" for k, v in top) if top else ""
            print(f"{r['input']}: {r['class']}{p}")
    else:  # tabular input → CSV rows out, one column per class probability
        import csv

        flat = [{**{k: v for k, v in r.items() if k != "probabilities"},
                 **{f"p_{k}": v for k, v in r.get("probabilities", {}).items()}} for r in rows]
        w = csv.DictWriter(sys.stdout, list(flat[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(flat)
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from trainlab.export import export_run

    print(f"export: {export_run(a.run, a.format, a.out)}")
    return 0


def cmd_lesson(a: argparse.Namespace) -> int:
    from trainlab.lessons import LESSONS, run_all, run_lesson

    if a.lesson_verb == "run":
        if a.name == "all":
            print(f"index: {run_all(a.out or 'lessons', a.seed, a.quick)}")
            return 0
        md, result = run_lesson(a.name, a.out, a.seed, a.quick)
        print(result.conclusion)
        print(f"lesson: {md}")
        return 0
    for name, entry in LESSONS.items():
        print(f"{name:<20} {entry.title} — {entry.claim}")
    return 0


def cmd_playground(a: argparse.Namespace) -> int:
    from trainlab.playground import serve

    serve(a.host, a.port, allow_remote=a.allow_remote, runs_dir=a.runs_dir)
    return 0


def cmd_datasets(a: argparse.Namespace) -> int:
    from trainlab.config import DataConfig
    from trainlab.data import describe_datasets

    if a.data_dir and not Path(a.data_dir).expanduser().is_dir():  # was: ignored, every dataset listed as missing
        from trainlab.errors import DataError

        raise DataError(f"--data-dir must be an existing directory. Got {a.data_dir!r}. Create it, fix the path, or "
                        "leave it out to search $TRAINLAB_DATA and ~/.cache/trainlab.")
    rows = describe_datasets(DataConfig(dir=a.data_dir) if a.data_dir else None)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        sizes = ", ".join(f"{k} {v}" for k, v in (r.get("sizes") or {}).items())
        where = r.get("location") or r.get("hint") or (f"not found; downloads from {r['download']}"
                                                        if r.get("download") else "not found")
        mark = "✓" if r.get("available") else "·"
        print(f"{mark} {r['name']:<14} {r['kind']:<8} {sizes:<26} {where}")
    return 0


def cmd_names(a: argparse.Namespace) -> int:
    print(_registry_help())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    program = argv is None
    if program:  # the program itself, not a caller in Python (a test, a notebook) that lives on
        # At exit Python collects garbage over every object torch and matplotlib made (~0.2 s of the ~0.4 s a
        # `trainlab train` took to end after its last line). Frozen objects are skipped; the operating system
        # frees the memory anyway. Registered first, so it runs after every other exit handler.
        atexit.register(gc.freeze)
    argv = list(sys.argv[1:] if argv is None else argv)
    # The registry listing imports torch; build it only when help is asked for.
    parser = _parser(_registry_help()) if {"-h", "--help"} & set(argv) else _parser()
    a = parser.parse_args(argv)
    a.argv = argv  # the command line as given: a distributed train passes it on to every process
    if a.verb is None:

        parser.print_help()
        return 2
    handler = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "datasets": cmd_datasets,
               "names": cmd_names, "report": cmd_report, "fix": cmd_fix, "compare": cmd_compare, "export": cmd_export,
               "lesson": cmd_lesson, "search": cmd_search, "study": cmd_study, "cv": cmd_cv,
               "playground": cmd_playground, "lr-find": cmd_lr_find}[a.verb]
    code = _dispatch(handler, a)
    if program and a.verb == "train":
        _end_program(code)
    return code


def _terminated(exc: Terminated) -> int:
    """The one line a SIGTERM-stopped ``trainlab train`` prints (by process 0 alone in a distributed run, where it
    is what torchrun does to the others when one process fails); exit 143, as a process ended by SIGTERM."""
    from trainlab.train import distributed

    ranks = distributed.from_env()
    if not ranks.main:
        return 143
    during = f" during epoch {exc.epoch}" if exc.epoch else ""
    where = f"trainlab train --resume {exc.run_dir}" if exc.run_dir else "trainlab train --resume runs/<run>"
    resume = (f"Resume from its last checkpoint (epoch {exc.kept}): {where}" if exc.kept else
              "No epoch had finished, so no checkpoint was written: start it again" if exc.run_dir else
              f"Resume from its last checkpoint: {where}")
    if ranks.active:
        print(f"error: every process of a distributed run must stay up until it ends. Got this one stopped (SIGTERM)"
              f"{during}: torchrun stops the others when one fails, or the run was killed. {resume}", file=sys.stderr)
    else:
        print(f"stopped (SIGTERM){during}; the run so far is kept. {resume}", file=sys.stderr)
    return 143


def _end_program(code: int) -> None:
    """Exit now with ``code``, skipping the interpreter's teardown of every module and object (~0.15 s of the
    ~0.2 s a `trainlab train` took to end after its last line, on the 2-core machine): exit handlers run and
    the output is flushed first, as at a normal exit, and every file trainlab writes is closed by then. Only
    where this is the last thread: another thread (a user's callback may start one) is joined by a normal exit."""
    import threading

    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass
    os._exit(code)


def _dispatch(handler: Any, a: argparse.Namespace) -> int:
    """Run the verb; a trainlab error or a storage problem becomes one line on stderr and its exit code."""
    try:
        return handler(a)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TrainlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        return _terminated(exc)
    except OutputClosed as exc:
        resume = f": trainlab train --resume {exc.run_dir}" if exc.run_dir else ""
        print(f"stopped: the reader of trainlab's output went away; the run so far is kept and can be resumed{resume}",
              file=sys.stderr)
        return 141
    except BrokenPipeError:  # the reader went away while a verb printed: what it wanted has been read
        drop_stdout()
        return 141
    except OSError as exc:  # a full, read-only or foreign disk under a write no helper wrapped: one line too
        from trainlab.files import storage_error

        err = storage_error(exc.filename or "a file trainlab writes", exc)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
