"""Coarse-to-fine random search, driven through Optuna's ask/tell API.

Each round samples ``per_round`` configs uniformly (log-uniformly where ``log``) in the current ranges,
ranks the round's completed trials, and shrinks every numeric range to the span of the top-k values
widened on each side by ``margin`` × the current width (in log10 for log parameters), clipped to the
original range; categoricals keep the choices seen in the top-k. Every trial is asked from and told to
an ``optuna.Study``, so storage, parallel workers, dashboards and plots are shared with other methods.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import optuna
from matplotlib.figure import Figure

from trainlab.errors import ConfigError
from trainlab.search.space import Param, Range, SearchSpace

__all__ = ["CoarseToFine", "CoarseToFineResult", "plot_ranges"]

ROUND_ATTR = "coarse_to_fine_round"  # trial user attribute: the 0-based round a trial belongs to


@dataclass
class CoarseToFineResult:
    """What a run found: the best trial overall, the ranges each round sampled in, and the study."""

    best_params: dict[str, Any]
    best_value: float
    ranges_per_round: list[dict[str, Range]]  # ranges_per_round[r]: where round r sampled
    best_per_round: list[float]  # nan for a round where no trial completed
    final_space: SearchSpace  # narrowed after the last round: where a further round would sample
    study: optuna.Study
    trials_per_round: list[list[int]] = field(default_factory=list)  # trial numbers in the study


class CoarseToFine:
    """``CoarseToFine(space, rounds=3, per_round=20, top_k=5).run(objective)`` → :class:`CoarseToFineResult`."""

    def __init__(self, space: SearchSpace, *, rounds: int = 3, per_round: int = 20, top_k: int = 5,
                 margin: float = 0.1, direction: Literal["maximize", "minimize"] = "maximize",
                 seed: int = 0) -> None:
        self.space = space
        self.rounds = rounds
        self.per_round = per_round
        self.top_k = top_k
        self.margin = margin
        self.direction = direction
        self.seed = seed

    def _check(self, study: optuna.Study | None) -> None:
        problems = []
        for name, value in (("rounds", self.rounds), ("per_round", self.per_round), ("top_k", self.top_k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a whole number >= 1. Got {value!r}. Use e.g. {name}=3.")
        if isinstance(self.top_k, int) and isinstance(self.per_round, int) and self.top_k > self.per_round:
            problems.append(f"top_k must be <= per_round ({self.per_round}). Got {self.top_k!r}. "
                            "Lower top_k or raise per_round.")
        if not isinstance(self.margin, (int, float)) or not 0 <= self.margin <= 1:
            problems.append(f"margin must be in [0, 1]. Got {self.margin!r}. Use e.g. margin=0.1.")
        if self.direction not in ("maximize", "minimize"):
            problems.append(f"direction must be 'maximize' or 'minimize'. Got {self.direction!r}. "
                            "Use 'maximize' for accuracy, 'minimize' for loss.")
        elif study is not None and study.direction.name.lower() != self.direction:
            problems.append(f"study direction must match direction={self.direction!r}. "
                            f"Got {study.direction.name.lower()!r}. Create the study with the same direction.")
        if problems:
            raise ConfigError("\n".join(problems))

    def run(self, objective: Callable[[dict[str, Any]], float], study: optuna.Study | None = None, *,
            log: Callable[[str], None] = print) -> CoarseToFineResult:
        """Evaluate ``objective({dotted key: value}) -> score`` round by round; trials land in ``study``.

        Without ``study`` an in-memory one is created. The objective may raise ``optuna.TrialPruned``;
        any other exception or a non-finite score marks the trial FAIL and it is left out of the ranking.
        """
        self._check(study)
        # A private seeded RandomSampler does the sampling, whatever sampler the study was created with.
        sampler = _RoundSampler(seed=self.seed)
        if study is None:
            study = optuna.create_study(direction=self.direction, sampler=sampler)
        space = self.space
        ranges_per_round, best_per_round, trials_per_round = [], [], []
        best_params: dict[str, Any] = {}
        best_value = math.nan
        for r in range(self.rounds):
            ranges_per_round.append(space.ranges())
            log(f"round {r + 1}/{self.rounds}: " + "; ".join(p.describe() for p in space))
            done = self._round(r, space, objective, study, sampler)
            trials_per_round.append([t.number for t, _, _ in done])
            scored = [(v, params) for _, v, params in done if v is not None]
            if not scored:
                best_per_round.append(math.nan)
                log(f"round {r + 1}/{self.rounds}: no trial completed; ranges kept")
                continue
            scored = self.ranked(scored)
            best_per_round.append(scored[0][0])
            sign = -1.0 if self.direction == "maximize" else 1.0
            if math.isnan(best_value) or sign * scored[0][0] < sign * best_value:
                best_value, best_params = scored[0]
            log(f"round {r + 1}/{self.rounds}: best {scored[0][0]:.6g} of {len(scored)} completed")
            space = self.narrow(space, scored)
        return CoarseToFineResult(best_params=best_params, best_value=best_value,
                                  ranges_per_round=ranges_per_round, best_per_round=best_per_round,
                                  final_space=space, study=study, trials_per_round=trials_per_round)

    def _round(self, r: int, space: SearchSpace, objective: Callable[[dict[str, Any]], float],
               study: optuna.Study, sampler: _RoundSampler) -> list[tuple[Any, float | None, dict]]:
        distributions = space.to_distributions()
        sampler.active = {p.name: [p.encode(c) for c in p.active_choices] for p in space if p.kind == "categorical"}
        out = []
        for _ in range(self.per_round):
            saved, study.sampler = study.sampler, sampler
            try:
                trial = study.ask(fixed_distributions=distributions)
            finally:
                study.sampler = saved
            trial.set_user_attr(ROUND_ATTR, r)
            params = space.decode(trial.params)
            try:
                value = float(objective(params))
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                out.append((trial, None, params))
                continue
            except Exception:  # noqa: BLE001 — one bad config must not end the search; Optuna records it
                value = math.nan
            if math.isfinite(value):
                study.tell(trial, value)
                out.append((trial, value, params))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                out.append((trial, None, params))
        return out

    def ranked(self, scored: Sequence[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
        """``(score, params)`` pairs, best first for this search's direction."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        return sorted(scored, key=lambda vp: sign * vp[0])

    def narrow(self, space: SearchSpace, scored: Sequence[tuple[float, dict[str, Any]]]) -> SearchSpace:
        """The next round's space: each range shrunk to the span of the round's top-k ``(score, params)``."""
        top = [params for _, params in self.ranked(scored)[: self.top_k]]
        return space.narrowed(self._shrink(space, top))

    def _shrink(self, space: SearchSpace, top: Sequence[Mapping[str, Any]]) -> dict[str, Range]:
        ranges: dict[str, Range] = {}
        for p in space:
            values = [t[p.name] for t in top]
            if p.kind == "categorical":
                ranges[p.name] = [c for c in p.active_choices if c in values]
            else:
                ranges[p.name] = _span(p, self.space[p.name], values, self.margin)
        return ranges


class _RoundSampler(optuna.samplers.RandomSampler):
    """Uniform random sampling, with each categorical restricted to the choices still ``active``."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.active: dict[str, list[Any]] = {}

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str,
                           param_distribution: optuna.distributions.BaseDistribution) -> Any:
        if param_name in self.active:
            choices = self.active[param_name]
            return choices[int(self._rng.rng.randint(len(choices)))]
        return super().sample_independent(study, trial, param_name, param_distribution)


def _span(p: Param, original: Param, values: Sequence[float], margin: float) -> tuple[float, float]:
    """[min, max] of ``values`` widened by ``margin`` × the current width, clipped to the original range."""
    f = math.log10 if p.log else float
    lo, hi = f(min(values)), f(max(values))
    pad = margin * (f(p.high) - f(p.low))
    lo, hi = max(lo - pad, f(original.low)), min(hi + pad, f(original.high))
    if p.log:
        lo, hi = 10 ** lo, 10 ** hi
    # 10**log10(x) can land a hair outside the original bounds; Optuna rejects that.
    return max(lo, original.low), min(hi, original.high)


def plot_ranges(ranges_per_round: Sequence[Mapping[str, Range]], path: str | Path, *,
                space: SearchSpace | None = None) -> Path:
    """Draw each parameter's range per round (one panel each; log axes for ``space``'s log params) to a PNG."""
    if not ranges_per_round:
        raise ConfigError("ranges_per_round must hold at least one round. Got []. Run the search first.")
    names = list(ranges_per_round[0])
    fig = Figure(figsize=(6, 1.2 + 1.6 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    rounds = list(range(1, len(ranges_per_round) + 1))
    for ax, name in zip(axes, names):
        per_round = [r.get(name) for r in ranges_per_round]
        if isinstance(per_round[0], tuple):
            for i, (lo, hi) in zip(rounds, per_round):
                ax.plot([lo, hi], [i, i], lw=6, solid_capstyle="butt", color="tab:blue")
            if space is not None and space[name].log:
                ax.set_xscale("log")
        else:
            labels = [str(c) for c in per_round[0]]
            for i, kept in zip(rounds, per_round):
                xs = [labels.index(str(c)) for c in kept]
                ax.scatter(xs, [i] * len(xs), s=60, color="tab:orange")
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(rounds)
        ax.set_ylim(0.5, len(rounds) + 0.5)
        ax.invert_yaxis()
        ax.set_ylabel("round")
        ax.set_title(name, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
