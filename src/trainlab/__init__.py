"""trainlab: train neural networks fast, see what happened, and learn why a run went wrong."""
__version__ = "0.1.0"

from trainlab.errors import CheckpointError, ConfigError, DataError, TrainingError, TrainlabError  # noqa: E402

__all__ = ["__version__", "TrainlabError", "ConfigError", "DataError", "CheckpointError", "TrainingError"]
