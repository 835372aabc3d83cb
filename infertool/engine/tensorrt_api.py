"""The TensorRT flavours (TensorRT 10.x / 11.x, TensorRT-RTX 1.x), how each is loaded, and the few
facts about them the rest of the code branches on. A backend picks its flavour; nothing is
process-wide."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from infertool import dtypes
from infertool.errors import MissingDependency, first_line
from infertool.optional import install_hint

# BuilderFlag members that TensorRT 11 removed (it is always strongly typed); used on 10.x only.
WEAK_TYPING_FLAGS = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8", "fp8": "FP8"}


@dataclass(frozen=True)
class Flavour:
    """One TensorRT library. `targets`: the compute capabilities it builds for ahead of time, with
    or without a GPU (empty: it builds for the GPU it runs on). `runs_on`: the compute capabilities
    its runtime supports, a trailing "+" meaning "and later" (empty: whatever the version supports)."""

    name: str  # as sidecars and messages name it
    module: str  # import name
    backend: str  # the backend that runs its engines, for hints
    targets: tuple[str, ...] = ()
    default_targets: str = ""  # what it builds for when no target is named
    runs_on: tuple[str, ...] = ()
    plan_magic: bytes = b""  # the first bytes of its serialized engines, where known
    api_major: int | None = None  # the TensorRT API generation its Python API follows (None: its own major)

    def load(self) -> Any:
        """The module, or a one-line error naming the extra (also when its libraries are missing)."""
        return _load(self.module, self.name)

    def version(self) -> str:
        return self.load().__version__

    def major(self) -> int:
        return int(self.version().split(".")[0])

    def api(self) -> int:
        """10 or 11: whether precision comes from builder flags (10) or from the graph alone (11)."""
        return self.api_major or self.major()

    def module_path(self) -> str:
        """Where the module came from: recorded with results, so a stand-in never passes for the library."""
        return str(getattr(self.load(), "__file__", "unknown"))

    @property
    def ahead_of_time(self) -> bool:
        return bool(self.targets)

    def runs(self, compute_capability: str) -> bool:
        if not self.runs_on:
            return True
        found = cc_tuple(compute_capability)
        return any(found >= cc_tuple(c[:-1]) if c.endswith("+") else found == cc_tuple(c) for c in self.runs_on)

    def unsupported_gpu(self, gpu_name: str, compute_capability: str) -> str | None:
        """Why this GPU cannot run the flavour's engines, naming the capabilities it supports; None if it can."""
        if self.runs(compute_capability):
            return None
        supported = ", ".join(c.replace("+", " and later") for c in self.runs_on)
        return f"{gpu_name} has compute capability {compute_capability}; {self.name} runs on compute capability {supported} only"


def cc_tuple(text: str) -> tuple[int, ...]:
    """'8.6' -> (8, 6), for comparing compute capabilities."""
    return tuple(int(p) for p in text.split("."))


TENSORRT = Flavour("TensorRT", "tensorrt", "trt")
TENSORRT_RTX = Flavour(
    "TensorRT-RTX", "tensorrt_rtx", "trt-rtx", targets=("7.5", "8.0", "8.6", "8.9", "12.0", "12.1"),
    default_targets="TensorRT-RTX's defaults: Ampere and later RTX GPUs (8.0, 8.6, 8.9, 12.0 and later), not Turing",
    runs_on=("7.5", "8.0", "8.6", "8.9", "12.0+"), plan_magic=b"vtrt", api_major=11,
)
FLAVOURS = {f.name: f for f in (TENSORRT, TENSORRT_RTX)}


@cache
def _load(module: str, name: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{name} is not installed", hint=install_hint(module), detail=first_line(exc)) from exc
    except OSError as exc:  # the bindings load, the libraries do not
        raise MissingDependency(f"{name}'s libraries cannot be loaded", hint=install_hint(module), detail=first_line(exc)) from exc


def dtype_name(trt_dtype: Any) -> str:
    return dtypes.from_trt(getattr(trt_dtype, "name", str(trt_dtype)).rsplit(".", 1)[-1])


def make_logger(flavour: Flavour, verbose: bool, sink: Callable[[str], None]) -> Any:
    """The flavour's ILogger, cleared: it keeps every message (errors end up in the one-line error
    that reports a failure) and echoes them when verbose. One per flavour and process, because the library keeps the first logger it was
    given while any builder or runtime lives, and ignores later ones."""
    logger = _logger(flavour)
    logger.messages, logger.verbose, logger.sink = [], verbose, sink
    logger.error_messages = []
    return logger


@cache
def _logger(flavour: Flavour) -> Any:
    trt = flavour.load()

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []
            self.error_messages: list[str] = []
            self.verbose = False
            self.sink: Callable[[str], None] = lambda message: None

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append(msg)
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.error_messages.append(_error_text(msg))
            if self.verbose:
                self.sink(f"[{flavour.name}] {msg}")

        def errors(self) -> list[str]:
            """Error messages on one line each; a missing CUDA driver's only where nothing else went wrong
            (an ahead-of-time build reports it on a machine without a GPU, and goes on)."""
            real = [m for m in self.error_messages if NO_DRIVER not in m]
            return real or self.error_messages

    return Logger()


NO_DRIVER = "cudaError 35"


def _error_text(message: str) -> str:
    """`API: Error Code 4: API Usage Error (what went wrong. In f at /src/file.cpp:12)` -> `what went wrong.`"""
    text = " ".join(message.split())
    wrapped = re.search(r"Error Code \d+: [\w ]+ \((.*)\)$", text)
    if wrapped:
        text = wrapped.group(1)
    return re.sub(r" In \w+ at /\S+$", "", text)


def profiler(flavour: Flavour, record: Callable[[str, float], None]) -> Any:
    """An IProfiler handing each layer's time (ms) of every execution to `record`."""
    trt = flavour.load()

    class Profiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            record(layer_name, ms)

    return Profiler()


def layer_types(flavour: Flavour, engine: Any) -> dict[str, str]:
    """Layer name -> layer type, from the engine inspector (types need detailed profiling verbosity at build)."""
    trt = flavour.load()
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    return {layer["Name"]: layer.get("LayerType", "?") for layer in info.get("Layers", []) if isinstance(layer, dict) and "Name" in layer}


def progress_monitor(flavour: Flavour, advance: Callable[[str, int, int], None]) -> Any | None:
    """An IProgressMonitor reporting (phase, step, steps), or None where the library has none."""
    trt = flavour.load()
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            advance(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            advance(phase_name, step + 1, self.steps.get(phase_name, 0))
            return True  # keep building

        def phase_finish(self, phase_name: str) -> None:
            advance(phase_name, self.steps.get(phase_name, 0), self.steps.get(phase_name, 0))

    return Monitor()
