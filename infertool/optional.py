"""Optional imports. Heavy frameworks are imported only where a command needs them."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
from types import ModuleType

from infertool.errors import MissingDependency

# import name -> the pip extra that installs it
EXTRAS = {
    "onnxruntime": "cpu",
    "torch": "torch",
    "onnxscript": "torch",
    "tensorflow": "keras",
    "keras": "keras",
    "tf2onnx": "keras",
    "tensorrt": "trt",
    "tensorrt_rtx": "trt-rtx",
    "onnxruntime_ep_nv_tensorrt_rtx": "ort-trt-rtx",
    "cuda": "gpu",
    "pynvml": "gpu",
    "matplotlib": "report",
    "yaml": "sweep",
    "ray": "ray",
}


def install_hint(module: str) -> str:
    extra = EXTRAS.get(module)
    if extra is None:
        return f"pip install {module}"
    if module == "onnxruntime":
        return "pip install 'infertool[cpu]' (or 'infertool[gpu]' for CUDA; never both)"
    return f"pip install 'infertool[{extra}]'"


def is_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import `module`, or raise a one-line error naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependency(f"{module} is not installed{what}", hint=install_hint(module), detail=str(exc)) from exc


@functools.cache  # a process runs the code it started with: read once (every result's env block asks)
def distribution_version(*names: str) -> str | None:
    """The installed version of the first of these distributions found, without importing it."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
