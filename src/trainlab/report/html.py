"""``runs/<run>/report.html``: one self-contained page saying what happened in a run.

Config, learning curves, the verdict (``diagnosis.json``), validation-set pictures, per-layer pictures,
timing and environment. Images are inlined as base64 data URIs and the CSS is inline: the file can be
mailed or opened offline and shows the same thing. Validation predictions are computed once, with the
best checkpoint, on the validation split the run trained with: passed in memory right after training
(``trainlab.workflow``), else carved again by ``load_data`` from the run's config and seed; the test split
is never opened here (its one number comes from ``summary.json``).
"""
from __future__ import annotations

import base64
import html
import json
import math
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import files
from trainlab.config import CLASS_SCORES, TrainConfig, config_to_dict, config_to_yaml
from trainlab.data import DataBundle, Split, load_data
from trainlab.diagnose.verdict import set_args
from trainlab.errors import DataError, TrainlabError
from trainlab.models.summary import ModelTable
from trainlab.report.history import confusion_data, most_confident_wrong, read_metrics
from trainlab.report.painter import Painter
from trainlab.train.inference import LoadedRun, inference_device, load_run
from trainlab.train.loop import batched_mean_loss, batched_outputs, memory_for
from trainlab.train.losses import predict_classes
from trainlab.train.metrics import BALANCED_SHOWN
from trainlab.train.run import read_run_config

ESSENTIAL_KEYS = ["data.name", "model.name", "model.hidden", "model.activation", "model.init", "optimizer.name",
                  "optimizer.lr", "batch_size", "epochs", "seed"]
IGNORED_KEYS = {"name", "out_dir"}
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# The per-layer pictures and their plot functions: drawn from the run's files alone, so final when training ends
# (``trainlab.report.live.DrawAhead`` starts them then)
PER_LAYER = {"grad_norms": "plot_grad_norms", "activations": "plot_activation_histograms"}
# Up to this many classes the confusion matrix is an HTML table (numbers as text, each cell's count on hover,
# nothing for a picture worker to draw: ~0.25 s of matplotlib for Fashion-MNIST's 10); more are a picture.
TABLE_CLASSES = 20
# ColorBrewer's Blues (matplotlib's "Blues"): a table cell's colour for its share of the row, 0 → 1
BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
# The wrong examples the report shows: the most confidently wrong validation examples.
WRONG_N = 16
e = html.escape


@dataclass
class ValidationPredictions:
    """The best checkpoint's outputs on the validation split: ``out`` (N, outputs), ``pred`` class ids (N,)
    or values (N, T), ``confidence`` of the predicted class (N,) for classification."""

    run: LoadedRun
    bundle: DataBundle
    out: torch.Tensor
    pred: torch.Tensor
    confidence: torch.Tensor | None
    probability: bool  # confidence is a probability (else a raw score)


@torch.inference_mode()
def validation_predictions(run_dir: str | Path, *, model: nn.Module | None = None, bundle: DataBundle | None = None,
                           outputs: torch.Tensor | None = None) -> ValidationPredictions:
    """Rebuild the run's best model and data split and predict every validation example once.

    ``outputs``: the best model's outputs on ``bundle``'s validation split as training computed them
    (``RunResult.best_val_outputs``): used instead of a second pass over the split, checked against the logged
    validation loss all the same.

    ``model`` / ``bundle``: the user's module and in-memory data of a run trained from Python."""
    cfg = read_run_config(run_dir)
    device = inference_device(cfg.device)
    run = load_run(run_dir, model=model, device=device)
    if bundle is None:
        bundle = load_data(run.cfg.data, run.cfg.seed)  # same config and seed → the same validation split
    if not isinstance(bundle.val, Split):
        raise DataError("data must be held in memory for the validation pictures. Got a dataset read batch by "
                        "batch (too large to hold). Pass a smaller validation set: fit(..., val=(X_val, y_val)).")
    bs = run.cfg.eval_batch_size
    x = bundle.val.x  # held wherever the caller's data live: batches go to the model's device, outputs come back
    if outputs is not None and len(outputs) == len(x):
        out = outputs.float().cpu()
    else:
        with memory_for(device, f"predicting the {len(x)} validation examples", len(x), bs,
                        "The report leaves out the validation pictures"):
            out = batched_outputs(run.model, x, bs, device).float() if len(x) else torch.empty(0)
    # the logged val_loss is the training loss (class weights included), batch by batch
    loss = run.training_loss(bundle)
    _check_same_data(run, batched_mean_loss(loss, out, bundle.val.y.cpu(), bs) if len(x) else math.nan)
    if run.info["task"] != "classification":
        return ValidationPredictions(run, bundle, out, out, None, False)
    pred = predict_classes(run.loss, out)
    probs = run.loss.probabilities(out)
    if probs is not None:
        conf = probs.gather(1, pred[:, None])[:, 0]
    else:  # margin losses (hinge, perceptron) and MSE on one-hot targets have scores, not probabilities
        conf = out[:, 0].abs() if out.shape[1] == 1 else out.gather(1, pred[:, None])[:, 0]
    return ValidationPredictions(run, bundle, out, pred, conf, probs is not None)


def _check_same_data(run: LoadedRun, val_loss: float) -> None:
    """The split found now must be the one the run saw: a dataset found elsewhere (data.dir emptied, a newer
    copy) would give pictures of a model on data it was never validated on."""
    rows = [r for r in read_metrics(run.run_dir) if r["epoch"] == run.epoch]
    logged = rows[0]["val_loss"] if rows else None
    # 0.2 %: far above float32 summation order (measured ~1e-8 on CPU) with room for a GPU's TF32 convolutions
    # (not measured here); below the ~1 % that fresh examples of the same easy fake dataset gave (see the test)
    if logged is not None and not math.isclose(val_loss, logged, rel_tol=2e-3, abs_tol=1e-6):
        raise DataError(f"data.name {run.cfg.data.name!r} must give the validation split the run was trained with. "
                        f"Got val_loss {val_loss:.6g} now vs {logged:.6g} logged at epoch {run.epoch}. Restore the "
                        f"dataset files the run used (data.dir={run.cfg.data.dir!r}).")


def make_pictures(run_dir: str | Path, *, summary: dict[str, Any] | None = None, model: nn.Module | None = None,
                  bundle: DataBundle | None = None, painter: Painter | None = None,
                  val_outputs: torch.Tensor | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Draw every picture that applies to the run. Returns ({name: plotted data}, {name: why missing}).

    ``painter`` draws (this process when None). Two pictures drawn from the run's files are asked for first, one
    per worker of a WorkerPainter, to be drawn while this process predicts the validation split; then the ones of
    the predictions. The confusion matrix of up to ``TABLE_CLASSES`` classes is its numbers (the report's table),
    with no picture drawn."""
    run_dir = Path(run_dir)
    painter = painter or Painter()
    jobs = {"curves": painter.draw("plot_curves", run_dir, summary=summary),
            "grad_norms": painter.draw(PER_LAYER["grad_norms"], run_dir)}
    pics: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    try:
        vp = validation_predictions(run_dir, model=model, bundle=bundle, outputs=val_outputs)
    except TrainlabError as exc:
        notes["predictions"] = f"No validation predictions: {exc}"
        vp = None
    if vp is not None:
        b, info = vp.bundle, vp.run.info
        y, pred = b.val.y.cpu().numpy(), vp.pred.numpy()  # numbers, not tensors: a worker has no torch
        if info["task"] == "classification":
            names = info.get("class_names") or [str(i) for i in range(int(info["n_classes"]))]
            if len(names) <= TABLE_CLASSES:  # a table of the numbers, made here: no picture to draw
                pics["confusion"] = confusion_data(y, pred, names)
            else:
                jobs["confusion"] = painter.draw("plot_confusion", y, pred, names, run_dir / "confusion.png")
            if len(b.input_shape) == 3:
                conf = vp.confidence.numpy()
                # only the images shown: a worker gets 16 of them, not the whole split (18 MB for Fashion-MNIST)
                shown = {int(i): b.val.x[int(i)].cpu().numpy() for i in most_confident_wrong(y, pred, conf, WRONG_N)}
                jobs["examples"] = painter.draw("plot_wrong_examples", shown, y, pred, conf, names,
                                                run_dir / "wrong_examples.png", n=WRONG_N, probability=vp.probability)
        else:
            jobs["scatter"] = painter.draw("plot_regression_scatter", y, pred, run_dir / "scatter.png",
                                           target_names=info.get("target_names"))
    jobs["activations"] = painter.draw(PER_LAYER["activations"], run_dir)
    if (run_dir / "lr_find.json").exists():  # only when `trainlab lr-find --run` / tl.lr_find(run_dir=) left one
        jobs["lr_find"] = painter.draw("plot_lr_find", run_dir)
    plane = _plane(vp.bundle, vp.run.info) if vp is not None else None
    if plane is not None:  # drawn here: the picture runs the model over the plane
        from trainlab.report.plots import plot_decision_boundary

        train, val, inputs, names = plane
        pics["boundary"] = plot_decision_boundary(
            vp.run.model, train, val, run_dir / "boundary.png", task=vp.run.info["task"], loss=vp.run.loss,
            class_names=vp.run.info.get("class_names"), feature_names=names, inputs=inputs)
    for name, job in jobs.items():
        data = job.result()
        if data is not None:
            pics[name] = data
        elif name in PER_LAYER:
            notes[name] = ("No epoch finished, so there are no per-layer statistics."
                           if (run_dir / "layers.jsonl").exists() else
                           "This run recorded no per-layer statistics (layers.jsonl / activations.json); "
                           "train with the diagnostic callbacks to get them.")
    return pics, notes


def _curves_note(cfg: Any) -> str:
    """What the curves measure where it is not the obvious: training metrics of mixed batches (mixup, CutMix),
    validation of the weights' moving average (ema.decay), losses above label smoothing's floor."""
    aug, said = cfg.data.augment, []
    mixing = " and ".join(aug.mixing)
    if mixing:
        said.append(f"The training loss and accuracy are those of the {mixing}-mixed batches the updates saw "
                    "(accuracy: the dominant label of each mix), not of clean examples.")
    if cfg.ema.decay:
        said.append(f"Validation scores the moving average of the weights (ema.decay={cfg.ema.decay:g}); the training "
                    "curve, the weights the updates move.")
    if cfg.loss.label_smoothing:
        said.append(f"Both losses are towards smoothed labels (loss.label_smoothing={cfg.loss.label_smoothing:g}): "
                    "they cannot reach 0.")
    return f"<p class=\"note\">{e(' '.join(said))}</p>" if said else ""


def write_report(run_dir: str | Path, *, model: nn.Module | None = None, bundle: DataBundle | None = None,
                 painter: Painter | None = None, val_outputs: torch.Tensor | None = None) -> Path:
    """Draw the run's pictures into ``run_dir`` and write ``run_dir/report.html``; returns its path.

    ``model`` / ``bundle`` are needed only for runs trained from Python on a user module / in-memory data;
    ``painter`` draws the pictures (this process when None); ``val_outputs``: the best checkpoint's outputs on
    ``bundle``'s validation split, kept by the training that just ran (no second pass over it)."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    history = read_metrics(run_dir)
    summary = _read_json(run_dir / "summary.json") or {}
    diagnosis = _read_json(run_dir / "diagnosis.json")
    pics, notes = make_pictures(run_dir, summary=summary, model=model, bundle=bundle, painter=painter,
                                val_outputs=val_outputs)
    sections = [
        _section("verdict", "Verdict", _verdict(diagnosis)),
        *_fix_section(run_dir),
        _section("curves", "Learning curves", _curves_note(cfg) + _img(pics["curves"], "Learning curves")
                 + _epoch_table(history)),
        *_lr_find_section(pics),
        *_prediction_sections(pics, notes),
        *_model_section(summary),
        _section("layers", "Layers: gradients and activations", _layers(pics, notes)),
        _section("config", "Config", _config(cfg, your_module(summary))),
        _section("timing", "Timing", _timing(summary, history)),
        _section("environment", "Environment", _kv_table(summary.get("environment") or {})),
    ]
    page = PAGE.format(title=e(f"trainlab report · {run_dir.name}"), css=CSS, header=_header(run_dir, cfg, summary),
                       nav=_nav(sections), body="\n".join(block for _, _, block in sections),
                       footer=e(f"trainlab report of {run_dir.resolve()} · written {datetime.now():%Y-%m-%d %H:%M}"))
    path = run_dir / "report.html"
    files.write_text(path, page)
    return path


# ------------------------------------------------------------------------------------------ pieces


def _read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or unreadable (the report shows what it has)."""
    try:
        return files.read_json(path)
    except (OSError, files.DamagedFileError):
        return None


def _section(sid: str, title: str, body: str) -> tuple[str, str, str]:
    return sid, title, f'<section id="{sid}">\n<h2>{e(title)}</h2>\n{body}\n</section>'


def _nav(sections: list[tuple[str, str, str]]) -> str:
    return " · ".join(f'<a href="#{sid}">{e(title.split(":")[0])}</a>' for sid, title, _ in sections)


def data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _img(data: dict[str, Any], alt: str) -> str:
    return f'<figure><img src="{data_uri(data["path"])}" alt="{e(alt)}"></figure>'


def _note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    if v is None:
        return "—"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return str(v)


def _kv_table(rows: dict[str, Any]) -> str:
    if not rows:
        return _note("Not recorded for this run.")
    body = "".join(f"<tr><th>{e(str(k))}</th><td>{e(format_value(v))}</td></tr>" for k, v in rows.items())
    return f'<table class="kv">{body}</table>'


def your_module(summary: dict[str, Any]) -> str | None:
    """The model of a run of the user's own nn.Module, by its class ("Net (your module)"): the config's model section
    built nothing for it. None for a model the config built."""
    return f"{summary['custom_model']} (your module)" if summary.get("custom_model") else None


SCORE_NAMES = {"val_balanced_acc": "balanced acc", "val_macro_f1": "macro F1"}  # the cards' words for CLASS_SCORES


def _header(run_dir: Path, cfg: TrainConfig, s: dict[str, Any]) -> str:
    test, best = s.get("test") or {}, s.get("best_val") or {}
    cards = []
    if test:
        metric = f"acc {test['test_acc']:.4f}" if test.get("test_acc") is not None else f"loss {test['test_loss']:.4g}"
        where = f"{test['n']} examples, epoch {test['epoch']} weights"
        balanced = test.get("balanced_acc")
        if balanced is not None and abs(balanced - test["test_acc"]) >= BALANCED_SHOWN:  # the classes' sizes matter
            where = f"balanced acc {balanced:.4f} · " + where
        cards.append(("test", metric, where))
    elif s.get("test_error"):  # trained, but the test pass ran out of memory (train.run.test_best)
        cards.append(("test", "not scored", "out of memory: see the line above"))
    if best:
        metric = f"acc {best['val_acc']:.4f}" if best.get("val_acc") is not None else f"loss {best['val_loss']:.4g}"
        monitored = s.get("monitor")
        if monitored in CLASS_SCORES and best.get(monitored) is not None:  # the score that chose this epoch
            metric = f"{SCORE_NAMES[monitored]} {best[monitored]:.4f}"
        cards.append(("best validation", metric, f"epoch {best['epoch']} by {s.get('monitor')}"))
    stop = textwrap.shorten(s.get("stop_reason") or "not finished", 90)  # the full reason is in the curves
    cards.append(("epochs", f"{s.get('epochs_run', '?')} / {cfg.epochs}", stop))
    if s.get("wall_time") is not None:
        cards.append(("wall time", f"{s['wall_time']:.1f} s", f"{s.get('n_parameters', '?'):,} parameters"
                      if isinstance(s.get("n_parameters"), int) else ""))
    items = "".join(f'<div class="card"><div class="k">{e(k)}</div><div class="v">{e(v)}</div>'
                    f'<div class="d">{e(d)}</div></div>' for k, v, d in cards)
    m = cfg.model
    model = your_module(s) or f"{m.name} {m.hidden if m.name in ('mlp', 'cnn') else ''} {m.activation}"
    what = f"{cfg.data.name} · {model} · {cfg.optimizer.name} lr {cfg.optimizer.lr:g} · batch {cfg.batch_size}"
    told = s.get("error") or (f"Test set not scored: {s['test_error']}" if s.get("test_error") else None)
    error = f'<p class="banner">{e(told)}</p>' if told else ""
    return f'<h1>{e(run_dir.name)}</h1><p class="what">{e(what)}</p>{error}<div class="cards">{items}</div>'


def _verdict(diagnosis: dict[str, Any] | None) -> str:
    if not diagnosis:
        return _note("No readable diagnosis.json in this run directory: the verdict rules have not been run on it.")
    findings = sorted(diagnosis.get("findings") or [], key=lambda f: SEVERITY_ORDER.get(f.get("severity"), 3))
    head = f'<p class="verdict">Verdict: <strong>{e(str(diagnosis.get("verdict") or "—"))}</strong></p>'
    if not findings:
        return head + _note("No findings.")
    cards = []
    for f in findings:
        sev = f.get("severity") if f.get("severity") in SEVERITY_ORDER else "info"
        evidence = f.get("evidence") or {}
        ev = (f'<details open><summary>evidence</summary>{_kv_table(evidence)}</details>' if evidence else "")
        sets = f'<br><code>{e(set_args(f["sets"]))}</code>' if f.get("sets") else ""  # the remedy as --set lines
        remedy = f'<p class="remedy"><strong>Try:</strong> {e(str(f["remedy"]))}{sets}</p>' if f.get("remedy") else ""
        cards.append(f'<div class="finding {sev}"><div class="ftitle"><span class="sev">{e(sev)}</span> '
                     f'{e(str(f.get("title") or f.get("rule") or ""))} <code>{e(str(f.get("rule") or ""))}</code>'
                     f'</div><p>{e(str(f.get("message") or ""))}</p>{ev}{remedy}</div>')
    return head + "".join(cards)


def _fix_section(run_dir: Path) -> list[tuple[str, str, str]]:
    """``fix.json`` of ``trainlab fix``: the fixed run gets "Fix tried" pointing to the new run, the new run
    "Fixed from" naming its parent; both with the remedy and the before → after of the validation metrics."""
    saved = _read_json(run_dir / "fix.json")
    if not isinstance(saved, dict):
        return []
    return [_fix_block(saved[role], role == "fixed_from") for role in ("fixed_from", "fix_tried")
            if isinstance(saved.get(role), dict) and saved[role].get("fix_name")]


def _fix_block(rec: dict[str, Any], is_fix: bool) -> tuple[str, str, str]:
    other = rec["parent_name"] if is_fix else rec["fix_name"]
    link = f'<a href="../{e(other)}/report.html">{e(other)}</a>'
    sets = " ".join(filter(None, [rec.get("action"), *(f"{k}={json.dumps(v)}" for k, v in (rec.get("sets") or {}).items())]))
    lead = (f"This run is <strong>{link}</strong> with the remedy of its finding" if is_fix else
            f"trainlab fix trained {link}: this run with the remedy of its finding")
    before, after = rec.get("before") or {}, rec.get("after") or {}
    keys = [("best epoch", "epoch"), ("val loss", "val_loss"), ("val accuracy", "val_acc")]
    head = f"<tr><th></th><th>before: {e(rec['parent_name'])}</th><th>after: {e(rec['fix_name'])}</th></tr>"
    body = "".join(f"<tr><th>{e(label)}</th><td>{e(format_value(before.get(k)))}</td>"
                   f"<td>{e(format_value(after.get(k)))}</td></tr>"
                   for label, k in keys if before.get(k) is not None or after.get(k) is not None)
    html_ = (f'<p>{lead} <strong>{e(str(rec.get("title")))}</strong> <code>{e(str(rec.get("rule")))}</code> '
             f'({e(str(rec.get("remedy")))}), applied as <code>{e(sets)}</code> with the same seed, data and split.</p>'
             f'<p class="verdict fix-{ {True: "improved", None: "not-judged"}.get(rec.get("improved"), "no-help")}">'
             f'<strong>{e(str(rec.get("judgement")))}</strong></p>'
             f'<table class="kv">{head}{body}</table>'
             + _note("Validation metrics of each run's best checkpoint (the weights it keeps)."))
    if rec.get("error"):
        html_ += _note(f"The fix run stopped: {rec['error']}")
    return _section("fixed-from" if is_fix else "fix", "Fixed from" if is_fix else "Fix tried", html_)


def _model_section(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The model's layers in call order: type, output shape per example, parameters and their share of the total
    (``summary.json["model_table"]``; no section for a run trained before trainlab kept it)."""
    if not summary.get("model_table"):
        return []
    table = ModelTable.from_json(summary["model_table"])
    rows = []
    for r in table.rows:
        calls = f" ×{r.calls}" if r.calls > 1 else ""
        share = f"{100 * r.params / table.total:.1f} %" if r.params and table.total else ""
        rows.append(f"<tr><td><code>{e(r.name)}</code>{calls}</td><td>{e(r.kind)}</td><td>{e(r.shown_output)}</td>"
                    f"<td class=\"num\">{r.params:,}</td><td class=\"num\">{share}</td></tr>")
    head = "".join(f"<th>{c}</th>" for c in ("layer", "type", "output", "parameters", "share"))
    lead = (f"<p>{table.counts} for examples of shape {e(str(table.input_shape))}. Each layer's output shape is "
            "per example (the batch dimension left out), from one forward pass before training.</p>")
    return [_section("model", "Model", f'{lead}<table class="grid"><tr>{head}</tr>{"".join(rows)}</table>')]


def _epoch_table(history: list[dict[str, Any]]) -> str:
    cols = ["epoch", "train_loss", "val_loss", "train_acc", "val_acc", "val_balanced_acc", "val_macro_f1", "lr",
            "grad_norm", "epoch_time"]
    cols = [c for c in cols if any(r.get(c) is not None for r in history)]
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{e(format_value(r.get(c)))}</td>" for c in cols) + "</tr>" for r in history)
    return (f'<details><summary>Metrics per epoch ({len(history)} rows)</summary>'
            f'<table class="grid"><tr>{head}</tr>{rows}</table></details>')


def blues(v: float) -> str:
    """The colour of share ``v`` (0 … 1) on the Blues scale, as #rrggbb."""
    x = min(max(v, 0.0), 1.0) * (len(BLUES) - 1)
    i = min(int(x), len(BLUES) - 2)
    lo, hi = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in (BLUES[i], BLUES[i + 1]))
    return "#" + "".join(f"{round(a + (b - a) * (x - i)):02x}" for a, b in zip(lo, hi))


def _confusion_table(d: dict[str, Any]) -> str:
    """The confusion matrix as a table: row = true class, column = predicted class, each cell its share of the
    row (blank for none; its count on hover), then the class's accuracy as a bar beside the overall one."""
    names, counts, matrix, per_class = d["class_names"], d["counts"], d["matrix"], d["per_class_acc"]
    overall = d["accuracy"]
    head = "".join(f'<th class="p">{e(n)}</th>' for n in names)
    rows = []
    for i, name in enumerate(names):
        n = int(counts[i].sum())
        cells = []
        for j, other in enumerate(names):
            count, share = int(counts[i, j]), float(matrix[i, j])
            style = f"background:{blues(share)}" + (";color:#fff" if share > 0.6 else "")
            tip = f"true {name}, predicted {other}: {count} of {n}"
            cells.append(f'<td style="{style}" title="{e(tip)}">{f"{share:.2f}" if count else ""}</td>')
        acc = ("no examples" if n == 0 else
               f'<span class="bar"><span style="width:{per_class[i] * 100:.1f}%"></span>'
               f'<i style="left:{overall * 100:.1f}%"></i></span>{per_class[i]:.2f} (n={n})')
        rows.append(f'<tr><th class="t">{e(name)}</th>{"".join(cells)}<td class="acc">{acc}</td></tr>')
    return (f'<div class="wide"><table class="cm" aria-label="Confusion matrix and per-class accuracy on validation">'
            f'<thead><tr><th class="t">true \\ predicted</th>{head}<th class="a">class accuracy (dashed: overall '
            f'{overall:.3f})</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _prediction_sections(pics: dict[str, Any], notes: dict[str, str]) -> list[tuple[str, str, str]]:
    out = []
    if "predictions" in notes:
        out.append(_section("confusion", "Validation predictions", _note(notes["predictions"])))
    if "confusion" in pics:
        acc = pics["confusion"]["accuracy"]
        shown = (_img(pics["confusion"], "Confusion matrix and per-class accuracy on validation")
                 if "path" in pics["confusion"] else _confusion_table(pics["confusion"]))
        out.append(_section("confusion", "Confusion matrix (validation)",
                            f'<p>Best checkpoint on the validation split: accuracy {acc:.4f}. Row <i>i</i> shows '
                            'where the examples of true class <i>i</i> went (each row sums to 1).</p>' + shown))
    if "examples" in pics:
        d = pics["examples"]
        out.append(_section("examples", "Most confidently wrong (validation)",
                            f"<p>{d['n_wrong']} validation examples are misclassified; the "
                            f"{len(d['indices'])} the model was surest about:</p>" +
                            _img(d, "Most confidently wrong validation examples")))
    if "scatter" in pics:
        out.append(_section("scatter", "Predicted vs true (validation)",
                            _img(pics["scatter"], "Predicted vs true values on validation")))
    if "boundary" in pics:
        what = "decision boundary" if "val_acc" in pics["boundary"] else "fitted surface"
        out.append(_section("boundary", f"The model on the plane ({what})",
                            "<p>Circles: training points; triangles: validation points.</p>" +
                            _img(pics["boundary"], f"Model {what} with training and validation points")))
    return out


def _lr_find_section(pics: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "lr_find" not in pics:
        return []
    d = pics["lr_find"]
    each = ", ".join("none" if v is None else f"{v:.2g}" for v in d.get("suggestions") or [])
    text = (f"<p>Suggested learning rate <b>{d['suggestion']:.2g}</b> (per seed: {e(each)}): a tenth of the lr "
            "where the smoothed loss is lowest.</p>" if d.get("suggestion") else
            "<p>No suggestion: the smoothed loss never fell clearly below its start over the sweep.</p>")
    return [_section("lr_find", "LR finder", text + _img(d, "LR range test: loss against learning rate"))]


def _layers(pics: dict[str, Any], notes: dict[str, str]) -> str:
    if "grad_norms" not in pics and "activations" not in pics:
        return _note(notes.get("grad_norms", ""))
    parts = ["<p>Gradient norms that shrink by orders of magnitude toward the first layer mean vanishing "
             "gradients; norms that grow from epoch to epoch mean exploding ones. Activations piled at 0 and 1 "
             "(sigmoid) or ±1 (tanh, shaded) are saturated units that pass almost no gradient.</p>"]
    for name, alt in (("grad_norms", "Per-layer gradient norms"), ("activations", "Activation histograms")):
        parts.append(_img(pics[name], alt) if name in pics else _note(notes[name]))
    return "".join(parts)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def flat_config(cfg: TrainConfig) -> dict[str, Any]:
    """The config as ``{"optimizer.lr": 0.1, ...}`` in the config tree's order."""
    return _flatten(config_to_dict(cfg))


def _config(cfg: TrainConfig, module: str | None = None) -> str:
    """The essential settings and every changed one; ``module``: the user's own module (``your_module``), shown
    as the model in place of the config's model section."""
    values, defaults = flat_config(cfg), flat_config(TrainConfig())
    rows = [f'<tr class="changed"><th>model</th><td>{e(module)}</td><td class="d">config.yaml\'s model section is '
            f'not used</td></tr>'] if module else []
    for k, v in values.items():
        if module and k.startswith("model."):
            continue
        changed = v != defaults.get(k) and k not in IGNORED_KEYS
        if changed or k in ESSENTIAL_KEYS:
            cls = ' class="changed"' if changed else ""
            default = f"default {format_value(defaults.get(k))}" if changed else "default"
            rows.append(f"<tr{cls}><th>{e(k)}</th><td>{e(format_value(v))}</td><td class=\"d\">{e(default)}</td></tr>")
    return (f'<p>Essential settings and every value that differs from the defaults (highlighted).</p>'
            f'<table class="kv">{"".join(rows)}</table>'
            f'<details><summary>Full config.yaml</summary><pre>{e(config_to_yaml(cfg))}</pre></details>')


def _timing(s: dict[str, Any], history: list[dict[str, Any]]) -> str:
    times = [float(r["epoch_time"]) for r in history if r.get("epoch_time") is not None]
    rows: dict[str, Any] = {"wall time (s)": s.get("wall_time"), "epochs run": len(history)}
    if times:
        rows |= {"mean epoch time (s)": sum(times) / len(times), "fastest / slowest epoch (s)":
                 f"{min(times):.4g} / {max(times):.4g}", "time to best epoch (s)":
                 sum(t for r, t in zip(history, times) if r["epoch"] <= (s.get("best_epoch") or 0)) or None}
    n_train = (s.get("data") or {}).get("train")
    if times and n_train:
        rows["training examples / s"] = round(n_train / (sum(times) / len(times)))
    sizes = " · ".join(f"{k} {v}" for k, v in (s.get("data") or {}).items())
    rows |= {"parameters": s.get("n_parameters"), "examples": sizes or None}
    return _kv_table(rows)


CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#f6f7f9;margin:0}
main{max-width:1120px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:19px;margin:0 0 10px;border-bottom:1px solid #e3e5e8;padding-bottom:6px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #e3e5e8;padding:8px 24px;font-size:14px;z-index:1}
nav a{color:#1565c0;text-decoration:none}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:16px 20px;margin:16px 0}
.what{color:#555;margin:0 0 12px}.note{color:#666;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #e3e5e8;border-radius:8px;
padding:8px 14px;min-width:150px;max-width:340px}.card .k{font-size:12px;color:#666;text-transform:uppercase}
.card .v{font-size:20px;font-weight:600}.card .d{font-size:12px;color:#555}
.banner{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px}
figure{margin:8px 0}img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}table.kv th{font-weight:500;color:#444;white-space:nowrap}
table.grid td{font-variant-numeric:tabular-nums}table.grid td.num{text-align:right}tr.changed td,tr.changed th{background:#fff8e1;font-weight:600}
td.d{color:#888;font-weight:400!important}pre{background:#f3f4f6;padding:10px;overflow:auto;font-size:12px}
.verdict{font-size:17px}.finding{border-left:5px solid #1565c0;background:#f3f7fc;padding:8px 14px;margin:10px 0;
border-radius:4px}.finding.error{border-color:#c62828;background:#fdecea}
.finding.warning{border-color:#ef6c00;background:#fff4e5}.ftitle{font-weight:600}
.sev{display:inline-block;font-size:11px;text-transform:uppercase;color:#fff;background:#1565c0;border-radius:3px;
padding:0 6px;margin-right:4px}.error .sev{background:#c62828}.warning .sev{background:#ef6c00}
.remedy{margin:4px 0}summary{cursor:pointer;color:#444;font-size:13px}code{font-size:12px;color:#666}
footer{color:#888;font-size:12px;text-align:center}
.wide{overflow-x:auto}table.cm{font-variant-numeric:tabular-nums}
table.cm td{min-width:44px;height:28px;padding:0;text-align:center;vertical-align:middle;border:1px solid #fff;
font-size:12px}table.cm th{font-weight:500;font-size:12px;border:0}
table.cm th.p{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;vertical-align:bottom;
padding:4px 0;white-space:nowrap}table.cm th.a{vertical-align:bottom;text-align:left;padding-left:10px}
table.cm th.t{text-align:right;white-space:nowrap;vertical-align:middle}
table.cm td.acc{width:auto;text-align:left;padding-left:10px;white-space:nowrap;color:#333}
.bar{position:relative;display:inline-block;width:110px;height:11px;background:#eceff1;margin-right:8px;
vertical-align:middle}.bar span{position:absolute;left:0;top:0;bottom:0;background:#1565c0}
.bar i{position:absolute;top:-3px;bottom:-3px;border-left:2px dashed #c62828}
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><nav>{nav}</nav><main>
{header}
{body}
<footer>{footer}</footer>
</main></body></html>
"""


def _plane(b: Any, info: dict[str, Any]) -> tuple[Split, Split, Any, list[str] | None] | None:
    """The run's points on their 2-D plane and the map from plane points to model inputs, or None.

    Plain 2-D data is its own plane. A run on ``data.features`` that kept x1 and x2 is drawn over the
    (x1, x2) plane: its raw points are those two columns (normalisation undone), and a plane point becomes
    a model input by computing the same features and normalising them the same way.
    """
    feats = (info.get("stats") or {}).get("features")
    if feats is None:
        return (b.train, b.val, None, info.get("feature_names")) if list(b.input_shape) == [2] else None
    names = list(feats["names"])
    if not {"x1", "x2"} <= set(names):
        return None
    from trainlab.data import Standardizer
    from trainlab.data.features import model_inputs

    stats = info.get("stats") or {}
    std = Standardizer.from_state(stats["normalize"]) if "normalize" in stats else None
    cols = [names.index("x1"), names.index("x2")]

    def raw(split: Split) -> Split:
        x = std.inverse(split.x) if std is not None else split.x
        return Split(x[:, cols], split.y)

    return raw(b.train), raw(b.val), lambda points: model_inputs(points, stats), ["x1", "x2"]
