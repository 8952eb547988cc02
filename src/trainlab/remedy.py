"""``trainlab fix runs/<run>`` (``tl.fix``, ``run.fix()``): try the verdict's top remedy as a new run and judge it.

The run is diagnosed again; its top-ranked problem (the first finding of severity error or warning: the
verdict ranks causes before symptoms) must carry its remedy as config changes (``finding.sets``). Those are
applied to the run's saved config, validated like ``--set``, and trained as ``<run>-fix`` beside it with the
same seed, data and split. Before → after compares the validation metrics of the two best checkpoints (the
weights each run keeps), and the outcome is data: ``fix.json`` in both run directories (the same record,
under ``fix_tried`` in the parent and ``fixed_from`` in the new run), a section in both reports.

Two remedies change a user's module instead of the config (no config key reaches it), in a copy of the module
given: symmetric initialisation is tried by re-initialising the layers the finding names with their own
``reset_parameters()`` (PyTorch's default random init, seeded by the run's seed); underfitting under heavy
dropout (p >= 0.5) by lowering those dropout layers' p to ``LIGHT_DROPOUT``.

Decided here: when the top problem has no config remedy (a user module's architecture, the labels, the data)
nothing is trained and a :class:`FixError` names it (exit 2): the findings below it are usually its symptoms,
and trying their remedies would judge a remedy for the wrong cause. Info findings (good fit, still improving)
are not problems: "nothing to fix".

A fix run that itself stops on NaN/Inf because the learning rate is still too high (its own verdict's top cause,
with a lower optimizer.lr as its remedy) is followed up, up to ``MAX_FOLLOW_UPS`` times, each as a new run
``<run>-fix2``, ``-fix3`` …: "lower the lr" means "lower it until the run stays finite", and one ÷10 is not
always enough (lr ×100 on a regression: ÷10 still diverged in 5 diagnosis benchmark runs). The diverged tries are
kept on disk and listed in the record (``diverged``); the judged run is the last one.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from trainlab.config import TrainConfig, replace
from trainlab.data import DataBundle
from trainlab.diagnose.rules import Finding
from trainlab.diagnose.verdict import diagnose_run
from trainlab.errors import ConfigError, DataError, FixError, TrainingError
from trainlab.files import write_json
from trainlab.models import device_of
from trainlab.train.checkpoint import seed_rng
from trainlab.train.run import check_run_files, read_run_config

FIX_FILE = "fix.json"
# A regression's fix helps when the best validation loss falls by ≥ 5 %: the verdict rules treat smaller loss
# changes as noise (Thresholds.loss_floor).
MIN_LOSS_GAIN = 0.05
# Each follow-up lowers the lr by its finding's factor (÷10): three reach ÷10⁴ of the run's lr, past any fault the
# diagnosis benchmark plants (×100), and a run that diverges in epoch 1 costs a few updates only.
MAX_FOLLOW_UPS = 3


@dataclass(frozen=True)
class FixResult:
    """What ``fix`` did: the finding whose remedy it tried (None: nothing to fix), the new run, and the
    validation metrics of both best checkpoints with the judgement. ``outcome`` is the new run's
    ``workflow.Outcome`` (None when nothing was trained)."""

    parent: Path
    run_dir: Path | None = None
    rule: str | None = None
    title: str | None = None
    remedy: str | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # the judged metric: val_acc (classification) or val_loss
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    improved: bool | None = None
    judgement: str = ""
    error: str | None = None  # the fix run stopped on NaN/Inf
    diverged: list[dict[str, Any]] = field(default_factory=list)  # earlier tries that stopped on NaN/Inf
    action: str | None = None  # a remedy applied to the user's module rather than the config (see MODULE_REMEDIES)
    outcome: Any = field(default=None, repr=False, compare=False)
    run: Any = field(default=None, repr=False, compare=False)  # the new run as a trainlab.Run (from Run.fix)

    @property
    def nothing_to_fix(self) -> bool:
        return self.rule is None

    def to_dict(self) -> dict[str, Any]:
        """The record written to ``fix.json``: under ``fix_tried`` in the parent, ``fixed_from`` in the new run."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("outcome", "run")}
        return {**d, "parent": str(self.parent), "run_dir": str(self.run_dir) if self.run_dir else None,
                "parent_name": self.parent.name, "fix_name": self.run_dir.name if self.run_dir else None}


def val_metrics(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The validation metrics of a run's best checkpoint (``summary["best_val"]``), None without a finite one."""
    best = summary.get("best_val") or {}
    loss = best.get("val_loss")
    if not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return None
    return {"epoch": best.get("epoch"), "val_loss": float(loss), "val_acc": best.get("val_acc"),
            "n_val": (summary.get("data") or {}).get("val")}


def judge(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[str, bool | None, str]:
    """(judged metric, improved, one line) from two runs' best validation metrics; improved is None where the two
    runs' metrics measure different things (a regression on class labels fixed into a classifier)."""
    if before is not None and after is not None and (before.get("val_acc") is None) != (after.get("val_acc") is None):
        reg, clf = (before, after) if after.get("val_acc") is not None else (after, before)
        return "val_acc", None, (f"not judged: one run is a regression (val loss {reg['val_loss']:.4g}, a squared "
                                 f"error), the other a classifier (val accuracy {clf['val_acc']:.2f}, val loss "
                                 f"{clf['val_loss']:.3g}, a cross-entropy): compare their predictions")
    classification = (after or before or {}).get("val_acc") is not None
    metric = "val_acc" if classification else "val_loss"
    name = "val accuracy" if classification else "val loss"
    if after is None:
        got = f"{name} {_fmt(before, metric)} → no finite epoch" if before else "no finite epoch before or after"
        return metric, False, f"did not help: {got}"
    if before is None:
        return metric, True, f"improved: the run had no finite epoch; now {name} {_fmt(after, metric)}"
    b, a = before[metric], after[metric]
    arrow = f"{name} {_fmt(before, metric)} → {_fmt(after, metric)}"
    if classification:
        n = int(after.get("n_val") or before.get("n_val") or 1)
        p = (a + b) / 2
        # Two accuracies on the same n examples differ by about sqrt(2 p (1 - p) / n) when the runs are equally
        # good (one standard error of the difference; at least one example): a smaller gain is not evidence.
        margin = max(math.sqrt(2 * p * (1 - p) / n), 1 / n)
        improved = a - b >= margin
        loss = f" (val loss {before['val_loss']:.3g} → {after['val_loss']:.3g})"
        if improved:
            return metric, True, f"improved {arrow}{loss}"
        return metric, False, (f"did not help: {arrow}{loss}; a change under ±{margin:.2f} on {n} validation "
                               "examples is within chance")
    improved = a <= (1 - MIN_LOSS_GAIN) * b
    if improved:
        return metric, True, f"improved {arrow}"
    return metric, False, f"did not help: {arrow} (under the {MIN_LOSS_GAIN:.0%} fall that counts)"


def _fmt(m: dict[str, Any], metric: str) -> str:
    return f"{m[metric]:.2f}" if metric == "val_acc" else f"{m[metric]:.4g}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def top_problem(findings: list[Finding]) -> Finding | None:
    """The top-ranked finding of severity error or warning (None: nothing to fix)."""
    return next((f for f in findings if f.severity != "info"), None)


def _custom_model(parent: Path, summary: dict[str, Any]) -> str | None:
    if "custom_model" in summary:
        return summary["custom_model"]
    from trainlab.train.checkpoint import checkpoint_data

    return checkpoint_data(parent).get("custom_model")  # runs written before summary.json recorded it


def _bundle(cfg: TrainConfig, data: Any, data_args: dict[str, Any], parent: Path) -> DataBundle | None:
    """The fix run's data: None (loaded from the config, same seed → same split), or the caller's in-memory
    data split again exactly as ``tl.fit`` did."""
    if cfg.data.name != "memory":
        return None
    if data is None:
        raise FixError(f"data must be passed again to fix {parent.name}: it trained on data passed from Python "
                       "(data.name='memory'), which its run directory does not hold. Got none. In Python use "
                       "run.fix(), or tl.fix(run_dir, data=(X, y), val=..., model=...) with the data fit was given.")
    from trainlab.data.memory import bundle_from_data, unwrap_loader

    args = {"val": cfg.data.val_fraction, **data_args}
    if cfg.data.task != "auto":  # a remedy's data.task (a regression on class labels) over the task fit was given
        args["task"] = cfg.data.task
    for key in ("val", "test"):  # DataLoaders stand for their datasets, as in tl.fit (the run's config has the rest)
        args[key] = unwrap_loader(args.get(key), key)[0]
    data = unwrap_loader(data, "data")[0]
    return bundle_from_data(data, seed=cfg.seed, stratify=cfg.data.stratify, normalize=cfg.data.normalize,
                            workers=cfg.speed.workers, **args)


def _check_same_sizes(bundle: DataBundle | None, summary: dict[str, Any], parent: Path) -> None:
    sizes = summary.get("data") or {}
    if bundle is None or not sizes:
        return
    got = {"train": len(bundle.train), "val": len(bundle.val)}
    if any(sizes.get(k) not in (None, v) for k, v in got.items()):
        raise DataError(f"data must be what {parent.name} trained on ({sizes.get('train')} training and "
                        f"{sizes.get('val')} validation examples). Got {got['train']} and {got['val']}. Pass the same "
                        "data and val= as to fit.")


def _value(cfg: TrainConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _top_remedy(parent: Path, summary: dict[str, Any],
                model: nn.Module | None) -> tuple[Finding | None, str, ModuleRemedy | None]:
    """(the finding whose remedy to try, "", its remedy for the user's module when it has one instead of config
    changes), (None, why there is nothing to fix, None), or a FixError line."""
    diagnosis = diagnose_run(parent)
    top = top_problem(diagnosis.findings)
    if top is None:
        head = diagnosis.findings[0] if diagnosis.findings else None
        why = f"{head.title}: {head.message}" if head else f"verdict {diagnosis.verdict}"
        return None, f"nothing to fix — {why}", None
    custom = _custom_model(parent, summary)
    module_remedy = _module_remedy(top) if custom is not None else None
    if not top.sets and module_remedy is None:
        raise FixError(f"the top finding, {top.title} ({top.rule}), has no remedy fix can apply as config changes: "
                       f"{top.remedy}. Apply it by hand and train again.")
    model_keys = sorted(k for k in top.sets if k.startswith("model."))
    if custom is not None and model_keys:
        raise FixError(f"the remedy of {top.title} ({top.rule}) sets {', '.join(model_keys)}, which your own "
                       f"nn.Module {custom} does not read: {top.remedy}. Change the module by hand and fit again.")
    if custom is not None and model is None:
        raise FixError(f"model must be passed again to fix {parent.name}: it trained your own nn.Module {custom}, "
                       f"which its run directory does not hold. Got none. In Python use run.fix(), or "
                       f"tl.fix(run_dir, model={custom}()).")
    return top, "", module_remedy


def _reset_layers(model: nn.Module, top: Finding, seed: int) -> tuple[nn.Module, str]:
    """A copy of ``model`` whose layers named by ``top`` (symmetric_init's evidence) are re-initialised with their
    own ``reset_parameters()``, drawn from ``seed``; and what was done, in words."""
    device = device_of(model)
    fresh = copy.deepcopy(model).cpu()  # drawn on the CPU: the same seed gives the same weights on any device
    names = list(top.evidence.get("layers") or [])
    done = []
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG stream is left as it was
        seed_rng(seed)
        for name in names:
            try:
                layer = fresh.get_submodule(name)
            except AttributeError:  # the module itself is the layer: the preflight named it by its class
                layer = fresh if name == type(fresh).__name__ else None
            if layer is not None and hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
                done.append(name)
    if not done:
        raise FixError(f"the layers of {top.title} ({top.rule}) must be found in the module given to re-initialise "
                       f"them. Got none of {names} with reset_parameters() in {type(model).__name__}. "
                       f"{top.remedy[:1].upper()}{top.remedy[1:]}, by hand.")
    return fresh.to(device), f"reset_parameters() of {', '.join(done)} (seed {seed})"


LIGHT_DROPOUT = 0.2  # what fix lowers a user module's heavy dropout to (the verdict's remedy says 0.1-0.3)


def _lighter_dropout(model: nn.Module, top: Finding, seed: int) -> tuple[nn.Module, str]:
    """A copy of ``model`` whose dropout layers at or above the finding's heavy p drop ``LIGHT_DROPOUT`` instead."""
    fresh = copy.deepcopy(model)
    heavy = float(top.evidence["dropout_p"])
    kinds = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
    lowered = [name or type(m).__name__ for name, m in fresh.named_modules() if isinstance(m, kinds) and m.p >= heavy]
    if not lowered:
        raise FixError(f"the dropout layers of {top.title} ({top.rule}) must be found in the module given. Got no "
                       f"dropout module with p >= {heavy:g} in {type(model).__name__}. "
                       f"{top.remedy[:1].upper()}{top.remedy[1:]}, by hand.")
    for _, m in fresh.named_modules():
        if isinstance(m, kinds) and m.p >= heavy:
            m.p = LIGHT_DROPOUT
    return fresh, f"dropout p={LIGHT_DROPOUT:g} (was {heavy:g}) in {', '.join(lowered)}"


# A remedy fix applies to the user's own module: (module, finding, seed) → (new module, what was done, in words)
ModuleRemedy = Callable[[nn.Module, Finding, int], tuple[nn.Module, str]]
# Those remedies (no config key reaches a user's module), for a finding whose evidence names what to change:
# rule → (does it apply to this finding, the remedy)
MODULE_REMEDIES: dict[str, tuple[Callable[[Finding], bool], ModuleRemedy]] = {"symmetric_init": (lambda top: bool(top.evidence.get("layers")), _reset_layers),
                   "underfitting": (lambda top: top.evidence.get("dropout_p") is not None, _lighter_dropout)}


def _module_remedy(top: Finding) -> ModuleRemedy | None:
    """The module remedy of ``top`` (see MODULE_REMEDIES), or None."""
    entry = MODULE_REMEDIES.get(top.rule)
    return entry[1] if entry is not None and not top.sets and entry[0](top) else None


def _fix_config(cfg: TrainConfig, top: Finding, parent: Path) -> TrainConfig:
    """The parent's config with the remedy applied (validated as ``--set`` is), named ``<run>-fix`` beside it."""
    try:
        new = replace(cfg, **top.sets, name=f"{parent.name}-fix", out_dir=str(parent.parent))
    except ConfigError as exc:  # every rule's sets are tested valid (tests/diagnose/test_fix.py): a bug if seen
        raise FixError(f"the remedy of {top.rule} must be valid config changes. Got {top.sets}: {exc}") from None
    if all(_value(new, k) == _value(cfg, k) for k in top.sets):
        raise FixError(f"the remedy of {top.title} ({top.rule}) must change the config. Got {top.sets}, the run's "
                       f"own values: {top.remedy}. Apply it by hand and train again.")
    return new


def _lower_lr_again(outcome: Any, cfg: TrainConfig) -> float | None:
    """The lower lr a fix run that stopped on NaN/Inf asks for (its own top cause is lr_too_high), else None."""
    top = top_problem(outcome.diagnosis.findings) if outcome.diagnosis is not None else None
    lr = top.sets.get("optimizer.lr") if top is not None and top.rule == "lr_too_high" else None
    return lr if isinstance(lr, (int, float)) and 0 < lr < cfg.optimizer.lr else None


def fix(run_dir: str | Path, *, model: nn.Module | None = None, data: Any = None, verbose: bool = True,

        report: bool = True, console: Any = None, **data_args: Any) -> FixResult:
    """Apply the top remedy of ``run_dir``'s verdict as a new run beside it and judge it (see the module doc).

    ``model``: a fresh instance of the run's own ``nn.Module`` (needed when it trained one); ``data`` and
    ``data_args`` (``val``, ``test``, ``target``, ``task``): the in-memory data ``tl.fit`` was given, when it
    was. Raises FixError (one line) when the remedy is not a config change or the run cannot be rebuilt."""
    parent = Path(run_dir)
    cfg = read_run_config(parent)  # one line for a directory that is not a run
    check_run_files(parent)  # one line for a damaged file, before anything is trained or written
    summary = _read_json(parent / "summary.json")
    top, nothing, module_remedy = _top_remedy(parent, summary, model)
    if top is None:
        return FixResult(parent, judgement=nothing)
    action = None
    if module_remedy is not None:  # a user's module, given again (_top_remedy said so otherwise)
        model, action = module_remedy(model, top, cfg.seed)
        new_cfg = replace(cfg, name=f"{parent.name}-fix", out_dir=str(parent.parent))
    else:
        new_cfg = _fix_config(cfg, top, parent)
    bundle = _bundle(new_cfg, data, data_args, parent)
    _check_same_sizes(bundle, summary, parent)
    if verbose:
        print(f"fix: {top.title} ({top.rule}) — {top.remedy}", flush=True)
        tried = action or " ".join(f"{k}={v}" for k, v in top.sets.items())
        print(f"     trying {tried} as a new run beside {parent} (same seed {cfg.seed}, data and split)", flush=True)
    from trainlab.workflow import run

    sets, diverged = dict(top.sets), []
    # each try trains its module in place: a try at a lower lr after a NaN starts from these weights again, not
    # from the NaN ones the diverged try left (its pre-flight then failed in torch.histc)
    start = copy.deepcopy(model) if model is not None else None
    while True:
        error = None
        try:
            outcome = run(new_cfg, report=False, verbose=verbose, console=console, bundle=bundle,
                          model=copy.deepcopy(start) if diverged else model)
        except TrainingError as exc:  # a NaN in the fix run is an outcome to judge, not a failure of fix
            outcome, error = getattr(exc, "outcome", None), str(exc)
            if outcome is None:
                raise
        lower = _lower_lr_again(outcome, new_cfg) if error is not None and len(diverged) < MAX_FOLLOW_UPS else None
        if lower is None:
            break
        diverged.append({"run_dir": str(outcome.run_dir), "optimizer.lr": new_cfg.optimizer.lr, "error": error})
        sets["optimizer.lr"] = lower
        new_cfg = replace(new_cfg, **{"optimizer.lr": lower}, name=f"{parent.name}-fix{len(diverged) + 1}")
        if verbose:
            print(f"     the fix run stopped on NaN/Inf at optimizer.lr={diverged[-1]['optimizer.lr']:g}: "
                  f"trying optimizer.lr={lower:g}", flush=True)
    before, after = val_metrics(summary), val_metrics(_read_json(outcome.run_dir / "summary.json"))
    metric, improved, line = judge(before, after)
    if diverged:
        tries = ", ".join(f"{d['optimizer.lr']:g}" for d in diverged)
        line += f" (at optimizer.lr={sets['optimizer.lr']:g}: the tries at {tries} stopped on NaN/Inf)"
    result = FixResult(parent, outcome.run_dir, top.rule, top.title, top.remedy, sets, metric, before,
                       after, improved, line, error, diverged, action, outcome)

    for d, role in ((parent, "fix_tried"), (outcome.run_dir, "fixed_from")):
        # keyed by role: a fix of a fix is both (the latest try replaces an earlier one of the same parent)
        kept = {k: v for k, v in _read_json(d / FIX_FILE).items() if k in ("fix_tried", "fixed_from")}
        write_json(d / FIX_FILE, {**kept, role: result.to_dict()}, indent=2)

    if report:
        from trainlab.report import write_report

        # ``model``: the user's module as the architecture (load_run copies it and loads each run's weights);
        # None rebuilds a built-in model from each run's own config
        write_report(outcome.run_dir, model=model, bundle=outcome.result.prepared.bundle if outcome.result else bundle)
        same_data = all(getattr(cfg.data, k) == getattr(new_cfg.data, k) for k in ("normalize", "stratify", "task"))
        write_report(parent, model=model, bundle=bundle if same_data else _bundle(cfg, data, data_args, parent))
    return result


def format_fix(r: FixResult) -> str:
    """The lines ``trainlab fix`` prints at the end."""
    if r.nothing_to_fix:
        return r.judgement
    lines = [f"fix of {r.parent} → {r.run_dir}: {r.judgement}"]
    if r.error:
        lines.append(f"the fix run stopped: {r.error}")
    lines.append(f"recorded in {FIX_FILE} of both runs and in both reports")
    return "\n".join(lines)
