"""Loading TensorRT and the few facts about its versions the rest of the code branches on."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from infertool import dtypes
from infertool.errors import MissingDependency, first_line
from infertool.optional import install_hint

# BuilderFlag members that TensorRT 11 removed (it is always strongly typed); used on 10.x only.
WEAK_TYPING_FLAGS = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8", "fp8": "FP8"}



@cache
def tensorrt() -> Any:
    """The tensorrt module, or a one-line error naming the extra (also when its libraries are missing)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingDependency(f"TensorRT is not installed: {first_line(exc)}", hint=install_hint("tensorrt")) from exc
    except OSError as exc:  # the bindings load, the libnvinfer libraries do not
        raise MissingDependency(f"TensorRT's libraries cannot be loaded: {first_line(exc)}", hint=install_hint("tensorrt")) from exc
    return trt


def version() -> str:
    return tensorrt().__version__


def module_path() -> str:
    """Where the tensorrt module came from: recorded with results, so a stand-in never passes for TensorRT."""
    return str(getattr(tensorrt(), "__file__", "unknown"))


def major() -> int:
    return int(version().split(".")[0])


def dtype_name(trt_dtype: Any) -> str:
    return dtypes.from_trt(getattr(trt_dtype, "name", str(trt_dtype)).rsplit(".", 1)[-1])


def make_logger(verbose: bool, sink: Callable[[str], None]) -> Any:
    """An ILogger that keeps every message (for error reports) and echoes them when verbose."""
    trt = tensorrt()

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append(msg)
            if verbose or severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                sink(f"[TensorRT] {msg}")

    return Logger()


def profiler(record: Callable[[str, float], None]) -> Any:
    """An IProfiler handing each layer's time (ms) of every execution to `record`."""
    trt = tensorrt()

    class Profiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            record(layer_name, ms)

    return Profiler()


def layer_types(engine: Any) -> dict[str, str]:
    """Layer name -> layer type, from the engine inspector (types need detailed profiling verbosity at build)."""
    trt = tensorrt()
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    return {layer["Name"]: layer.get("LayerType", "?") for layer in info.get("Layers", []) if isinstance(layer, dict) and "Name" in layer}


def progress_monitor(advance: Callable[[str, int, int], None]) -> Any | None:
    """An IProgressMonitor reporting (phase, step, steps), or None where TensorRT has none."""
    trt = tensorrt()
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
