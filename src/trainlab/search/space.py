"""Search spaces: each hyperparameter is a dotted config key with a range (and scale) or a list of choices.

A space file is a flat YAML mapping::

    optimizer.lr: {low: 1.0e-4, high: 1, log: true}
    model.blocks: {low: 1, high: 4}
    model.dropout: {low: 0.0, high: 0.5, step: 0.1}
    model.hidden: {choices: [[128], [256, 128], [512, 256, 128]]}
    optimizer.name: [sgd, adam]            # a bare list is shorthand for {choices: [...]}

Sections may also be nested as in a config file (``optimizer: {lr: {low: 1.0e-4, high: 1}}`` is ``optimizer.lr``).

Whether a range is int or float comes from the config field's type. Validation collects every problem
into one :class:`~trainlab.errors.ConfigError`, one house-style line per problem.
"""
from __future__ import annotations

import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import BaseModel

from trainlab import files
from trainlab.config import ALL_KEYS, TrainConfig, resolve_config
from trainlab.errors import ConfigError

__all__ = ["Param", "SearchSpace"]

Kind = Literal["int", "float", "categorical"]
_FIELDS = ("choices", "high", "log", "low", "step")
_PRIMITIVE = (type(None), bool, int, float, str)
Range = tuple[float, float] | list[Any]


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: ``name`` is a dotted config key such as ``optimizer.lr``.

    A categorical's Optuna distribution always holds all its ``choices`` (Optuna forbids a categorical's
    choices to change within a study); ``active`` is the subset coarse-to-fine still samples (None: all).
    """

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    active: tuple[Any, ...] | None = None

    # Optuna categoricals must be primitives, so a list choice such as [256, 128] travels as its JSON text.
    def encode(self, value: Any) -> Any:
        return value if isinstance(value, _PRIMITIVE) else json.dumps(value)

    def decode(self, value: Any) -> Any:
        if self.kind != "categorical":
            return value
        for choice in self.choices:
            if self.encode(choice) == value:
                return choice
        raise ConfigError(f"{self.name} must be one of {list(self.choices)!r}. Got {value!r}. "
                          "Use a value from the search space.")

    def distribution(self) -> BaseDistribution:
        if self.kind == "categorical":
            return CategoricalDistribution([self.encode(c) for c in self.choices])
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def range(self) -> Range:
        """``(low, high)`` for a numeric parameter, the list of choices for a categorical one."""
        return list(self.active_choices) if self.kind == "categorical" else (self.low, self.high)

    @property
    def active_choices(self) -> tuple[Any, ...]:
        return self.choices if self.active is None else self.active

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name} in {list(self.active_choices)!r}"
        scale = " log" if self.log else ""
        return f"{self.name} in [{self.low:.4g}, {self.high:.4g}]{scale}"


def _flattened(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as in a config file (``optimizer: {lr: {low: ..., high: ...}}``) as the dotted keys a space
    file names (``optimizer.lr: {...}``); a mapping of range fields (low, high, ...) is a parameter's spec."""
    out: dict[str, Any] = {}
    for name, item in spec.items():
        key = f"{prefix}{name}"
        section = any(k.startswith(key + ".") for k in ALL_KEYS)
        if section and isinstance(item, Mapping) and item and not set(map(str, item)) & set(_FIELDS):
            out.update(_flattened(item, key + "."))
        else:
            out[key] = item
    return out


class SearchSpace:
    """An ordered set of :class:`Param`; build it with :meth:`from_yaml` or :meth:`from_dict`."""

    def __init__(self, params: Sequence[Param]) -> None:
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name = {p.name: p for p in self.params}

    def __repr__(self) -> str:
        return f"SearchSpace({', '.join(p.describe() for p in self.params)})"

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        """The dotted config keys searched, in file order."""
        return [p.name for p in self.params]

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Read a space file (flat mapping of dotted config keys to specs); see the module docstring."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"search space file must be an existing YAML file. Got {str(path)!r}. Check the path.")
        try:
            data = files.parse_yaml(files.read_utf8(p, "search space file", ConfigError))
        except files.DuplicateKeyError as exc:
            raise ConfigError(exc.problem("search space file", path)) from None
        except yaml.YAMLError:
            raise ConfigError(f"search space file must be valid YAML. Got a syntax error in {str(path)!r}. "
                              "Fix the file's indentation or quoting.") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """``{"optimizer.lr": {"low": 1e-4, "high": 1, "log": True}, ...}`` → a validated space."""
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(f"search space must be a non-empty mapping of config keys to ranges. Got {spec!r}. "
                              "Write e.g. 'optimizer.lr: {low: 1.0e-4, high: 1, log: true}'.")
        params, problems = [], []
        for name, item in _flattened(spec).items():
            param, found = _parse_param(str(name), item)
            problems.extend(found)
            if param is not None:
                params.append(param)
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(params)

    def to_distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions by parameter name, as ``study.ask(fixed_distributions=...)`` takes them."""
        return {p.name: p.distribution() for p in self.params}

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's trial params (list choices as JSON text) → config values keyed by dotted config key."""
        return {name: self[name].decode(value) for name, value in params.items() if name in self._by_name}

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for one value per parameter; returns ``{dotted key: config value}``."""
        out = {}
        for p in self.params:
            if p.kind == "categorical":
                value = trial.suggest_categorical(p.name, [p.encode(c) for c in p.choices])
            elif p.kind == "int":
                value = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
            else:
                value = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
            out[p.name] = p.decode(value)
        return out

    def ranges(self) -> dict[str, Range]:
        """``{name: (low, high) or [choices]}`` — the form :meth:`narrowed` takes back."""
        return {p.name: p.range() for p in self.params}

    def narrowed(self, ranges: Mapping[str, Range]) -> SearchSpace:
        """A copy with new ranges (``(low, high)``) or choice lists for the named parameters; others are kept."""
        unknown = [n for n in ranges if n not in self._by_name]
        if unknown:
            raise ConfigError(f"ranges must name parameters of this space. Got {unknown!r}. "
                              f"Use some of {list(self._by_name)!r}.")
        new = []
        for p in self.params:
            if p.name not in ranges:
                new.append(p)
            elif p.kind == "categorical":
                keep = [c for c in p.choices if c in list(ranges[p.name])]
                if not keep:
                    raise ConfigError(f"{p.name} choices must keep at least one of {list(p.choices)!r}. "
                                      f"Got {list(ranges[p.name])!r}. Keep one of the original choices.")
                new.append(replace(p, active=tuple(keep)))
            else:
                low, high = ranges[p.name]
                if p.kind == "int":
                    low, high = _snap_int(p, low, high)
                else:
                    low, high = float(low), float(high)
                if low > high:
                    raise ConfigError(f"{p.name} low must be <= high. Got ({low!r}, {high!r}). Swap them.")
                new.append(replace(p, low=low, high=high))
        return SearchSpace(new)


def _snap_int(p: Param, low: float, high: float) -> tuple[int, int]:
    """Round an int range outwards onto the parameter's step grid (anchored at its low)."""
    step = int(p.step or 1)
    anchor = int(p.low)
    lo = anchor + math.floor((low - anchor) / step + 1e-9) * step
    hi = anchor + math.ceil((high - anchor) / step - 1e-9) * step
    return int(lo), int(hi)


# ---------------------------------------------------------------------------------------------
# Parsing and validation: every function returns problems as house-style lines instead of raising.


def _field_type(key: str) -> type | None:
    """``int``/``float`` for a numeric config field, None for anything else (strings, lists, sections)."""
    node: Any = TrainConfig
    for part in key.split("."):
        if not (isinstance(node, type) and issubclass(node, BaseModel)) or part not in node.model_fields:
            return None
        node = node.model_fields[part].annotation
    is_union = isinstance(node, types.UnionType) or typing.get_origin(node) is typing.Union
    args = [a for a in typing.get_args(node) if a is not type(None)] if is_union else [node]
    return args[0] if len(args) == 1 and args[0] in (int, float) else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _config_rejects(name: str, field: str, value: Any) -> list[str]:
    """The config's own verdict on ``value`` for key ``name``, relabelled with the spec field it came from."""
    try:
        resolve_config(overrides={name: value})
    except ConfigError as exc:
        return [line.replace(f"{name} must", f"{field} must", 1) for line in str(exc).splitlines()]
    return []


def _parse_param(name: str, item: Any) -> tuple[Param | None, list[str]]:
    if name not in ALL_KEYS:
        close = difflib.get_close_matches(name, ALL_KEYS, n=1, cutoff=0.6)
        hint = f"Did you mean {close[0]!r}?" if close else "See every key with 'trainlab train --print-config'."
        return None, [f"{name} must be a config key. Got {name!r}. {hint}"]
    if isinstance(item, list):
        item = {"choices": item}
    if not isinstance(item, Mapping):
        return None, [f"{name} must be a range or a list of choices. Got {item!r}. "
                      "Write {low: ..., high: ...} or {choices: [...]}."]
    problems = []
    for field in item:
        if field not in _FIELDS:
            close = difflib.get_close_matches(str(field), _FIELDS, n=1, cutoff=0.5)
            hint = f"Did you mean {close[0]!r}?" if close else "Remove it."
            problems.append(f"{name} spec must use only the fields {', '.join(_FIELDS)}. Got {field!r}. {hint}")
    if "choices" in item:
        param, found = _parse_choices(name, item)
    else:
        param, found = _parse_range(name, item)
    return (None if problems or found else param), problems + found


def _parse_choices(name: str, item: Mapping[str, Any]) -> tuple[Param | None, list[str]]:
    extra = [f for f in ("low", "high", "log", "step") if f in item]
    if extra:
        return None, [f"{name} must give either choices or low/high, not both. Got choices and {', '.join(extra)}. "
                      "Remove one of them."]
    choices = item["choices"]
    if not isinstance(choices, list) or not choices:
        return None, [f"{name}.choices must be a non-empty list. Got {choices!r}. List at least one value."]
    problems = []
    encoded = [json.dumps(c, sort_keys=True, default=str) for c in choices]
    if len(set(encoded)) != len(encoded):
        problems.append(f"{name}.choices must be distinct. Got {choices!r}. Remove the repeated values.")
    for i, choice in enumerate(choices):
        problems.extend(_config_rejects(name, f"{name}.choices[{i}]", choice))
    return Param(name, "categorical", choices=tuple(choices)), problems


def _parse_range(name: str, item: Mapping[str, Any]) -> tuple[Param | None, list[str]]:
    ftype = _field_type(name)
    if ftype is None:
        return None, [f"{name} must be searched over choices (it is not a numeric setting). Got {dict(item)!r}. "
                      "Write {choices: [...]}."]
    low, high, log, step = item.get("low"), item.get("high"), item.get("log", False), item.get("step")
    if low is None and high is None:  # one line for one mistake, not one per missing bound
        return None, [f"{name} must be a range or a list of choices. Got {dict(item)!r}. "
                      "Write {low: ..., high: ...} or {choices: [...]}."]
    problems = []
    for field, value in (("low", low), ("high", high)):
        if value is None:
            problems.append(f"{name}.{field} must be given for a range. Got {dict(item)!r}. "
                            "Write {low: ..., high: ...} or {choices: [...]}.")
        elif not _is_number(value):
            problems.append(f"{name}.{field} must be a finite number. Got {value!r}. Write e.g. {field}: 0.1.")
        elif ftype is int and not isinstance(value, int):
            problems.append(f"{name}.{field} must be a whole number ({name} is an integer setting). Got {value!r}. "
                            f"Write {math.floor(value)} or {math.ceil(value)}.")
        else:
            problems.extend(_config_rejects(name, f"{name}.{field}", value))
    low_refused = any(line.startswith(f"{name}.low ") for line in problems)
    if not isinstance(log, bool):
        problems.append(f"{name}.log must be true or false. Got {log!r}. Write log: true for a log scale.")
    if step is not None:
        if not _is_number(step) or step <= 0 or (ftype is int and not isinstance(step, int)):
            kind = "a whole number > 0" if ftype is int else "a number > 0"
            problems.append(f"{name}.step must be {kind}. Got {step!r}. Remove it or write e.g. step: 1.")
        elif log is True:
            problems.append(f"{name}.step must be left out when log is true. Got step={step!r}. "
                            "Remove step or set log: false.")
    if _is_number(low) and _is_number(high):
        if low >= high:
            problems.append(f"{name}.low must be < {name}.high. Got low={low!r}, high={high!r}. "
                            "Swap them or widen the range.")
        if log is True and low <= 0 and not low_refused:  # a low the config refuses is already named
            problems.append(f"{name}.low must be > 0 when log is true. Got {low!r}. "
                            "Use a positive low such as 1e-5, or set log: false.")
        if ftype is int and isinstance(step, int) and step > 0 and low < high and (high - low) % step:
            problems.append(f"{name}.high must be low plus a multiple of step. Got low={low!r}, high={high!r}, "
                            f"step={step!r}. Write high: {low + (high - low) // step * step}.")
    if problems:
        return None, problems
    if ftype is int:
        return Param(name, "int", low=int(low), high=int(high), log=log, step=step), []
    return Param(name, "float", low=float(low), high=float(high), log=log,
                 step=None if step is None else float(step)), []
