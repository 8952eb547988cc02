"""The playground's whole state as URL query parameters: declared once as data, parsed, clamped, written back.

Every setting is a :class:`Param` (its URL key, scope, kind, limits, default). ``parse_state`` reads a query
mapping — a shared link, a hand-edited URL, or a change sent by the page — and never lets a bad value
through: out of range is clamped, unknown or malformed is replaced by the default, and each correction
comes back as one house-style line (``<field> must be <constraint>. Got <value>. <what was done>.``)
that the page shows. ``strict=True`` raises :class:`ConfigError` with those lines instead.

Keys follow TF Playground's URL (``problem``, ``learningRate``, ``networkShape``, ``percTrainData``,
``xSquared`` ...), so its links open here; network B of the side-by-side mode uses the same keys prefixed ``b.`` and
defaults to A's values (and mirrors them while side by side is off). Menus (datasets, input features,
activations, optimizers, schedules) come from trainlab's registries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping
from urllib.parse import parse_qsl, urlencode

from trainlab import registry as reg
from trainlab.data.toy import TOY_SETS
from trainlab.errors import ConfigError, problem

__all__ = ["Param", "PARAMS", "NET_KEYS", "LEARNING_RATES", "REG_RATES", "FEATURES", "PROBLEMS", "parse_state",
           "parse_query", "to_query", "seed_of", "default_state", "net_view", "spec", "feature_label", "MAX_LAYERS", "MAX_NEURONS"]

Scope = Literal["data", "net", "train", "view"]

# TF Playground's menus, exactly (shared/reference/tf-playground.md).
LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10]
REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10]
# TF allows 6 layers of 8; ours 10 of 32 (the "larger limits").
MAX_LAYERS, MAX_NEURONS = 10, 32
# The one table between TF's URL keys for its inputs and trainlab's feature names (registry.FEATURES, the
# names data.features takes); a registered feature TF lacks uses its own name as its URL key.
TF_FEATURE_KEYS = {"x1": "x", "x2": "y", "x1_sq": "xSquared", "x2_sq": "ySquared", "x1_x2": "xTimesY",
                   "sin_x1": "sinX", "sin_x2": "sinY"}
reg.load_plugins()
FEATURES: dict[str, str] = {TF_FEATURE_KEYS.get(n, n): n for n in reg.FEATURES.names()}  # URL key → feature name
PROBLEMS = ["classification", "regression"]  # TF's "Problem type"; it filters the datasets offered
# TF names its regression sets reg-plane / reg-gauss; trainlab's registry calls them plane / multi-gauss.
DATASET_ALIASES = {"reg-plane": "plane", "reg-gauss": "multi-gauss"}
UPLOAD = "upload"  # the dataset name of a CSV the user uploaded (its points never go into the URL)
# Keys TF Playground writes that have no meaning here: accepted silently so its links open cleanly.
# (regDataset is read: in a TF link with problem=regression it names the set, and dataset the classification one.)
TF_IGNORED = {"collectStats", "hideText", "cosX", "cosY", "tutorial", "regDataset", "initZero_"}


def feature_label(key: str) -> str:
    """The formula shown for an input's URL key (``'xSquared'`` → ``'x1²'``), from the FEATURES registry."""
    return reg.FEATURES.help(FEATURES[key]) or FEATURES[key]


def toy_datasets() -> list[str]:
    """The 2-D sets of the DATASETS registry the playground can draw (the toy generators)."""
    reg.load_plugins()
    return [n for n in reg.DATASETS.names() if n in TOY_SETS]


def task_of(dataset: str) -> str:
    return TOY_SETS[dataset].task if dataset in TOY_SETS else "classification"


def datasets_of(problem: str) -> list[str]:
    """The generated sets of one problem type, in the registry's order (the first is its default)."""
    return [n for n in toy_datasets() if task_of(n) == problem]


@dataclass(frozen=True)
class Param:
    """One URL setting. ``parse(text)`` → (value, None) or (fallback value, what was wrong and done)."""

    key: str
    scope: Scope
    kind: Literal["int", "float", "bool", "choice", "steps", "shape", "names", "seed"]
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: Callable[[], list[Any]] | None = None
    help: str = ""
    per_net: bool = False  # network B has its own copy under "b.<key>"

    def options(self) -> list[Any]:
        return list(self.choices()) if self.choices else []

    def parse(self, text: str, field_name: str | None = None) -> tuple[Any, str | None]:
        name = field_name or self.key
        return _PARSERS[self.kind](self, name, str(text).strip())


def _fmt(v: float) -> str:
    return f"{v:g}"


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None  # "nan", "inf" are refused, never let through


def _parse_int(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    rng = f"a whole number from {_fmt(p.lo)} to {_fmt(p.hi)}"
    v = _number(text)
    if v is None or v != int(v):
        return p.default, problem(name, rng, text, f"Using the default {p.default}")
    if not p.lo <= v <= p.hi:
        c = int(min(max(v, p.lo), p.hi))
        return c, problem(name, rng, text, f"Using {c}")
    return int(v), None


def _parse_seed(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    """A whole number 0 .. 2³¹−1, or TF Playground's own seed, a fraction in (0, 1) such as 0.41236 (kept as
    written, so the link stays the same; :func:`seed_of` maps it to a whole number)."""
    v = _number(text)
    if v is not None and 0 < v < 1:
        return v, None
    if v is not None and v == int(v) and p.lo <= v <= p.hi:
        return int(v), None
    return p.default, problem(name, f"a whole number from 0 to {int(p.hi)}, or a TF Playground seed between 0 "
                                    "and 1", text, f"Using the default {p.default}")


def seed_of(state: Mapping[str, Any]) -> int:
    """The whole-number seed of data and weights: the URL's ``seed``, or for TF's fractional seed s in (0, 1)
    ⌊s·2³¹⌋ (deterministic: the same link, the same points and weights)."""
    seed = state["seed"]
    return seed if isinstance(seed, int) else math.floor(seed * 2**31)


def _parse_float(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    rng = f"a number from {_fmt(p.lo)} to {_fmt(p.hi)}"
    v = _number(text)
    if v is None:
        return p.default, problem(name, rng, text, f"Using the default {p.default}")
    if not p.lo <= v <= p.hi:
        c = min(max(v, p.lo), p.hi)
        return c, problem(name, rng, text, f"Using {_fmt(c)}")
    return v, None


def _parse_bool(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    low = text.lower()
    if low in ("true", "1", "on", "yes"):
        return True, None
    if low in ("false", "0", "off", "no", ""):
        return False, None
    return p.default, problem(name, "true or false", text, f"Using {str(p.default).lower()}")


def _parse_choice(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    opts = p.options()
    text = DATASET_ALIASES.get(text, text) if p.key == "dataset" else text
    if text in opts:
        return text, None
    return p.default, problem(name, f"one of {', '.join(map(str, opts))}", text, f"Using {p.default}")


def _parse_steps(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    opts = p.options()
    v = _number(text)
    listed = f"one of {', '.join(_fmt(o) for o in opts)}"
    if v is None:
        return p.default, problem(name, listed, text, f"Using the default {_fmt(p.default)}")
    exact = [o for o in opts if math.isclose(o, v, rel_tol=1e-9, abs_tol=1e-12)]
    if exact:
        return exact[0], None
    # The nearest on a log scale (the menus are roughly ×3 apart); 0 and negatives snap to the smallest.
    positive = [o for o in opts if o > 0]
    near = min(opts) if v <= 0 else min(positive, key=lambda o: abs(math.log(o) - math.log(v)))
    return near, problem(name, listed, text, f"Using the nearest, {_fmt(near)}")


def _parse_shape(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    what = (f"a comma-separated list of at most {MAX_LAYERS} layer sizes, each from 1 to {MAX_NEURONS} "
            "(empty for no hidden layer)")
    parts = [s.strip() for s in text.split(",")] if text else []
    sizes: list[int] = []
    bad = False
    for s in parts:
        v = _number(s)
        if v is None or v != int(v):
            bad = True
            continue
        c = int(min(max(v, 1), MAX_NEURONS))
        bad |= c != v
        sizes.append(c)
    if len(sizes) > MAX_LAYERS:
        sizes, bad = sizes[:MAX_LAYERS], True
    if bad:
        return sizes, problem(name, what, text, f"Using {','.join(map(str, sizes)) or 'no hidden layer'}")
    return sizes, None


def _parse_names(p: Param, name: str, text: str) -> tuple[Any, str | None]:
    opts = p.options()
    parts = [s.strip() for s in text.split(",")] if text else []
    bad = [s for s in parts if s not in opts]
    if bad or len(parts) > MAX_LAYERS:
        kept = [s for s in parts if s in opts][:MAX_LAYERS]
        return kept, problem(name, f"a comma-separated list of {', '.join(opts)} (one per hidden layer, at "
                                   f"most {MAX_LAYERS})", text, f"Using {','.join(kept) or 'the one activation'}")
    return parts, None


_PARSERS: dict[str, Callable[[Param, str, str], tuple[Any, str | None]]] = {
    "int": _parse_int, "float": _parse_float, "bool": _parse_bool, "choice": _parse_choice,
    "steps": _parse_steps, "shape": _parse_shape, "names": _parse_names, "seed": _parse_seed,
}


def _names(r: reg.Registry) -> Callable[[], list[str]]:
    def names() -> list[str]:
        reg.load_plugins()
        return r.names()
    return names


def _datasets() -> list[str]:
    return [*toy_datasets(), UPLOAD]


PARAMS: list[Param] = [
    # data: a change regenerates the points and resets both networks
    Param("problem", "data", "choice", "classification", choices=lambda: PROBLEMS,
          help="classification or regression: which datasets are offered (TF's problem type)"),
    Param("dataset", "data", "choice", "circle", choices=_datasets, help="which points (from trainlab's datasets)"),
    Param("noise", "data", "int", 0, 0, 50, help="label/position noise, % (TF: 0-50)"),
    Param("percTrainData", "data", "int", 50, 10, 90, help="ratio of training to test data, %"),
    Param("percValData", "data", "int", 10, 0, 50,
          help="% of the training points held out for validation: early stopping and the verdict read them, "
               "never the test points (0: train on all, as TF; no verdict, no early stopping)"),
    Param("classes", "data", "int", 2, 2, 8, help="classes (spiral arms, gauss blobs)"),
    Param("seed", "data", "seed", 0, 0, 2**31 - 1,
          help="the random seed of data and initial weights (or TF Playground's, a fraction such as 0.41236)"),
    # net: a change rebuilds that network from its seed
    *[Param(k, "net", "bool", k in ("x", "y"), help=f"input {feature_label(k)}", per_net=True) for k in FEATURES],
    Param("networkShape", "net", "shape", [4, 2], help="neurons per hidden layer", per_net=True),
    Param("activation", "net", "choice", "tanh", choices=_names(reg.ACTIVATIONS), per_net=True,
          help="activation of the hidden layers"),
    Param("activations", "net", "names", [], choices=_names(reg.ACTIVATIONS), per_net=True,
          help="per-layer activations (overrides activation)"),
    Param("loss", "net", "choice", "square", choices=lambda: ["square", "cross_entropy"], per_net=True,
          help="square: TF's tanh output and 0.5·(out-label)²; cross_entropy: softmax (needed for 3+ classes)"),
    Param("dropout", "net", "float", 0.0, 0.0, 0.9, help="dropout after each hidden layer", per_net=True),
    Param("batchnorm", "net", "bool", False, help="BatchNorm in each hidden layer", per_net=True),
    Param("initZero", "net", "bool", False, help="all weights and biases start at 0 (TF)", per_net=True),
    # train: applied on the fly, training continues
    Param("learningRate", "train", "steps", 0.03, choices=lambda: LEARNING_RATES, per_net=True),
    Param("regularization", "train", "choice", "none", choices=lambda: ["none", "L1", "L2"], per_net=True),
    Param("regularizationRate", "train", "steps", 0, choices=lambda: REG_RATES, per_net=True),
    Param("batchSize", "train", "int", 10, 1, 30, per_net=True),
    Param("optimizer", "train", "choice", "sgd", choices=_names(reg.OPTIMIZERS), per_net=True,
          help="trainlab's optimizers; sgd is TF's update"),
    Param("schedule", "train", "choice", "constant", choices=_names(reg.SCHEDULES), per_net=True,
          help="learning-rate schedule over maxEpochs"),
    Param("maxEpochs", "train", "int", 0, 0, 1_000_000, help="stop after this many epochs (0: never)", per_net=True),
    Param("patience", "train", "int", 0, 0, 100_000, per_net=True,
          help="early stopping: stop when the validation loss has not improved for this many epochs (0: off)"),
    # view
    Param("showTestData", "view", "bool", False),
    Param("discretize", "view", "bool", False),
    Param("compare", "view", "bool", False, help="side by side: networks A and B on the same data"),
]
BY_KEY = {p.key: p for p in PARAMS}
NET_KEYS = [p.key for p in PARAMS if p.per_net]


def default_state() -> dict[str, Any]:
    """Every key at its default, network B's ``b.`` keys equal to A's."""
    state = {p.key: _copy(p.default) for p in PARAMS}
    state.update({f"b.{k}": _copy(state[k]) for k in NET_KEYS})
    return state


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v


def parse_query(query: str) -> dict[str, str]:
    """``'?a=1&b=2'`` or TF Playground's ``'#a=1&b=2'`` → ``{'a': '1', 'b': '2'}`` (the last of repeated keys
    wins; the page sends its query and fragment joined by ``&``)."""
    return dict(parse_qsl(query.lstrip("?#"), keep_blank_values=True))


def parse_state(raw: Mapping[str, Any], base: Mapping[str, Any] | None = None, *,
                strict: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Settings from ``raw`` (strings as in a URL) over ``base`` (defaults when None), and the corrections made.

    A ``b.`` key missing from ``raw`` takes A's value when ``base`` is None (a shared link names only what
    B changes). Cross-field rules run last: at least one input, a loss that suits the data. ``strict``:
    raise ConfigError listing every correction instead of returning them.
    """
    state = dict(base) if base is not None else default_state()
    notes: list[str] = []
    given: set[str] = set()
    clean: set[str] = set()  # keys given with a valid value
    bad_problem: str | None = None
    if str(raw.get("problem")) == "regression" and "regDataset" in raw:
        raw = {**raw, "dataset": raw["regDataset"]}  # a TF link: its regression set lives in regDataset
    for key, text in raw.items():
        net_key = key[2:] if key.startswith("b.") else key
        p = BY_KEY.get(net_key)
        if p is None or (key.startswith("b.") and not p.per_net):
            if key not in TF_IGNORED:
                notes.append(problem(key, "a playground setting", text, "Ignored it"))
            continue
        if not isinstance(text, (str, int, float, bool)) or isinstance(text, bool) and p.kind != "bool":
            text = str(text)
        if isinstance(text, bool):
            text = "true" if text else "false"
        value, note = p.parse(str(text)[:2000], key)
        given.add(key)
        if note and key == "problem":  # reported below: the dataset decides what is used instead
            bad_problem = str(text)[:80]
            continue
        state[key] = value
        if note:
            notes.append(note)
        else:
            clean.add(key)
    notes += _match_problem(state, clean, bad_problem)
    for k in NET_KEYS:  # B mirrors A while hidden, and a link names only what B changes
        if not state["compare"] or base is None and f"b.{k}" not in given:
            state[f"b.{k}"] = _copy(state[k])
    fixes = _cross_checks(state)
    # B's copy of A's settings is checked too, but only reported when B is on screen
    notes += [n for n in fixes if state["compare"] or not n.startswith("b.")]
    if strict and notes:
        raise ConfigError("\n".join(notes))
    return state, notes


def _match_problem(state: dict[str, Any], given: set[str], bad_problem: str | None) -> list[str]:
    """Make ``dataset`` one of ``problem``'s sets. Whichever of the two was given wins (a dataset button, an old
    link without ``problem``; the problem menu, ``?problem=regression``); given both, the problem wins, with a note.
    An upload's problem is its points' task (set by the session) until another problem is picked."""
    ds, want, notes = state["dataset"], state["problem"], []
    if ds == UPLOAD and "problem" in given and "dataset" not in given:
        state["dataset"] = datasets_of(want)[0]
    elif ds != UPLOAD and task_of(ds) != want:
        if "dataset" in given and "problem" not in given:
            state["problem"] = task_of(ds)
        else:
            state["dataset"] = datasets_of(want)[0]
            if "dataset" in given:
                notes.append(problem("dataset", f"a {want} set ({', '.join(datasets_of(want))}) when problem is "
                                     f"{want}", ds, f"Using {state['dataset']}"))
    if bad_problem is not None:  # an unknown problem: the dataset's is used
        notes.append(problem("problem", f"one of {', '.join(PROBLEMS)}", bad_problem,
                             f"Using {state['problem']}, the problem of {state['dataset']}"))
    return notes


def _cross_checks(state: dict[str, Any]) -> list[str]:
    notes = []
    ds = state["dataset"]
    multiclass = ds in TOY_SETS and TOY_SETS[ds].multiclass
    if state["classes"] != 2 and ds in TOY_SETS and not multiclass:
        notes.append(problem("classes", f"2 for {ds}", state["classes"],
                             "Using 2; spiral and gauss take more classes"))
        state["classes"] = 2
    for prefix in ("", "b."):
        if not any(state[prefix + k] for k in FEATURES):
            notes.append(problem(prefix + "x", "on when every other input is off", "false",
                                 "Turned x1 and x2 on (a network needs an input)"))
            state[prefix + "x"] = state[prefix + "y"] = True
        acts = state[prefix + "activations"]
        if acts and len(acts) != len(state[prefix + "networkShape"]):
            # one entry per hidden layer; extra entries dropped, missing ones take the common activation
            n = len(state[prefix + "networkShape"])
            state[prefix + "activations"] = (acts + [state[prefix + "activation"]] * n)[:n]
        if state[prefix + "loss"] == "cross_entropy" and task_of(ds) == "regression":
            notes.append(problem(prefix + "loss", f"square for the regression set {ds}", "cross_entropy",
                                 "Using square"))
            state[prefix + "loss"] = "square"
        if state[prefix + "loss"] == "square" and state["classes"] > 2 and task_of(ds) == "classification":
            notes.append(problem(prefix + "loss", f"cross_entropy for {state['classes']} classes", "square",
                                 "Using cross_entropy (softmax over the classes)"))
            state[prefix + "loss"] = "cross_entropy"
        if state[prefix + "patience"] and not state["percValData"]:
            notes.append(problem(prefix + "patience", "0 while percValData is 0 (early stopping reads the validation "
                                 "points)", state[prefix + "patience"], "Using 0; hold out validation points for it"))
            state[prefix + "patience"] = 0
        if state[prefix + "batchnorm"] and state[prefix + "batchSize"] < 2:
            notes.append(problem(prefix + "batchSize", "at least 2 while batchnorm is on (one point has no variance "
                                 "to normalise by)", state[prefix + "batchSize"], "Using 2"))
            state[prefix + "batchSize"] = 2
        if state[prefix + "schedule"] in ("cosine", "onecycle") and state[prefix + "maxEpochs"] == 0:
            notes.append(problem(prefix + "schedule", "constant, step or warmup while maxEpochs is 0",
                                 state[prefix + "schedule"], f"Set maxEpochs (e.g. 500) for a "
                                 f"{state[prefix + 'schedule']} schedule; using constant"))
            state[prefix + "schedule"] = "constant"
    return notes


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, float):
        return _fmt(v)
    return str(v)


def to_query(state: Mapping[str, Any]) -> str:
    """The URL query (no ``?``) that ``parse_state`` turns back into ``state``: every A key; B's when compared."""
    pairs = [(p.key, repr(state[p.key]) if p.kind == "seed" else _text(state[p.key])) for p in PARAMS]
    if state.get("compare"):
        pairs += [(f"b.{k}", _text(state[f"b.{k}"])) for k in NET_KEYS]
    return urlencode(pairs, safe=",")


def net_view(state: Mapping[str, Any], which: str) -> dict[str, Any]:
    """Network ``which`` ('a' or 'b')'s settings under plain keys, plus the shared data settings."""
    prefix = "" if which == "a" else "b."
    view = {p.key: state[p.key] for p in PARAMS if not p.per_net}
    view.update({k: state[prefix + k] for k in NET_KEYS})
    return view


def spec() -> list[dict[str, Any]]:
    """Every setting for the page: key, scope, kind, default, limits and menu options (from the registries)."""
    out = []
    for p in PARAMS:
        item: dict[str, Any] = {"key": p.key, "scope": p.scope, "kind": p.kind, "default": p.default,
                                "perNet": p.per_net, "help": p.help}
        if p.lo is not None:
            item.update(lo=p.lo, hi=p.hi)
        if p.choices:
            item["options"] = p.options()
        if p.key == "dataset":
            from trainlab.playground.data import thumbnail_points  # data.py imports this module
            item["tasks"] = {n: task_of(n) for n in p.options()}
            item["multiclass"] = [n for n in p.options() if n in TOY_SETS and TOY_SETS[n].multiclass]
            item["thumbs"] = {n: thumbnail_points(n) for n in p.options() if n in TOY_SETS}
        if p.key in FEATURES:
            item.update(feature=FEATURES[p.key], label=feature_label(p.key))
        out.append(item)
    return out
