"""The TensorRT-RTX backend: the TensorRT backend with TensorRT-RTX's flavour. Engines are built ahead
of time (with or without a GPU) for compute-capability targets; kernels are compiled just in time
when the execution context is created, through a runtime configuration that also holds the runtime
cache and TensorRT-RTX's own CUDA-graph capture. It runs on RTX / Ampere and later GPUs, not Hopper.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from infertool import cuda
from infertool.backends import registry
from infertool.backends.base import Capabilities, Runner, RunnerInfo, RunnerOptions
from infertool.backends.tensorrt import EngineOptions, TensorrtBackend, TrtRunner
from infertool.engine.tensorrt_api import TENSORRT_RTX, Flavour
from infertool.errors import BackendFailure, InfertoolError
from infertool.files import write_bytes_atomic
from infertool.vocabulary import ENGINE_GRAPHS


class TensorrtRtxBackend(TensorrtBackend):
    name = "trt-rtx"
    description = ("TensorRT-RTX engine (built ahead of time, also without a GPU, and cached; or given with --engine); "
                   "runs on RTX / Ampere and later GPUs, not Hopper; engines built in this project's CI, never run there")
    extra = "trt-rtx"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, builds_engines=True, runs_engines=True, debug_tensors=True,
                                precision_graphs=ENGINE_GRAPHS)
    flavour: Flavour = TENSORRT_RTX

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        try:
            self.flavour.load()
        except InfertoolError:
            return reason
        return reason and f"{reason}; engines can still be built here (build-engine --backend trt-rtx needs no GPU)"

    def gpu_reason(self) -> str | None:
        count = cuda.device_count()
        if count == 0:
            return "no CUDA GPU"
        gpus = [cuda.device_properties(index) for index in range(count)]
        if any(self.flavour.runs(gpu["compute_capability"]) for gpu in gpus):
            return None
        return self.flavour.unsupported_gpu(gpus[0]["name"], gpus[0]["compute_capability"])

    def targets(self, device: int) -> tuple[str, ...]:
        """Engines built for bench/run target the GPU they run on (else TensorRT-RTX's defaults)."""
        capability = cuda.gpu_identity(device)["compute_capability"]
        return (capability,) if capability in self.flavour.targets else ()

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return RtxRunner(artifact, options.device, options.cuda_graph, options.group(EngineOptions).runtime_cache)


registry.register(TensorrtRtxBackend())


class RtxRunner(TrtRunner):
    """TrtRunner with a runtime configuration: the runtime cache (loaded, and saved on close), CUDA
    graphs captured by TensorRT-RTX itself, shape-specialized kernels compiled eagerly (on the first
    inference at a shape, so later runs are steady), and the just-in-time compilation timed."""

    flavour: Flavour = TENSORRT_RTX
    captures_graphs = False  # TensorRT-RTX captures and replays the graph itself (cuda_graph_strategy)

    def __init__(self, engine: Path, device: int = 0, cuda_graph: bool = False, runtime_cache: Path | None = None):
        super().__init__(engine, device, cuda_graph)
        self.runtime_cache_path = runtime_cache
        self.runtime_config: Any = None
        self.runtime_cache: Any = None  # must outlive the context: the bindings keep no reference to it
        self.cache_loaded = False
        self.jit_seconds: float | None = None

    def _create_context(self) -> Any:
        trt = self.flavour.load()
        runtime_config = self.engine.create_runtime_config()
        runtime_config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE if self.cuda_graph else trt.CudaGraphStrategy.DISABLED
        runtime_config.dynamic_shapes_kernel_specialization_strategy = trt.DynamicShapesKernelSpecializationStrategy.EAGER
        if self.runtime_cache_path is not None:
            self.runtime_cache = runtime_config.create_runtime_cache()
            if self.runtime_cache_path.is_file():
                self.cache_loaded = bool(self.runtime_cache.deserialize(self.runtime_cache_path.read_bytes()))
                if not self.cache_loaded:
                    self.warnings.append(f"runtime cache {self.runtime_cache_path} was made for another GPU, driver or TensorRT-RTX version: not used, rewritten")
            if not runtime_config.set_runtime_cache(self.runtime_cache):
                raise BackendFailure(f"TensorRT-RTX refused the runtime cache {self.runtime_cache_path}")
        self.runtime_config = runtime_config
        started = time.perf_counter()
        context = self.engine.create_execution_context(runtime_config)  # kernels are compiled here, for this GPU
        self.jit_seconds = time.perf_counter() - started
        return context

    def info(self) -> RunnerInfo:
        info = super().info()
        settings = {
            **info.settings, "cuda_graph_strategy": "WHOLE_GRAPH_CAPTURE" if self.cuda_graph else "DISABLED",
            "dynamic_shapes_kernel_specialization": "EAGER", "compute_capabilities": (self.sidecar or {}).get("compute_capabilities"),
            "runtime_cache": str(self.runtime_cache_path) if self.runtime_cache_path else None, "runtime_cache_loaded": self.cache_loaded,
            "jit_context_ms": None if self.jit_seconds is None else round(self.jit_seconds * 1e3, 3),
        }
        return RunnerInfo(info.precision, settings, info.warnings)

    def close(self) -> None:
        if self.runtime_cache is not None and self.context is not None:
            write_bytes_atomic(self.runtime_cache_path, bytes(self.runtime_cache.serialize()), force=True)
        super().close()
        self.runtime_cache = self.runtime_config = None
