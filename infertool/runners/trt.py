"""The TensorRT runner: a deserialized engine, device buffers and a stream through cuda-python.

Timing follows trtexec: host-to-device copies, device compute and device-to-host copies are
timed apart with CUDA events; `run_bound` times the engine on device-resident buffers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infertool.engine import sidecar as sidecars
from infertool.engine import tensorrt_api
from infertool.errors import InfertoolError
from infertool.runners.base import Runner
from infertool.specs import TensorSpec, format_shape, numpy_dtype

LOWEST_FIRST = ("fp8", "int8", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class TrtOptions:
    precision: str | None = None  # None: what the ONNX graph carries
    workspace: int | None = None
    opt_level: int | None = None
    timing_cache: Path | None = None
    engine: Path | None = None  # a prebuilt engine instead of building one
    cache_dir: Path | None = None
    cuda_graph: bool = False

    def to_dict(self) -> dict:
        return {
            "precision": self.precision, "workspace_bytes": self.workspace, "builder_optimization_level": self.opt_level,
            "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "engine": str(self.engine) if self.engine else None, "cuda_graph": self.cuda_graph,
        }


def unavailable_reason() -> str | None:
    from infertool.lazy import install_hint, is_available

    if not is_available("tensorrt"):
        return f"TensorRT is not installed ({install_hint('tensorrt')})"
    try:
        tensorrt_api.tensorrt()
    except InfertoolError as exc:
        return exc.message
    if not is_available("cuda"):
        return f"cuda-python is not installed ({install_hint('cuda')})"
    from infertool import cuda

    return None if cuda.device_count() > 0 else "no CUDA GPU"


def _engine_precision(sidecar: dict | None) -> str | None:
    if sidecar is None:
        return None
    if sidecar["precision"] != "best":
        return sidecar["precision"]
    found = sidecar.get("layer_precisions") or {}
    return next((p for p in LOWEST_FIRST if found.get(p)), "fp16")


class TrtRunner(Runner):
    name = "trt"
    device_resident = True

    def __init__(self, engine: Path, device: int = 0, cuda_graph: bool = False):
        super().__init__(engine)
        self.device = device
        self.cuda_graph = cuda_graph
        self.sidecar: dict | None = None
        self.warnings: list[str] = []
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._device: dict[str, Any] = {}
        self._host: dict[str, Any] = {}
        self._nbytes: dict[str, int] = {}
        self._graph: Any = None
        self.stream: Any = None
        self.context: Any = None
        self.engine: Any = None

    def prepare(self) -> None:
        from infertool import cuda
        from infertool.engine.build import gpu_identity

        trt = tensorrt_api.tensorrt()
        if not self.model.is_file():
            raise InfertoolError(f"engine {self.model} not found", hint="build one with infertool build-engine")
        self.sidecar = sidecars.read(self.model)
        if self.sidecar is None:
            self.warnings.append(f"{self.model.name} has no infertool sidecar: TensorRT version and GPU were not checked")
        else:
            self.warnings += sidecars.check_compatible(self.model, self.sidecar, tensorrt_api.version(), gpu_identity(self.device))
        self.logger = tensorrt_api.make_logger(False, lambda message: None)
        self.runtime = trt.Runtime(self.logger)
        if self.sidecar and self.sidecar.get("version_compatible"):
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(self.model.read_bytes())
        if self.engine is None:
            raise InfertoolError(f"TensorRT could not deserialize {self.model}: {' | '.join(self.logger.messages[-2:])}", hint="rebuild the engine here")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise InfertoolError(f"TensorRT could not create an execution context for {self.model} (GPU memory?)", hint="free the GPU or use a smaller profile")
        self.stream = cuda.Stream()
        self._names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        for name in self._names:
            shape = tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(name))
            spec = TensorSpec(name, tensorrt_api.dtype_name(self.engine.get_tensor_dtype(name)), shape)
            (self.inputs if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(spec)

    def _allocate(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Set input shapes and (re)allocate device and pinned host buffers when they change."""
        from infertool import cuda

        if self._shapes == dict(shapes):
            return
        self._free()
        for spec in self.inputs:
            if not self.context.set_input_shape(spec.name, shapes[spec.name]):
                lo, opt, hi = self.engine.get_tensor_profile_shape(spec.name, 0)
                raise InfertoolError(
                    f"input '{spec.name}' shape {format_shape(shapes[spec.name])} is outside the engine's profile "
                    f"(min {format_shape(lo)}, opt {format_shape(opt)}, max {format_shape(hi)})",
                    hint="rebuild with --min-shapes/--opt-shapes/--max-shapes covering it",
                )
        for spec in [*self.inputs, *self.outputs]:
            shape = tuple(self.context.get_tensor_shape(spec.name))
            dtype = numpy_dtype(spec.dtype)
            self._host[spec.name] = cuda.PinnedArray(shape, dtype)
            self._nbytes[spec.name] = self._host[spec.name].array.nbytes
            self._device[spec.name] = cuda.DeviceBuffer(self._nbytes[spec.name])
            self.context.set_tensor_address(spec.name, self._device[spec.name].ptr)
        self._shapes = dict(shapes)

    def _copy_in(self, feeds: Mapping[str, np.ndarray]) -> None:
        for spec in self.inputs:
            np.copyto(self._host[spec.name].array, feeds[spec.name], casting="same_kind")

    def _h2d(self) -> None:
        from infertool import cuda

        for spec in self.inputs:
            cuda.copy_to_device(self._device[spec.name], self._host[spec.name], self._nbytes[spec.name], self.stream)

    def _d2h(self) -> None:
        from infertool import cuda

        for spec in self.outputs:
            cuda.copy_to_host(self._host[spec.name], self._device[spec.name], self._nbytes[spec.name], self.stream)

    def _execute(self) -> None:
        if self._graph is not None:
            self._graph.launch(self.stream)
        elif not self.context.execute_async_v3(self.stream.ptr):
            raise InfertoolError(f"TensorRT execution failed: {' | '.join(self.logger.messages[-2:])}")

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._allocate({n: tuple(a.shape) for n, a in feeds.items()})
        self._copy_in(feeds)
        self._h2d()
        self._execute()
        self._d2h()
        self.stream.synchronize()
        return {spec.name: self._host[spec.name].array.copy() for spec in self.outputs}

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        from infertool import cuda

        self._allocate({n: tuple(a.shape) for n, a in feeds.items()})
        self._copy_in(feeds)
        self._h2d()
        self.stream.synchronize()
        if self.cuda_graph and self._graph is None:
            self._execute()  # one plain run first: TensorRT finishes lazy set-up outside the capture
            self.stream.synchronize()
            self._graph = cuda.Graph(self.stream, self._execute)

    def run_bound(self) -> None:
        self._execute()
        self.stream.synchronize()

    def bound_outputs(self) -> dict[str, np.ndarray]:
        self._d2h()
        self.stream.synchronize()
        return {spec.name: self._host[spec.name].array.copy() for spec in self.outputs}

    def device_times(self, iterations: int) -> dict[str, list[int]]:
        from infertool import cuda

        events = [cuda.Event() for _ in range(4)]
        times: dict[str, list[int]] = {"h2d": [], "compute": [], "d2h": []}
        try:
            for _ in range(iterations):
                events[0].record(self.stream)
                self._h2d()
                events[1].record(self.stream)
                self._execute()
                events[2].record(self.stream)
                self._d2h()
                events[3].record(self.stream)
                for phase, (start, end) in zip(times, ((0, 1), (1, 2), (2, 3))):
                    times[phase].append(events[end].elapsed_ns_since(events[start]))
        finally:
            for event in events:
                event.close()
        return times

    def memory(self) -> dict:
        return {"engine_bytes": self.model.stat().st_size, "device_memory_bytes": int(self.engine.device_memory_size_v2)}

    def describe(self) -> dict:
        sidecar = self.sidecar or {}
        return {
            "tensorrt_version": tensorrt_api.version(), "tensorrt_module": tensorrt_api.module_path(), "engine": str(self.model), "precision": _engine_precision(self.sidecar),
            "plan": sidecar.get("plan"), "profiles": sidecar.get("profiles"), "device": self.device,
            "cuda_graph": self.cuda_graph, "warnings": self.warnings,
        }

    def _free(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
        for buffer in [*self._device.values(), *self._host.values()]:
            buffer.close()
        self._device, self._host, self._nbytes, self._shapes = {}, {}, {}, None

    def close(self) -> None:
        self._free()
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.context = self.engine = None
