"""ONNX Runtime backends: CPU, CUDA (IO binding, CUDA graphs, CUDA-event timing) and the TensorRT EP."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from infertool import dtypes
from infertool.backends import registry
from infertool.backends.base import Backend, Capabilities, OrtOptions, Runner, RunnerInfo, RunnerOptions
from infertool.deadline import Deadline
from infertool.errors import BackendFailure, InfertoolError, first_line
from infertool.files import staged_output
from infertool.optional import is_available, require
from infertool.tensors import TensorSpec
from infertool.text import shorten

OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OrtBackend(Backend):
    """An ONNX Runtime execution provider."""

    provider: ClassVar[str]
    cuda_graph_key: ClassVar[str | None] = None  # the provider option that turns CUDA graphs on
    user_stream: ClassVar[bool] = False  # runs on a stream infertool gives it, so CUDA events can time it

    def unavailable_reason(self) -> str | None:
        if not is_available("onnxruntime"):
            return "onnxruntime is not installed (pip install 'infertool[cpu]' or 'infertool[gpu]')"
        import onnxruntime

        if self.provider not in onnxruntime.get_available_providers():
            return f"this onnxruntime build has no {self.provider} (pip install 'infertool[gpu]': onnxruntime-gpu, instead of onnxruntime)"
        if not self.capabilities.on_gpu:
            return None
        from infertool.environment import gpus

        found, reason = gpus()
        return None if found else f"no CUDA GPU: {reason}"

    def provider_chain(self, options: RunnerOptions, stream: Any) -> list[tuple[str, dict]]:
        """(provider, options) pairs, preferred first; the CPU provider takes what the others cannot."""
        if not self.capabilities.on_gpu:
            return [(self.provider, dict(options.ort.provider_options))]
        provider_options = {"device_id": str(options.device), **options.ort.provider_options}
        if options.cuda_graph and self.cuda_graph_key:
            provider_options[self.cuda_graph_key] = "1"
        if stream is not None:
            provider_options["user_compute_stream"] = str(stream.ptr)
        return [(self.provider, provider_options), ("CPUExecutionProvider", {})]

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return OrtRunner(artifact, self, options)

    def save_optimized(self, model: Path, options: RunnerOptions, path: Path, force: bool) -> None:
        """Write the graph ONNX Runtime optimized for this provider (atomically)."""
        with staged_output(path, force) as staging:
            runner = OrtRunner(model, self, options)
            try:
                runner.prepare(optimized_path=staging / path.name)
            finally:
                runner.close()


class OrtCpu(OrtBackend):
    name = "ort-cpu"
    description = "ONNX Runtime, CPU execution provider"
    extra = "cpu"
    provider = "CPUExecutionProvider"
    capabilities = Capabilities(saves_optimized=True)


class OrtCuda(OrtBackend):
    name = "ort-cuda"
    description = "ONNX Runtime, CUDA execution provider"
    extra = "gpu"
    provider = "CUDAExecutionProvider"
    cuda_graph_key = "enable_cuda_graph"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, saves_optimized=True)
    user_stream = True


class OrtTensorrt(OrtBackend):
    name = "ort-trt"
    description = "ONNX Runtime, TensorRT execution provider"
    extra = "gpu,trt"
    provider = "TensorrtExecutionProvider"
    cuda_graph_key = "trt_cuda_graph_enable"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, saves_optimized=True)

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            import ctypes.util

            if not any(ctypes.util.find_library(name) for name in ("nvinfer", "nvinfer_10", "nvinfer_11")):
                return "TensorRT libraries (libnvinfer) are not on the library path: the TensorRT EP needs TensorRT itself (pip install 'infertool[gpu,trt]')"
        return reason

    def provider_chain(self, options: RunnerOptions, stream: Any) -> list[tuple[str, dict]]:
        chain = super().provider_chain(options, stream)
        return [chain[0], ("CUDAExecutionProvider", {"device_id": str(options.device)}), *chain[1:]]


for _backend in (OrtCpu(), OrtCuda(), OrtTensorrt()):
    registry.register(_backend)


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, dtypes.from_ort(node.type), shape)


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
    def __init__(self, model: Path, backend: OrtBackend, options: RunnerOptions):
        super().__init__(model)
        self.backend = backend
        self.options = options
        self.device = options.device
        self.device_resident = backend.capabilities.device_resident and options.io_binding
        self.cuda_graph = backend.capabilities.cuda_graphs and self.device_resident and options.cuda_graph
        self.session: Any = None
        self.stream: Any = None
        self._binding: Any = None
        self._bound_inputs: dict[str, Any] = {}
        self._bound_outputs_values: list[Any] = []
        self._names: list[str] = []
        self._run_options: Any = None
        self._deadline = Deadline(None, lambda: None)
        self._calls = 0

    @property
    def io_binding(self) -> Any:
        """The session's IO binding once inputs are bound on the device (for bare-loop comparisons)."""
        return self._binding

    def prepare(self, optimized_path: Path | None = None) -> None:
        ort = require("onnxruntime", "ONNX Runtime backends")
        if self.backend.user_stream and is_available("cuda"):
            from infertool import cuda

            cuda.set_device(self.device)
            self.stream = cuda.Stream()
        chain = self.backend.provider_chain(replace(self.options, cuda_graph=self.cuda_graph), self.stream)
        try:
            self.session = ort.InferenceSession(
                str(self.model), session_options(self.options.ort, optimized_path),
                providers=[p for p, _ in chain], provider_options=[o for _, o in chain],
            )
        except Exception as exc:
            raise _session_error(self.backend.name, self.model, exc) from exc
        active = self.session.get_providers()
        if self.backend.provider not in active:
            raise BackendFailure(
                f"{self.backend.name}: {self.backend.provider} did not load (active: {', '.join(active)})",
                hint="check the CUDA / cuDNN / TensorRT libraries that onnxruntime-gpu needs (infertool doctor)",
            )
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self._names = [o.name for o in self.outputs]
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4  # failures come back as exceptions, in infertool's words
        self._deadline = Deadline(self.options.timeout, functools.partial(setattr, self._run_options, "terminate", True))

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.cuda_graph:
            self.bind(feeds)  # a captured graph replays fixed device addresses: copy into them
            self.run_bound()
            return self.bound_outputs()
        return dict(zip(self._names, self._run(feeds)))

    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._calls += 1
        self._deadline.call = self._calls  # in flight: watched for --timeout
        try:
            return self.session.run(self._names, feeds, self._run_options)
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            self._deadline.call = 0

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        if not self.device_resident:
            self._bound = dict(feeds)
            return
        if self.cuda_graph and self._binding is not None:
            for name, value in self._bound_inputs.items():
                if tuple(value.shape()) != feeds[name].shape:
                    raise InfertoolError(
                        f"{self.backend.name}: a CUDA graph replays one input shape ({tuple(value.shape())}), not {feeds[name].shape}",
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
        probe = OrtRunner(self.model, self.backend, replace(self.options, cuda_graph=False))
        probe.prepare()
        try:
            return [a.shape for a in probe.infer(feeds).values()]
        finally:
            probe.close()

    def run_bound(self) -> None:
        if self._binding is None:
            self._bound_outputs = dict(zip(self._names, self._run(self._bound)))
            return
        self._calls += 1
        self._deadline.call = self._calls
        try:
            self.session.run_with_iobinding(self._binding, self._run_options)
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            self._deadline.call = 0

    def _failure(self, exc: Exception) -> InfertoolError:
        if not self._deadline.expired:
            return _runtime_error(self.backend.name, exc)
        _, where = _status(exc)
        return InfertoolError(
            f"{self.backend.name}: one inference ran past the --timeout of {self._deadline.seconds:g} s and was stopped{where}",
            hint="a Loop whose trip count and condition never end it runs forever: fix the model, or raise --timeout if it is just slow",
            detail=first_line(exc),
        )

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

    def info(self) -> RunnerInfo:
        return RunnerInfo(settings={
            "providers": self.session.get_providers() if self.session else [], "device": self.device,
            **self.options.ort.to_dict(), "io_binding": self.device_resident, "cuda_graph": self.cuda_graph,
        })

    def close(self) -> None:
        self._binding = None
        self._bound_inputs = {}
        self._bound_outputs_values = []
        self.session = None
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _numpy_type(dtype: str) -> Any:
    return dtypes.numpy_dtype(dtype).type


def _status(exc: Exception) -> tuple[str, str]:
    """ONNX Runtime's status name (INVALID_GRAPH...) and, where it names one, the failing node."""
    text = str(exc)
    status = re.search(r"\[ONNXRuntimeError\] : \d+ : (\w+)", text)
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    return (status.group(1) if status else ""), (f" in {node.group(1)} node '{shorten(node.group(2), 40)}'" if node else "")


def _session_error(backend: str, model: Path, exc: Exception) -> InfertoolError:
    status, _ = _status(exc)
    detail, name = first_line(exc), shorten(model)
    if status in ("INVALID_PROTOBUF", "NO_MODEL", "NO_SUCHFILE"):
        return InfertoolError(f"ONNX Runtime cannot read {name} as an ONNX model", hint="check the file; re-export it if it is corrupt", detail=detail)
    if status == "INVALID_GRAPH" or "Load model" in detail:
        return InfertoolError(f"ONNX Runtime rejects the graph of {name} as invalid", hint="check it with onnx.checker, then re-export the model", detail=detail)
    if status == "NOT_IMPLEMENTED":
        return BackendFailure(f"{backend}: ONNX Runtime has no kernel for an operator of {name}", hint="try another --backend, or re-export with other ops", detail=detail)
    return BackendFailure(f"{backend}: ONNX Runtime could not create a session for {name}", hint="rerun with --verbose for ONNX Runtime's message", detail=detail)


def _runtime_error(backend: str, exc: Exception) -> BackendFailure:
    text = first_line(exc)
    status, where = _status(exc)
    if "out of memory" in text.lower() or "Failed to allocate" in text or "bad_alloc" in text:
        return BackendFailure(f"{backend}: out of memory{where}", hint="use a smaller --batch or --input-shape", detail=text)
    if status == "INVALID_ARGUMENT":
        return BackendFailure(f"{backend}: the inputs do not fit the model{where}", hint="check --input-shape, --batch and the input dtypes (rerun with --verbose)", detail=text)
    return BackendFailure(f"{backend}: inference failed{where}", hint="rerun with --verbose for ONNX Runtime's message", detail=text)
