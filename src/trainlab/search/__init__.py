"""Hyperparameter search: spaces over dotted config keys and coarse-to-fine search on Optuna studies."""
from trainlab.search.coarse_to_fine import CoarseToFine, CoarseToFineResult, plot_ranges
from trainlab.search.space import Param, SearchSpace

__all__ = ["CoarseToFine", "CoarseToFineResult", "Param", "SearchSpace", "plot_ranges"]
