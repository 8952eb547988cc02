"""What a search leaves behind and ``trainlab study`` shows: trials.csv, best.yaml, a table, and plots.

``best.yaml`` is the base config with the best trial's values — including the base config's own ``epochs``
(trials may have used fewer), so ``trainlab train --config best.yaml`` trains the chosen config fully and
only then, once, looks at the test set.
"""
from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from trainlab import files
from trainlab.config import TrainConfig, config_to_yaml, resolve_config
from trainlab.errors import ConfigError
from trainlab.search.coarse_to_fine import ROUND_ATTR
from trainlab.search.space import SearchSpace
from trainlab.search.storage import load_study, local_storage

__all__ = ["SearchResult", "load_search", "summarize"]

PLOTS = ("history.png", "parallel_coordinates.png", "importance.png")


@dataclass
class SearchResult:
    """A search's study and what was written from it."""

    search_dir: Path
    study: optuna.Study
    space: SearchSpace
    metric: str
    direction: str
    rows: list[dict[str, Any]]  # one per trial, as in trials.csv
    best_config: TrainConfig | None  # None while no trial has completed
    plots: list[Path]
    wall_time: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("complete", "pruned", "fail", "running")}
        for r in self.rows:
            out[r["state"]] = out.get(r["state"], 0) + 1
        return out

    @property
    def best(self) -> dict[str, Any] | None:
        done = [r for r in self.rows if r["state"] == "complete"]
        if not done:
            return None
        sign = -1 if self.direction == "maximize" else 1
        return min(done, key=lambda r: sign * r["value"])

    def table(self, top: int = 10) -> str:
        """The ``top`` completed trials, best first, then a line counting trials by state."""
        done = sorted((r for r in self.rows if r["state"] == "complete"),
                      key=lambda r: (-1 if self.direction == "maximize" else 1) * r["value"])[:top]
        cols = ["rank", "trial", self.metric, *self.space.names, "epochs", "seconds"]
        body = [[str(i), str(r["trial"]), f"{r['value']:.4f}", *(_cell(r[p]) for p in self.space.names),
                 str(r["epochs_run"] or ""), f"{r['seconds']:.1f}" if r["seconds"] is not None else ""]
                for i, r in enumerate(done, start=1)]
        widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c) for i, c in enumerate(cols)]
        fmt = lambda cells: "  ".join(s.rjust(w) for s, w in zip(cells, widths))  # noqa: E731
        lines = [fmt(cols), fmt(["-" * w for w in widths]), *(fmt(b) for b in body)]
        c = self.counts
        lines.append(f"{len(self.rows)} trials: {c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed"
                     + (f", {c['running']} running" if c["running"] else ""))
        return "\n".join(lines)


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def _row(t: FrozenTrial, space: SearchSpace) -> dict[str, Any]:
    params = space.decode(t.params)
    return {"trial": t.number, "state": t.state.name.lower(),
            "value": t.value if t.state == TrialState.COMPLETE else None,
            **{name: params.get(name) for name in space.names},
            "round": t.user_attrs.get(ROUND_ATTR), "worker": t.user_attrs.get("worker"),
            "epochs_run": t.user_attrs.get("epochs_run"), "pruned_at": t.user_attrs.get("pruned_at"),
            "seconds": t.duration.total_seconds() if t.duration else None, "error": t.user_attrs.get("error")}


def load_search(search_dir: str | Path) -> tuple[dict[str, Any], optuna.Study, SearchSpace]:
    """``(spec, study, space)`` of a search directory; one clear line if it is not one."""
    d = Path(search_dir)
    spec_file = d / "search.json"
    if not spec_file.is_file():
        raise ConfigError(f"search must be a directory written by 'trainlab search'. Got {str(search_dir)!r} "
                          "without search.json. Pass runs/search-<name>.")
    spec = files.read_json(spec_file, fix="Restore search.json or start a new search with another --name")
    if not isinstance(spec, dict) or not {"name", "storage", "space", "metric", "direction"} <= set(spec):
        raise files.DamagedFileError(f"{spec_file} must be the search.json trainlab search wrote. Got one without "
                                     "its name, storage or space. Restore it or start a new search with another --name.")
    spec["storage"] = local_storage(spec["storage"], spec.get("search_dir", ""), d)
    study = load_study(spec["name"], spec["storage"], "Restore the journal from a copy, or start a new search with "
                       "another --name")
    return spec, study, SearchSpace.from_dict(spec["space"])


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    def write(f: Any) -> None:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows)

    files.write_atomic(path, write)


def _plots(study: optuna.Study, d: Path, metric: str) -> list[Path]:
    """Optuna's own matplotlib plots; each needs enough completed trials, so a missing one is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    makers = [("history.png", lambda: ovm.plot_optimization_history(study, target_name=metric), 1),
              ("parallel_coordinates.png", lambda: ovm.plot_parallel_coordinate(study, target_name=metric), 2),
              ("importance.png", lambda: ovm.plot_param_importances(study, target_name=metric), 3)]
    out = []
    for fname, make, needs in makers:
        if len(done) < needs:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = make()
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importance with one distinct value
                plt.close("all")
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(d / fname, dpi=90)
        plt.close(fig)
        out.append(d / fname)
    return out


def summarize(search_dir: str | Path, *, wall_time: float | None = None, plots: bool = True) -> SearchResult:
    """(Re)write ``trials.csv``, ``best.yaml`` and the plots of a search; return its :class:`SearchResult`."""
    d = Path(search_dir)
    spec, study, space = load_search(d)
    rows = [_row(t, space) for t in study.get_trials(deepcopy=False)]
    _write_csv(d / "trials.csv", rows)
    result = SearchResult(d, study, space, spec["metric"], spec["direction"], rows, None, [], wall_time)
    best = result.best
    if best is not None and math.isfinite(best["value"]):
        cfg = resolve_config(base=spec["config"], overrides={k: best[k] for k in space.names} | {"name": None})
        files.write_text(d / "best.yaml", f"# best of {len(rows)} trials in {d.name}: trial {best['trial']}, "
                         f"{spec['metric']} {best['value']:.4f}\n" + config_to_yaml(cfg))
        result.best_config = cfg
    if plots:
        result.plots = _plots(study, d, spec["metric"])
        if (d / "ranges.png").exists():
            result.plots.append(d / "ranges.png")
    return result
