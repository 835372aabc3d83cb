"""Backend registry: every runner by name, with why it cannot run here when it cannot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infertool.errors import InfertoolError
from infertool.runners.base import Runner
from infertool.runners.ort import OrtOptions

BACKENDS = {
    "ort-cpu": "ONNX Runtime, CPU execution provider",
    "ort-cuda": "ONNX Runtime, CUDA execution provider",
    "ort-trt": "ONNX Runtime, TensorRT execution provider",
}


@dataclass(frozen=True)
class RunnerOptions:
    device: int = 0  # CUDA device index
    ort: OrtOptions = field(default_factory=OrtOptions)


@dataclass(frozen=True)
class BackendStatus:
    name: str
    description: str
    ok: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "ok": self.ok, "reason": self.reason}


def check_name(name: str) -> None:
    if name not in BACKENDS:
        raise InfertoolError(f"unknown backend '{name}'", hint=f"choose from {', '.join(BACKENDS)}")


def status(name: str) -> BackendStatus:
    check_name(name)
    from infertool.runners import ort

    try:
        reason = ort.unavailable_reason(name)
    except Exception as exc:  # a broken install must read as unavailable, never crash the listing
        reason = f"check failed: {type(exc).__name__}: {exc}"
    return BackendStatus(name, BACKENDS[name], reason is None, reason or "")


def available() -> list[BackendStatus]:
    return [status(name) for name in BACKENDS]


def require_available(name: str) -> None:
    found = status(name)
    if not found.ok:
        raise InfertoolError(f"backend {name} is unavailable: {found.reason}", hint="run 'infertool doctor' to see what is installed")


def open_runner(name: str, model: Path, options: RunnerOptions) -> Runner:
    """A runner, not yet prepared: use it as a context manager."""
    check_name(name)
    from infertool.runners.ort import OrtRunner

    return OrtRunner(model, name, options.ort, options.device)
