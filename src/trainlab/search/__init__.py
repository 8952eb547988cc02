"""Hyperparameter search and cross-validation on Optuna: spaces over dotted config keys, random / TPE / grid /
coarse-to-fine search with pruning and parallel workers, and k-fold CV — all scored on validation data only."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


from trainlab import files
from trainlab.config import TrainConfig, as_config
from trainlab.errors import ConfigError
from trainlab.search.coarse_to_fine import CoarseToFine, CoarseToFineResult, plot_ranges
from trainlab.search.cv import CVResult, cross_validate
from trainlab.search.driver import run_search
from trainlab.search.results import SearchResult, load_search, summarize
from trainlab.search.space import Param, SearchSpace

__all__ = ["CVResult", "CoarseToFine", "CoarseToFineResult", "Param", "SearchResult", "SearchSpace",
           "cross_validate", "load_search", "plot_ranges", "search", "summarize"]


def search(cfg: TrainConfig | str | Path | Mapping[str, Any], space: str | Path | Mapping[str, Any],
           **options: Any) -> SearchResult:
    """Search ``space`` (a space YAML file or its mapping) around ``cfg``; what ``trainlab search`` runs.

    ``options``: method, trials, epochs, workers, storage, prune, cv, rounds, top_k, name, seed, log —
    see :func:`trainlab.search.driver.run_search`. Call it under ``if __name__ == "__main__":`` in a script
    when ``workers`` > 1 (the workers are fresh processes that import the script).
    """
    cfg = as_config(cfg)
    if isinstance(space, (str, Path)):
        parsed = SearchSpace.from_yaml(space)
        spec = files.parse_yaml(files.read_utf8(space, "search space file", ConfigError))
    else:
        parsed, spec = SearchSpace.from_dict(space), dict(space)
    return run_search(cfg, parsed, spec, **options)
