"""The training engine: losses, optimizers, schedules, stop rules, checkpoints, the loop and runs."""
from trainlab.train import losses, optim  # noqa: F401  (register losses, optimizers, schedules)
from trainlab.train.callbacks import Callback, TrainState

__all__ = ["Callback", "TrainState"]
