"""The pictures of a run, one function each: it draws a PNG and returns the numbers it drew.

Returning the data lets tests check the picture's content (rows of the confusion matrix sum to 1, the
curves are the logged metrics) instead of only that a file appeared. Figures are built on
``matplotlib.figure.Figure`` and rendered by Agg in ``savefig``: no pyplot, no global backend switch
(a library must not change the backend of the user's notebook), nothing left open to close.
Every PNG is written to a temporary name and renamed, so a viewer keeping it open never reads half a file.

The pictures ``trainlab train`` draws for every run (curves, confusion matrix, wrong examples, layer pictures)
place their axes with margins in inches, measured from the few texts that vary (class names, a legend),
instead of constrained layout: that solver measures every artist twice before the real drawing and was a
third of each picture's cost. With the wrong examples in one Axes, the classic MLP's five pictures take
0.65 s instead of 0.98 s (2-core CPU machine, best of 7). The rarer 2-D pictures (scatter, decision boundary
with its colorbar) keep constrained layout.
"""
from __future__ import annotations

import functools
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogFormatter, MaxNLocator

from trainlab import files
from trainlab.report.history import best_epoch, confusion_data, most_confident_wrong, read_layers, read_metrics

if TYPE_CHECKING:  # torch is imported where a picture runs the model (the decision boundary) and nowhere else
    import torch
    from torch import nn

    from trainlab.data.base import Split
    from trainlab.train.losses import Loss

DPI = 100
TRAIN, VAL, TEST = "#1f77b4", "#ff7f0e", "#d62728"
CLASS_COLORS = ["#d6604d", "#4393c3", "#5aae61", "#9970ab", "#f1a340", "#35978f", "#e7298a", "#8c6d31",
                "#666666", "#1b9e77"]
MAX_LAYER_PANELS = 12  # a ResNet has dozens of activations; a grid of 12 still shows first, middle and last


class PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain numbers ("0.4", "0.002", "1e-05") where matplotlib writes "4×10⁻¹": plainer
    for a learner reading a loss or a gradient norm, and cheaper (the mathtext labels were ~20 % of the gradient-norm
    picture's time). Which ticks get a label is left to matplotlib's LogFormatter."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def plain_log_y(ax: Any) -> None:
    """A log-scale y axis labelled by :class:`PlainLogFormatter` (its major and minor ticks, as matplotlib's
    default log formatters would)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def place_axes(fig: Figure, rows: int, cols: int, *, left: float, right: float, bottom: float, top: float,
               wgap: float = 0.0, hgap: float = 0.0) -> None:
    """``subplots_adjust`` in inches: the figure's margins and the gaps between a rows x cols grid of axes."""
    w, h = fig.get_size_inches()
    axes_w = max((w - left - right - (cols - 1) * wgap) / cols, 0.1)
    axes_h = max((h - top - bottom - (rows - 1) * hgap) / rows, 0.1)
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wgap / axes_w, hspace=hgap / axes_h)


def _renderer(fig: Figure) -> RendererAgg:
    """The Agg renderer ``savefig`` draws with, to measure texts before the axes are placed."""
    return FigureCanvasAgg(fig).get_renderer()


def _inches(renderer: RendererAgg, artists: Sequence[Any], side: str) -> float:
    """The largest ``side`` ("width" or "height") of the artists' extents, in inches (0 for none)."""
    return max((getattr(a.get_window_extent(renderer), side) for a in artists), default=0.0) / renderer.dpi


def save_png(fig: Figure, path: str | Path) -> Path:
    """``fig`` as ``path`` (PNG), whole or not at all (files.write_atomic: no half picture, no temp left)."""
    path = Path(path)
    with files.storage_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    # zlib level 1 instead of Pillow's 6: the classic MLP's pictures encode in 0.02 s instead of 0.07 s, ~15 %
    # larger (a report of ~0.5 MB)
    return files.write_atomic(path, lambda f: fig.savefig(f, dpi=DPI, format="png", pil_kwargs={"compress_level": 1}),
                              binary=True)


def _read_json(path: Path) -> Any:
    return files.read_json(path)


def _series(history: Sequence[dict[str, Any]], key: str) -> list[float] | None:
    values = [row.get(key) for row in history]
    return None if all(v is None for v in values) else [math.nan if v is None else float(v) for v in values]


# ---------------------------------------------------------------------------------------------- curves


def curve_data(history: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """The series a learning-curve figure shows: losses, accuracies, best epoch, stop reason, test point."""
    monitor = summary.get("monitor", "val_loss")
    return {
        "epochs": [int(r["epoch"]) for r in history], "train_loss": _series(history, "train_loss"),
        "val_loss": _series(history, "val_loss"), "train_acc": _series(history, "train_acc"),
        "val_acc": _series(history, "val_acc"), "monitor": monitor,
        "best_epoch": summary.get("best_epoch") or best_epoch(history, monitor),
        "stop_reason": summary.get("stop_reason"), "test": summary.get("test"),
    }


def curves_figure(history: Sequence[dict[str, Any]], summary: dict[str, Any] | None = None,
                  title: str = "") -> Figure:
    """Train vs validation loss (and accuracy) per epoch as a Figure (used live in notebooks too)."""
    return _draw_curves(curve_data(list(history), summary or {}), title)


def plot_curves(run_dir: str | Path, *, history: Sequence[dict[str, Any]] | None = None,
                summary: dict[str, Any] | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """Train vs validation loss (and accuracy) per epoch with the best epoch, stop reason and test point.

    ``history``/``summary`` default to the run's ``metrics.jsonl``/``summary.json`` (a live caller passes
    its own); writes ``curves.png`` and returns the plotted series.
    """
    run_dir = Path(run_dir)
    history = read_metrics(run_dir) if history is None else list(history)
    summary = _read_json(run_dir / "summary.json") if summary is None else summary
    data = curve_data(history, summary or {})
    data["path"] = Path(path) if path else run_dir / "curves.png"
    save_png(_draw_curves(data, f"{run_dir.name} · stopped: {data['stop_reason'] or '—'}"), data["path"])
    return data


def _draw_curves(data: dict[str, Any], title: str) -> Figure:
    epochs, monitor = data["epochs"], data["monitor"]
    panels = [("loss", "loss")] + ([("acc", "accuracy")] if data["val_acc"] or data["train_acc"] else [])
    # Fixed margins, not constrained layout: the panels are always the same, and the layout solver was half of
    # each redraw's ~0.2 s — the live picture is redrawn every epoch.
    width = 5.5 * len(panels) + 0.5
    chars = int(width * 14)  # characters of 10-pt text that fit across the figure
    title = textwrap.fill(textwrap.shorten(title, 2 * chars), chars) if title else ""
    fig = Figure(figsize=(width, 4.2))
    lines = title.count("\n") + 1 if title else 0
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, bottom=0.12, top=0.9 - 0.045 * lines, wspace=0.2)
    marker = "o" if len(epochs) <= 30 else None  # a 1-2 epoch run is points, not invisible lines
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for split, color in (("train", TRAIN), ("val", VAL)):
            ys = data[f"{split}_{key}"]
            if ys is not None:
                ax.plot(epochs, ys, color=color, marker=marker, ms=3, lw=1.6,
                        label="train" if split == "train" else "validation")
        if data["best_epoch"] is not None:
            ax.axvline(data["best_epoch"], color="0.35", ls="--", lw=1,
                       label=f"best epoch {data['best_epoch']} ({monitor})")
        test = data["test"]
        value = test and test.get(f"test_{key}")
        if value is not None and epochs:
            shown = f"{value:.4f}" if key == "acc" else f"{value:.4g}"
            ax.plot([epochs[-1]], [value], marker="*", ms=13, color=TEST, ls="none",
                    label=f"test {shown} (epoch {test['epoch']} weights)")
        finite = [v for v in (data[f"train_{key}"] or []) + (data[f"val_{key}"] or []) if math.isfinite(v) and v > 0]
        if key == "loss" and finite and max(finite) / min(finite) > 100:
            plain_log_y(ax)  # a loss falling over decades is a straight line, not a cliff
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label.capitalize()}: train vs validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if epochs:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no epoch finished", ha="center", va="center", transform=ax.transAxes, color="0.4")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------- validation predictions


def plot_confusion(y_true: Any, y_pred: Any, class_names: Sequence[str], path: str | Path) -> dict[str, Any]:
    """Row-normalised confusion matrix and per-class accuracy of validation predictions (the report shows up to
    ``html.TABLE_CLASSES`` classes as a table instead)."""
    data = confusion_data(y_true, y_pred, class_names)
    counts, matrix, per_class, accuracy = data["counts"], data["matrix"], data["per_class_acc"], data["accuracy"]
    rows = counts.sum(axis=1, keepdims=True)
    k = len(class_names)
    fig = Figure(figsize=(7 + 0.45 * k, 3.2 + 0.3 * k))
    ax, bx = fig.subplots(1, 2, width_ratios=[1.4, 1])
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7 if k > 6 else 9,
                            color="white" if matrix[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix (validation, rows sum to 1), n={int(counts.sum())}", fontsize=10)
    bx.barh(range(k), np.nan_to_num(per_class), color=TRAIN)
    bx.axvline(accuracy, color=TEST, ls="--", lw=1, label=f"overall {accuracy:.3f}")
    for i, (acc, n) in enumerate(zip(per_class, rows[:, 0])):
        # long bars hold their label at their start (clear of the overall line); short ones get it after them
        inside = bool(n) and acc > 0.3
        bx.text(0.01 if inside else (0 if n == 0 else acc) + 0.01, i,
                "no examples" if n == 0 else f"{acc:.2f} (n={n})", va="center", fontsize=7,
                color="white" if inside else "black")
    bx.set_yticks(range(k), class_names, fontsize=8)
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xlabel("accuracy")
    bx.set_title("Per-class accuracy (validation)", fontsize=10)
    bx.legend(fontsize=8, loc="lower right")
    # The class names set the margins: left of the matrix, below it (turned 45°) and between the panels. Names
    # longer than CIFAR-10's (0.63 in wide at 8 pt) widen the figure instead of squeezing the panels.
    r = _renderer(fig)
    names_w, names_h = _inches(r, ax.get_yticklabels(), "width"), _inches(r, ax.get_xticklabels(), "height")
    fig.set_size_inches(fig.get_size_inches() + (2 * max(names_w - 0.65, 0), max(names_h - 0.55, 0)))
    place_axes(fig, 1, 2, left=names_w + 0.5, right=0.2, bottom=names_h + 0.45, top=0.4, wgap=names_w + 0.4)
    return {**data, "path": save_png(fig, path)}


def _as_image(x: np.ndarray) -> np.ndarray:
    """(C, H, W) of any range → (H, W) or (H, W, 3) in [0, 1] for imshow (undoes standardisation's range)."""
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x[0] if x.shape[0] == 1 else np.transpose(x[:3], (1, 2, 0))


def plot_wrong_examples(images: Any, y_true: Any, y_pred: Any, confidence: Any, class_names: Sequence[str],
                        path: str | Path, *, n: int = 16, probability: bool = True) -> dict[str, Any]:
    """A grid of the ``n`` validation images predicted wrong with the highest confidence.

    ``images``: (N, C, H, W), or {example index: (C, H, W)} holding at least the examples shown
    (``history.most_confident_wrong``): the report sends a picture worker those 16 images, not all N;
    ``confidence``: (N,) probability (or score) of the predicted class.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confidence = np.asarray(confidence, dtype=np.float64)
    n_wrong = int((y_true != y_pred).sum())
    order = most_confident_wrong(y_true, y_pred, confidence, n)
    cols = min(max(len(order), 1), 8)
    rows = max(math.ceil(len(order) / cols), 1)
    # In inches: the figure's title takes the top `head`; each cell a two-line `caption` above a `side` image.
    cell_w, cell_h, head, caption, side = 1.5, 1.85, 0.42, 0.32, 1.42
    width, height = max(cell_w * cols + 0.3, 6), cell_h * rows + 0.5
    fig = Figure(figsize=(width, height))
    fig.suptitle(f"Most confidently wrong validation examples ({n_wrong} of {len(y_true)} wrong)", fontsize=10,
                 y=1 - 0.1 / height, va="top")
    # One Axes spanning the figure in inch units (y down) holds every example as an image of its own: an
    # Axes per example cost ~10 ms each to build and lay out, most of this picture's time.
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if len(order) == 0:
        ax.text(width / 2, height / 2, "no misclassified validation examples", ha="center", va="center")
    left = (width - cell_w * cols) / 2
    for i, idx in enumerate(order):
        image = _as_image(np.asarray(images[int(idx)], dtype=np.float32))
        h_px, w_px = image.shape[:2]
        iw, ih = side * w_px / max(h_px, w_px), side * h_px / max(h_px, w_px)
        cx = left + cell_w * (i % cols + 0.5)
        top = head + cell_h * (i // cols) + caption + (side - ih) / 2
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
                  extent=(cx - iw / 2, cx + iw / 2, top + ih, top))
        ax.add_patch(Rectangle((cx - iw / 2, top), iw, ih, fill=False, lw=0.8, ec="black"))
        conf = f"{confidence[idx]:.0%}" if probability else f"score {confidence[idx]:.2f}"
        ax.text(cx, top - 0.06, f"true: {class_names[y_true[idx]]}\npred: {class_names[y_pred[idx]]} {conf}",
                ha="center", va="bottom", fontsize=7, color=TEST)
    path = save_png(fig, path)
    return {"indices": order.tolist(), "true": y_true[order].tolist(), "pred": y_pred[order].tolist(),
            "confidence": confidence[order].tolist(), "n_wrong": n_wrong, "path": path}


def plot_regression_scatter(y_true: Any, y_pred: Any, path: str | Path, *,
                            target_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Predicted vs true value of each validation example, one panel per target (at most 4), R² and RMSE."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    t = min(y_true.shape[1], 4)
    names = list(target_names or [f"y{i}" for i in range(y_true.shape[1])])
    fig = Figure(figsize=(4.4 * t + 0.4, 4.4), layout="constrained")
    r2, rmse = [], []
    for j in range(y_true.shape[1]):
        err = y_pred[:, j] - y_true[:, j]
        ss_tot = float(((y_true[:, j] - y_true[:, j].mean()) ** 2).sum())
        r2.append(1 - float((err ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan)
        rmse.append(float(np.sqrt((err ** 2).mean())))
    for j in range(t):
        ax = fig.add_subplot(1, t, j + 1)
        ax.scatter(y_true[:, j], y_pred[:, j], s=10, alpha=0.6, color=VAL, edgecolors="none")
        lo = float(min(y_true[:, j].min(), y_pred[:, j].min()))
        hi = float(max(y_true[:, j].max(), y_pred[:, j].max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="predicted = true")
        ax.set_xlabel(f"true {names[j]}")
        ax.set_ylabel(f"predicted {names[j]}")
        ax.set_title(f"Validation: R² {r2[j]:.3f}, RMSE {rmse[j]:.3g}", fontsize=10)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path = save_png(fig, path)
    return {"true": y_true, "pred": y_pred, "r2": r2, "rmse": rmse, "target_names": names, "path": path}


def _inference_mode(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``torch.inference_mode()``, torch imported at the call: this module imports without torch."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.inference_mode():
            return fn(*args, **kwargs)
    return run


@_inference_mode
def plot_decision_boundary(model: nn.Module, train: Split, val: Split, path: str | Path, *, task: str,
                           loss: Loss | None = None, class_names: Sequence[str] | None = None,
                           feature_names: Sequence[str] | None = None, resolution: int = 160,
                           inputs: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """The model over the plane of a 2-D dataset: class regions (classification) or the fitted surface
    (regression), with training points (circles) and validation points (triangles).

    ``train``/``val`` hold plane points; ``inputs`` maps (G, 2) plane points to the model's inputs (a run on
    ``data.features``), identity when None."""
    import torch  # the one picture that runs the model: the others draw numbers, light enough for workers

    from trainlab.models import device_of
    from trainlab.train.losses import predict_classes

    inputs = inputs or (lambda points: points)
    model.eval()
    dev = device_of(model)  # the model stays where it is; the grid goes to it
    xs = torch.cat([train.x.cpu(), val.x.cpu()])
    lo, hi = xs.min(0).values, xs.max(0).values
    pad = (hi - lo).clamp_min(1e-3) * 0.08
    xx = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), resolution)
    yy = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), resolution)
    gy, gx = torch.meshgrid(yy, xx, indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1)  # (G², 2), row-major over y then x
    out = model(inputs(grid).to(dev)).float().cpu()
    val_out = model(inputs(val.x.cpu()).to(dev)).float().cpu()
    fig = Figure(figsize=(6.4, 5.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    extent = (float(xx[0]), float(xx[-1]), float(yy[0]), float(yy[-1]))
    data: dict[str, Any] = {"xx": xx.numpy(), "yy": yy.numpy(), "n_train": len(train), "n_val": len(val)}
    if task == "classification":
        assert loss is not None, "classification needs the loss to turn outputs into classes"
        k = len(class_names) if class_names else int(max(int(train.y.max()), int(val.y.max())) + 1)
        names = list(class_names or [str(i) for i in range(k)])
        z = predict_classes(loss, out).reshape(resolution, resolution).numpy()
        probs = loss.probabilities(out)
        if probs is not None and k == 2:
            p1 = probs[:, 1].reshape(resolution, resolution).numpy()
            im = ax.contourf(xx.numpy(), yy.numpy(), p1, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.35)
            fig.colorbar(im, ax=ax, label=f"P({names[1]})", shrink=0.85)
            data["p1"] = p1
        else:
            colors = ListedColormap([CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(k)])
            ax.imshow(z, origin="lower", extent=extent, cmap=colors, vmin=-0.5, vmax=k - 0.5, alpha=0.35,
                      aspect="auto", interpolation="nearest")
        if k <= 10:
            ax.contour(xx.numpy(), yy.numpy(), z, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=0.8)
        val_pred = predict_classes(loss, val_out)
        data.update(z=z, val_acc=float((val_pred == val.y.cpu()).float().mean()), class_names=names)
        for split, marker, size, edge in ((train, "o", 14, "white"), (val, "^", 30, "black")):
            y = split.y.cpu().numpy()
            ax.scatter(split.x[:, 0].cpu(), split.x[:, 1].cpu(), s=size, marker=marker, linewidths=0.6,
                       c=[CLASS_COLORS[i % len(CLASS_COLORS)] for i in y], edgecolors=edge)
        title = f"Decision boundary · validation accuracy {data['val_acc']:.3f}"
    else:
        z = out[:, 0].reshape(resolution, resolution).numpy()
        ys = [train.y.reshape(len(train), -1)[:, 0].cpu().numpy(), val.y.reshape(len(val), -1)[:, 0].cpu().numpy()]
        norm = Normalize(min(z.min(), *(y.min() for y in ys)), max(z.max(), *(y.max() for y in ys)))
        # one colour scale for surface and points, so a flat surface under varied points looks flat
        levels = MaxNLocator(15).tick_values(norm.vmin, norm.vmax)
        im = ax.contourf(xx.numpy(), yy.numpy(), z, levels=levels, cmap="RdBu_r", norm=norm, alpha=0.8)
        fig.colorbar(im, ax=ax, label="predicted value (points: true value)", shrink=0.85)
        for split, y, marker, size, edge in ((train, ys[0], "o", 14, "white"), (val, ys[1], "^", 30, "black")):
            ax.scatter(split.x[:, 0].cpu(), split.x[:, 1].cpu(), c=y, cmap="RdBu_r", norm=norm, s=size,
                       marker=marker, edgecolors=edge, linewidths=0.6)
        err = val_out[:, 0] - val.y.reshape(len(val), -1)[:, 0].cpu()
        data.update(z=z, val_rmse=float(err.pow(2).mean().sqrt()))
        title = f"Fitted surface · validation RMSE {data['val_rmse']:.3g}"
    ax.scatter([], [], marker="o", c="0.6", edgecolors="white", label=f"train ({len(train)})")
    ax.scatter([], [], marker="^", c="0.6", edgecolors="black", label=f"validation ({len(val)})")
    ax.legend(fontsize=8, loc="upper right", framealpha=0.85)
    f = list(feature_names or ["x1", "x2"])
    ax.set_xlabel(f[0])
    ax.set_ylabel(f[1])
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_title(title, fontsize=10)
    data["path"] = save_png(fig, path)
    return data


# ---------------------------------------------------------------------------------------- per layer


def plot_grad_norms(run_dir: str | Path, *, path: str | Path | None = None) -> dict[str, Any] | None:
    """One line per layer: its gradient norm (RMS over the epoch's updates) per epoch, log scale.

    Reads ``layers.jsonl``; None when the run recorded no per-layer statistics.
    """
    rows = read_layers(run_dir)
    if not rows or not any(r.get("grad_norm") for r in rows):
        return None
    names = list(dict.fromkeys(n for r in rows for n in r.get("grad_norm", {})))  # input → output order
    epochs = [int(r["epoch"]) for r in rows]
    layers = {n: [float(r.get("grad_norm", {}).get(n, math.nan)) for r in rows] for n in names}
    fig = Figure(figsize=(8.5, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["viridis"]
    for i, (name, ys) in enumerate(layers.items()):
        shown = [y if y > 0 else math.nan for y in ys]  # log scale: a zero norm (dead layer) is a gap
        ax.plot(epochs, shown, color=cmap(i / max(len(names) - 1, 1) * 0.9), lw=1.5,
                marker="o" if len(epochs) <= 30 else None, ms=3, label=name)
    plain_log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient norm (RMS over updates)")
    ax.set_title("Per-layer gradient norms (dark = first layer, yellow = last)", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    legend = ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1 + len(names) // 22)
    # left: log tick labels up to "2×10⁻¹" and the axis label; right: the legend, as wide as the layer names
    place_axes(fig, 1, 1, left=0.95, right=_inches(_renderer(fig), [legend], "width") + 0.2, bottom=0.5, top=0.3)
    out = save_png(fig, path or Path(run_dir) / "grad_norms.png")
    return {"epochs": epochs, "layers": layers, "path": out}


def _pick(names: list[str], k: int) -> list[str]:
    if len(names) <= k:
        return names
    return [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)]


def plot_activation_histograms(run_dir: str | Path, *, path: str | Path | None = None) -> dict[str, Any] | None:
    """Each probed layer's activation histogram at the first and the last epoch, saturated zones shaded.

    Reads ``activations.json`` (and ``layers.jsonl`` for kinds and dead/saturated fractions); None without them.
    """
    hists = _read_json(Path(run_dir) / "activations.json")
    if not hists or not hists.get("first") or not hists.get("last"):
        return None
    first, last = hists["first"], hists["last"]
    stats = {int(r["epoch"]): r.get("activations", {}) for r in read_layers(run_dir)}
    names = _pick([n for n in first["layers"] if n in last["layers"]], MAX_LAYER_PANELS)
    if not names:  # no layer probed at both epochs: nothing to compare
        return None
    layers: dict[str, Any] = {}
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(max(4.2 * cols + 0.4, 7.5), 3.0 * rows + 0.7))
    # above each panel its two-line title; left of it the 7-pt tick labels and "fraction"
    place_axes(fig, rows, cols, left=0.6, right=0.2, bottom=0.3, top=0.72, wgap=0.6, hgap=0.72)
    fig.suptitle(f"Activations on validation examples: epoch {first['epoch']} (grey) vs "
                 f"epoch {last['epoch']} (blue)" + (f", {len(names)} of {len(first['layers'])} layers"
                                                    if len(names) < len(first["layers"]) else ""), fontsize=10,
                 y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    for i, name in enumerate(names):
        s0, s1 = stats.get(int(first["epoch"]), {}).get(name, {}), stats.get(int(last["epoch"]), {}).get(name, {})
        kind = s1.get("kind") or s0.get("kind") or "?"
        entry = {"kind": kind, "first": first["layers"][name], "last": last["layers"][name],
                 "saturated": (s0.get("saturated"), s1.get("saturated")), "dead": (s0.get("dead"), s1.get("dead"))}
        layers[name] = entry
        ax = fig.add_subplot(rows, cols, i + 1)
        for h, color, fill in ((entry["first"], "0.55", True), (entry["last"], TRAIN, False)):
            counts = np.asarray(h["counts"], dtype=np.float64)
            ax.stairs(counts / max(counts.sum(), 1), h["edges"], color=color, fill=fill, alpha=0.5 if fill else 1,
                      lw=1.4)
        if kind == "sigmoid":
            ax.axvspan(min(ax.get_xlim()[0], 0), 0.1, color=TEST, alpha=0.08)
            ax.axvspan(0.9, max(ax.get_xlim()[1], 1), color=TEST, alpha=0.08)
        elif kind == "tanh":
            ax.axvspan(min(ax.get_xlim()[0], -1), -0.9, color=TEST, alpha=0.08)
            ax.axvspan(0.9, max(ax.get_xlim()[1], 1), color=TEST, alpha=0.08)
        note = ""
        if kind in ("sigmoid", "tanh") and None not in entry["saturated"]:
            note = f"saturated {entry['saturated'][0]:.0%} → {entry['saturated'][1]:.0%}"
        elif kind in ("relu", "leaky_relu") and None not in entry["dead"]:
            note = f"dead units {entry['dead'][0]:.0%} → {entry['dead'][1]:.0%}"
        ax.set_title(f"{name} ({kind})" + (f"\n{note}" if note else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("fraction", fontsize=7)
    out = save_png(fig, path or Path(run_dir) / "activations.png")
    return {"first_epoch": int(first["epoch"]), "last_epoch": int(last["epoch"]), "layers": layers,
            "n_layers": len(first["layers"]), "path": out}


# ---------------------------------------------------------------------------------------- LR finder


def lr_find_figure(found: dict[str, Any]) -> Figure:
    """The range test (``lr_find.json`` as data): each seed's raw (faint) and smoothed loss against the lr, log
    scale, with each seed's suggestion (dotted) and the suggested median (black)."""
    fig = Figure(figsize=(8.5, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    sweeps = found.get("sweeps") or []
    top = []
    for i, sw in enumerate(sweeps):
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        lrs, raw, smoothed = sw["lrs"], _finite(sw["losses"]), _finite(sw["smoothed"])
        ax.plot(lrs, raw, color=color, alpha=0.25, lw=0.8)
        ax.plot(lrs, smoothed, color=color, lw=1.8, label=f"seed {sw['seed']}")
        if sw.get("suggestion"):
            ax.axvline(sw["suggestion"], color=color, ls=":", lw=1.2)
        top += [v for v in smoothed[:max(len(smoothed) // 5, 1)] if math.isfinite(v)]  # the untrained level
    s = found.get("suggestion")
    if s:
        ax.axvline(s, color="black", lw=1.5, label=f"suggested {s:.2g}")
    if top:  # from the smoothed minimum to a little above the untrained loss: the per-step spikes of the
        # blow-up would otherwise squash the descent into a line
        low = min(v for sw in sweeps for v in _finite(sw["smoothed"]) if math.isfinite(v))
        high = max(top) * 1.3
        ax.set_ylim(low - 0.05 * (high - low), high)
    ax.set_xscale("log")
    ax.set_xlabel(f"learning rate ({found.get('optimizer', '?')}, batch {found.get('batch_size', '?')})")
    ax.set_ylabel("training loss (faint: per step; solid: smoothed)")
    spread = found.get("spread")
    ax.set_title("LR range test" + (f": suggestion spread {spread:.1f}x over {len(sweeps)} seeds"
                                    if spread and len(sweeps) > 1 else ""), fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    place_axes(fig, 1, 1, left=0.85, right=0.25, bottom=0.55, top=0.35)
    return fig


def _finite(values: Sequence[Any]) -> list[float]:
    """JSON numbers back to floats; "nan"/"inf" strings (written for strict JSON) become NaN."""
    return [float(v) if isinstance(v, (int, float)) else math.nan for v in values]


def plot_lr_find(run_dir: str | Path, *, path: str | Path | None = None) -> dict[str, Any] | None:
    """``lr_find.png`` from the run's ``lr_find.json``; None when the run has no LR-finder result."""
    found = _read_json(Path(run_dir) / "lr_find.json")
    if not found or not found.get("sweeps"):
        return None
    out = save_png(lr_find_figure(found), path or Path(run_dir) / "lr_find.png")
    return {"suggestion": found.get("suggestion"), "suggestions": found.get("suggestions"),
            "spread": found.get("spread"), "path": out}
