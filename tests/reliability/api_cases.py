"""The generated bad-input corpus of the Python API ("api"): models that are not modules or cannot run, data of
every wrong shape and type, test and validation sets that do not match, option values and config files that are
wrong, and run folders that are not runs.

Each case asserts: a ``TrainlabError`` subclass (never a raw TypeError/RuntimeError from deep inside), one line in
the house form (``… must … Got …``), and nothing written under the case's folder (the run directory is not made).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from tests.reliability.harness import Case, changes, snapshot
from tests.reliability.world import World, case_dir, copy_run, world


def _xy(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


class Net(nn.Module):
    def __init__(self, n_in: int = 4, n_out: int = 2) -> None:
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class Raises(nn.Module):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.lin, self.exc = nn.Linear(4, 2), exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.exc


class NoParameters(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


def _frozen() -> nn.Module:
    return Net().requires_grad_(False)


def _with_label(label: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _xy()
    y = y.clone()
    y[5] = label
    return x, y


def _nan_x() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _xy()
    x = x.clone()
    x[3, 1] = float("nan")
    return x, y


def _inf_x() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _xy()
    x = x.clone()
    x[0, 0] = float("inf")
    return x, y


def _nan_regression() -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = _xy()
    y = x[:, 0].clone()
    y[2] = float("nan")
    return x, y


def _opts(d: Path) -> dict[str, Any]:
    return dict(out_dir=str(d / "runs"), epochs=1, batch_size=16, verbose=False, report=False, tensorboard=False,
                threads=1)


# A case: ``setup(inputs_dir, world)`` makes what the call needs and returns the call itself; the folder the call
# must leave untouched (its out_dir) is another one, snapshotted after the setup.
Setup = Callable[[Path, World], Callable[[Path], Any]]


def _made(v: Any) -> Any:
    return v() if callable(v) and not isinstance(v, (nn.Module, type, str)) else v


def _fit(model: Any = None, data: Any = None, **kw: Any) -> Setup:
    def setup(inputs: Path, w: World) -> Callable[[Path], Any]:
        import trainlab as tl

        m, dd = _made(model), _made(data)
        return lambda out: tl.fit(m, _xy() if dd is None else dd, **{**_opts(out), **kw})

    return setup


def _file(name: str, content: bytes) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        path = d / name
        path.write_bytes(content)
        return str(path)

    return make


def _fit_config(make: Callable[[Path], Any]) -> Setup:
    def setup(inputs: Path, w: World) -> Callable[[Path], Any]:
        import trainlab as tl

        config = make(inputs)
        return lambda out: tl.fit(Net(), _xy(), config=config, **_opts(out))

    return setup


def _lr_find(model: Any = None, **kw: Any) -> Setup:
    def setup(inputs: Path, w: World) -> Callable[[Path], Any]:
        import trainlab as tl

        m = _made(model)
        return lambda out: tl.lr_find(m, _xy(), **{"steps": 10, "seeds": 1, "batch_size": 16, "threads": 1,
                                                    "out_dir": str(out / "runs"), **kw})

    return setup


def _on_run(fn: Callable[[Path], Any], damage: Callable[[Path], None] | None = None) -> Setup:
    def setup(inputs: Path, w: World) -> Callable[[Path], Any]:
        run = copy_run(inputs, "toy")
        if damage is not None:
            damage(run)
        return lambda out: fn(run)

    return setup


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _predict_wrong_shape(inputs: Path, w: World) -> Callable[[Path], Any]:
    import trainlab as tl

    run = tl.fit(Net(), _xy(), **_opts(inputs))
    return lambda out: run.predict(torch.zeros(3, 7))


class _NoisyStream(torch.utils.data.IterableDataset):
    """An IterableDataset with a random transform: read afresh every epoch, in the training process."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __iter__(self) -> Any:
        return ((x + 0.1 * torch.randn(x.shape), y) for x, y in zip(self.x, self.y))


def _api(name: str) -> Callable[..., Any]:
    import trainlab.api

    return getattr(trainlab.api, name)


CALLS: dict[str, Setup] = {
    # the model
    "model-a-string": _fit("not a model"), "model-a-class": _fit(Net), "model-an-int": _fit(5),
    "model-forward-typeerror": _fit(lambda: Raises(TypeError("forward() missing 1 required argument"))),
    "model-forward-exception": _fit(lambda: Raises(Exception("boom"))),
    "model-forward-keyerror": _fit(lambda: Raises(KeyError("x"))),
    "model-input-size-wrong": _fit(lambda: Net(n_in=3)), "model-no-parameters": _fit(NoParameters),
    "model-all-frozen": _fit(_frozen), "model-output-too-wide": _fit(lambda: Net(n_out=10)),
    "label-5-among-0-1": _fit(Net, lambda: _with_label(5)),
    # the data
    "data-empty": _fit(Net, (torch.empty(0, 4), torch.empty(0, dtype=torch.long))),
    "data-empty-1d": _fit(Net, (torch.empty(0), torch.empty(0))),
    "data-zero-features": _fit(Net, (torch.empty(10, 0), torch.zeros(10, dtype=torch.long))),
    "data-x-alone": _fit(Net, torch.zeros(10, 4)), "data-three-items": _fit(Net, (1, 2, 3)),
    "data-ragged-lists": _fit(Net, ([[1, 2, 3, 4], [1, 2]], [0, 1])), "data-nan-inputs": _fit(Net, _nan_x),
    "data-inf-inputs": _fit(Net, _inf_x), "data-nan-targets": _fit(Net, _nan_regression, task="regression"),
    "data-complex": _fit(Net, (torch.zeros(8, 4, dtype=torch.complex64), torch.zeros(8, dtype=torch.long))),
    "data-text-inputs": _fit(Net, (np.array([["a", "b", "c", "d"]] * 8), np.arange(8) % 2)),
    "data-length-mismatch": _fit(Net, lambda: (_xy()[0], _xy()[1][:10])),
    "data-one-class": _fit(Net, lambda: (_xy()[0], torch.zeros(64, dtype=torch.long))),
    "data-unknown-name": _fit(None, "no-such-dataset"), "data-target-without-frame": _fit(Net, target="label"),
    "data-y-3d": _fit(Net, lambda: (_xy()[0], torch.zeros(64, 2, 2))), "data-a-number": _fit(Net, 7),
    "data-redrawn-iterable-with-workers": _fit(Net, lambda: _NoisyStream(*_xy()), workers=2),
    "data-redrawn-iterable-normalized": _fit(Net, lambda: _NoisyStream(*_xy()), normalize=True),
    # test and validation sets
    "test-five-columns": _fit(Net, test=(torch.zeros(10, 5), torch.zeros(10, dtype=torch.long))),
    "test-unknown-label": _fit(Net, test=(torch.zeros(10, 4), torch.full((10,), 7))),
    "test-empty": _fit(Net, test=(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))),
    "test-a-string": _fit(Net, test="mnist"), "val-zero": _fit(Net, val=0.0), "val-above-one": _fit(Net, val=1.5),
    "val-wrong-columns": _fit(Net, val=(torch.zeros(10, 3), torch.zeros(10, dtype=torch.long))),
    # options
    "option-lr-inf": _fit(Net, lr=float("inf")), "option-lr-nan": _fit(Net, lr=float("nan")),
    "option-lr-negative": _fit(Net, lr=-1.0), "option-epochs-zero": _fit(Net, epochs=0),
    "option-epochs-text": _fit(Net, epochs="ten"), "option-batch-zero": _fit(Net, batch_size=0),
    "option-batch-over-data": _fit(Net, batch_size=10_000), "option-seed-negative": _fit(Net, seed=-5),
    "option-unknown-keyword": _fit(Net, lrr=0.1), "option-task-unknown": _fit(Net, task="clustering"),
    "option-optimizer-unknown": _fit(Net, optimizer="adamw2"), "option-weight-decay-inf": _fit(Net, weight_decay=1e400),
    "option-hidden-negative": _fit(None, hidden=[-3]),
    # config files
    "config-missing": _fit_config(lambda d: str(d / "missing.yaml")),
    "config-binary": _fit_config(_file("bin.yaml", bytes(range(256)) * 3)),
    "config-latin1": _fit_config(_file("l1.yaml", "name: caf\xe9\n".encode("latin-1"))),
    "config-truncated": _fit_config(_file("t.yaml", b"optimizer: {lr: 0.1, name: [s")),
    "config-section-scalar": _fit_config(lambda d: {"optimizer": 5}),  # type: ignore[arg-type,return-value]
    "config-empty-file": _fit_config(_file("empty.yaml", b"")),
    # lr_find
    "lr-find-seeds-zero": _lr_find(Net, seeds=0), "lr-find-a-string": _lr_find("not a model"),
    "lr-find-lr-inf": _lr_find(Net, lr=float("inf")),
    # finished runs
    "load-missing": lambda d, w: lambda out: _api("load")(d / "runs" / "nope"),
    "load-truncated-checkpoint": _on_run(lambda r: _api("load")(r), lambda r: _truncate(r / "checkpoints" / "best.pt")),
    "load-truncated-config": _on_run(lambda r: _api("load")(r), lambda r: _truncate(r / "config.yaml")),
    "config-of-a-file": lambda d, w: (lambda path: lambda out: _api("config_of")(path))(_file("x.txt", b"x")(d)),
    "config-of-a-search": _on_run(lambda r: _api("config_of")(r.parent / "search-s"),
                                  lambda r: copy_run(r.parent.parent, "search-s")),
    "predict-wrong-shape": _predict_wrong_shape,
}
QUICK = {"model-a-string", "model-forward-typeerror", "model-no-parameters", "label-5-among-0-1", "data-empty",
         "test-five-columns", "option-lr-inf", "config-latin1", "load-truncated-checkpoint", "data-ragged-lists"}


def _refused(name: str, setup: Setup) -> Case:
    def run(_: Path) -> None:
        from trainlab.errors import TrainlabError

        inputs, out = case_dir(f"api-{name}"), case_dir(f"api-{name}-out")
        call = setup(inputs, world())
        before = snapshot(inputs.parent)
        try:
            call(out)
        except TrainlabError as exc:
            text = str(exc)
            assert "\n" not in text, f"{type(exc).__name__} of {text.count(chr(10)) + 1} lines: {text[:400]!r}"
            assert " must " in text and "Got" in text, f"not the house form: {text[:300]!r}"
        except Exception as exc:  # noqa: BLE001 — the case: anything but a TrainlabError falls short
            raise AssertionError(f"{type(exc).__name__} (not a TrainlabError): {str(exc)[:300]}") from exc
        else:
            raise AssertionError("accepted: no error")
        diff = changes(before, snapshot(inputs.parent))
        assert not diff, f"files changed: {diff}"

    return Case("api", name, run, quick=name in QUICK)


def cases() -> list[Case]:
    return [_refused(name, call) for name, call in CALLS.items()]
