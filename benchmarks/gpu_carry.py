"""Prepare, on this machine, what `benchmarks/gpu.py` needs on a lent GPU machine, so that a session lent one
spends its few device minutes measuring: the wheels of every package trainlab (and skorch) needs that the GPU
machine's image lacks, in ``.whl/``, and the four Fashion-MNIST files, in ``.data/fashion-mnist/``. Both
folders are git-ignored; the device tool carries them. Then it prints the `run` call to make.

    python benchmarks/gpu_carry.py [--check]

The image's package list is the device library's (KINDS.md, read 2026-11-17); the wheels are the versions
installed here, for CPython 3.12 on x86-64 Linux (the image's Python). ``--check`` also installs the wheels
into a Python 3.12 beside the image's packages, where one is found here (pyenv), and imports them.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
WHEELS, DATA = ROOT / ".whl", ROOT / ".data"
FASHION = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
           "t10k-labels-idx1-ubyte.gz")
# The GPU machines' image, as the device library lists it.
IMAGE = set("""absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax
opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson
six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision
tqdm transformers treescope triton typer typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp""".split())
# Carried although the image has one: pydantic checks its version at import.
ALWAYS = {"typing-extensions"}
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (28, 27, 24, 17)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
TARGET = dict(default_environment(), python_version="3.12", python_full_version="3.12.3", sys_platform="linux",
              platform_machine="x86_64", implementation_name="cpython", platform_python_implementation="CPython")
DEVICE_COMMAND = ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "
                  "/tmp/site .whl/*.whl || exit; export PYTHONPATH=/tmp/site TRAINLAB_DATA=$PWD/.data "
                  "PYTHONUNBUFFERED=1; set -o pipefail; python3 benchmarks/gpu.py 2>&1 | tee $OUT/gpu.log")


def needed() -> dict[str, str]:
    """name → version installed here, for every distribution trainlab and skorch need, transitively, that the
    image lacks (and those in ALWAYS)."""
    todo = [Requirement(r) for r in md.requires("trainlab") or [] if "extra ==" not in r]
    todo += [Requirement("skorch")] if has("skorch") else []  # gpu.py's third contender, where installed here
    found: dict[str, str] = {}
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate(dict(TARGET, extra=""))):
            continue
        seen.add(name)
        if name in IMAGE and name not in ALWAYS:
            continue
        dist = md.distribution(req.name)
        found[name] = dist.version
        todo += [Requirement(r) for r in dist.requires or []]
    return dict(sorted(found.items()))


def has(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def download(wanted: dict[str, str]) -> None:
    shutil.rmtree(WHEELS, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", "-d", str(WHEELS)]
    cmd += [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(cmd + [f"{n}=={v}" for n, v in wanted.items()], check=True)


def copy_data() -> None:
    source = next((Path(root) / "fashion-mnist" for root in (os.environ.get("TRAINLAB_DATA"), "/usr/share/datasets")
                   if root and (Path(root) / "fashion-mnist" / FASHION[0]).exists()), None)
    if source is None:
        raise SystemExit("Fashion-MNIST not found: `apt-get install -y dataset-fashion-mnist` first")
    (DATA / "fashion-mnist").mkdir(parents=True, exist_ok=True)
    for name in FASHION:
        shutil.copyfile(source / name, DATA / "fashion-mnist" / name)


def check(wanted: dict[str, str]) -> bool:
    """Install the wheels as the device does, beside the image's own packages (installed from the index), into a
    Python 3.12, and import each carried top-level module but torch's users."""
    py = next(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"), None) or shutil.which("python3.12")
    if py is None:
        print("--check: no Python 3.12 here; skipped")
        return True
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(py), "-m", "venv", f"{tmp}/venv"], check=True)
        pip = [f"{tmp}/venv/bin/python", "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["numpy", "scipy", "scikit-learn", "tqdm", "tabulate", "pyyaml", "packaging", "anyio",
                              "h11", "click", "markupsafe", "annotated-doc", "typing-extensions==4.12.2"], check=True)
        subprocess.run(pip + ["--no-index", "--no-deps", "--no-compile", "--upgrade", "--target", f"{tmp}/site",
                              *map(str, WHEELS.glob("*.whl"))], check=True)
        modules = "pydantic, optuna, fastapi, uvicorn, websockets, yaml, sqlalchemy, alembic"
        got = subprocess.run([f"{tmp}/venv/bin/python", "-c", f"import {modules}; print('imported: {modules}')"],
                             env=dict(os.environ, PYTHONPATH=f"{tmp}/site"), capture_output=True, text=True)
        print(got.stdout.strip() or got.stderr.strip().splitlines()[-1])
        return got.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="install and import the wheels in a Python 3.12 here")
    a = ap.parse_args()
    wanted = needed()
    download(wanted)
    copy_data()
    size = sum(p.stat().st_size for folder in (WHEELS, DATA) for p in folder.rglob("*") if p.is_file())
    print(f"{len(wanted)} wheels in .whl/ ({', '.join(wanted)})")
    print(f"Fashion-MNIST in .data/fashion-mnist/; {size / 2**20:.0f} MiB to carry")
    if not has("skorch"):
        print("skorch is not installed here (`pip install skorch` first): gpu.py will leave it out there")
    if a.check and not check(wanted):
        return 1
    print("\nThen, where `status` says a machine is lent (one call, ~4 of the 15 device minutes):")
    print(f'  run(carry=[".whl", ".data"], timeout_s=540, command="{DEVICE_COMMAND}")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
