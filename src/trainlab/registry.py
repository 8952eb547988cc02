"""A name → object registry, one per pluggable kind (datasets, models, optimizers, ...).

The same registry feeds config validation, CLI help, the Python API and the playground menus, so a
name is spelled, documented and checked in exactly one place.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from trainlab.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects, with a one-line help text each and 'did you mean' on a miss."""

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind      # e.g. "optimizer"
        self.field = field    # the config key it validates, e.g. "optimizer.name"
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Decorator: ``@OPTIMIZERS.register("sgd", "plain SGD")``."""

        def deco(obj: T) -> T:
            self.add(name, obj, help)
            return obj

        return deco

    def add(self, name: str, obj: T, help: str = "") -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._help[name] = help or (obj.__doc__ or "").strip().splitlines()[0] if (help or obj.__doc__) else ""

    def get(self, name: str) -> T:
        """The object registered as ``name``; a ConfigError naming the choices otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name: object, field: str | None = None) -> str:
        """``<field> must be one of ... Got <name>. Did you mean ...?``; ``field`` defaults to the registry's."""
        choices = ", ".join(self._items)
        close = difflib.get_close_matches(str(name), list(self._items), n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Choose one of: {choices}."
        return f"{field or self.field} must be one of {choices}. Got {name!r}. {hint}"

    def names(self) -> list[str]:
        return list(self._items)

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())


# One registry per pluggable kind. The modules that define the pieces fill them on import;
# ``load_plugins`` imports those modules so that config validation can check names.
DATASETS: Registry = Registry("dataset", "data.name")
MODELS: Registry = Registry("model", "model.name")
ACTIVATIONS: Registry = Registry("activation", "model.activation")
INITS: Registry = Registry("init", "model.init")
LOSSES: Registry = Registry("loss", "loss.name")
OPTIMIZERS: Registry = Registry("optimizer", "optimizer.name")
SCHEDULES: Registry = Registry("schedule", "schedule.name")
SEARCH_METHODS: Registry = Registry("search method", "--method")
PRUNERS: Registry = Registry("pruner", "--prune")
FEATURES: Registry = Registry("feature", "data.features")  # input transforms of 2-D points (data/features.py)


def load_plugins() -> None:
    """Import the modules that register datasets, features, models, losses, optimizers and schedules."""
    import trainlab.data  # noqa: F401
    import trainlab.models  # noqa: F401
    import trainlab.train  # noqa: F401
