"""Backend registry: every runner by name, with why it cannot run here when it cannot."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from infertool.errors import InfertoolError
from infertool.reporting import Reporter, SilentReporter
from infertool.runners.base import Runner
from infertool.runners.ort import OrtOptions
from infertool.runners.trt import TrtOptions

BACKENDS = {
    "ort-cpu": "ONNX Runtime, CPU execution provider",
    "ort-cuda": "ONNX Runtime, CUDA execution provider",
    "ort-trt": "ONNX Runtime, TensorRT execution provider",
    "trt": "TensorRT engine (built from the ONNX and cached, or given with --engine)",
}


@dataclass(frozen=True)
class RunnerOptions:
    device: int = 0  # CUDA device index
    ort: OrtOptions = field(default_factory=OrtOptions)
    trt: TrtOptions = field(default_factory=TrtOptions)


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
    from infertool.runners import ort, trt

    try:
        reason = trt.unavailable_reason() if name == "trt" else ort.unavailable_reason(name)
    except Exception as exc:  # a broken install must read as unavailable, never crash the listing
        reason = f"check failed: {type(exc).__name__}: {exc}"
    return BackendStatus(name, BACKENDS[name], reason is None, reason or "")


def available() -> list[BackendStatus]:
    return [status(name) for name in BACKENDS]


def require_available(name: str) -> None:
    found = status(name)
    if not found.ok:
        raise InfertoolError(f"backend {name} is unavailable: {found.reason}", hint="run 'infertool doctor' to see what is installed")


@functools.lru_cache(maxsize=4)
def _graph_facts(path: str, mtime_ns: int) -> tuple[str, frozenset[str]]:
    """The graph's precision and its dynamic inputs, read once per model file (bench asks per row)."""
    from infertool import onnx_model
    from infertool.precision.detect import graph_precision

    graph = onnx_model.load(Path(path), load_external_data=False)
    return graph_precision(graph), frozenset(s.name for s in onnx_model.input_specs(graph) if s.dynamic_axes)


def open_runner(
    name: str, model: Path, options: RunnerOptions, shapes: dict[str, tuple[int, ...]] | None = None,
    reporter: Reporter | None = None,
) -> Runner:
    """A runner, not yet prepared: use it as a context manager.

    For `trt` on an ONNX model, `shapes` fix the engine's profile (min = opt = max, as trtexec's
    --shapes) and the engine is built, or taken from the cache, here.
    """
    check_name(name)
    if name != "trt":
        from infertool.runners.ort import OrtRunner

        return OrtRunner(model, name, options.ort, options.device)
    from infertool.runners.trt import TrtRunner

    if model.suffix == ".engine" or options.trt.engine is not None:
        return TrtRunner(options.trt.engine or model, options.device, options.trt.cuda_graph)
    from infertool.engine.build import BuildOptions
    from infertool.engine.cache import engine_for
    from infertool.engine.profiles import ShapeProfile

    graph_precision, dynamic = _graph_facts(str(model), model.stat().st_mtime_ns)
    precision = options.trt.precision or graph_precision
    profile = ShapeProfile({n: (s, s, s) for n, s in (shapes or {}).items() if n in dynamic})
    build = BuildOptions(
        precision=precision, profiles=(profile,), workspace=options.trt.workspace, opt_level=options.trt.opt_level,
        timing_cache=options.trt.timing_cache, device=options.device,
    )
    engine = engine_for(model, build, options.trt.cache_dir, reporter or SilentReporter())
    return TrtRunner(engine, options.device, options.trt.cuda_graph)
