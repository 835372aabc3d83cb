"""The TensorRT backend: engines built (and cached) from the ONNX, run from device buffers and a
stream through cuda-python. Its flavour (TensorRT here) is a class attribute: the TensorRT-RTX
backend (tensorrt_rtx.py) is this one with another flavour and a runtime configuration.

Timing follows trtexec: host-to-device copies, device compute and device-to-host copies are
timed apart with CUDA events; `run_bound` times the engine on device-resident buffers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from infertool import cuda
from infertool.backends import registry
from infertool.backends.base import Backend, Capabilities, Choice, Dimension, Runner, RunnerInfo, RunnerOptions, option
from infertool.dtypes import numpy_dtype
from infertool.engine import sidecar as sidecars
from infertool.engine import tensorrt_api
from infertool.engine.profiles import ShapeProfile
from infertool.engine.tensorrt_api import TENSORRT, Flavour
from infertool.errors import BackendFailure, InfertoolError
from infertool.optional import install_hint, is_available
from infertool.tensors import TensorSpec, format_shape
from infertool.vocabulary import BUILD_PRECISIONS, ENGINE_GRAPHS, LOWEST_FIRST

if TYPE_CHECKING:
    import numpy as np

    from infertool.engine.build import BuildOptions, StageReview
    from infertool.onnx_io import ModelInfo
    from infertool.records.build import BuildResult
    from infertool.reporting import Reporter

DEFAULT_OPT_LEVEL = 3  # TensorRT's builder optimization level when none is set
TUNED_OPT_LEVELS = (1, 3, 4, 5)


@dataclass(frozen=True)
class EngineOptions:
    """The TensorRT backends' own options (trt, trt-rtx): how the engine is got, built from the ONNX (and cached) or given."""

    key: ClassVar[str] = "engine"
    title: ClassVar[str] = "trt / trt-rtx backends (trt: not yet run on real TensorRT, tested with a fake; trt-rtx: engines built for real, not run here)"

    precision: str | None = option(  # None: what the ONNX graph carries
        "--precision", "Engine precision [default: what the ONNX graph carries, so every runtime runs the same graph].", short="-p",
        metavar="fp32|fp16|bf16|best", choices=BUILD_PRECISIONS,
    )
    workspace: int | None = option("--workspace", "Workspace limit, MiB (4096) or 512M / 4G.", metavar="SIZE", text="size")
    opt_level: int | None = option("--opt-level", "Builder optimization level.", low=0, high=5)
    timing_cache: Path | None = option("--timing-cache", "Timing cache to load and save.", file="out")
    engine: Path | None = option("--engine", "Run this prebuilt engine instead of building one.", file="in")
    cache_dir: Path | None = option("--engine-cache", "Folder of cached engines [default: ~/.cache/infertool/engines].")
    runtime_cache: Path | None = option(  # TensorRT-RTX: kernels compiled just in time, loaded and saved
        "--runtime-cache", "trt-rtx: cache of kernels compiled just in time, loaded if it exists and saved.", commands=("bench", "run"), file="out",
        readers=("trt-rtx",),
    )
    debug_tensors: tuple[str, ...] = ()  # network tensors to read back at run time (debug layers)
    keep_fusions: bool = True  # debug tensors: where TensorRT can, mark unfused tensors rather than each one

    def to_dict(self) -> dict:
        return {
            "precision": self.precision, "workspace_bytes": self.workspace, "builder_optimization_level": self.opt_level,
            "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "engine": str(self.engine) if self.engine else None, "runtime_cache": str(self.runtime_cache) if self.runtime_cache else None,
            "debug_tensors": len(self.debug_tensors),
        }


class TensorrtBackend(Backend):
    name = "trt"
    description = "TensorRT engine (built from the ONNX and cached, or given with --engine); never run on real TensorRT in this project's CI"
    extra = "trt"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, builds_engines=True, runs_engines=True, debug_tensors=True, profiles=True,
                                precision_graphs=ENGINE_GRAPHS)
    gate_settings = ("plan", "profiles", "cuda_graph")
    option_group = EngineOptions
    flavour: Flavour = TENSORRT

    def unavailable_reason(self) -> str | None:
        flavour = self.flavour
        if not is_available(flavour.module):
            return f"{flavour.name} is not installed ({install_hint(flavour.module)}); it runs on NVIDIA GPUs only"
        try:
            flavour.load()
        except InfertoolError as exc:
            return exc.message
        if not is_available("cuda"):
            return f"cuda-python is not installed ({install_hint('cuda')})"
        return self.gpu_reason()

    def gpu_reason(self) -> str | None:
        """Why the GPUs here cannot run this flavour's engines, or None."""
        return None if cuda.device_count() > 0 else "no CUDA GPU"

    def check_builder(self) -> None:
        self.flavour.load()

    def build_engine(self, model: ModelInfo, output: Path, options: BuildOptions, reporter: Reporter, review: StageReview | None = None) -> BuildResult:
        from infertool.engine.build import build_engine

        return build_engine(model, output, replace(options, flavour=self.flavour), reporter, review)

    def claims(self, path: Path) -> bool:
        sidecar = sidecars.read(path) if path.is_file() else None
        return sidecar is not None and sidecar.get("flavour", TENSORRT.name) == self.flavour.name

    def targets(self, device: int) -> tuple[str, ...]:
        """The compute capabilities an engine built here for `bench`/`run` targets (none: the GPU it is built on)."""
        return ()

    def prepare(self, model: ModelInfo, options: RunnerOptions, shapes: Mapping[str, tuple[int, ...]], reporter: Reporter) -> Path:
        """The given engine, else the cached engine for these shapes (min = opt = max, as trtexec's
        --shapes), built here when missing."""
        from infertool.engine.build import BuildOptions
        from infertool.engine.cache import engine_for

        given = options.group(EngineOptions)
        if given.engine is not None:
            return given.engine
        profile = ShapeProfile({n: (s, s, s) for n, s in shapes.items() if n in model.dynamic_inputs})
        build = BuildOptions(
            precision=given.precision or model.precision, profiles=(profile,), workspace=given.workspace,
            opt_level=given.opt_level, timing_cache=given.timing_cache, device=options.device,
            flavour=self.flavour, compute_capabilities=self.targets(options.device),
            debug_tensors=given.debug_tensors, keep_fusions=given.keep_fusions,
        )
        return engine_for(model, build, given.cache_dir, reporter)

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return TrtRunner(artifact, options.device, options.cuda_graph, options.profile)

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        graph = lambda on: Choice("CUDA graph" if on else "no CUDA graph", lambda o: replace(o, cuda_graph=on), {"cuda_graph": on})  # noqa: E731
        dimensions = [Dimension("CUDA graph", (graph(True), graph(False)))]
        if options.group(EngineOptions).engine is None:  # each level builds (and caches) an engine of its own
            level = lambda n: Choice(  # noqa: E731
                f"builder optimization level {n}", lambda o: o.changed(EngineOptions, opt_level=n), {"builder_optimization_level": n},
            )
            dimensions.append(Dimension("builder optimization level", tuple(level(n) for n in TUNED_OPT_LEVELS)))
        return tuple(dimensions)


registry.register(TensorrtBackend())


def _engine_precision(sidecar: dict | None) -> str | None:
    if sidecar is None:
        return None
    if sidecar["precision"] != "best":
        return sidecar["precision"]
    found = sidecar.get("layer_precisions") or {}
    return next((p for p in LOWEST_FIRST if found.get(p)), "fp16")


class TrtRunner(Runner):
    device_resident = True
    flavour: Flavour = TENSORRT
    captures_graphs = True  # --cuda-graph: capture and replay the engine's launch here

    def __init__(self, engine: Path, device: int = 0, cuda_graph: bool = False, profile: bool = False):
        super().__init__(engine)
        self.device = device
        self.cuda_graph = cuda_graph
        self.profiling = profile
        self._layer_times: list[tuple[str, float]] = []
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
        self.logger: Any = None
        self.runtime: Any = None
        self._capture: Any = None  # the debug listener, for engines built with debug tensors

    def _check(self) -> None:
        """Refuse, before deserializing, an engine of another flavour, version or GPU."""
        if not self.model.is_file():
            raise InfertoolError(f"engine {self.model} not found", hint="build one with infertool build-engine")
        self.sidecar = sidecars.read(self.model)
        if self.sidecar is None:
            sidecars.check_unlabelled(self.model, self.flavour)
            self.warnings.append(f"{self.model.name} has no infertool sidecar: {self.flavour.name} version and GPU were not checked")
        else:
            self.warnings += sidecars.check_compatible(self.model, self.sidecar, self.flavour.version(), cuda.gpu_identity(self.device), self.flavour)

    def _create_context(self) -> Any:
        return self.engine.create_execution_context()

    def prepare(self) -> None:
        trt = self.flavour.load()
        self._check()
        library = self.flavour.name
        self.logger = tensorrt_api.make_logger(self.flavour, False, lambda message: None)
        self.runtime = trt.Runtime(self.logger)
        if self.sidecar and self.sidecar.get("version_compatible"):
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(self.model.read_bytes())
        if self.engine is None:
            raise InfertoolError(f"{library} could not deserialize {self.model}: {' | '.join(self.logger.errors()[-2:] or self.logger.messages[-2:])}", hint="rebuild the engine here")
        self.context = self._create_context()
        if self.context is None:
            raise InfertoolError(f"{library} could not create an execution context for {self.model}: {' | '.join(self.logger.errors()[-2:]) or 'GPU memory?'}", hint="free the GPU or use a smaller profile")
        self.stream = cuda.Stream()
        marked = (self.sidecar or {}).get("debug_tensors")
        if marked:
            from infertool.engine import debug_tensors as debug

            self._capture = debug.listener(trt)
            debug.enable(self.context, debug.Marked.from_dict(marked), self._capture)
        if self.profiling:
            self.cuda_graph = False  # a replayed graph reports no layers
            self.context.profiler = tensorrt_api.profiler(self.flavour, lambda name, ms: self._layer_times.append((name, ms)))
        for name in (self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)):
            shape = tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(name))
            spec = TensorSpec(name, tensorrt_api.dtype_name(self.engine.get_tensor_dtype(name)), shape)
            (self.inputs if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(spec)

    def _allocate(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Set input shapes and (re)allocate device and pinned host buffers when they change."""
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
        import numpy as np

        for spec in self.inputs:
            np.copyto(self._host[spec.name].array, feeds[spec.name], casting="same_kind")

    def _h2d(self) -> None:
        for spec in self.inputs:
            cuda.copy_to_device(self._device[spec.name], self._host[spec.name], self._nbytes[spec.name], self.stream)

    def _d2h(self) -> None:
        for spec in self.outputs:
            cuda.copy_to_host(self._host[spec.name], self._device[spec.name], self._nbytes[spec.name], self.stream)

    def _execute(self) -> None:
        if self._graph is not None:
            self._graph.launch(self.stream)
        elif not self.context.execute_async_v3(self.stream.ptr):
            raise BackendFailure(f"{self.flavour.name} execution failed", hint="check the inputs against the engine's profiles; --verbose shows its log",
                                 detail=" | ".join(self.logger.errors()[-2:] or self.logger.messages[-2:]))

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._capture is not None:
            self._capture.tensors.clear()
        self._allocate({n: tuple(a.shape) for n, a in feeds.items()})
        self._copy_in(feeds)
        self._h2d()
        self._execute()
        self._d2h()
        self.stream.synchronize()
        return {spec.name: self._host[spec.name].array.copy() for spec in self.outputs}

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        self._allocate({n: tuple(a.shape) for n, a in feeds.items()})
        self._copy_in(feeds)
        self._h2d()
        self.stream.synchronize()
        if self.cuda_graph and self.captures_graphs and self._graph is None:
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

    def intermediates(self) -> dict[str, np.ndarray]:
        return dict(self._capture.tensors) if self._capture is not None else {}

    def memory(self) -> dict:
        return {"engine_bytes": self.model.stat().st_size, "device_memory_bytes": int(self.engine.device_memory_size_v2)}

    def profile(self) -> tuple[str, list[tuple[str, str, float]]]:
        types = tensorrt_api.layer_types(self.flavour, self.engine) if self._layer_times else {}
        return "device", [(name, types.get(name, "?"), ms) for name, ms in self._layer_times]

    def info(self) -> RunnerInfo:
        sidecar = self.sidecar or {}
        precision = _engine_precision(self.sidecar)
        level = sidecar.get("options", {}).get("builder_optimization_level") if self.sidecar else None
        return RunnerInfo(precision, {
            "flavour": self.flavour.name, "tensorrt_version": self.flavour.version(), "tensorrt_module": self.flavour.module_path(), "engine": str(self.model),
            "precision": precision, "plan": sidecar.get("plan"), "profiles": sidecar.get("profiles"), "device": self.device,
            "cuda_graph": self.cuda_graph,
            # recorded in the sidecar by the build that made the engine; TensorRT's default where none was set
            "builder_optimization_level": (DEFAULT_OPT_LEVEL if level is None else level) if self.sidecar else None,
            "tf32": precision == "fp32",  # BuilderFlag.TF32 is on by default and infertool leaves it on
        }, tuple(self.warnings))

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
