"""Export a trained model for use without trainlab: ONNX, TorchScript or safetensors, plus a JSON sidecar.

``export_run("runs/<name>", "onnx")`` writes ``runs/<name>/export/model.onnx`` and ``model.json``: what to feed
the model (input shape; ``input.transform``, the exact steps from raw data: pixels / 255, features, the
normalisation it was trained with), what comes out (raw outputs: logits, a score
or values, and how to read them), class names, task and config. The same facts are embedded in the file
(ONNX ``metadata_props``, TorchScript extra file ``trainlab.json``, safetensors metadata).

ONNX goes through ``torch.export`` with a dynamic batch dimension (the exporter torch uses by default
since 2.9; the TorchScript-based one is deprecated). We call ``torch.export`` ourselves and hand its program
to ``torch.onnx.export``, rather than let that fall back to other capture strategies when ``torch.export``
fails: the fallbacks silently freeze a branch on the batch size. TorchScript is ``torch.jit.trace``, refused
when tracing warns that it froze a value. Every exported graph is then run on a batch of another size and
compared with the model, so an export that would compute something else is refused, with the reason in one
line, and nothing is written.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch
from torch import nn

from trainlab.errors import ConfigError, problem
from trainlab.registry import Registry

if TYPE_CHECKING:
    from trainlab.train.inference import LoadedRun

Exporter = Callable[[nn.Module, torch.Tensor, torch.Tensor, dict[str, Any]], bytes]

EXPORTERS: Registry[Exporter] = Registry("export format", "format")  # name → exporter(net, x, x_check, sidecar)
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
INPUT_NAME, OUTPUT_NAME = "input", "output"
TRACE_BATCH, CHECK_BATCH = 2, 3  # the check batch differs from the traced one so a frozen batch size shows
# Exported kernels differ from eager torch by float32 rounding (~1e-6); a wrongly captured graph is off by O(1).
CHECK_RTOL, CHECK_ATOL = 1e-3, 1e-4
WEIGHTS_ONLY = "export with format safetensors instead, which saves the weights only"
OUTPUT_MEANING = {
    "cross_entropy": "logits (batch, classes): softmax over axis 1 gives class probabilities; argmax is the "
                     "index into class_names",
    "bce": "one logit (batch, 1): sigmoid gives the probability of class_names[1]; > 0 means class_names[1]",
    "hinge": "one score (batch, 1): > 0 means class_names[1], otherwise class_names[0]",
    "perceptron": "one score (batch, 1): > 0 means class_names[1], otherwise class_names[0]",
    "mse": "one value per class (batch, classes) regressing the one-hot target; argmax is the index into "
           "class_names",
}
# loss.from_logits=false: the model itself ends in a softmax / sigmoid
PROBABILITY_MEANING = {
    "cross_entropy": "class probabilities (batch, classes), each row summing to 1: the model ends in a softmax; "
                     "argmax is the index into class_names",
    "bce": "the probability of class_names[1] (batch, 1): the model ends in a sigmoid; > 0.5 means class_names[1]",
}
REGRESSION_MEANING = "predicted targets (batch, targets), in the order of target_names and in their units"


def export_model(model: nn.Module, input_shape: tuple[int, ...], out: str | Path, fmt: str, *,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (examples of ``input_shape``, no batch dim) as ``fmt`` to ``out`` plus ``out``'s ``.json``.

    ``meta`` (JSON-able) is added to the sidecar and embedded in the file. Returns the model file's path;
    ConfigError (one line, nothing written) when the format is unknown or the model cannot be exported.
    """
    exporter = EXPORTERS.get(fmt)
    out = Path(out)
    if out.is_dir():
        out = out / f"model{SUFFIXES[fmt]}"
    if out.suffix == ".json":
        raise ConfigError(problem("out", "the model file's path, not its .json sidecar", str(out),
                                  f"Pass e.g. {str(out.with_suffix(SUFFIXES[fmt]))!r}"))
    shape = _check_shape(input_shape)
    with _cpu_eval(model) as net:
        g = torch.Generator().manual_seed(0)
        # Random rather than zero inputs, so a branch on tensor values cannot pass the check by chance.
        x, x_check = torch.randn(TRACE_BATCH, *shape, generator=g), torch.randn(CHECK_BATCH, *shape, generator=g)
        out_shape = _output_shape(net, x, fmt)
        description = describe(shape, out_shape, meta)
        payload = exporter(net, x, x_check, description)
    _write_atomic({out: payload, sidecar_path(out): (json.dumps(description, indent=2) + "\n").encode()})
    return out


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, *,
               model: nn.Module | None = None) -> Path:
    """Export the best checkpoint of ``run_dir`` as ``fmt``; default ``<run_dir>/export/model.<ext>``.

    ``model``: an instance of your own ``nn.Module`` for a run that trained one (it receives the weights).
    """
    from trainlab.train.inference import load_run

    EXPORTERS.get(fmt)  # an unknown format fails before the checkpoint is read
    run = load_run(run_dir, "best", model=model)
    out = run.run_dir / "export" / f"model{SUFFIXES[fmt]}" if out is None else out
    return export_model(run.model, tuple(run.info["input_shape"]), out, fmt, meta=run_meta(run))


def run_meta(run: LoadedRun) -> dict[str, Any]:
    """What a user of a run's exported file needs: normalisation, classes, what the output means, the config."""
    from trainlab.config import config_to_dict
    from trainlab.data import input_transform

    info = run.info
    classification = info["task"] == "classification"
    names = info.get("class_names") or ([str(i) for i in range(int(info["n_classes"]))] if classification else None)
    norm = (info.get("stats") or {}).get("normalize")
    return {
        "task": info["task"], "class_names": names, "loss": info["loss"],
        "output": {"meaning": (OUTPUT_MEANING if run.cfg.loss.from_logits else PROBABILITY_MEANING).get(
                       info["loss"], "raw model outputs") if classification else REGRESSION_MEANING},
        # The whole recipe from a user's raw data (pixels / 255 for images, features, standardisation).
        "input": {"transform": input_transform(run.cfg.data.name, info.get("stats") or {})},
        "normalize": None if norm is None else {
            "mean": norm["mean"], "std": norm["std"], "axis": 1,
            "apply": "input = (x - mean) / std per channel (axis 1) of images or per feature of rows, with x the "
                     "input before this step (input.transform has every step); the model expects normalised inputs"},
        "feature_names": info.get("feature_names"), "target_names": info.get("target_names"),
        "run": run.run_dir.name, "checkpoint": "best", "epoch": run.epoch,
        "model": info.get("custom_model") or run.cfg.model.name, "config": config_to_dict(run.cfg),
    }


def describe(input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None,
             meta: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar: input/output names and shapes ("batch" first), versions, then ``meta`` (dicts merged).

    It does not depend on the format, so exports of one model in several formats share ``model.json``.
    """
    from trainlab import __version__

    desc: dict[str, Any] = {
        "input": {"name": INPUT_NAME, "shape": ["batch", *input_shape], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": None if output_shape is None else ["batch", *output_shape[1:]]},
        "exported_with": {"trainlab": __version__, "torch": str(torch.__version__)},
    }
    for key, value in (meta or {}).items():
        desc[key] = {**desc[key], **value} if isinstance(desc.get(key), dict) and isinstance(value, dict) else value
    try:
        json.dumps(desc)
    except (TypeError, ValueError) as exc:
        raise ConfigError(problem("meta", "JSON-able (str, numbers, lists, dicts)", type(exc).__name__,
                                  f"Convert the values first ({_first_line(exc)})")) from None
    return desc


def sidecar_path(model_file: str | Path) -> Path:
    """``export/model.onnx`` → ``export/model.json``."""
    return Path(model_file).with_suffix(".json")


def string_metadata(description: dict[str, Any]) -> dict[str, str]:
    """The sidecar as string → string pairs (strings kept, anything else as JSON), for in-file metadata."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in description.items()}


# ---------------------------------------------------------------------------------------------- formats

def _require(fmt: str, *modules: str) -> list[Any]:
    """Import the optional packages a format needs; one ConfigError line with the install hint if missing."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as exc:
        names = " and ".join(m.split(".")[0] for m in modules)
        raise ConfigError(f"format {fmt} must have the {names} package(s) installed. Got {exc}. "
                          "Run pip install 'trainlab[export]'.") from None


@EXPORTERS.register("onnx", "ONNX graph for onnxruntime and other runtimes (dynamic batch, raw outputs)")
def to_onnx(net: nn.Module, x: torch.Tensor, x_check: torch.Tensor, description: dict[str, Any]) -> bytes:
    # torch.onnx's exporter needs onnxscript too: fail here, with the install hint, rather than deep inside it
    onnx, _ = _require("onnx", "onnx", "onnxscript")
    batch = torch.export.Dim("batch", min=1)
    with _quiet_torch():
        try:
            program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},), strict=False)
        except Exception as exc:  # noqa: BLE001 - torch.export raises many types; all mean "cannot capture"
            raise _unexportable("ONNX", net, exc) from None
        _check_same(net, program.module(), x_check, "ONNX")
        try:
            onnx_program = torch.onnx.export(program, (x,), dynamo=True, input_names=[INPUT_NAME],
                                             output_names=[OUTPUT_NAME], verbose=False)
            proto = onnx_program.model_proto
        except Exception as exc:  # noqa: BLE001 - e.g. an operator without an ONNX translation
            raise _unexportable("ONNX", net, exc) from None
    for key, value in string_metadata(description).items():
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise _unexportable("ONNX", net, exc) from None
    payload = proto.SerializeToString()
    _check_with_onnxruntime(net, payload, x_check)
    return payload


@EXPORTERS.register("torchscript", "TorchScript file for torch.jit.load: runs with torch alone, no trainlab")
def to_torchscript(net: nn.Module, x: torch.Tensor, x_check: torch.Tensor, description: dict[str, Any]) -> bytes:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; asking for it is the choice
        try:
            traced = torch.jit.trace(net, (x,), check_trace=False)  # the check below also varies the batch size
        except Exception as exc:  # noqa: BLE001 - tracing fails with RuntimeError/TypeError/... on odd modules
            raise _unexportable("TorchScript", net, exc) from None
        frozen = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        if frozen:
            raise _unexportable("TorchScript", net, frozen[0].message)  # a TracerWarning instance
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"trainlab.json": json.dumps(description)})
        buffer.seek(0)
        loaded = torch.jit.load(buffer)  # check what was serialised, not the in-memory trace
    _check_same(net, loaded, x_check, "TorchScript")
    return buffer.getvalue()


@EXPORTERS.register("safetensors", "the weights (state_dict) only, for load_state_dict into the same architecture")
def to_safetensors(net: nn.Module, x: torch.Tensor, x_check: torch.Tensor, description: dict[str, Any]) -> bytes:
    st = _require("safetensors", "safetensors.torch")[0]
    load, save = st.load, st.save
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, value in net.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise ConfigError(f"model state_dict must hold only tensors for safetensors. Got {name!r} = "
                              f"{type(value).__name__}. Use format torchscript or onnx.")
        t = value.detach().contiguous()
        # safetensors refuses tensors that share memory (tied weights); each name gets its own copy.
        tensors[name] = t.clone() if t.data_ptr() in seen and t.numel() else t
        seen.add(t.data_ptr())
    payload = save(tensors, metadata=string_metadata(description))
    back = load(payload)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], v) for k, v in tensors.items())
    return payload


FORMATS = tuple(EXPORTERS.names())


# ---------------------------------------------------------------------------------------------- helpers

def _check_shape(input_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(s < 1 for s in shape) or shape != tuple(input_shape):
        raise ConfigError(problem("input_shape", "a non-empty tuple of sizes >= 1 (no batch dimension)",
                                  input_shape, "Pass e.g. (1, 28, 28) for images or (2,) for 2-D points"))
    return shape


@contextlib.contextmanager
def _cpu_eval(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode on the CPU (a copy if it lives elsewhere); the caller's modes are restored."""
    on_cpu = all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    net = model if on_cpu else copy.deepcopy(model).cpu()
    modes = {m: m.training for m in net.modules()}
    net.eval()  # Dropout off, BatchNorm on its running statistics: the model as it predicts
    try:
        with torch.no_grad():
            yield net
    finally:
        for m, training in modes.items():
            m.train(training)


def _output_shape(net: nn.Module, x: torch.Tensor, fmt: str) -> tuple[int, ...] | None:
    """Shape of ``net(x)``; ONNX and TorchScript need one (batch, outputs) tensor, safetensors does not."""
    try:
        y = net(x)
    except Exception as exc:  # noqa: BLE001 - shape errors come as RuntimeError or ValueError, user code anything
        raise ConfigError(f"input_shape must be what the model takes. Got {tuple(x.shape[1:])}: a batch of "
                          f"{tuple(x.shape)} fails ({_first_line(exc)}). Pass the shape of one example.") from None
    if isinstance(y, torch.Tensor) and y.ndim >= 1 and y.shape[0] == len(x):
        return tuple(y.shape)
    if fmt == "safetensors":
        return None
    got = f"a tensor of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
    raise ConfigError(f"model must return one tensor (batch, outputs) to export to {fmt}. Got {got}. "
                      f"Return a tensor from forward, or {WEIGHTS_ONLY}.")


def _check_same(net: nn.Module, exported: Callable[[torch.Tensor], Any], x: torch.Tensor, label: str) -> None:
    try:
        got = exported(x)
    except Exception as exc:  # noqa: BLE001 - a graph frozen to the traced batch size fails here
        raise _unexportable(label, net, exc, f"on a batch of {len(x)} (traced with {TRACE_BATCH})") from None
    _compare(net, torch.as_tensor(got), net(x), label)


def _check_with_onnxruntime(net: nn.Module, payload: bytes, x: torch.Tensor) -> None:
    """Run the ONNX bytes once where onnxruntime is installed (an optional dependency) and compare."""
    try:
        import onnxruntime
    except ImportError:
        return
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ConfigError(f"model must run in onnxruntime after export to ONNX. Got {type(net).__name__}: "
                          f"{_first_line(exc)}. Use format torchscript, or {WEIGHTS_ONLY}.") from None
    _compare(net, torch.from_numpy(got), net(x), "ONNX")


def _compare(net: nn.Module, got: torch.Tensor, want: torch.Tensor, label: str) -> None:
    if got.shape != want.shape or not torch.allclose(got.float(), want.float(), rtol=CHECK_RTOL, atol=CHECK_ATOL):
        diff = (f"shape {tuple(got.shape)} instead of {tuple(want.shape)}" if got.shape != want.shape
                else f"a max abs difference of {float((got.float() - want.float()).abs().max()):.3g}")
        raise ConfigError(f"model must give the same outputs after export to {label}. Got {diff} on a batch of "
                          f"{len(want)} (traced with {TRACE_BATCH}): its forward depends on the batch size or on "
                          f"tensor values. Make it not, or {WEIGHTS_ONLY}.")


# Why torch could not capture a model (matched in the exception's type name and text), in words a user can act on.
REASONS = (
    ("GuardOnDataDependentSymNode", "its forward uses tensor values in Python (an if on a tensor, float(t), t.item())"),
    ("Constraints violated", "its forward depends on the batch size"),
    ("TracerWarning", "tracing would freeze a Python value computed from a tensor or its size (an if on a tensor, "
                      "float(t), t.item(), .numpy())"),
    ("No ONNX function", "an operator has no ONNX translation"),
    ("ConversionError", "the graph could not be translated to ONNX"),
)


def _unexportable(label: str, net: nn.Module, exc: object, where: str = "") -> ConfigError:
    text = f"{type(exc).__name__} {exc}"
    reason = next((why for key, why in REASONS if key in text), "torch cannot capture its forward")
    # torch.onnx's first line is generic ("Failed to convert..."); the cause follows "## Exception summary".
    summary = re.search(r"## Exception summary\s*\n\s*(?:<class '[\w.]+'>: )?(.+)", str(exc))
    detail = _first_line(summary.group(1) if summary else exc).rstrip(".!")
    detail = re.sub(r"<OpOverload\(op='([^']+)'[^>]*>", r"\1", detail)
    detail = re.sub(r" \(unhinted: .*\)$", "", detail)  # torch's symbolic-shape internals
    where = f" {where}" if where else ""
    return ConfigError(f"model must be exportable to {label}. Got {type(net).__name__}: {reason}{where} "
                       f"({detail}). Change forward, or {WEIGHTS_ONLY}.")


def _first_line(exc: object) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch.onnx colours its messages
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    line = re.split(r"(?<=[.!])\s", line, maxsplit=1)[0]  # first sentence
    return line if len(line) <= 160 else line[:157] + "..."


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence torch.export/onnx chatter (graph dumps, missing-torchvision notes): errors come as one line."""
    names = ("torch.fx.experimental.symbolic_shapes", "torch.onnx", "torch._export", "torch.export",
             "torch._dynamo", "torch.fx")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR + 1)
    try:
        # torch.export prints the partial graph of a failed capture straight to sys.stderr.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _write_atomic(files: dict[Path, bytes]) -> None:
    """Write every file to a temp name, then rename them all: a failure leaves no file and no new folder."""
    from trainlab.files import storage_errors

    temps: dict[Path, Path] = {}
    created: list[Path] = []  # folders made here, deepest first, removed again if writing fails
    with storage_errors(next(iter(files)).parent), _cleaned(temps, created):
        for path, data in files.items():
            folder = path.parent
            while not folder.exists():
                created.append(folder)
                folder = folder.parent
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temps[path] = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for path, tmp in temps.items():
            os.replace(tmp, path)
        created.clear()


@contextlib.contextmanager
def _cleaned(temps: dict[Path, Path], created: list[Path]) -> Iterator[None]:
    """Remove the temp files and the folders made for them when the writes fail."""
    try:
        yield
    finally:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
