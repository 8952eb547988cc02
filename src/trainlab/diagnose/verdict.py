"""The verdict on a run: every rule of :mod:`trainlab.diagnose.rules` over its metrics, one headline.

``diagnose`` works on plain data (a live caller passes what it holds); ``diagnose_run`` reads a run
directory and writes ``diagnosis.json`` = ``{"verdict": rule id, "findings": [finding, ...]}``;
``format_diagnosis`` gives the lines printed at the end of training.
"""
from __future__ import annotations

from dataclasses import dataclass, replace, field
from pathlib import Path
from typing import Any, Callable, Sequence

from trainlab.diagnose.rules import (FIT_JUDGED_LATER_BESIDE, FIT_JUDGED_LATER_BESIDE_ERROR, FIT_RULES,
                                     NOT_BESIDE_MEMORIZATION, RULE_IDS, RULES, SEVERITY_RANK, Finding, RunContext,
                                     Thresholds)
from trainlab import files
from trainlab.diagnose.stats import read_layers
from trainlab.errors import CheckpointError
from trainlab.train.checkpoint import checkpoint_data
from trainlab.train.lr_find import read_lr_find

ICONS = {"error": "✖", "warning": "⚠", "info": "ℹ"}


@dataclass(frozen=True)
class Diagnosis:
    """The headline rule id (the most severe finding, ties broken by rule priority) and every finding."""

    verdict: str
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings]}

    def rules(self) -> list[str]:
        """The ids of the rules that fired, most severe first."""
        return [f.rule for f in self.findings]


def diagnose(history: Sequence[dict[str, Any]], layers: Sequence[dict[str, Any]], summary: dict[str, Any] | None,
             config: dict[str, Any] | None, *, n_classes: int | None = None,
             thresholds: Thresholds | None = None, lr_find: dict[str, Any] | None = None) -> Diagnosis:
    """Run every rule on a run's metrics rows, ``layers.jsonl`` rows, summary and config (plain dicts).

    ``n_classes`` sets the chance level for classification (unknown: 2, the most cautious); ``lr_find``: the
    run's ``lr_find.json``, whose suggestion the learning-rate remedies then quote.
    """
    ctx = RunContext(list(history), list(layers), dict(summary or {}), dict(config or {}), n_classes,
                     thresholds or Thresholds(), lr_find)
    found = [f for rule in RULES if (f := rule(ctx)) is not None]
    if any(f.rule in FIT_JUDGED_LATER_BESIDE or (f.rule in FIT_JUDGED_LATER_BESIDE_ERROR and f.severity == "error")
           for f in found):
        judged_later = {r.__name__ for r in FIT_RULES}
        found = [f for f in found if f.rule not in judged_later]
    if any(f.rule == "memorization" for f in found):
        found = [f for f in found if f.rule not in NOT_BESIDE_MEMORIZATION]
    priority = {rule_id: i for i, rule_id in enumerate(RULE_IDS)}
    found.sort(key=lambda f: (SEVERITY_RANK[f.severity], priority[f.rule]))
    found = coherent(found, ctx.cfg)
    return Diagnosis(found[0].rule if found else "too_early", found)  # no finding at all: no finite epoch to judge


def coherent(findings: list[Finding], current: Any) -> list[Finding]:
    """One plan, not a list of contradictions: a finding whose remedy would move a config key the other way
    from a higher-ranked finding's remedy ("raise optimizer.lr" under "lower optimizer.lr") points to that
    remedy instead; one that moves it the same way to another value ("raise optimizer.lr to 0.003" under "raise
    optimizer.lr to 0.01") leaves that key to the higher-ranked remedy, whose value its --set line carries.
    ``current(key)`` gives the run's value of a key."""
    claimed: dict[str, Finding] = {}
    out = []
    for f in findings:
        moves = {k: _direction(claimed[k].sets[k], current(k)) * _direction(v, current(k))
                 for k, v in f.sets.items() if k in claimed}
        clash = next((k for k, m in moves.items() if m < 0), None)
        if clash is not None:
            first = claimed[clash]
            f = replace(f, remedy=f"first apply the remedy of “{first.title}” above; this finding's own remedy "
                                  f"would move {clash} the other way", sets={})
        else:
            agree = [k for k, m in moves.items() if m > 0 and f.sets[k] != claimed[k].sets[k]]
            if agree:
                taken = ", ".join(f"{k}={claimed[k].sets[k]:g} from “{claimed[k].title}” above" for k in agree)
                f = replace(f, remedy=f"{f.remedy}; with {taken}",
                            sets={k: v for k, v in f.sets.items() if k not in agree})
            claimed.update({k: f for k in f.sets if k not in claimed})
        out.append(f)
    return out



def _direction(new: Any, now: Any) -> int:
    if isinstance(new, (int, float)) and isinstance(now, (int, float)) and not isinstance(new, bool):
        return (new > now) - (new < now)
    return 0  # not an ordered value: no direction to contradict


def _read_json(path: Path) -> Any:
    try:
        return files.read_json(path)
    except files.DamagedFileError:
        return None  # the verdict reads what it can; resume and report name a damaged summary.json


def _n_classes(run_dir: Path) -> int | None:
    """The class count the run's checkpoints record (None for regression or without a checkpoint)."""
    return checkpoint_data(run_dir).get("n_classes")


def diagnose_run(run_dir: str | Path, *, thresholds: Thresholds | None = None) -> Diagnosis:
    """Diagnose the run in ``run_dir`` from its files and write ``run_dir/diagnosis.json``."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise CheckpointError(f"run must contain metrics.jsonl. Got {str(run_dir)!r} without it. "
                              "Pass a directory written by 'trainlab train'.")
    history = files.read_jsonl(metrics)
    summary = _read_json(run_dir / "summary.json") or {}
    config_path = run_dir / "config.yaml"
    config = (files.parse_yaml(config_path.read_text()) or {}) if config_path.is_file() else {}
    diagnosis = diagnose(history, read_layers(run_dir), summary, config, n_classes=_n_classes(run_dir),
                         thresholds=thresholds, lr_find=read_lr_find(run_dir))
    files.write_json(run_dir / "diagnosis.json", files.json_safe(diagnosis.to_dict()), indent=2)
    return diagnosis


def set_args(sets: dict[str, Any]) -> str:
    """A remedy's config changes as the command line takes them: ``--set optimizer.lr=0.01 --set model.hidden=[64]``."""
    return " ".join(f"--set {k}={_yaml(v)}" for k, v in sets.items())


def _yaml(v: Any) -> str:
    """A value as ``--set`` parses it back (YAML): true/false, [a,b] without spaces (one shell word), and floats
    with a mantissa dot (YAML reads ``1e-05`` as a string, ``1.0e-05`` as a number)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = f"{v:g}"
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_yaml(x) for x in v) + "]"
    return str(v)


def format_diagnosis(d: Diagnosis, fix: Callable[[dict[str, Any]], str] = set_args) -> str:
    """``verdict: <id>`` then one line per finding: ``⚠ Overfitting — <message>. Try: <remedy>``, followed by the
    remedy's config changes as ``fix(sets)`` renders them (``--set …`` for the CLI, keywords for ``tl.fit``)
    where the remedy does not already spell them out."""
    lines = [f"verdict: {d.verdict}"]
    for f in d.findings:
        changes = fix(f.sets) if f.sets else ""
        # a remedy that already spells the change out ("… --resume RUN --set epochs=20") is not followed by it again
        lines.append(f"{ICONS.get(f.severity, '-')} {f.title} — {f.message}. Try: {f.remedy}"
                     + (f" → {changes}" if changes and changes not in f.remedy else ""))
    return "\n".join(lines)
