"""What this machine is: versions, CPU, GPU. Used by `doctor` and as the fingerprint in bench JSON."""

from __future__ import annotations

import functools
import importlib
import os
import platform
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from infertool import __version__
from infertool.optional import distribution_version, install_hint, is_available


@dataclass(frozen=True)
class Component:
    name: str
    version: str | None
    hint: str = ""  # how to install it when missing

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_total_mb: int
    memory_used_mb: int
    compute_capability: str
    driver: str
    cuda_driver: str

    def to_dict(self) -> dict:
        return asdict(self)


# (shown name, import name, distributions that provide it)
PACKAGES = (
    ("numpy", "numpy", ("numpy",)),
    ("onnx", "onnx", ("onnx",)),
    ("onnxruntime", "onnxruntime", ("onnxruntime-gpu", "onnxruntime")),
    ("torch", "torch", ("torch",)),
    ("onnxscript", "onnxscript", ("onnxscript",)),
    ("tensorflow", "tensorflow", ("tensorflow", "tensorflow-cpu")),
    ("keras", "keras", ("keras",)),
    ("tf2onnx", "tf2onnx", ("tf2onnx",)),
    ("tensorrt", "tensorrt", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13_bindings", "tensorrt_cu12_bindings")),
    ("tensorrt-rtx", "tensorrt_rtx", ("tensorrt-rtx-cu13", "tensorrt-rtx-cu12", "tensorrt_rtx_cu13_bindings", "tensorrt_rtx_cu12_bindings")),
    ("onnxruntime-ep-nv-tensorrt-rtx", "onnxruntime_ep_nv_tensorrt_rtx", ("onnxruntime-ep-nv-tensorrt-rtx-cu13", "onnxruntime-ep-nv-tensorrt-rtx-cu12")),
    ("cuda-python", "cuda", ("cuda-bindings", "cuda-python")),
    ("nvidia-ml-py", "pynvml", ("nvidia-ml-py",)),
)


# what only an NVIDIA GPU can use: doctor says so beside the install hint
NVIDIA_ONLY = {"tensorrt": "TensorRT needs an NVIDIA GPU and driver", "cuda": "NVIDIA GPUs only", "pynvml": "NVIDIA GPUs only"}


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _module_version(module: str) -> str | None:
    """For a module installed without package metadata (a TensorRT tarball, say)."""
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown version"))
    except Exception:
        return None


def packages() -> list[Component]:
    found = []
    for shown, module, distributions in PACKAGES:
        version = (distribution_version(*distributions) or _module_version(module)) if is_available(module) else None
        needs = f"; {NVIDIA_ONLY[module]}" if module in NVIDIA_ONLY else ""
        found.append(Component(shown, version, hint="" if version else install_hint(module) + needs))
    return found


def ort_providers() -> list[str]:
    if not is_available("onnxruntime"):
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def conflicts() -> list[str]:
    if distribution_version("onnxruntime") and distribution_version("onnxruntime-gpu"):
        return [
            "onnxruntime and onnxruntime-gpu are both installed; they overwrite each other's files. "
            "Keep one: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
        ]
    return []


def gpus() -> tuple[list[Gpu], str]:
    """GPUs through NVML, or none with the reason."""
    if not is_available("pynvml"):
        return [], f"NVML bindings not installed ({install_hint('pynvml')})"
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"no NVIDIA driver ({exc})"
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            found.append(Gpu(
                index, _text(pynvml.nvmlDeviceGetName(handle)), memory.total // 2**20, memory.used // 2**20,
                f"{major}.{minor}", driver, f"{cuda // 1000}.{cuda % 1000 // 10}",
            ))
        return found, "" if found else "NVML sees no GPU"
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def utc_now() -> str:
    """ISO 8601 in UTC, to the millisecond: `2025-01-31T12:00:00.123Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache  # three git processes: once a process (callers copy the dict)
def source_commit() -> dict:
    """The git commit infertool runs from, when it runs from a clone (not from an installed wheel,
    nor from a package that merely sits inside some other repository)."""
    root = Path(__file__).resolve().parent.parent
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:
        return {"git_commit": None, "git_dirty": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git(root, "rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status)}


def provenance() -> dict:
    """When, where and by which infertool a result was made: what a record needs to travel."""
    return {"timestamp_utc": utc_now(), "hostname": socket.gethostname(), "infertool_version": __version__, **source_commit()}


def fingerprint() -> dict:
    """The environment block of result JSON."""
    found, reason = gpus()
    return {
        **provenance(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "packages": {c.name: c.version for c in packages() if c.version},
        "onnxruntime_providers": ort_providers(),
        "gpus": [g.to_dict() for g in found],
        "gpu_note": reason,
        "argv": sys.argv[1:],
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
