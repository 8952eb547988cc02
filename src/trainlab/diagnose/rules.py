"""The verdict rules: each reads a finished run and returns at most one :class:`Finding`.

A rule is a small function ``rule(ctx) -> Finding | None`` over a :class:`RunContext` (the per-epoch
metrics, the per-layer statistics of ``layers.jsonl``, ``summary.json`` and the config). ``RULES`` lists
them in priority order; every number a rule compares against lives in :class:`Thresholds`, with the
reasoning for its value. The values were checked on real toy runs (tests/diagnose/test_verdict.py):
healthy runs stay quiet even at twice the sensitivity, and the broken runs those tests build sit outside.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the verdict rules, in one place."""

    # Trend rules need this many epochs: with fewer, "rising", "flat" and "oscillating" cannot be told apart.
    min_epochs: int = 3
    # "The level at the end" is the mean of the last `tail` epochs, so that one noisy epoch (a 24-example
    # validation set moves by 0.04 per mistake) cannot decide a verdict on its own.
    tail: int = 3
    # Recent trends (still improving, plateau) are measured over the last `window` epochs.
    window: int = 5
    # Loss changes smaller than this fraction of the first epoch's loss are noise: a loss of 0.002 that
    # jitters by 50 % has still learned 99.7 % of what it could.
    loss_floor: float = 0.05

    # Underfitting (classification): best train accuracy less than this fraction of the way from chance
    # to 100 %. A noise-free toy set is learned to > 95 % (skill > 0.9) by any adequate net; even TF
    # Playground's maximum label noise (50 %) leaves ~78 % reachable (skill ≈ 0.55); a 1-hidden-unit net
    # on circle peaks at 0.70 (skill 0.4), on spiral at 0.60 (skill 0.2).
    underfit_skill: float = 0.5
    # ... or a best train skill below 80 % of the k-NN vote's skill (pre-flight knn_acc, leave-one-out on the
    # training inputs): a network with enough capacity fits its own training data about as well as the
    # neighbours predict it. Healthy benchmark runs: ≥ 0.88 of the k-NN skill (moons at train acc 0.94, the
    # lowest); capacity ÷16 and dropout 0.9 runs: 0.55–0.77 (moons with 2 hidden units at 0.88 was "good fit").
    underfit_vs_knn: float = 0.8
    # Underfitting (regression, no accuracy to compare with chance): the training loss has flattened
    # (moved < `plateau` over the last `window` epochs) while still above this fraction of its first-epoch
    # value, i.e. the model explains little of what it got wrong at the start.
    underfit_remaining: float = 0.5
    plateau: float = 0.05

    # Overfitting: the validation loss at the end is ≥ 10 % above its minimum while the training loss
    # fell ≥ 10 % after that minimum. Both: a validation loss that rises alone is noise or instability,
    # and a training loss that falls 4 % (measured: a 1-unit net on spiral) is not memorisation.
    overfit_val_rise: float = 0.10
    overfit_train_fall: float = 0.10
    # ... or memorising: the validation loss no lower at the end than at its low window while the training loss
    # fell ≥ 50 % from there and ends ≤ half the validation loss (which is ≥ `loss_floor` of its first value). On a
    # tiny validation split the noise hides a 10 % rise: a 512-unit MLP on 200 Fashion images went 0.5 → 0.05 in
    # training while validation stayed at 0.8–0.9 on 20 examples (train accuracy 0.99, validation 0.70). Healthy
    # benchmark runs end with the training loss at 0.6–0.9× the validation loss, or both at ≈ 0 (spiral).
    memorise_train_fall: float = 0.5
    memorise_ratio: float = 0.5
    # A rise whose validation accuracy held (the last `tail` epochs' mean within 1 point of the low window's) is
    # reported as info, not a warning: the loss rises as the net grows more confident on the few examples it gets
    # wrong, while the predictions a user gets are as good as at the low point. Healthy benchmark runs on xor,
    # spiral and circle at validation accuracy 0.95–1.0 showed such rises (0.005 → 0.009 on spiral).
    overfit_acc_held: float = 0.01
    # Generalisation gap (high variance, in the bias/variance reading of a run): around the best epoch the training
    # accuracy is ≥ 10 points above the validation accuracy, while the validation loss never rose enough to call it
    # overfitting. 300 Fashion-MNIST images, a 7-layer net: 0.98 vs 0.72, and at label_smoothing 0.1 (whose
    # validation loss stays flat) that run was called a good fit. Healthy full-data runs sit at 0-0.06 (the classic
    # recipe 0.01-0.03, 50 epochs 0.06). The same 10 points as the overfitting lesson's gap worth naming.
    gap_acc: float = 0.10

    # Still improving: over the last `window` epochs the fitted validation-loss drop is ≥ 5 % of its
    # current level *and* ≥ 1 % of its first-epoch level (a loss of 0.003 falling to 0.0025 is done).
    improving_drop: float = 0.05
    improving_min: float = 0.01

    # Learning rate too high: the training loss rises to 1.5× its first-epoch value or 1.5× its best
    # value (SGD on a sane lr never does: its epoch means fall, noisily), or in the second half of the run
    # it changes direction on ≥ 1/3 of the epochs (a monotone descent: 0; noise: 1/2) with a median
    # jump ≥ 25 % of its level (healthy noisy runs measured ≤ 10 %; adam at lr 0.5: 80 %).
    lr_high_rise: float = 1.5
    lr_high_sign_changes: float = 1 / 3
    lr_high_jump: float = 0.25
    # ... but only at a level above 10 % of the first epoch's loss: below it the jumps are minibatch noise of
    # a (nearly) memorised training set, not overshooting (a wide MLP on 200 images: 0.05–0.25 after 2.3,
    # which was headlined "lr too high" above its overfitting).
    lr_high_min_level: float = 0.1
    # Learning rate too low: the training loss moved < 5 % over the run while falling on ≥ 80 % of the
    # epochs — creeping down, not sitting on a plateau it already reached (then the signs are random).
    # (10 %: circle at lr ÷100 moved 6.9 % in 30 epochs, falling on every one, and was called underfitting;
    # healthy runs move ≥ 80 %.)
    lr_low_change: float = 0.1
    lr_low_falling: float = 0.8
    # ... and both "barely moved" and "still creeping down" only at an lr at or below its optimizer's usual value
    # (lr_ranges): a net short of capacity at a usual lr also creeps (a 1-channel CNN under adam 3e-3, 3 benchmark
    # runs called lr_too_low). At ≤ a tenth of the usual value, a run that does not fit its data is lr_too_low
    # whatever its curve: raising the lr is the cheaper first try than a bigger model (SGD 0.003 on circle stalled
    # at train accuracy 0.65 on a plateau a usual lr leaves: 4 lr ÷100 runs were headlined underfitting).
    lr_low_vs_usual: float = 0.1
    # ... or (cross-entropy) the training loss ends ≥ 1.5× ln(C), the loss of guessing every class equally:
    # an untrained net with a small init starts at ≈ ln(C) and any learning goes below it; ending well above
    # it means confidently wrong predictions, the mark of overshooting steps (SGD lr 3 on Fashion-MNIST ends
    # at 2.9× ln 10; a too-low lr stays at ≈ 1.0×, never above).
    lr_high_vs_chance: float = 1.5
    # Diverged (lr_too_high becomes an error, ranked above its symptoms): the training loss rose to ≥ 10× its
    # first-epoch level, or broke to NaN/Inf after rising from gradients of normal size (nan_cause). Measured:
    # lr 5 on moons rose 10^9×, lr 100 on a spiral 54×; a workable but noisy lr stays below 2× (lr_high_rise).
    # Its symptoms — gradient norms grown 10^9× from a normal start, underfitting — are then not separate causes.
    lr_diverged: float = 10.0
    # Inside the first epoch (summary["first_epoch"]: the first update's loss and the mean loss over each tenth of
    # the epoch's updates; cross-entropy only, whose untrained loss is ≈ ln(C) on any batch — an MSE first batch
    # is no baseline, its loss moved 8.7× between batches of a healthy plane regression): a tenth of epoch 1 whose
    # mean loss is ≥ 3× the first update's. Measured max/first on healthy runs (tests/diagnose, 14–71 updates an
    # epoch, a tenth can be one update): ≤ 1.36; adam lr 0.05 killing ReLU units: 5.2; linear softmax at SGD lr 3
    # on 5000 Fashion-MNIST images: 25 (its epoch-1 mean hides it: the run "ended above chance" only).
    lr_high_in_epoch: float = 3.0

    # Pre-flight (summary.json["preflight"], facts measured before the first update):
    # inputs not scaled: a feature mean or std beyond 10, or values spanning more than 50 — what default inits
    # assume is inputs of order 1 (Fashion-MNIST in [0, 1]: 1; TF Playground's toy sets: ±6, span 12; raw
    # 0–255 pixels: span 255; moons ×1000 + 5000: means 5000). At ≥ 100 it is an error: those runs broke
    # (exploding gradients, dead units) in the examples; below it they train, slowly.
    unscaled_scale: float = 10.0
    unscaled_span: float = 50.0
    unscaled_error: float = 100.0
    # Softmax before cross-entropy: every untrained output row sums to 1 within this (a softmax); logits never
    # do, except by accident on one row.
    softmax_rows: float = 1e-4
    # ReLU as the last layer of a classifier: ≥ 30 % of the untrained outputs exactly 0 and none negative
    # (logits of a linear head are zero with probability 0).
    relu_zeros: float = 0.3
    # No signal in the labels: a vote of each training example's 5 nearest other training inputs predicts its
    # label at most 10 % of the way from chance to perfect (leave-one-out, ≤ 2048 examples: ±0.01), and so
    # did the network on validation (its last epochs' mean). Clean moons: k-NN skill ≈ 0.99; Fashion-MNIST ≈
    # 0.8; moons with shuffled labels ≈ 0. A net at chance on data a k-NN reads is underfitting instead.
    no_signal_skill: float = 0.1
    # Heavy label imbalance: the largest class has ≥ 5× the training examples of the smallest. Measured on moons
    # (4000 points, one class thinned, a balanced validation set, 10 epochs): the small class's recall was
    # 0.91/0.80 (MLP/linear) at 3:1, 0.65/0.57 at 10:1, 0.49/0.20 at 30:1 and 0 at 100:1 — all called good_fit.
    imbalance_ratio: float = 5.0
    # Leakage: ≥ 1 % of the validation (or test) examples are exact copies of training examples. Real datasets
    # hold a few (a copy or two in thousands moves accuracy by < 0.1 point); at 1 % the copies alone can move the
    # accuracy by a point, which decides between close runs. Fashion-MNIST: 0 of 6000 validation, 0 of 10000 test.
    leak_share: float = 0.01
    # Class labels fed to a regression: whole-number targets with ≤ 20 distinct values (the limit under which
    # trainlab itself reads a CSV target as classes, data.tabular.infer_task), or one-hot rows (0/1, a single 1).
    target_classes: int = 20
    # A learning rate far outside the usual range of its optimizer, checked before training (a warning):
    # name → (too low at or below, too high at or above, a usual value). SGD: lr 3 on Fashion-MNIST still trains
    # (badly) but 10 multiplies each gradient by 10; momentum/nesterov take steps ~10× lr (1 / (1 - 0.9)), so 1
    # is their 10; adam/adamw/rmsprop move every weight by up to ~lr per update whatever the gradient's size, so
    # 0.1 shifts a unit-scale weight by 10 % a step (adam at 0.05 killed most ReLU units, test_verdict); 1e-3 is
    # their published default. Below 1e-6 no optimizer moves a weight measurably within a run of 100 epochs.
    lr_ranges: dict[str, tuple[float, float, float]] = field(default_factory=lambda: {
        "sgd": (1e-6, 10.0, 0.1), "momentum": (1e-6, 1.0, 0.01), "nesterov": (1e-6, 1.0, 0.01),
        "adam": (1e-6, 0.1, 1e-3), "adamw": (1e-6, 0.1, 1e-3), "rmsprop": (1e-6, 0.1, 1e-3),
        "adagrad": (1e-6, 1.0, 0.01)})

    # Too early to judge: fewer than `min_epochs` epochs, or fewer than `window` epochs with the validation
    # loss at its lowest in the last epoch and still falling by ≥ `improving_drop` of its level per epoch.
    # Three epochs at val acc 0.52 were called "good fit … keep this setup" before this rule.

    # Vanishing gradients: the median over epochs of (first layer / last layer) gradient norm < 1e-2,
    # i.e. the first layer learns ≥ 100× slower than the head. Healthy nets measured 0.05–10 (the lowest
    # in the first epoch of tiny nets); 10 sigmoid layers give ~5e-3 at N(0, 1) init and ~1e-6 at Xavier.
    # The median, not the first epoch: a first-epoch imbalance that training repairs (adam does, within
    # a few epochs) is not a problem, and one epoch is a noisy sample.
    vanishing_ratio: float = 1e-2
    # Exploding gradients: a gradient norm ≥ 1e3 (with losses of order 1 healthy nets stay below ~10;
    # measured 0.02–7), or growth ≥ 100× from the first epoch to a norm above `exploding_floor`.
    exploding_norm: float = 1e3
    exploding_growth: float = 100.0
    exploding_floor: float = 1.0
    # NaN/Inf cause: a training loss that at least doubled from its start before the break means the updates
    # overshoot (the learning rate), when the gradients had a normal size at the start (< exploding_norm).
    # Measured: SGD lr 1e6 on plane rises 10^4× within the first updates; a healthy run never doubles its
    # first-epoch loss (see lr_high_rise: 1.5 already flags lr trouble without a NaN).
    nan_loss_rise: float = 2.0

    # Dead units: a ReLU layer where ≥ 50 % of the units never activate on the probe batch at the last
    # epoch (dead units never recover; healthy he-init nets measured ≤ 30 %). The probe is at most 512
    # validation examples, so a unit that fires on a rare region only can count as dead on tiny sets.
    dead_fraction: float = 0.5
    # ... and only in a net that does not fit its training set: best train accuracy < 90 % of the way from
    # chance to 100 % (healthy runs: ≥ 0.9; the lr ×100 runs whose units died: ≈ 0) ...
    dead_fit_skill: float = 0.9
    # ... nor 90 % of the way the k-NN vote gets (pre-flight knn_acc; knn_r2 for a regression): on data no model
    # learns perfectly (Fashion-MNIST: k-NN skill 0.77) that is what "fits its training data" can mean. A healthy
    # Fashion CNN at train accuracy 0.77 with half its conv channels silent on the probe was flagged dead_units.
    # The same test ("the net fits its data") keeps transient lr symptoms quiet (see lr_too_high).
    fit_vs_knn: float = 0.9
    # Units killed by the first epoch's updates: a ReLU layer ≥ 90 % dead after epoch 1 that was ≤ 50 % dead before
    # any update (pre-flight dead_at_init), in a net that does not fit: the steps pushed every unit's input below 0
    # (batch 1 at lr ×10 on Fashion: 100 % dead after epoch 1, 0–10 % at init). That is the learning rate; the
    # vanishing gradients and dead units it leaves are its symptoms (3 benchmark runs headlined "vanishing").
    died_in_epoch1: float = 0.9
    dead_at_init_max: float = 0.5
    # A gradient that does not reach the first layer because a ReLU layer between is ≥ 90 % dead is dead units,
    # not vanishing gradients (depth, saturating activations): their remedies differ.
    dead_blocks_gradient: float = 0.9
    # Dropout at p ≥ 0.5 (pre-flight dropout_max, the user's module included) drops most units at every update:
    # with it, dead units and a training loss far above the validation loss are what the regulariser does, and
    # the cause is too much regularisation (underfitting, "regularise less"). Dropout 0.9 benchmark runs: 7 of 8
    # headlined dead_units.
    heavy_dropout: float = 0.5
    # Saturated units: a sigmoid/tanh layer whose outputs are ≥ 50 % saturated (slope < 10 % of its
    # maximum, see diagnose.stats) both after the first epoch and at the last: saturated from the start
    # means the init or input scale is too large. Saturation that only grows while training is how a
    # confident classifier looks (a trained 1-unit net: 80 %), not a fault.
    saturated_fraction: float = 0.5

    # Memorised (overfit_batches > 0, the first batches as training and validation split): a training accuracy of
    # ≥ 99 % at the last epoch (one of 64 examples wrong is 98.4 %), or for a regression a training loss at ≤ 5 % of
    # the first update's. The classic recipe memorises one batch of 64 in ~150 updates (train accuracy 1.00); at
    # lr 1e-4 it stays at 0.17 after 30.
    memorized_acc: float = 0.99
    memorized_loss_share: float = 0.05


@dataclass(frozen=True)
class Finding:
    """One diagnosed condition with the numbers that show it and one concrete thing to try."""

    rule: str
    severity: Severity
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""
    # The config values the remedy changes, as data ({"optimizer.lr": 0.01}): the verdict keeps the remedies
    # of one diagnosis from pulling a key in opposite directions ("lower lr" beside "raise lr").
    sets: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunContext:
    """What the rules read: metrics per epoch, ``layers.jsonl`` rows, ``summary.json``, the config dict."""

    history: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    summary: dict[str, Any]
    config: dict[str, Any]
    n_classes: int | None = None
    t: Thresholds = Thresholds()
    lr_find: dict[str, Any] | None = None  # the run's lr_find.json (trainlab lr-find --run), if one was made

    def series(self, key: str) -> list[tuple[int, float]]:
        """(epoch, value) of ``key`` over the epochs where it is a finite number."""
        return [(int(h["epoch"]), float(h[key])) for h in self.history
                if isinstance(h.get(key), (int, float)) and math.isfinite(h[key])]

    def values(self, key: str) -> list[float]:
        return [v for _, v in self.series(key)]

    @property
    def loss_floor(self) -> float:
        """The lowest loss the run can log: 0, or under label smoothing ε (cross_entropy, bce) the entropy of the
        smoothed target, -(1-ε+ε/C)·ln(1-ε+ε/C) - (C-1)·(ε/C)·ln(ε/C) (≈ 0.50 for C = 10 at ε = 0.1).
        Rules that judge how far a loss moved or how high it sits measure from here (``above_floor``); class weights
        make the floor depend on the class mix, and it is then taken as 0 (the unadjusted, quieter reading)."""
        eps = float(self.cfg("loss.label_smoothing", 0.0) or 0.0)
        c = 2 if self.cfg("loss.name") == "bce" else self.n_classes
        if not eps or not c or c < 2 or self.cfg("loss.class_weights") is not None:
            return 0.0
        hit, miss = 1 - eps + eps / c, eps / c
        return -hit * math.log(hit) - (c - 1) * miss * math.log(miss)

    @property
    def mixing(self) -> bool:
        """Training batches mixed by data.augment.mixup / cutmix: their accuracy counts each mix's dominant label."""
        return bool(self.cfg("data.augment.mixup", 0) or self.cfg("data.augment.cutmix", 0))

    def fit_acc(self) -> list[float]:
        """Per epoch, how accurately the net fits its data: the training accuracy, or where the training batches
        were mixed (``mixing``) the higher of it and the validation accuracy: a net at 0.84 on clean validation
        examples fits at least that well, whatever it scored on mixed ones (0.70 under CutMix at α = 1)."""
        if not self.mixing:
            return self.values("train_acc")
        return [max(h["train_acc"], h.get("val_acc") or 0.0) for h in self.history
                if isinstance(h.get("train_acc"), (int, float)) and math.isfinite(h["train_acc"])]

    def above_floor(self, key: str) -> list[tuple[int, float]]:
        """``series(key)`` of a loss less ``loss_floor``: how much of it training can still remove."""
        floor = self.loss_floor
        return [(e, v - floor) for e, v in self.series(key)]

    def cfg(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def classification(self) -> bool:
        return any(h.get("train_acc") is not None for h in self.history)

    @property
    def chance(self) -> float:
        # Unknown class count: assume 2, the highest chance level, so the underfitting rule errs quiet.
        return 1 / max(self.n_classes or 2, 2)

    @property
    def ran_out_of_epochs(self) -> bool:
        """The run used all its epochs (or is unfinished): no stopping rule ended it (summary["stopped_by"])."""
        return self.summary.get("stopped_by") in (None, "epochs")

    @property
    def lr(self) -> float:
        return float(self.cfg("optimizer.lr", 0.1))


Rule = Callable[[RunContext], "Finding | None"]


def _g(x: float) -> str:
    return f"{x:.3g}"


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _skill(ctx: RunContext) -> tuple[float, float] | None:
    """(best train accuracy, its fraction of the way from chance to 100 %), or None without accuracy. Under mixup or
    CutMix the best of ``ctx.fit_acc()``."""
    acc = ctx.fit_acc()
    if not acc:
        return None
    best = max(acc)
    return best, _skill_of(ctx, best)


def _skill_of(ctx: RunContext, acc: float) -> float:
    """An accuracy's fraction of the way from chance to 100 %."""
    return (acc - ctx.chance) / (1 - ctx.chance)


def _train_r2(ctx: RunContext, end: bool = False) -> float | None:
    """A regression's best training R² (1 - MSE / the targets' variance, pre-flight targets_var), or with ``end``
    that of the mean loss of the last `tail` epochs; None when unknown."""
    var = _preflight(ctx).get("targets_var")
    loss = ctx.values("train_loss")
    if not var or not loss or ctx.cfg("loss.name", "auto") not in ("auto", "mse"):
        return None
    return 1 - (_mean(loss[-ctx.t.tail:]) if end else min(loss)) / var


def _fit_vs_knn(ctx: RunContext, end: bool = False) -> tuple[float, float] | None:
    """(how far the net got on its own training data, how far the k-NN vote gets): skill from chance to 100 % for
    a classifier (best train accuracy vs pre-flight knn_acc), R² for a regression (vs knn_r2); None unknown.
    With ``end``, where the net stands over the last `tail` epochs instead of its best."""
    pf, acc = _preflight(ctx), ctx.fit_acc()
    if acc:
        knn = pf.get("knn_acc")
        return (_skill_of(ctx, _mean(acc[-ctx.t.tail:]) if end else max(acc)),
                _skill_of(ctx, knn) if knn is not None else 0.0)

    r2 = _train_r2(ctx, end)
    return (r2, pf.get("knn_r2") or 0.0) if r2 is not None else None


def _fits(ctx: RunContext, end: bool = False) -> bool:
    """The net fits its training data: ≥ dead_fit_skill of the way to perfect, or ≥ fit_vs_knn of what the k-NN
    vote gets from the same inputs (Thresholds.fit_vs_knn); with ``end``, over its last epochs rather than at its
    best. False when unknown."""
    got = _fit_vs_knn(ctx, end)
    if got is None:
        return False
    net, knn = got
    return net >= ctx.t.dead_fit_skill or (knn > ctx.t.no_signal_skill and net >= ctx.t.fit_vs_knn * knn)


def _heavy_dropout(ctx: RunContext) -> float | None:
    """The model's largest dropout p when it is ≥ heavy_dropout (pre-flight, or the config), else None."""
    p = max(_preflight(ctx).get("dropout_max") or 0.0, ctx.cfg("model.dropout") or 0.0)
    return p if p >= ctx.t.heavy_dropout else None


def _died_in_epoch1(ctx: RunContext) -> tuple[str, float, float] | None:
    """(layer, dead share before any update, after epoch 1) of a ReLU layer the first epoch's updates killed."""
    at_init = _preflight(ctx).get("dead_at_init") or {}
    if not ctx.layers or not at_init or _heavy_dropout(ctx) is not None:
        return None
    after = _activation_layers(ctx.layers[0], ("relu", "leaky_relu"), "dead")
    killed = [(n, at_init[n], s["dead"]) for n, s in after.items()
              if n in at_init and at_init[n] <= ctx.t.dead_at_init_max and s["dead"] >= ctx.t.died_in_epoch1]
    return max(killed, key=lambda k: k[2] - k[1]) if killed else None


def _saturated_in_epoch1(ctx: RunContext) -> tuple[str, float, float, float] | None:
    """(layer, saturated share before the first update, after epoch 1, at the last epoch) of the sigmoid/tanh layer
    that the first epoch's updates drove into saturation (below saturated_fraction at init, at or above it after
    epoch 1 and still at the end); None when the pre-flight did not measure it (a run from before it did)."""
    at_init = _preflight(ctx).get("saturated_at_init")
    if not ctx.layers or not at_init:
        return None
    kinds, lim = ("sigmoid", "tanh"), ctx.t.saturated_fraction
    early = _activation_layers(ctx.layers[0], kinds, "saturated")
    last = _activation_layers(ctx.layers[-1], kinds, "saturated")
    made = [(n, at_init[n], early[n]["saturated"], last[n]["saturated"]) for n in early
            if n in at_init and n in last and at_init[n] < lim <= min(early[n]["saturated"], last[n]["saturated"])]
    return max(made, key=lambda m: m[3]) if made else None


def _lr_above_range(ctx: RunContext) -> bool:
    """The lr is at or above the high end of the optimizer's usual range (Thresholds.lr_ranges)."""
    entry = ctx.t.lr_ranges.get(ctx.cfg("optimizer.name"))
    return entry is not None and ctx.lr >= entry[1]


def _usual_lr(ctx: RunContext) -> float | None:
    """The usual lr of the run's optimizer (Thresholds.lr_ranges), None for one without a known range."""
    entry = ctx.t.lr_ranges.get(ctx.cfg("optimizer.name"))
    return entry[2] if entry else None


def _init_fix(ctx: RunContext) -> str | None:
    """A scale-aware init to suggest when the config uses a fixed-scale one, else None."""
    init = ctx.cfg("model.init")
    if init not in ("normal", "uniform"):
        return None
    scale = f"init_std={ctx.cfg('model.init_std')}" if init == "normal" else f"init_bound={ctx.cfg('model.init_bound')}"
    better = "he" if ctx.cfg("model.activation") in ("relu", "leaky_relu", "gelu") else "xavier"
    return f"use model.init={better} (now {init} with model.{scale}), which keeps the signal scale through the layers"


def _lr_remedy(ctx: RunContext, lower: bool) -> tuple[str, dict[str, Any]]:
    """Lower (or raise) optimizer.lr: to the LR finder's suggestion when one was measured for this run's optimizer
    and batch size and it moves the lr that way; else by 10x (with the finder's disagreement quoted)."""
    lr = ctx.lr
    new = lr / 10 if lower else lr * 10
    remedy = f"{'lower' if lower else 'raise'} optimizer.lr to {new:g} (now {lr:g})"
    found = ctx.lr_find or {}
    s = found.get("suggestion")
    if (not isinstance(s, (int, float)) or found.get("optimizer") != ctx.cfg("optimizer.name")
            or found.get("batch_size") != ctx.cfg("batch_size")):
        return remedy, {"optimizer.lr": new}
    s = float(f"{s:.2g}")  # the value printed is the value set
    if (s < lr) != lower or s == lr:
        return (f"{remedy}; the LR finder suggested {s:g}, which is not {'lower' if lower else 'higher'}, so look "
                "at the other findings too", {"optimizer.lr": new})
    each = ", ".join("none" if v is None else f"{v:.2g}" for v in found.get("suggestions") or [])
    spread = found.get("spread")
    why = f"seeds: {each}" + (f"; spread {spread:.1f}x" if isinstance(spread, (int, float)) and "," in each else "")
    return f"set optimizer.lr to {s:g}, the LR finder's suggestion ({why}; now {lr:g})", {"optimizer.lr": s}


# ---------------------------------------------------------------------------------------------
# Rules, each `(ctx) -> Finding | None`.

# ---------------------------------------------------------------------------------------------
# Pre-flight rules: causes that exist before the first update (summary.json["preflight"], train.preflight).


def _preflight(ctx: RunContext) -> dict[str, Any]:
    return ctx.summary.get("preflight") or {}


def loss_output_mismatch(ctx: RunContext) -> Finding | None:
    """The model's last layer does the loss's job (softmax before cross-entropy) or cannot produce what it
    needs (ReLU outputs as logits, non-negative outputs for negative targets)."""
    pf = _preflight(ctx)
    out, loss, t = pf.get("outputs"), pf.get("loss"), ctx.t
    if not out:
        return None
    ev = {"loss": loss, **{k: out[k] for k in ("min", "max", "row_sum_error", "zero_fraction")}}
    logits = ctx.cfg("loss.from_logits", True)
    sets: dict[str, Any] = {}
    probabilities = out["min"] >= 0 and (out["row_sum_error"] <= t.softmax_rows if loss == "cross_entropy"
                                         else out["max"] <= 1)
    if not logits and loss in ("cross_entropy", "bce") and not probabilities:
        message = (f"loss.from_logits=false reads the model's outputs as probabilities, but the untrained model's "
                   f"are not (from {_g(out['min'])} to {_g(out['max'])}"
                   + (f", rows summing to 1 ± {_g(out['row_sum_error'])}" if loss == "cross_entropy" else "") + ")")
        remedy = "set loss.from_logits=true (the default) for a model that outputs raw scores"
        sets = {"loss.from_logits": True}
    elif not logits:
        return None  # probabilities, and the loss was told so
    elif loss == "cross_entropy" and out["width"] > 1 and probabilities:
        message = ("the untrained model's outputs are already probabilities (every row sums to 1: it ends in a "
                   "softmax) and cross_entropy applies softmax again, so the scores it learns are squashed twice "
                   "and the gradients shrink")
        remedy = ("remove the final softmax from the model (loss.name=cross_entropy expects raw scores, logits), "
                  "or set loss.from_logits=false to have the loss take its probabilities as they are")
        sets = {"loss.from_logits": False}
    # ... but outputs that are all the same number say nothing about the last layer: a zero-initialised head
    # gives all zeros (symmetric_init names that), which looked like a ReLU (7 of 7 zero-init benchmark runs).
    elif loss == "cross_entropy" and out["min"] >= 0 and out["zero_fraction"] >= t.relu_zeros and out["max"] > out["min"]:
        message = (f"{out['zero_fraction']:.0%} of the untrained model's outputs are exactly 0 and none is negative: "
                   "it ends in a ReLU, so a class score can never go below 0 and a unit at 0 gets no gradient")
        remedy = "remove the ReLU after the last layer (loss.name=cross_entropy expects raw scores, logits)"
    elif loss == "bce" and probabilities:
        message = ("the untrained model's outputs all lie in [0, 1] (it ends in a sigmoid) and loss.name=bce "
                   "applies the sigmoid again")
        remedy = ("remove the final sigmoid from the model (loss.name=bce expects a raw score, a logit), or set "
                  "loss.from_logits=false to have the loss take its probability as it is")
        sets = {"loss.from_logits": False}
    elif pf.get("task") == "regression" and (pf.get("targets_min") or 0) < 0 and out["min"] >= 0 \
            and out["zero_fraction"] >= t.relu_zeros and out["max"] > out["min"]:
        message = (f"the targets go down to {_g(pf['targets_min'])} but the model's outputs cannot be negative "
                   f"({out['zero_fraction']:.0%} are exactly 0: it ends in a ReLU)")
        remedy = "remove the ReLU after the last layer: a regression's output layer is linear"
    else:
        return None
    return Finding("loss_output_mismatch", "error", "Loss and output do not match", message, ev, remedy, sets)



def inputs_not_scaled(ctx: RunContext) -> Finding | None:
    """Inputs far from the unit scale the initialisations assume, and no normalisation."""
    inp, t = _preflight(ctx).get("inputs"), ctx.t
    if not inp or ctx.cfg("data.normalize"):
        return None
    scale = max(inp["abs_mean_max"], inp["std_max"])
    span = inp["max"] - inp["min"]
    if scale < t.unscaled_scale and span < t.unscaled_span:
        return None
    ev = {k: inp[k] for k in ("min", "max", "abs_mean_max", "std_max")}
    message = (f"the training inputs range from {_g(inp['min'])} to {_g(inp['max'])} (feature means up to "
               f"{_g(inp['abs_mean_max'])}, standard deviations up to {_g(inp['std_max'])}), far from the scale of about 1 "
               "that the weight initialisation assumes, so the first layers' outputs and gradients are huge")
    severity: Severity = "error" if max(scale, span) >= t.unscaled_error else "warning"
    return Finding("inputs_not_scaled", severity, "Inputs not scaled", message, ev,
                   "set data.normalize=true (standardises each feature with the training split's mean and std)",
                   {"data.normalize": True})


def symmetric_init(ctx: RunContext) -> Finding | None:
    """A layer whose weights all start equal: its units compute the same thing and get the same update."""
    layers = _preflight(ctx).get("uniform_layers") or []
    if not layers:
        return None
    message = (f"every weight of {', '.join(layers)} started at the same value, so the units of that layer compute "
               "the same output, get the same gradient and stay identical copies: the layer acts like one unit")
    custom = ctx.summary.get("custom_model")
    if custom is not None:  # model.init is not applied to the user's module: its layers are re-initialised instead
        return Finding("symmetric_init", "error", "Symmetric initialisation", message, {"layers": layers},
                       f"initialise those layers randomly: remove the constant init (nn.init.zeros_ / constant_) from "
                       f"{custom}.__init__, or call reset_parameters() on them (PyTorch's default random init; "
                       "what fix tries)", {})
    init = "he" if ctx.cfg("model.activation") in ("relu", "leaky_relu", "gelu") else "xavier"
    return Finding("symmetric_init", "error", "Symmetric initialisation", message, {"layers": layers},
                   f"initialise the weights randomly: model.init={init} (he for ReLU, xavier for tanh/sigmoid), "
                   "never a constant", {"model.init": init})


def empty_class(ctx: RunContext) -> Finding | None:
    """A class the model must output has no training example."""
    counts = _preflight(ctx).get("class_counts") or []
    empty = [k for k, c in enumerate(counts) if c == 0]
    if not counts or not empty:
        return None
    return Finding("empty_class", "warning", "Class without examples",
                   f"class{'es' if len(empty) > 1 else ''} {', '.join(map(str, empty[:10]))} of {len(counts)} "
                   f"ha{'ve' if len(empty) > 1 else 's'} no training example, so the model can only learn never to "
                   "predict it", {"empty": empty, "class_counts": counts},
                   "check the labels: number the classes 0..n_classes-1 without gaps, or set data.stratify=true "
                   "so that every split holds every class")


def no_signal(ctx: RunContext) -> Finding | None:
    """The labels cannot be predicted from the inputs at all: neither a k-NN vote nor the network beats chance."""
    knn, t = _preflight(ctx).get("knn_acc"), ctx.t
    val = ctx.values("val_acc")
    if knn is None or not val:
        return None
    chance = ctx.chance
    end = _mean(val[-t.tail:])
    if _skill_of(ctx, knn) > t.no_signal_skill or _skill_of(ctx, end) > t.no_signal_skill:

        return None
    train = ctx.values("train_acc")
    ev = {"knn_acc": knn, "val_acc_end": end, "chance": chance, "train_acc_end": train[-1] if train else None}
    message = (f"the labels look random: a vote of each training example's 5 nearest neighbours predicts its label "
               f"with accuracy {knn:.2f}, and the network ended at {end:.2f} on validation, with chance at {chance:.2f}"
               + (f" (training accuracy {train[-1]:.2f}: anything above chance there is memorised)" if train else ""))
    return Finding("no_signal", "error", "No signal in the labels", message, ev,
                   "check that each label belongs to its input (files merged or shuffled separately, a wrong label "
                   "column); with labels the inputs cannot explain, no model or setting will generalise")


def class_imbalance(ctx: RunContext) -> Finding | None:
    """The largest class outnumbers the smallest (non-empty) one many times over."""
    counts = _preflight(ctx).get("class_counts") or []
    present = [(c, k) for k, c in enumerate(counts) if c > 0]
    if len(present) < 2:
        return None
    (big, kb), (small, ks) = max(present), min(present)
    ratio = big / small
    if ratio < ctx.t.imbalance_ratio or ctx.cfg("loss.class_weights") is not None:
        return None  # weighted classes: the fix is in place
    majority = big / sum(c for c, _ in present)
    val = ctx.values("val_acc")
    ev = {"largest_class": kb, "largest": big, "smallest_class": ks, "smallest": small, "ratio": ratio,
          "majority_share": majority, "val_acc_end": _mean(val[-ctx.t.tail:]) if val else None}
    message = (f"class {kb} has {big} training examples and class {ks} only {small} ({ratio:.0f}:1): always answering "
               f"class {kb} already scores {majority:.0%} accuracy on data split like this, so accuracy hides a "
               "model that ignores the small classes")
    if val and ev["val_acc_end"] <= majority + 0.01:
        message += f"; this one ended at {ev['val_acc_end']:.2f}, no better than that"
    balanced = ctx.values("val_balanced_acc")
    if balanced and val:
        ev["val_balanced_acc_end"] = _mean(balanced[-ctx.t.tail:])
        message += (f"; its balanced accuracy (the mean of the per-class recalls) ended at "
                    f"{ev['val_balanced_acc_end']:.2f} against an accuracy of {ev['val_acc_end']:.2f}")
    judge = ("judge by the balanced accuracy (monitor=val_balanced_acc: the best checkpoint and early stopping "
             "follow it) and the report's confusion matrix, not accuracy")
    if ctx.cfg("loss.name", "auto") in ("auto", "cross_entropy"):
        # measured (moons, 30:1): the small class's recall 0.49 → 0.94 (MLP), 0.20 → 0.86 (linear) with it
        return Finding("class_imbalance", "warning", "Heavy class imbalance", message, ev,
                       f"set loss.class_weights=balanced (each class weighs as much in total), and {judge}",
                       {"loss.class_weights": "balanced"})
    return Finding("class_imbalance", "warning", "Heavy class imbalance", message, ev,
                   f"{judge}; rebalance the training data by repeating the small classes' examples (class {ks} "
                   f"~{ratio:.0f}×), or use loss.name=cross_entropy with loss.class_weights=balanced")


def leakage(ctx: RunContext) -> Finding | None:
    """Validation (or test) examples that are exact copies of training examples."""
    pf, t = _preflight(ctx), ctx.t
    found = [(name, f) for name, f in (("validation", pf.get("shared_with_val")),
                                       ("test", (ctx.summary.get("test") or {}).get("shared_with_train")))
             if f and f["n"] and f["share"] >= t.leak_share]
    if not found:
        return None
    parts = []
    for name, f in found:
        sample = (f" (looked up among {f['train_checked']} of the {f['train_n']} training examples)"
                  if f["train_checked"] < f["train_n"] else "")
        parts.append(f"{f['n']} of {f['of']} {name} examples are exact copies of training examples{sample}, about "
                     f"{f['share']:.0%} of the {name} split")
    ev = {name: f for name, f in found}
    return Finding("leakage", "warning", "Train/validation leakage",
                   "; ".join(parts) + ": the model is scored on examples it trained on, so these metrics are too "
                   "optimistic and an overfit model can look best", ev,
                   "remove duplicate examples before splitting (e.g. keep the first of each: "
                   "numpy.unique(X, axis=0, return_index=True)), then split again")


def targets_look_like_classes(ctx: RunContext) -> Finding | None:
    """A regression (MSE) on targets that are class labels: one-hot rows or a few whole numbers."""
    pf = _preflight(ctx)
    tg = pf.get("targets")
    if pf.get("task") != "regression" or not tg:
        return None
    if tg["onehot"]:
        message = (f"every target row is one-hot ({tg['columns']} columns of 0/1 with a single 1): these are class "
                   "labels, and a regression fits them with squared error instead of class probabilities")
        return Finding("targets_look_like_classes", "warning", "Classification trained as regression", message, tg,
                       "train a classifier: set data.task=classification (each one-hot row is read as the class of "
                       "its 1, trained with cross_entropy)", {"data.task": "classification"})
    if not tg["integer"] or tg["distinct"] > ctx.t.target_classes:
        return None
    message = (f"the regression targets are whole numbers with only {tg['distinct']} distinct values: they look like "
               "class indices, and MSE on class indices treats class 3 as closer to 2 than to 7")
    return Finding("targets_look_like_classes", "warning", "Classification trained as regression", message, tg,
                   "train a classifier: set data.task=classification (cross_entropy on the classes)",
                   {"data.task": "classification"})


def lr_unusual(ctx: RunContext) -> Finding | None:
    """A learning rate far outside the usual range of the chosen optimizer (checked before training)."""
    name = ctx.cfg("optimizer.name")
    if name not in ctx.t.lr_ranges or ctx.cfg("optimizer.lr") is None:
        return None
    low, high, usual = ctx.t.lr_ranges[name]
    lr = ctx.lr
    if low < lr < high:
        return None
    side, way = (f"at or above {high:g}", "lower") if lr >= high else (f"at or below {low:g}", "raise")
    # no config keys in the message, and the remedy in the words every lr remedy uses: the playground rewrites both
    return Finding("lr_unusual", "warning", "Unusual learning rate",
                   f"a learning rate of {lr:g} is {side}, far outside the usual range for {name} (usually about "
                   f"{usual:g})", {"lr": lr, "optimizer": name, "low": low, "high": high, "usual": usual},
                   f"{way} optimizer.lr to {usual:g} (now {lr:g}), the usual start for {name}", {"optimizer.lr": usual})


_WHAT = {"loss": "the training loss", "gradient norm": "the gradient norm", "val_loss": "the validation loss",
         "float16 gradients": "every update's float16 gradients"}


def nan_cause(facts: dict[str, Any], t: Thresholds) -> tuple[str, str]:
    """(cause id, cause in words) of a NaN/Inf, from what the loop saw before it (``summary["non_finite"]``).

    Ordered by evidence: a run whose gradients were of normal size at the start and whose loss then rose
    (or whose gradient norm grew by orders of magnitude) broke because its steps overshoot — the learning
    rate — even if the gradient norm was huge by the time it broke; exploding gradients are named only when
    the norm was already huge at the start (init, depth, input scale)."""
    if facts.get("what") == "val_loss":
        return "val_overflow", "the weights grew too large for the validation inputs"
    if facts.get("what") == "float16 gradients":  # train.loop: an fp16 epoch whose every update was skipped
        return "fp16_overflow", (f"float16's range: the gradients overflowed even at a loss scale of "
                                 f"{facts.get('loss_scale', 0):g}, so no update was applied")
    cause = _cause_in_any_precision(facts, t)
    if facts.get("precision") == "fp16" and cause[0] in ("bad_start", "overflow"):
        # not the steps (those causes are ruled out) but a value out of range: in float16 that is anything past
        # 65504, which float32 holds (a GradScaler scales the gradients, not the forward pass)
        return "fp16_overflow", ("float16's range: the forward pass of an fp16 run went past 65504 (float16's "
                                 "largest number) with " + ("the loss falling and the gradients moderate"
                                                            if cause[0] == "overflow" else "the first batch"))
    return cause


def _cause_in_any_precision(facts: dict[str, Any], t: Thresholds) -> tuple[str, str]:
    first, peak = facts.get("first_loss"), facts.get("peak_loss")
    g0, gmax = facts.get("first_grad_norm"), facts.get("max_grad_norm")
    if first is None or g0 is None:
        return "bad_start", "the first update already failed, so the inputs or the initial weights are far too large"
    if g0 >= t.exploding_norm:
        return "exploding_gradients", f"exploding gradients (the gradient norm was {_g(g0)} already at the start)"
    if peak >= t.nan_loss_rise * first:
        return "lr_too_high", (f"learning rate too high (the loss rose from {_g(first)} to {_g(peak)} before it broke, "
                               f"from gradients of normal size, {_g(g0)} at the start)")
    if gmax >= t.exploding_growth * g0:
        return "lr_too_high", (f"learning rate too high (the gradient norm grew from {_g(g0)} to {_g(gmax)} "
                               "before it broke)")
    if facts.get("last_loss", first) >= first:  # the first forward pass was fine: only the updates changed since
        return "lr_too_high", (f"learning rate too high (the loss never fell below its start, {_g(first)}, and "
                               f"the gradients were of normal size, {_g(g0)}: the first updates overshot)")
    return "overflow", ("a numerical overflow: the loss had been falling and the gradients stayed moderate, so "
                        "look for extreme values in the data or the loss")


def non_finite(ctx: RunContext) -> Finding | None:
    """NaN/Inf: where (loss, gradient or validation loss), when (epoch, step) and the likely cause."""
    facts = ctx.summary.get("non_finite") or {}
    bad = [h["epoch"] for h in ctx.history if any(isinstance(v, float) and not math.isfinite(v) for v in h.values())]
    if not facts and not bad:
        return None
    ev: dict[str, Any] = {"last_finite_epoch": len(ctx.history) - len(bad), "lr": ctx.lr}
    if facts:
        ev.update(what=facts["what"], value=facts["value"], epoch=facts["epoch"])
        if facts.get("step") is not None:
            ev.update(step=facts["step"], steps_per_epoch=facts["steps_per_epoch"])
        ev["cause_id"], ev["cause"] = nan_cause(facts, ctx.t)
    else:
        ev.update(what="metrics", value="nan", epoch=bad[0], cause_id="unknown", cause="unknown")
    where = _WHAT.get(ev["what"], f"the {ev['what']}")
    when = f"epoch {ev['epoch']}" + (f", step {ev['step']} of {ev['steps_per_epoch']}" if "step" in ev else "")
    message = (f"{where} became {ev['value']} at {when}, after {ev['last_finite_epoch']} finite "
               f"epochs; likely cause: {ev['cause']}")
    lr = ctx.lr
    lower = {"optimizer.lr": lr / 10}
    if ev["cause_id"] == "fp16_overflow":
        remedy, sets = "train in float32: set speed.precision=fp32 (or bf16 on a GPU that has it)", {
            "speed.precision": "fp32"}
    elif ev["cause_id"] in ("bad_start", "overflow") and not ctx.cfg("data.normalize"):
        remedy, sets = "check the data for extreme values and set data.normalize=true", {"data.normalize": True}
    elif ev["cause_id"] in ("bad_start", "overflow"):
        remedy, sets = f"check the data for extreme values and lower optimizer.lr to {lr / 10:g} (now {lr:g})", lower
    elif ev["cause_id"] == "exploding_gradients":
        remedy, sets = _exploding_remedy(ctx)
    elif ev["cause_id"] == "lr_too_high":
        remedy, sets = _lr_remedy(ctx, lower=True)
    else:
        remedy, sets = f"lower optimizer.lr to {lr / 10:g} (now {lr:g})", lower
    return Finding("non_finite", "error", "NaN/Inf", message, ev, remedy, sets)


def out_of_memory(ctx: RunContext) -> Finding | None:
    """The device's memory ran out (summary["out_of_memory"], train.loop.out_of_memory): where, on which sizes, and
    the setting that needs less memory for the same training — passes of half the examples (gradient accumulation:
    the same updates) or half the evaluation batch."""
    facts = ctx.summary.get("out_of_memory") or {}
    if not facts:
        return None
    device = str(facts.get("device", ""))
    where = "the GPU" if device.startswith("cuda") else "the machine" if device == "cpu" else f"device {device}"
    ev = {k: facts.get(k) for k in ("phase", "device", "epoch", "step", "steps_per_epoch", "batch_size", "micro_batch",
                                    "eval_batch_size", "error")}
    sets = dict(facts.get("sets") or {})
    if facts.get("phase") == "validation":
        when = f"validating epoch {ev['epoch']} in batches of {ev['eval_batch_size']}"
    else:
        per_pass = min(ev["micro_batch"] or ev["batch_size"], ev["batch_size"])
        when = (f"at epoch {ev['epoch']}, update {ev['step']} of {ev['steps_per_epoch']}, on forward and backward "
                f"passes of {per_pass} examples")
    message = f"{where} ran out of memory {when} ({ev['error']})"
    if "speed.micro_batch" in sets:
        m = sets["speed.micro_batch"]
        remedy = (f"set speed.micro_batch={m}: the same updates of batch_size {ev['batch_size']}, each in passes of at "
                  f"most {m} examples whose gradients add up (gradient accumulation)")
    elif "eval_batch_size" in sets:
        remedy = f"set eval_batch_size={sets['eval_batch_size']} (now {ev['eval_batch_size']})"
    else:
        remedy = "use a smaller model: one example's pass alone does not fit"
    return Finding("out_of_memory", "error", "Out of memory", message, ev, remedy, sets)


def _exploding_remedy(ctx: RunContext) -> tuple[str, dict[str, Any]]:
    lr = ctx.lr
    init = _init_fix(ctx)
    if init:
        return init, {}
    if ctx.cfg("grad_clip") is None:
        return (f"set grad_clip=1.0 and lower optimizer.lr to {lr / 10:g} (now {lr:g})",
                {"grad_clip": 1.0, "optimizer.lr": lr / 10})
    return f"lower optimizer.lr to {lr / 10:g} (now {lr:g}) or set model.batchnorm=true", {"optimizer.lr": lr / 10}


def exploding_gradients(ctx: RunContext) -> Finding | None:
    """Huge gradient norms, or norms growing by orders of magnitude over the epochs."""
    t = ctx.t
    per_epoch: dict[int, float] = dict(ctx.series("grad_norm"))
    largest: dict[int, tuple[str, float]] = {}
    for row in ctx.layers:
        norms = {k: v for k, v in (row.get("grad_norm") or {}).items() if math.isfinite(v)}
        if norms:
            name = max(norms, key=norms.__getitem__)
            largest[row["epoch"]] = (name, norms[name])
            per_epoch[row["epoch"]] = max(per_epoch.get(row["epoch"], 0.0), norms[name])
    if not per_epoch:
        return None
    epochs = sorted(per_epoch)
    first, peak_epoch = per_epoch[epochs[0]], max(epochs, key=per_epoch.__getitem__)
    peak = per_epoch[peak_epoch]
    growth = peak / first if first > 0 else math.inf
    huge = peak >= t.exploding_norm
    growing = growth >= t.exploding_growth and peak >= t.exploding_floor
    if not (huge or growing) or _lr_explains_growth(ctx, first):
        return None
    # Gradients of normal size at the first update (summary["first_update"]) that grow while the loss rises are
    # the steps overshooting: the learning rate, as nan_cause orders a NaN's causes; lr_too_high names it with
    # the same remedy. Four lr ×100 benchmark runs were headlined "exploding gradients". A norm already huge at
    # the first update (an init too large) stays exploding gradients.
    g0 = (ctx.summary.get("first_update") or {}).get("grad_norm")
    if isinstance(g0, (int, float)) and g0 < t.exploding_norm and lr_too_high(ctx) is not None:
        return None
    ev = {"first": first, "peak": peak, "peak_epoch": peak_epoch, "growth": growth}
    message = f"the gradient norm reached {_g(peak)} at epoch {peak_epoch}"
    if peak_epoch != epochs[0]:
        message += f", up from {_g(first)} at epoch {epochs[0]} ({growth:.0f}×)"
    if peak_epoch in largest:
        ev["largest_layer"] = largest[peak_epoch][0]
        message += f", largest in {largest[peak_epoch][0]}"
    message += "; with losses of order 1 healthy gradient norms stay below ~10"
    remedy, sets = _exploding_remedy(ctx)
    return Finding("exploding_gradients", "error", "Exploding gradients", message, ev, remedy, sets)


def _sign_changes(deltas: list[float]) -> float:
    signs = [d > 0 for d in deltas if d != 0]
    return sum(a != b for a, b in zip(signs, signs[1:])) / max(len(signs) - 1, 1)


def _chance_loss(ctx: RunContext) -> float | None:
    """ln(C): the cross-entropy of predicting every class equally (None for other losses or regression)."""
    if not ctx.n_classes or ctx.n_classes < 2 or ctx.cfg("loss.name", "auto") not in ("auto", "cross_entropy"):
        return None
    return math.log(ctx.n_classes)


def _nan_from_lr(ctx: RunContext) -> tuple[dict[str, Any], str] | None:
    """The loop's NaN/Inf facts and the cause in words, when the cause is the learning rate, else None."""
    facts = ctx.summary.get("non_finite") or {}
    if not facts:
        return None
    cause_id, cause = nan_cause(facts, ctx.t)
    return (facts, cause) if cause_id == "lr_too_high" else None


def lr_too_high(ctx: RunContext) -> Finding | None:
    """The training loss rises, climbs back from its best, oscillates with a large amplitude, ends well
    above the loss of guessing, or broke to NaN/Inf after rising. An error when it diverged (see lr_diverged)."""
    t, series = ctx.t, ctx.series("train_loss")
    parts, ev = [], {}
    diverged = False
    nan = _nan_from_lr(ctx)
    if nan is not None:
        facts, cause = nan
        step = f", step {facts['step']}" if facts.get("step") is not None else ""
        parts.append(f"the {facts['what']} became {facts['value']} at epoch {facts['epoch']}{step}: {cause}")
        ev.update(non_finite_epoch=facts["epoch"], non_finite_step=facts.get("step"))
        diverged = True
    start = ctx.summary.get("first_epoch") or {}
    curve, l0 = start.get("loss_curve") or [], start.get("first_loss")
    finite = [v for v in curve if math.isfinite(v)]
    if _chance_loss(ctx) is not None and l0 and l0 > 0 and finite and max(finite) >= t.lr_high_in_epoch * l0:
        peak = max(finite)
        at = curve.index(peak) + 1
        parts.append(f"inside epoch 1 the loss rose from {_g(l0)} at the first update to {_g(peak)} ({at}/{len(curve)} "
                     "of the way through the epoch, a mean over its updates there)")
        ev.update(first_update_loss=l0, first_epoch_peak=peak)
        diverged = diverged or peak >= t.lr_diverged * l0
    if not series or series[0][1] <= 0:
        return _lr_high_finding(ctx, parts, ev, diverged)
    epochs, loss = [e for e, _ in series], [v for _, v in series]
    first, floor = loss[0], t.loss_floor * loss[0]
    chance = _chance_loss(ctx)
    end = _mean(loss[-t.tail:])
    if chance is not None and end >= t.lr_high_vs_chance * chance:
        parts.append(f"the training loss ended at {_g(end)}, {end / chance:.3g}× the {_g(chance)} of guessing every "
                     f"one of the {ctx.n_classes} classes equally (an untrained net starts there)")
        ev.update(end=end, chance_loss=chance)
    # The first epoch's mean ≥ lr_high_rise × the loss of the run's first update (summary["first_update"]): the
    # loss rose inside epoch 1 — a learning run's epoch-1 mean is below its first step's loss. SGD lr 10 on
    # Fashion-MNIST: 2.4 at the first update, a 9.5 mean, then every ReLU dead at 2.30, a loss that "fell" after
    # epoch 1 and was headlined vanishing gradients (4 lr ×100 / batch-1 benchmark runs).
    start = (ctx.summary.get("first_update") or {}).get("loss")
    if isinstance(start, (int, float)) and 0 < start and first >= t.lr_high_rise * start and not parts:
        parts.append(f"the training loss rose inside the first epoch: {_g(start)} at the first update, a mean of "
                     f"{_g(first)} over epoch {epochs[0]}")
        ev.update(first_update_loss=start, first=first)
    if len(series) < t.min_epochs:
        return _lr_high_finding(ctx, parts, ev, diverged)
    peak_i = max(range(1, len(loss)), key=loss.__getitem__)
    if loss[peak_i] >= t.lr_high_rise * first:
        parts.append(f"the training loss rose from {_g(first)} at epoch {epochs[0]} to {_g(loss[peak_i])} "
                     f"at epoch {epochs[peak_i]}")
        ev.update(first=first, peak=loss[peak_i], peak_epoch=epochs[peak_i])
        diverged = diverged or loss[peak_i] >= t.lr_diverged * first
    low_i = min(range(len(loss)), key=loss.__getitem__)
    if low_i < len(loss) - 1 and end >= t.lr_high_rise * max(loss[low_i], floor):
        parts.append(f"{'it' if parts else 'the training loss'} climbed back from its low of {_g(loss[low_i])} "
                     f"at epoch {epochs[low_i]} to {_g(end)} (mean of the last {min(t.tail, len(loss))} epochs)")
        ev.update(low=loss[low_i], low_epoch=epochs[low_i], end=end)
    half = loss[len(loss) // 2:]
    if len(half) >= 4 and statistics.median(half) >= t.lr_high_min_level * first:
        deltas = [b - a for a, b in zip(half, half[1:])]
        changes = _sign_changes(deltas)
        jump = statistics.median(abs(d) for d in deltas) / max(statistics.median(half), floor)
        if changes >= t.lr_high_sign_changes and jump >= t.lr_high_jump:
            parts.append(f"in the second half it jumped by a median {jump:.0%} of its level from epoch to "
                         f"epoch, changing direction {changes:.0%} of the time")
            ev.update(jump=jump, direction_changes=changes)
    return _lr_high_finding(ctx, parts, ev, diverged)


def _lr_high_finding(ctx: RunContext, parts: list[str], ev: dict[str, Any], diverged: bool) -> Finding | None:
    killed = _died_in_epoch1(ctx)
    if killed is not None and not _fits(ctx):
        name, before, after = killed
        parts.append(f"{after:.0%} of the ReLU units of {name} never fire on the probe batch after epoch 1, against "
                     f"{before:.0%} before the first update: the first epoch's steps pushed them off")
        ev.update(killed_layer=name, dead_at_init=before, dead_after_epoch1=after)
    # Sigmoid/tanh units the first epoch's steps drove into their flat tails, at an lr beyond the optimizer's usual
    # range: the steps overshoot even where the loss hides it. Adam lr 0.5 on circle: 84 % of a tanh layer
    # saturated after epoch 1 against 16 % at init, the loss jumping 0.03 → 0.61 late in the run, yet it fits.
    saturated = _saturated_in_epoch1(ctx) if _lr_above_range(ctx) else None
    if saturated is not None:
        name, before, after, end_share = saturated
        parts.append(f"{after:.0%} of the outputs of {name} are saturated after epoch 1 against {before:.0%} before "
                     f"the first update ({end_share:.0%} at the end): the first epoch's steps drove them into the flat "
                     "tails, where little gradient flows back")
        ev.update(saturated_layer=name, saturated_at_init=before, saturated_after_epoch1=after,
                  saturated_at_end=end_share)
    # A run that ended up fitting its training data about as well as its inputs allow had no lr problem worth a
    # warning, whatever its curve did on the way (a spike inside epoch 1, minibatch jumps at a low loss): 7 healthy
    # benchmark runs (adam on spiral, on a user module) were flagged. A diverged run (NaN, a 10× rise) still is,
    # and so is one whose steps saturated its units (above).
    if not parts or (not diverged and saturated is None and _fits(ctx, end=True)):

        return None
    remedy, sets = _lr_remedy(ctx, lower=True)
    return Finding("lr_too_high", "error" if diverged else "warning", "Learning rate too high", "; ".join(parts),
                   {**ev, "diverged": diverged}, remedy, sets)


def _lr_explains_growth(ctx: RunContext, first_norm: float) -> bool:
    """Gradients of normal size at the start that then grew while the loss rose: the steps overshoot (the
    learning rate), the same evidence order as nan_cause — not an init or depth problem. The first update's norm
    (summary["first_epoch"]) is the start when known: an epoch-1 mean already holds the blow-up."""
    first_norm = (ctx.summary.get("first_epoch") or {}).get(
        "first_grad_norm", (ctx.summary.get("first_update") or {}).get("grad_norm", first_norm))
    if first_norm >= ctx.t.exploding_norm:
        return False
    if _nan_from_lr(ctx) is not None:
        return True
    start = (ctx.summary.get("first_epoch") or {}).get("first_loss")
    loss = ([start] if start else []) + ctx.values("train_loss")
    return len(loss) >= 2 and loss[0] > 0 and max(loss[1:]) >= ctx.t.lr_high_rise * loss[0]


def vanishing_gradients(ctx: RunContext) -> Finding | None:
    """First-layer gradient norm ≪ last-layer's, as a median over the epochs."""
    rows = []
    for row in ctx.layers:
        g = row.get("grad_norm") or {}
        names = list(g)  # model parameter order: input side first, head last
        if len(names) >= 2 and math.isfinite(g[names[0]]) and math.isfinite(g[names[-1]]) and g[names[-1]] > 0:
            rows.append((row["epoch"], names[0], names[-1], g[names[0]], g[names[-1]]))
    if not rows:
        return None
    ratios = [first / last for *_, first, last in rows]
    median = statistics.median(ratios)
    # The first epochs alone: a deep sigmoid stack under adam starts at ~1e-5 for ~10 epochs, then the ratio rises
    # once the top layers have fitted what they can, leaving a net that underfits (2 spiral benchmark runs were
    # named underfitting). Only with underfitting: a healthy deep net may start small and recover.
    early = next((i for i, r in enumerate(ratios) if r >= ctx.t.vanishing_ratio), len(ratios))
    at_start = median >= ctx.t.vanishing_ratio and early >= ctx.t.window and underfitting(ctx) is not None
    if median >= ctx.t.vanishing_ratio and not at_start:
        return None
    dead = _activation_layers(ctx.layers[-1], ("relu", "leaky_relu"), "dead")
    if any(s["dead"] >= ctx.t.dead_blocks_gradient for s in dead.values()):
        return None  # the gradient stops at a dead ReLU layer: dead units (or the lr that killed them) name it
    epoch, first_name, last_name, first, last = rows[early - 1] if at_start else rows[-1]
    ev = {"ratio_median": median, "ratio_first_epoch": ratios[0], "epochs": len(rows), "first_layer": first_name,
          "last_layer": last_name, "first_layer_norm": first, "last_layer_norm": last, "epoch": epoch}
    if at_start:
        ev["epochs_vanishing_at_start"] = early
        worst = statistics.median(ratios[:early])
        message = (f"for the first {early} epochs the first layer's gradient norm ({first_name}) was {worst:.2g}× the "
                   f"last layer's ({last_name}) (median; {_g(first)} vs {_g(last)} at epoch {epoch}): the first layers "
                   "hardly learned while the last ones fitted what they could, and the net underfits")
    else:
        slower = f"learns ~{1 / median:.0f}× slower" if median > 0 else "gets no gradient at all"
        message = (f"the first layer's gradient norm ({first_name}) is {median:.2g}× the last layer's ({last_name}), "
                   f"median over {len(rows)} epochs ({_g(first)} vs {_g(last)} at epoch {epoch}): the first layer "
                   f"{slower}")
    remedy, sets = _vanishing_remedy(ctx)
    return Finding("vanishing_gradients", "warning", "Vanishing gradients", message, ev, remedy, sets)


def _vanishing_remedy(ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Activations that pass the gradient on (ReLU with he init) for a built-in model; for the user's own module,
    whose layers no config key changes, adam: its per-weight step sizes move the first layers as far as the last
    whatever the size of their gradients."""
    act = ctx.cfg("model.activation")
    if ctx.summary.get("custom_model") is not None:
        change = "change the module: ReLU activations with he init, or BatchNorm between the layers"
        if ctx.cfg("optimizer.name") in ("adam", "adamw", "rmsprop"):
            return change, {}
        return (f"use optimizer.name=adam with optimizer.lr=0.001 (now {ctx.cfg('optimizer.name')}): its per-weight "
                f"steps do not shrink with the gradient; or {change}", {"optimizer.name": "adam", "optimizer.lr": 1e-3})
    if act in ("sigmoid", "tanh"):
        return (f"use model.activation=relu with model.init=he (now {act} with {ctx.cfg('model.init')}), "
                "or set model.batchnorm=true", {"model.activation": "relu", "model.init": "he"})
    hidden = ctx.cfg("model.hidden")
    return ("set model.batchnorm=true, or use fewer layers" + (f" (model.hidden={hidden})" if hidden else ""),
            {"model.batchnorm": True})


def _activation_layers(row: dict[str, Any], kinds: tuple[str, ...], key: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in (row.get("activations") or {}).items() if s.get("kind") in kinds and key in s}


def dead_units(ctx: RunContext) -> Finding | None:
    """ReLU layers where most units never activate on the probe batch at the last epoch."""
    if not ctx.layers:
        return None
    first, last = ctx.layers[0], ctx.layers[-1]
    dead = {n: s for n, s in _activation_layers(last, ("relu",), "dead").items() if s["dead"] >= ctx.t.dead_fraction}
    if not dead:
        return None
    # Dead units cost capacity; a net that fits its training set anyway (skill ≥ dead_fit_skill) has enough live
    # ones: adam on spiral ends 50–60 % dead at validation accuracy 1.0 (5 healthy benchmark runs flagged).
    if _fits(ctx) or _heavy_dropout(ctx) is not None:
        return None  # enough live units to fit; or heavy dropout, whose cause underfitting names
    # Before min_epochs no net fits yet, so "does not fit" says nothing about the units' cost: only a layer
    # ≥ died_in_epoch1 dead is judged this early (a 2-epoch Fashion CNN at 56 % dead and val loss falling fast was
    # headlined dead_units; lowering its lr halved its accuracy; it needed more epochs).
    if len(ctx.history) < ctx.t.min_epochs and max(s["dead"] for s in dead.values()) < ctx.t.died_in_epoch1:
        return None
    name = max(dead, key=lambda n: dead[n]["dead"])

    s = dead[name]
    at_first = _activation_layers(first, ("relu",), "dead").get(name, {}).get("dead")
    ev = {"layer": name, "dead": s["dead"], "units": s.get("units"), "epoch": last["epoch"],
          "dead_first_epoch": at_first, "layers": {n: d["dead"] for n, d in dead.items()}}
    message = (f"{s['dead']:.0%} of the {s.get('units', '?')} units of {name} never activate on the probe batch "
               f"at epoch {last['epoch']}")
    if at_first is not None and first is not last:
        message += f" ({at_first:.0%} at epoch {first['epoch']})"
    if len(dead) > 1:
        message += f"; {len(dead) - 1} more ReLU layer(s) ≥ {ctx.t.dead_fraction:.0%} dead"
    lr = ctx.lr
    return Finding("dead_units", "warning", "Dead ReLU units", message, ev,
                   f"lower optimizer.lr to {lr / 10:g} (now {lr:g}) or use model.activation=leaky_relu, "
                   "which keeps a small gradient for negative inputs", {"optimizer.lr": lr / 10})


def saturated_units(ctx: RunContext) -> Finding | None:
    """Sigmoid/tanh layers saturated from the first epoch on and still at the last."""
    if not ctx.layers:
        return None
    first, last = ctx.layers[0], ctx.layers[-1]
    kinds, lim = ("sigmoid", "tanh"), ctx.t.saturated_fraction
    early = _activation_layers(first, kinds, "saturated")
    both = {n: s for n, s in _activation_layers(last, kinds, "saturated").items()
            if s["saturated"] >= lim and early.get(n, {}).get("saturated", 0.0) >= lim}
    if not both:
        return None
    name = max(both, key=lambda n: both[n]["saturated"])
    s = both[name]
    ev = {"layer": name, "kind": s["kind"], "saturated": s["saturated"], "epoch": last["epoch"],
          "saturated_first_epoch": early[name]["saturated"], "layers": {n: d["saturated"] for n, d in both.items()}}
    # Not saturated before the first update but after epoch 1: the steps did it, not the init or the input scale
    made = _saturated_in_epoch1(ctx)
    made = made if made is not None and made[0] == name else None
    before = f" (against {made[1]:.0%} before the first update)" if made is not None else ""
    message = (f"{s['saturated']:.0%} of the outputs of {name} ({s['kind']}) are saturated at epoch {last['epoch']} "
               f"and {early[name]['saturated']:.0%} were after epoch {first['epoch']}{before}: where the slope is "
               "< 10 % of its maximum, little gradient flows back")
    if len(both) > 1:
        message += f"; {len(both) - 1} more layer(s) likewise"
    if made is not None:
        ev["saturated_at_init"] = made[1]
    if made is not None and _lr_above_range(ctx):  # ... with steps too large: lr_too_high names it with the same
        remedy, sets = _lr_remedy(ctx, lower=True)
        return Finding("saturated_units", "warning", "Saturated units", message, ev, remedy, sets)
    remedy, sets = _init_fix(ctx), {}
    if remedy is None and not ctx.cfg("data.normalize", True):
        remedy, sets = "set data.normalize=true so the first layer sees inputs of scale 1", {"data.normalize": True}
    elif remedy is None:
        remedy = f"set model.batchnorm=true, or lower optimizer.lr to {ctx.lr / 10:g} (now {ctx.lr:g})"
        sets = {"model.batchnorm": True}
    return Finding("saturated_units", "warning", "Saturated units", message, ev, remedy, sets)


def lr_too_low(ctx: RunContext) -> Finding | None:
    """The training loss barely moves over the run, creeping down on almost every epoch."""
    t, floor = ctx.t, ctx.loss_floor
    loss = [v for _, v in ctx.above_floor("train_loss")]  # what training can remove (label smoothing's floor off)
    if len(loss) < t.min_epochs or loss[0] <= 0:
        return None
    change = (loss[0] - min(loss[-t.tail:])) / loss[0]
    deltas = [b - a for a, b in zip(loss, loss[1:])]
    falling = sum(d < 0 for d in deltas) / len(deltas)
    if _fits(ctx):
        return None  # flat because it was learned in the first epoch, not because it cannot move
    skill = _skill(ctx)
    usual, lr = _usual_lr(ctx), ctx.lr
    below_usual, low = usual is None or lr <= usual, usual is not None and lr <= t.lr_low_vs_usual * usual
    # ... or, in a classifier that underfits (skill < underfit_skill), still falling steadily at the end: ≥
    # `improving_drop` of its level over the last `window` epochs. A net short of capacity flattens instead;
    # lr ÷100 benchmark runs moved 10–40 % and were called underfitting ("give the model capacity").
    recent = (loss[-t.window] - loss[-1]) / loss[-1] if len(loss) >= t.window and loss[-1] > 0 else 0.0
    creeping = skill is not None and skill[1] < t.underfit_skill and recent >= t.improving_drop
    slow = falling >= t.lr_low_falling and (change < t.lr_low_change or creeping) and below_usual
    if not (slow or low):
        return None
    ev = {"first": loss[0] + floor, "last": loss[-1] + floor, "change": change, "falling_epochs": falling,
          "epochs": len(loss), "lr": lr, "usual_lr": usual, **({"loss_floor": floor} if floor else {})}
    moved = f"{_g(loss[0] + floor)} → {_g(loss[-1] + floor)}"
    if floor:
        moved += f", label smoothing's floor {_g(floor)}"
    if slow and change < t.lr_low_change:
        message = (f"the training loss moved only {change:.1%}{' of the way to its floor' if floor else ''} in "
                   f"{len(loss)} epochs ({moved}), "
                   f"falling a little on {falling:.0%} of them")
    elif slow:
        message = (f"the training loss was still creeping down at the end ({recent:.0%} over the last {t.window} "
                   f"epochs, {moved} in all) while the model fits its training data poorly")
    else:
        message = (f"the learning rate {lr:g} is a tenth or less of the usual {usual:g} for "
                   f"{ctx.cfg('optimizer.name')}, and the model fits its training data poorly ({moved} in "
                   f"{len(loss)} epochs)")

    remedy, sets = _lr_remedy(ctx, lower=False)
    return Finding("lr_too_low", "warning", "Learning rate too low", message, ev, remedy, sets)


def memorization(ctx: RunContext) -> Finding | None:
    """A run with ``overfit_batches`` (its training and validation split the same few examples): whether the network
    memorised them — the sanity check before a long run. In its place the fit rules (over/underfitting, good fit,
    still improving, too early) say nothing: a validation split equal to the training split judges no fit."""
    k = ctx.cfg("overfit_batches", 0) or 0
    rows = [h for h in ctx.history if isinstance(h.get("train_loss"), (int, float)) and math.isfinite(h["train_loss"])]
    if not k or not rows:
        return None
    last, epochs = rows[-1], int(rows[-1]["epoch"])
    first = (ctx.summary.get("first_update") or {}).get("loss") or rows[0]["train_loss"]
    n = (ctx.summary.get("data") or {}).get("train")
    examples = f"its {n} training examples" if n else "its training examples"
    ev = {"overfit_batches": k, "examples": n, "epochs": epochs, "first_loss": first,
          "train_loss_last": last["train_loss"], "train_acc_last": last.get("train_acc")}
    if last.get("train_acc") is not None:
        done = last["train_acc"] >= ctx.t.memorized_acc
        level = f"training accuracy {last['train_acc']:.2f}"
    else:
        done = last["train_loss"] <= ctx.t.memorized_loss_share * first
        level = f"training loss at {last['train_loss'] / first:.0%} of its start"
    change = f"loss {_g(first)} → {_g(last['train_loss'])}"
    if done:
        return Finding("memorization", "info", "Memorised", f"the network fit {examples} (overfit_batches={k}): "
                       f"{level} at epoch {epochs}, {change}: data, loss and layers can learn", ev,
                       "train on the whole training split: --set overfit_batches=0", {"overfit_batches": 0})
    return Finding("memorization", "warning", "Not memorised",
                   f"after {epochs} epochs {examples} (overfit_batches={k}) are still not fit: {level}, {change}. "
                   "A network that cannot fit a handful of examples has a bug, or an lr far off", ev,
                   f"if the loss still falls, train longer (epochs={2 * epochs}, now {epochs}); if it is flat, look "
                   "for labels out of step with their inputs, a loss on the wrong outputs, or a layer that stops "
                   "the gradient", {"epochs": 2 * epochs})


def overfitting(ctx: RunContext) -> Finding | None:
    """Validation loss rises from its minimum while the training loss keeps falling."""
    t = ctx.t
    rows = [h for h in ctx.history if all(isinstance(h.get(k), (int, float)) and math.isfinite(h[k])
                                          for k in ("train_loss", "val_loss"))]
    if len(rows) < t.min_epochs + t.tail:
        return None
    # The low point is the lowest mean of `tail` consecutive epochs, not the lowest single epoch: the minimum of a
    # noisy series sits below its level, so a flat but noisy validation loss (a 150-example split jumping 0.20 ↔
    # 0.37) "rose 10 %" from its luckiest epoch (2 healthy benchmark runs flagged).
    # Under label smoothing both losses sit above a floor (RunContext.loss_floor) they can never go below: rises
    # and falls are measured on what lies above it (a memorised set at ε = 0.1 logs 0.52, 0.02 above its floor).
    floor = ctx.loss_floor
    excess = [{"train_loss": r["train_loss"] - floor, "val_loss": r["val_loss"] - floor} for r in rows]
    mean_of = lambda key, i: _mean([r[key] for r in excess[i:i + t.tail]])  # noqa: E731
    # The low window ends before the last `tail` epochs begin: the rise is measured between disjoint windows.
    w = min(range(len(rows) - 2 * t.tail + 1), key=lambda i: mean_of("val_loss", i))
    b = min(range(w, w + t.tail), key=lambda i: rows[i]["val_loss"])
    best, last = rows[b], rows[-1]
    if excess[b]["val_loss"] <= 0 or excess[b]["train_loss"] <= 0:
        return None

    val_low, train_low = mean_of("val_loss", w), mean_of("train_loss", w)
    end = len(rows) - t.tail  # the last window
    val_end, train_end = mean_of("val_loss", end), mean_of("train_loss", end)
    # Relative to the low level, but never to less than `loss_floor` of the first epoch's: a validation
    # loss going 0.0046 → 0.0052 after reaching 100 % accuracy is noise, not memorisation.
    rise = (val_end - val_low) / max(val_low, t.loss_floor * excess[0]["val_loss"])
    # The training loss fell from the higher of its low-window mean and its value at the best epoch: a net already
    # memorising jumps with minibatch noise (0.05 ↔ 0.25), and either number alone can sit at a lucky dip.
    train_from = max(train_low, excess[b]["train_loss"])
    fall = (train_from - train_end) / train_from

    if excess[-1]["val_loss"] <= val_low:
        return None  # the last epoch is back at the low level: what rose between was noise (unstable steps)
    rising = rise >= t.overfit_val_rise and fall >= t.overfit_train_fall

    memorising = (rise >= 0 and fall >= t.memorise_train_fall and train_end <= t.memorise_ratio * val_end
                  and val_end >= t.loss_floor * excess[0]["val_loss"])
    if not (rising or memorising):
        return None
    gap_best, gap_last = best["val_loss"] - best["train_loss"], last["val_loss"] - last["train_loss"]
    ev = {"best_epoch": best["epoch"], "val_loss_best": best["val_loss"], "train_loss_best": best["train_loss"],
          "last_epoch": last["epoch"], "val_loss_last": last["val_loss"], "train_loss_last": last["train_loss"],
          "gap_best": gap_best, "gap_last": gap_last, "val_rise": rise, "train_fall": fall,
          "val_loss_low_window": val_low + floor, "val_loss_end_window": val_end + floor,
          "train_loss_end_window": train_end + floor, **({"loss_floor": floor} if floor else {})}
    acc = [r.get("val_acc") for r in rows]
    held = None
    if rising:
        message = (f"validation loss rose from {_g(best['val_loss'])} at epoch {best['epoch']} to "
                   f"{_g(last['val_loss'])} at epoch {last['epoch']} while training loss fell from "
                   f"{_g(best['train_loss'])} to {_g(last['train_loss'])}; the gap grew from {_g(gap_best)} to "
                   f"{_g(gap_last)}")
        if all(isinstance(a, (int, float)) for a in acc[w:w + t.tail] + acc[-t.tail:]):
            acc_low, acc_end = _mean(acc[w:w + t.tail]), _mean(acc[-t.tail:])
            ev.update(val_acc_low_window=acc_low, val_acc_end_window=acc_end)
            if acc_end >= acc_low - t.overfit_acc_held:
                held = (f"; validation accuracy held ({acc_low:.3f} around epoch {best['epoch']}, {acc_end:.3f} over "
                        f"the last {t.tail} epochs): the net grows more confident on the examples it gets wrong")

    else:
        message = (f"validation loss got no lower after epoch {rows[w + t.tail - 1]['epoch']} (mean "
                   f"{_g(val_low + floor)} there, {_g(val_end + floor)} over the last {t.tail} epochs) while training "
                   f"loss fell from {_g(train_from + floor)} to {_g(train_end + floor)}"
                   + (f", {_g(train_end)} above the floor {_g(floor)} that label smoothing sets" if floor else "")
                   + f": the net memorises its training set; the gap grew from {_g(gap_best)} to {_g(gap_last)}")

    # Under adam, weight_decay is L2 in the gradient, which adam's per-weight scaling undoes for the weights
    # that move most (Loshchilov & Hutter 2019); a run that tried weight_decay=1e-4 under adam still overfit.
    decay = ("optimizer.name=adamw with optimizer.weight_decay=0.01" if ctx.cfg("optimizer.name") == "adam"
             else "optimizer.weight_decay=1e-4")
    if ctx.summary.get("stopped_by") == "early_stopping" and ctx.cfg("stop.early_stopping.restore_best", True):
        # Early stopping caught it and the weights kept are the best epoch's: handled, not a fault (Keras's
        # EarlyStopping(restore_best_weights=True) is the usual cure). What is left is how far regularising gets.
        return Finding("overfitting", "info", "Overfitting, stopped in time", message + f"; early stopping ended the "
                       f"run and kept the weights of epoch {ctx.summary.get('best_epoch', best['epoch'])}", ev,
                       f"to get further, regularise: model.dropout=0.3 or {decay}")
    if held is not None:
        return Finding("overfitting", "info", "Validation loss rising, accuracy held", message + held, ev,
                       f"nothing needed for accuracy; for calibrated probabilities stop at epoch {best['epoch']} "
                       f"(stop.early_stopping.patience) or regularise with {decay}")
    if ctx.cfg("stop.early_stopping.patience") is None:
        patience = max(2, min(10, len(rows) // 10))

        remedy = (f"stop at epoch {best['epoch']}: set stop.early_stopping.patience={patience} (it restores the best "
                  f"weights), or regularise with {decay} / model.dropout=0.3")
        sets: dict[str, Any] = {"stop.early_stopping.patience": patience}
    else:
        remedy = f"regularise: add model.dropout=0.3 or {decay}, use more data or a smaller model.hidden"
        sets = {"model.dropout": 0.3}
    return Finding("overfitting", "warning", "Overfitting", message, ev, remedy, sets)


def _capacity_remedy(ctx: RunContext) -> tuple[str, dict[str, Any]]:
    p = _heavy_dropout(ctx)
    if p is not None and ctx.summary.get("custom_model") is not None:
        return (f"regularise less: lower the drop probability of your module's nn.Dropout (now p={p:g}) to 0.1–0.3; "
                "at this p most units are dropped at every update"), {}
    reg = [(k, ctx.cfg(k)) for k in ("loss.l1", "loss.l2", "model.dropout", "optimizer.weight_decay") if ctx.cfg(k)]
    if reg:
        now = ", ".join(f"{k}={v:g}" for k, v in reg)
        return f"regularise less: set {' and '.join(f'{k}=0' for k, _ in reg)} (now {now})", {k: 0 for k, _ in reg}
    name, hidden = ctx.cfg("model.name"), ctx.cfg("model.hidden") or []
    if name in ("linear", "perceptron"):
        return (f"give the model capacity: model.name=mlp with model.hidden=[64] (now {name})",
                {"model.name": "mlp", "model.hidden": [64]})
    channels = ctx.cfg("model.channels") or []
    if name in ("cnn", "resnet") and channels and max(channels) < 16:  # a few feature maps: more epochs do not help
        sets = {"model.channels": [max(16, 4 * c) for c in channels]}
        if name == "cnn" and hidden and max(hidden) < 32:  # its dense head, as narrow
            sets["model.hidden"] = [max(32, 4 * w) for w in hidden]
        now = f"model.channels={channels}" + (f", model.hidden={hidden}" if "model.hidden" in sets else "")
        return f"give the model capacity: {' and '.join(f'{k}={v}' for k, v in sets.items())} (now {now})", sets
    if name == "mlp" and len(hidden) <= 3 and (not hidden or max(hidden) < 32):  # deep nets: width is not it
        wider = [max(32, 4 * w) for w in hidden] or [64]
        return f"give the model capacity: model.hidden={wider} (now {hidden})", {"model.hidden": wider}
    epochs, lr = ctx.cfg("epochs", len(ctx.history)), ctx.lr
    return (f"train longer (epochs={2 * epochs}, now {epochs}) or raise optimizer.lr to {3 * lr:g} (now {lr:g})",
            {"epochs": 2 * epochs, "optimizer.lr": 3 * lr})


def underfitting(ctx: RunContext) -> Finding | None:
    """Training error stays high: accuracy far from perfect relative to chance, or a high flat loss."""
    t = ctx.t
    if len(ctx.history) < t.min_epochs:
        return None
    skill = _skill(ctx)
    if skill is not None:
        best, frac = skill
        knn = _preflight(ctx).get("knn_acc")
        knn_skill = _skill_of(ctx, knn) if knn is not None else 0.0

        short_of_knn = knn_skill > t.no_signal_skill and frac < t.underfit_vs_knn * knn_skill
        if frac >= t.underfit_skill and not short_of_knn:
            return None
        val = ctx.values("val_acc")
        ev = {"best_train_acc": best, "chance": ctx.chance, "skill": frac, "best_val_acc": max(val) if val else None,
              "knn_acc": knn}
        way = (f"only {frac:.0%} of the way from chance to perfect" if frac > 0 else  # "-5% of the way" was shown
               "no better than guessing")
        what = "accuracy (the better of training on mixed batches and validation)" if ctx.mixing else \
            "training accuracy"
        message = (f"{what} peaked at {best:.2f} with chance at {ctx.chance:.2f}: {way}"
                   + (f"; validation accuracy peaked at {max(val):.2f}" if val else ""))
        if short_of_knn:
            message += (f"; a vote of each training example's 5 nearest neighbours reads its label with accuracy "
                        f"{knn:.2f}, so the network fits its own training data worse than its inputs allow")
    elif (r2 := _fit_vs_knn(ctx)) is not None and r2[1] > t.no_signal_skill and r2[0] < t.underfit_vs_knn * r2[1]:
        # a regression that explains less of its own training targets than the k-NN vote does (pre-flight knn_r2)
        net, knn = r2
        val = ctx.values("val_loss")
        ev = {"train_r2_best": net, "knn_r2": knn, "targets_var": _preflight(ctx).get("targets_var"),
              "val_loss_end": _mean(val[-t.tail:]) if val else None}
        message = (f"the model explains at best {max(net, 0):.0%} of the variance of its own training targets (R² "
                   f"{net:.2f}), while averaging each example's 5 nearest neighbours explains {knn:.0%}: it fits its "
                   "training data worse than its inputs allow")
    else:
        loss = ctx.values("train_loss")
        if len(loss) < t.window or loss[0] <= 0:
            return None
        end, recent = _mean(loss[-t.tail:]), loss[-t.window]
        remaining, moved = end / loss[0], abs(recent - end) / max(end, 1e-300)
        if remaining < t.underfit_remaining or moved >= t.plateau:
            return None
        val = ctx.values("val_loss")
        ev = {"first_train_loss": loss[0], "train_loss_end": end, "remaining": remaining, "recent_change": moved,
              "val_loss_end": _mean(val[-t.tail:]) if val else None}
        message = (f"training loss flattened at {_g(end)}, still {remaining:.0%} of its first-epoch value {_g(loss[0])}"
                   + (f"; validation loss {_g(ev['val_loss_end'])}" if val else ""))
    remedy, sets = _capacity_remedy(ctx)
    if not sets and (p := _heavy_dropout(ctx)) is not None:  # a user module's dropout: fix lowers it in the module
        ev = {**ev, "dropout_p": p}
    return Finding("underfitting", "warning", "Underfitting", message, ev, remedy, sets)


def too_early(ctx: RunContext) -> Finding | None:
    """Too few epochs to tell a good fit from under- or overfitting, while the validation loss still falls."""
    t, series, floor = ctx.t, ctx.above_floor("val_loss"), ctx.loss_floor
    n = len(ctx.history)
    if not series or n >= t.window or any(r(ctx) for r in BROKEN_RULES):
        return None
    falling = len(series) >= 2 and series[-1][1] <= min(v for _, v in series) and (
        series[-2][1] - series[-1][1] >= t.improving_drop * series[-1][1])
    if n >= t.min_epochs and not (falling and ctx.ran_out_of_epochs):
        return None
    epochs = ctx.cfg("epochs", n)
    ev = {"epochs_run": n, "val_loss_first": series[0][1] + floor, "val_loss_last": series[-1][1] + floor,
          "still_falling": falling}
    acc = ctx.values("val_acc")
    message = (f"{n} epoch{'s' if n != 1 else ''} {'are' if n != 1 else 'is'} too few to judge"
               + (f"; validation loss still falling ({_g(series[-2][1] + floor)} → {_g(series[-1][1] + floor)} "
                  "in the last epoch)" if falling else f"; validation loss {_g(series[-1][1] + floor)}")
               + (f", validation accuracy {acc[-1]:.2f}" if acc else ""))
    more = max(10, 4 * n)
    run = ctx.summary.get("run")
    cont = (f", or continue this run: trainlab train --resume {ctx.cfg('out_dir', 'runs')}/{run} --set epochs={more}"
            if run and ctx.ran_out_of_epochs else "")
    return Finding("too_early", "warning", "Too early to judge", message, ev,
                   f"train longer: set epochs={more} (now {epochs}){cont}",
                   {"epochs": more} if more > epochs else {})  # a run stopped early by a rule: no more epochs to set


def generalization_gap(ctx: RunContext) -> Finding | None:
    """Training accuracy far above validation accuracy around the best epoch, without a rising validation loss:
    the net fits its training examples much better than new ones (high variance)."""
    rows = [h for h in ctx.history if all(isinstance(h.get(k), (int, float)) and math.isfinite(h[k])
                                          for k in ("val_loss", "train_acc", "val_acc"))]
    over = overfitting(ctx)
    if len(rows) < ctx.t.min_epochs or over is not None and over.severity == "warning":
        return None  # overfitting names the gap with the rise that made it; its info forms (accuracy held, stopped
        # in time) say nothing is left to fix over time, while a gap that was there at the best epoch remains
    b = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    near = rows[max(b - 1, 0):b + 2]  # the best epoch and its neighbours: one noisy epoch does not decide
    train, val = _mean([r["train_acc"] for r in near]), _mean([r["val_acc"] for r in near])
    if train - val < ctx.t.gap_acc:
        return None
    n = (ctx.summary.get("data") or {}).get("train")
    ev = {"best_epoch": rows[b]["epoch"], "train_acc": train, "val_acc": val, "gap": train - val, "n_train": n}
    examples = f"its {n:,} training examples" if isinstance(n, int) else "its training examples"
    message = (f"training accuracy {train:.2f} against validation accuracy {val:.2f} around the best epoch "
               f"{rows[b]['epoch']}, a gap of {train - val:.2f}"
               + (", already there where the validation loss was lowest" if over is not None else
                  ", without a clear rise of the validation loss")
               + f": the net fits {examples} far better than new ones (high variance)")
    remedy = ("more training examples close the gap most surely; augmentation (images: data.augment.translate=2), "
              "model.dropout=0.3 or optimizer.weight_decay=1e-4 narrow it by fitting the training set less — keep a "
              "change only if validation accuracy rises, not just the gap")
    return Finding("generalization_gap", "warning", "Large generalisation gap", message, ev, remedy)


def good_fit(ctx: RunContext) -> Finding | None:
    """Neither under- nor overfitting, and no other warning: a "good fit" beside saturated units or a lr
    too high would contradict the finding shown above it."""
    rows = [h for h in ctx.history if isinstance(h.get("val_loss"), (int, float)) and math.isfinite(h["val_loss"])]
    if len(rows) < ctx.t.min_epochs or any(r(ctx) for r in RULES if r not in (good_fit, still_improving)):
        return None
    best, last = min(rows, key=lambda h: h["val_loss"]), rows[-1]
    ev = {"best_epoch": best["epoch"], "val_loss_best": best["val_loss"], "train_loss_last": last["train_loss"],
          "val_loss_last": last["val_loss"], "train_acc_last": last.get("train_acc"),
          "val_acc_last": last.get("val_acc")}
    if last.get("train_acc") is not None and last.get("val_acc") is not None:
        mixed = " (on mixed batches)" if ctx.mixing else ""
        message = (f"training accuracy {last['train_acc']:.2f}{mixed} and validation accuracy "
                   f"{last['val_acc']:.2f}")
    else:
        message = f"training loss {_g(last['train_loss'])} and validation loss {_g(last['val_loss'])}"
    message += f" at epoch {last['epoch']}; best validation loss {_g(best['val_loss'])} at epoch {best['epoch']}"
    monitor = ctx.summary.get("monitor", "val_loss")
    return Finding("good_fit", "info", "Good fit", message, ev,
                   f"keep this setup: checkpoints/best.pt holds the weights of the best {monitor} epoch")


def still_improving(ctx: RunContext) -> Finding | None:
    """The validation loss was still clearly falling when the epochs ran out."""
    t, series, floor = ctx.t, ctx.above_floor("val_loss"), ctx.loss_floor
    if not ctx.ran_out_of_epochs or len(series) < t.window:
        return None
    recent = series[-t.window:]
    xs, ys = [e for e, _ in recent], [v for _, v in recent]
    x_mean, y_mean = _mean(xs), _mean(ys)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys)) / sum((x - x_mean) ** 2 for x in xs)
    drop = -slope * (xs[-1] - xs[0])  # least-squares drop over the window: one noisy epoch barely moves it
    best_i = min(range(len(series)), key=lambda i: series[i][1])
    if (drop < t.improving_drop * ys[-1] or drop < t.improving_min * series[0][1]
            or best_i < len(series) - 2):
        return None
    epochs = ctx.cfg("epochs", xs[-1])
    ev = {"window": t.window, "val_loss_start": ys[0] + floor, "val_loss_last": ys[-1] + floor, "fitted_drop": drop,
          "best_epoch": series[best_i][0], "epochs": epochs, **({"loss_floor": floor} if floor else {})}
    level = f"of its level above label smoothing's floor {_g(floor)}" if floor else "of its level"
    message = (f"validation loss fell from {_g(ys[0] + floor)} to {_g(ys[-1] + floor)} over the last {t.window} "
               f"epochs ({drop / ys[-1]:.0%} {level}) and was at its lowest at epoch {series[best_i][0]} of {epochs}")
    run = ctx.summary.get("run")
    where = f"{ctx.cfg('out_dir', 'runs')}/{run}"
    cont = f", or continue this run: trainlab train --resume {where} --set epochs={2 * epochs}" if run else ""
    return Finding("still_improving", "info", "Still improving", message, ev,
                   f"train longer: set epochs={2 * epochs} (now {epochs}){cont}")


# Priority order, used to pick the headline among findings of the same severity: causes that exist before
# the first update (the pre-flight rules: they explain the symptoms below them), then what stops learning
# altogether first (a bad lr before the NaN and the grown gradients it causes, broken numbers, gradients that
# do not reach the first layers, dead or saturated units), then an lr outside its optimizer's range, then the
# fit it leads to (a lr too low, over- and underfitting), then the good news.
RULES: list[Rule] = [loss_output_mismatch, symmetric_init, inputs_not_scaled, empty_class, no_signal,
                     targets_look_like_classes, leakage, class_imbalance, out_of_memory, lr_too_high, non_finite,
                     exploding_gradients, vanishing_gradients, dead_units, saturated_units, lr_unusual, lr_too_low,
                     memorization, overfitting, underfitting, generalization_gap, too_early, good_fit,
                     still_improving]
RULE_IDS: list[str] = [r.__name__ for r in RULES]
# Rules about broken numbers or a broken setup: they hold after any number of epochs. The fit rules (a lr too
# low, over- and underfitting) judge trends, which a run that is too early to judge does not have yet:
# ``diagnose`` drops them beside a too_early finding (3 epochs at val acc 0.52 and falling are not "underfitting").
PREFLIGHT_RULES: list[Rule] = [loss_output_mismatch, symmetric_init, inputs_not_scaled, empty_class, no_signal,
                                targets_look_like_classes, leakage, class_imbalance]
# (The data and config warnings — leakage, imbalance, an unusual lr — do not make a 2-epoch run judgeable.)
BROKEN_RULES: list[Rule] = [loss_output_mismatch, symmetric_init, inputs_not_scaled, empty_class, no_signal,
                            out_of_memory, lr_too_high, non_finite, exploding_gradients, vanishing_gradients, dead_units,
                            saturated_units]
FIT_RULES: list[Rule] = [lr_too_low, overfitting, underfitting, generalization_gap]
# ... and beside no_signal: "give the model capacity" is no remedy for labels the inputs cannot explain.
FIT_JUDGED_LATER_BESIDE = ("too_early", "no_signal")  # each rule's function name is its finding's id
# ... and beside a diverged run (lr_too_high as an error): "give the model capacity" for a loss at 10^9 is noise.
FIT_JUDGED_LATER_BESIDE_ERROR = ("lr_too_high",)
# A run on overfit_batches (validation split = training split) is judged by memorization alone: these say nothing
# there (no fit to judge, and every validation example "leaked" from the training split by design)
NOT_BESIDE_MEMORIZATION = ("leakage", "overfitting", "underfitting", "generalization_gap", "too_early", "good_fit",
                           "still_improving")
