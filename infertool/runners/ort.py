"""ONNX Runtime runners: CPU, CUDA (IO binding, CUDA graphs, CUDA-event timing) and the TensorRT EP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from infertool.errors import InfertoolError, first_line
from infertool.files import staged_output
from infertool.lazy import is_available, require
from infertool.runners.base import Runner
from infertool.specs import ORT_DTYPES, TensorSpec

PROVIDERS = {"ort-cpu": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


@dataclass(frozen=True)
class OrtOptions:
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    graph_optimization: str = "all"
    provider_options: Mapping[str, str] = field(default_factory=dict)
    io_binding: bool = True
    cuda_graph: bool = False

    def to_dict(self) -> dict:
        return {
            "intra_op_threads": self.intra_op_threads, "inter_op_threads": self.inter_op_threads,
            "graph_optimization": self.graph_optimization, "provider_options": dict(self.provider_options),
            "io_binding": self.io_binding, "cuda_graph": self.cuda_graph,
        }


def parse_provider_options(texts: list[str]) -> dict[str, str]:
    options = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InfertoolError(f"malformed --ort-option '{text}'", hint="write key=value, e.g. prefer_nhwc=1")
        options[key.strip()] = value.strip()
    return options


def unavailable_reason(backend: str) -> str | None:
    """Why this ORT backend cannot run here, or None."""
    if not is_available("onnxruntime"):
        return "onnxruntime is not installed (pip install 'infertool[cpu]' or 'infertool[gpu]')"
    import onnxruntime

    provider = PROVIDERS[backend]
    if provider not in onnxruntime.get_available_providers():
        extra = "pip install 'infertool[gpu]' (onnxruntime-gpu, instead of onnxruntime)"
        return f"this onnxruntime build has no {provider} ({extra})"
    if backend == "ort-cpu":
        return None
    from infertool.environment import gpus

    found, reason = gpus()
    if not found:
        return f"no CUDA GPU: {reason}"
    if backend == "ort-trt":
        import ctypes.util

        if not any(ctypes.util.find_library(name) for name in ("nvinfer", "nvinfer_10", "nvinfer_11")):
            return "TensorRT libraries (libnvinfer) are not on the library path (pip install 'infertool[trt]')"
    return None


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, ORT_DTYPES.get(node.type, node.type), shape)


def session_options(options: OrtOptions, optimized_path: Path | None = None) -> Any:
    ort = require("onnxruntime", "ONNX Runtime backends")
    ort.set_default_logger_severity(3)  # errors only: keep its warnings out of our output
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[options.graph_optimization])
    if options.intra_op_threads is not None:
        so.intra_op_num_threads = options.intra_op_threads
    if options.inter_op_threads is not None:
        so.inter_op_num_threads = options.inter_op_threads
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return so


class OrtRunner(Runner):
    def __init__(self, model: Path, backend: str, options: OrtOptions, device: int = 0):
        super().__init__(model)
        self.name = backend
        self.options = options
        self.device = device
        self.provider = PROVIDERS[backend]
        self.on_gpu = backend != "ort-cpu"
        self.device_resident = self.on_gpu and options.io_binding
        self.cuda_graph = self.on_gpu and options.cuda_graph  # a CPU backend in the same run ignores it
        self.session: Any = None
        self.stream: Any = None
        self._binding: Any = None
        self._bound_inputs: dict[str, Any] = {}
        self._bound_outputs_values: list[Any] = []

    def _providers(self) -> list:
        if not self.on_gpu:
            return [(self.provider, dict(self.options.provider_options))]
        provider_options = {"device_id": str(self.device), **self.options.provider_options}
        if self.cuda_graph:
            key = "trt_cuda_graph_enable" if self.name == "ort-trt" else "enable_cuda_graph"
            provider_options[key] = "1"
        if is_available("cuda") and self.name == "ort-cuda":
            from infertool import cuda

            cuda.set_device(self.device)
            self.stream = cuda.Stream()  # ORT runs on it, so CUDA events can time its work
            provider_options["user_compute_stream"] = str(self.stream.ptr)
        providers = [(self.provider, provider_options)]
        if self.name == "ort-trt":
            providers.append(("CUDAExecutionProvider", {"device_id": str(self.device)}))
        return [*providers, ("CPUExecutionProvider", {})]

    def prepare(self, optimized_path: Path | None = None) -> None:
        ort = require("onnxruntime", "ONNX Runtime backends")
        providers = self._providers()
        try:
            self.session = ort.InferenceSession(
                str(self.model), session_options(self.options, optimized_path),
                providers=[p for p, _ in providers], provider_options=[o for _, o in providers],
            )
        except Exception as exc:
            text = first_line(exc)
            if "Invalid" in text or "Protobuf" in text or "parsing" in text.lower() or "Load model" in text:
                raise InfertoolError(f"ONNX Runtime cannot load {self.model}: {text}", hint="check the file; re-export it if it is corrupt") from exc
            raise InfertoolError(f"{self.name}: creating the session failed: {text}") from exc
        active = self.session.get_providers()
        if self.provider not in active:
            raise InfertoolError(
                f"{self.name}: {self.provider} did not load (active: {', '.join(active)})",
                hint="check the CUDA / cuDNN / TensorRT libraries that onnxruntime-gpu needs (infertool doctor)",
            )
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self._names = [o.name for o in self.outputs]

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.cuda_graph:
            self.bind(feeds)  # a captured graph replays fixed device addresses: copy into them
            self.run_bound()
            return self.bound_outputs()
        return dict(zip(self._names, self._run(feeds)))

    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self._names, feeds)
        except Exception as exc:
            raise _runtime_error(self.name, exc) from exc

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        if not self.device_resident:
            self._bound = dict(feeds)
            return
        if self.cuda_graph and self._binding is not None:
            for name, value in self._bound_inputs.items():
                if tuple(value.shape()) != feeds[name].shape:
                    raise InfertoolError(
                        f"{self.name}: a CUDA graph replays one input shape ({tuple(value.shape())}), not {feeds[name].shape}",
                        hint="open one session per shape (bench does, per row)",
                    )
                value.update_inplace(np.ascontiguousarray(feeds[name]))
            return
        ort = require("onnxruntime")
        device = self.device
        binding = self.session.io_binding()
        self._bound_inputs = {n: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), "cuda", device) for n, a in feeds.items()}
        for name, value in self._bound_inputs.items():
            binding.bind_ortvalue_input(name, value)
        if self.cuda_graph:
            # output buffers must keep their addresses too, so they are allocated here, before the
            # first run captures the graph (a plain run would capture ORT's own buffers instead)
            shapes = self._output_shapes(feeds)
            self._bound_outputs_values = [
                ort.OrtValue.ortvalue_from_shape_and_type(shape, _numpy_type(spec.dtype), "cuda", device)
                for shape, spec in zip(shapes, self.outputs)
            ]
            for name, value in zip(self._names, self._bound_outputs_values):
                binding.bind_ortvalue_output(name, value)
        else:
            for name in self._names:
                binding.bind_output(name, "cuda", device)
        self._binding = binding

    def _output_shapes(self, feeds: Mapping[str, np.ndarray]) -> list[tuple[int, ...]]:
        """Output shapes from the model's symbolic dims; else from a throwaway session without a graph."""
        sizes: dict[str, int] = {}
        for spec in self.inputs:
            for want, got in zip(spec.shape, feeds[spec.name].shape):
                if isinstance(want, str):
                    sizes[want] = got
        shapes = [tuple(d if isinstance(d, int) else sizes.get(d, -1) for d in spec.shape) for spec in self.outputs]
        if all(d >= 0 for shape in shapes for d in shape):
            return shapes
        probe = OrtRunner(self.model, self.name, replace(self.options, cuda_graph=False), self.device)
        probe.prepare()
        try:
            return [a.shape for a in probe._run(feeds)]
        finally:
            probe.close()

    def run_bound(self) -> None:
        if self._binding is None:
            self._bound_outputs = dict(zip(self._names, self._run(self._bound)))
            return
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise _runtime_error(self.name, exc) from exc

    def bound_outputs(self) -> dict[str, np.ndarray]:
        if self._binding is None:
            return self._bound_outputs
        values = self._bound_outputs_values or self._binding.get_outputs()
        return {name: value.numpy() for name, value in zip(self._names, values)}

    def device_times(self, iterations: int) -> dict[str, list[int]]:
        if self.stream is None or self._binding is None:
            return {}
        from infertool import cuda

        start, end = cuda.Event(), cuda.Event()
        times = []
        try:
            for _ in range(iterations):
                start.record(self.stream)
                self.session.run_with_iobinding(self._binding)
                end.record(self.stream)
                times.append(end.elapsed_ns_since(start))
        finally:
            start.close()
            end.close()
        return {"compute": times}

    def describe(self) -> dict:
        return {"providers": self.session.get_providers() if self.session else [], "device": self.device, **self.options.to_dict()}

    def close(self) -> None:
        self._binding = None
        self._bound_inputs = {}
        self._bound_outputs_values = []
        self.session = None
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _numpy_type(dtype: str) -> Any:
    from infertool.specs import numpy_dtype

    return numpy_dtype(dtype).type


def _runtime_error(backend: str, exc: Exception) -> InfertoolError:
    text = first_line(exc)
    if "out of memory" in text.lower() or "Failed to allocate" in text:
        return InfertoolError(f"{backend}: GPU out of memory: {text}", hint="use a smaller --batch")
    return InfertoolError(f"{backend}: inference failed: {text}")


def save_optimized_model(model: Path, backend: str, options: OrtOptions, device: int, path: Path, force: bool) -> None:
    """Write the graph ONNX Runtime optimized for this backend (atomically)."""
    with staged_output(path, force) as staging:
        runner = OrtRunner(model, backend, options, device)
        try:
            runner.prepare(optimized_path=staging / path.name)
        finally:
            runner.close()
