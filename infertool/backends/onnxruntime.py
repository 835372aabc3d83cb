"""ONNX Runtime backends: CPU, CUDA (IO binding, CUDA graphs, CUDA-event timing) and the TensorRT EP."""

from __future__ import annotations

import ctypes
import functools
import itertools
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from infertool import dtypes
from infertool.backends import registry
from infertool.backends.base import Backend, Capabilities, Choice, Dimension, GraphStep, Runner, RunnerInfo, RunnerOptions, option
from infertool.deadline import Deadline, expired, node_named
from infertool.errors import BackendFailure, InferenceFailed, InfertoolError, first_line
from infertool.files import staged_output
from infertool.optional import is_available, require
from infertool.quiet import ort_log_severity
from infertool.tensors import TensorSpec
from infertool.text import shorten
from infertool.vocabulary import ENGINE_GRAPHS, GPU_GRAPHS, INT8_DYNAMIC, INT8_ORT, TUNE_GRAPHS

if TYPE_CHECKING:
    import numpy as np

    from infertool.onnx_io import ModelInfo

# ONNX Runtime GPU sessions this process has created: ORT's CUDA EP runs every session after the first slower
LATER_SESSION = (
    "not this process's first ONNX Runtime GPU session: on an H100 ORT 1.31 ran later sessions 0.045 ms per inference slower "
    "(ResNet-50 fp16 batch 1, CUDA graph: 0.38 -> 0.43 ms); compare launch-bound rows one per process (infertool sweep runs cells so)"
)
_gpu_sessions = itertools.count()

OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
MAX_THREADS = 1024
# the CUDA EP's provider options `bench --tune` searches, values in the order tried
CUDA_TUNING = (
    ("prefer_nhwc", ("1", "0")),
    ("cudnn_conv_algo_search", ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")),
    ("cudnn_conv_use_max_workspace", ("1", "0")),
)


def _with_provider_option(key: str, value: str) -> Choice:
    def apply(options: RunnerOptions) -> RunnerOptions:
        return options.changed(OrtOptions, provider_options={**options.group(OrtOptions).provider_options, key: value})

    return Choice(f"{key}={value}", apply, {f"provider_options.{key}": value})


def _with_ort(label: str, expect: dict, **changes: object) -> Choice:
    return Choice(label, lambda options: options.changed(OrtOptions, **changes), expect)


def _graph_optimization() -> Dimension:
    return Dimension("graph optimization", tuple(
        _with_ort(f"graph-opt {level}", {"session_options.graph_optimization_level": name}, graph_optimization=level)
        for level, name in OPTIMIZATION_LEVELS.items()
    ))


FUSION_TYPES = ("bert", "bart", "clip", "conformer", "gpt2", "gpt_neox", "phi", "swin", "t5", "tnlr", "unet", "vae", "vit")  # onnxruntime.transformers'


@dataclass(frozen=True)
class OrtOptions:
    """The ONNX Runtime backends' own options: session settings and bench --model-type (ort-cpu, ort-cuda, ort-trt, ort-trt-rtx)."""

    key: ClassVar[str] = "ort"
    title: ClassVar[str] = "ONNX Runtime backends"

    intra_op_threads: int | None = option("--threads", "ORT intra-op threads [default: ORT's choice].", low=0, high=MAX_THREADS)
    inter_op_threads: int | None = option("--inter-op-threads", "ORT inter-op threads (sets parallel execution).", low=0, high=MAX_THREADS)
    graph_optimization: str = option("--graph-opt", "ORT graph optimization level.", "all", metavar="all|extended|basic|disable", choices=tuple(OPTIMIZATION_LEVELS))
    provider_options: Mapping[str, str] = option(
        "--ort-option", "Execution provider option, e.g. prefer_nhwc=1 (repeatable).", metavar="KEY=VALUE", text="pairs", default_factory=dict,
    )
    execution_mode: str | None = option(  # None: parallel where inter-op threads are given
        "--execution-mode", "ORT execution mode [default: parallel with --inter-op-threads, else sequential].", metavar="sequential|parallel",
        choices=tuple(EXECUTION_MODES),
    )
    model_type: str | None = option(
        "--model-type", "bench --tune: the transformer type whose ONNX Runtime graph fusions (onnxruntime.transformers.optimizer) it tries "
        "[default: read off the graph: bert for attention (MatMul, Softmax, MatMul) with layer norms].", choices=FUSION_TYPES,
    )

    def session(self) -> dict:
        """The session settings, as a runner's settings in effect show them."""
        return {
            "intra_op_threads": self.intra_op_threads, "inter_op_threads": self.inter_op_threads,
            "graph_optimization": self.graph_optimization, "provider_options": dict(self.provider_options),
            "execution_mode": self.execution_mode,
        }

    def to_dict(self) -> dict:
        return {**self.session(), "model_type": self.model_type}


def transformer_type(model: ModelInfo) -> str | None:
    """The onnxruntime.transformers model type whose fusions fit this graph: 'bert' for an encoder's
    attention (MatMul into Softmax into MatMul) with layer norms, else None."""
    from infertool import onnx_io

    ops = {node.op_type for node in onnx_io.load(model.path, load_external_data=False).graph.node}
    attention = {"MatMul", "Softmax"} <= ops
    norms = "LayerNormalization" in ops or {"ReduceMean", "Sqrt", "Div"} <= ops
    return "bert" if attention and norms else None


def _fuse(model: Path, output: Path, kind: str, use_gpu: bool) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        optimize_model(str(model), kind, use_gpu=use_gpu).save_model_to_file(str(output))
    except Exception as exc:  # the optimizer's own failure on this graph: this choice fails, the search goes on
        raise BackendFailure(f"ONNX Runtime's {kind} transformer fusions failed on {model.name}: {first_line(exc)}") from exc


def _fusions(model: ModelInfo, options: RunnerOptions, on_gpu: bool) -> tuple[Dimension, ...]:
    """ONNX Runtime's transformer graph fusions (attention, skip layer norm, bias GELU) for a transformer graph."""
    kind = options.group(OrtOptions).model_type or transformer_type(model)
    if kind is None:
        return ()
    command = ("python", "-m", "onnxruntime.transformers.optimizer", "--input", "{model}", "--output", "{output}", "--model_type", kind,
               *(("--use_gpu",) if on_gpu else ()))
    step = GraphStep(f"{kind}-fused", functools.partial(_fuse, kind=kind, use_gpu=on_gpu), command)
    return (Dimension("transformer fusions", (Choice(f"{kind} transformer fusions", graph=step.name, step=step),)),)


class OrtBackend(Backend):
    """An ONNX Runtime execution provider."""

    provider: ClassVar[str]
    install: ClassVar[str] = "pip install 'infertool[gpu]': onnxruntime-gpu, instead of onnxruntime; NVIDIA GPUs only"
    crash_advice: ClassVar[str] = (
        "ONNX Runtime crashed on this model, not infertool: its graph optimizations crash on some graphs, "
        "so try --graph-opt extended (or basic), or another backend (-b)"
    )
    cuda_graph_key: ClassVar[str | None] = None  # the provider option that turns CUDA graphs on
    user_stream: ClassVar[bool] = False  # runs on a stream infertool gives it, so CUDA events can time it
    option_group = OrtOptions
    gate_settings = ("providers", "intra_op_threads", "inter_op_threads", "execution_mode", "graph_optimization", "provider_options", "io_binding", "cuda_graph")

    def unavailable_reason(self) -> str | None:
        if not is_available("onnxruntime"):
            return "onnxruntime is not installed (pip install 'infertool[cpu]' or 'infertool[gpu]')"
        import onnxruntime

        if self.provider not in onnxruntime.get_available_providers():
            return f"this onnxruntime build has no {self.provider} ({self.install})"
        if not self.capabilities.on_gpu:
            return None
        from infertool.environment import gpus

        found, reason = gpus()
        return None if found else f"no CUDA GPU: {reason}"

    def provider_chain(self, options: RunnerOptions, stream: Any) -> list[tuple[str, dict]]:
        """(provider, options) pairs, preferred first; the CPU provider takes what the others cannot."""
        if not self.capabilities.on_gpu:
            return [(self.provider, dict(options.group(OrtOptions).provider_options))]
        provider_options = {"device_id": str(options.device), **options.group(OrtOptions).provider_options}
        if options.cuda_graph and self.cuda_graph_key:
            provider_options[self.cuda_graph_key] = "1"
        if stream is not None:
            provider_options["user_compute_stream"] = str(stream.ptr)
        return [(self.provider, provider_options), ("CPUExecutionProvider", {})]

    def create_session(self, ort: Any, model: Path, so: Any, chain: list[tuple[str, dict]]) -> Any:
        """The session, on the providers of `chain` (a plug-in EP is added to the session options instead)."""
        return ort.InferenceSession(str(model), so, providers=[p for p, _ in chain], provider_options=[o for _, o in chain])

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
    capabilities = Capabilities(saves_optimized=True, reduced_floats=False, profiles=True, precision_graphs=("fp16", INT8_ORT, INT8_DYNAMIC))

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        import psutil

        cores = sorted({1, psutil.cpu_count(logical=False) or 1, psutil.cpu_count() or 1})
        parallel = lambda o: (o.group(OrtOptions).execution_mode or ("parallel" if o.group(OrtOptions).inter_op_threads else "sequential")) == "parallel"  # noqa: E731
        dimensions = [
            Dimension("intra-op threads", tuple(_with_ort(f"{n} intra-op threads", {"session_options.intra_op_num_threads": n}, intra_op_threads=n) for n in cores)),
            Dimension("execution mode", tuple(_with_ort(mode, {"session_options.execution_mode": name}, execution_mode=mode) for mode, name in EXECUTION_MODES.items())),
            Dimension("inter-op threads", tuple(
                Choice(f"{n} inter-op threads", lambda o, n=n: o.changed(OrtOptions, inter_op_threads=n), {"session_options.inter_op_num_threads": n}, needs=parallel)
                for n in cores if n > 1
            )),
            _graph_optimization(),
        ]
        if model.precision == "fp32":  # which precision graph this CPU runs fastest
            dimensions.insert(0, Dimension("precision graph", tuple(Choice(f"{name} graph", graph=name) for name in TUNE_GRAPHS)))
        return (*_fusions(model, options, on_gpu=False), *(d for d in dimensions if d.choices))


class OrtCuda(OrtBackend):
    name = "ort-cuda"
    description = "ONNX Runtime, CUDA execution provider"
    extra = "gpu"
    provider = "CUDAExecutionProvider"
    cuda_graph_key = "enable_cuda_graph"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, saves_optimized=True, profiles=True, precision_graphs=GPU_GRAPHS)
    user_stream = True

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        graph = lambda on: Choice(  # noqa: E731
            "CUDA graph" if on else "no CUDA graph", lambda o: replace(o, cuda_graph=on, io_binding=o.io_binding or on),
            {"cuda_graph": on, f"provider_options.{self.cuda_graph_key}": "1" if on else "0"},
        )
        dimensions = [Dimension("CUDA graph", (graph(True), graph(False)))]
        dimensions += [Dimension(key, tuple(_with_provider_option(key, v) for v in values)) for key, values in CUDA_TUNING]
        if model.precision == "fp32":  # TF32 changes fp32 results; the agreement check judges it
            dimensions.append(Dimension("use_tf32", (_with_provider_option("use_tf32", "1"), _with_provider_option("use_tf32", "0"))))
        binding = lambda on: Choice(  # noqa: E731
            "IO binding" if on else "no IO binding", lambda o: replace(o, io_binding=on, cuda_graph=o.cuda_graph and on), {"io_binding": on},
        )
        return (*_fusions(model, options, on_gpu=True), *dimensions, _graph_optimization(), Dimension("IO binding", (binding(True), binding(False))))


class OrtTensorrt(OrtBackend):
    name = "ort-trt"
    description = "ONNX Runtime, TensorRT execution provider"
    extra = "gpu,trt"
    provider = "TensorrtExecutionProvider"
    install = (
        "needs onnxruntime-gpu and the TensorRT libraries, not only [gpu]: pip install 'infertool[gpu,trt]' "
        "on a machine with an NVIDIA GPU; not yet run on real TensorRT here"
    )
    cuda_graph_key = "trt_cuda_graph_enable"
    capabilities = Capabilities(on_gpu=True, device_resident=True, cuda_graphs=True, saves_optimized=True, profiles=True, precision_graphs=ENGINE_GRAPHS)

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            import ctypes.util

            if not any(ctypes.util.find_library(name) for name in ("nvinfer", "nvinfer_10", "nvinfer_11")):
                return f"TensorRT libraries (libnvinfer) are not on the library path: the TensorRT EP {self.install}"
        return reason

    def provider_chain(self, options: RunnerOptions, stream: Any) -> list[tuple[str, dict]]:
        chain = super().provider_chain(options, stream)
        return [chain[0], ("CUDAExecutionProvider", {"device_id": str(options.device)}), *chain[1:]]


for _backend in (OrtCpu(), OrtCuda(), OrtTensorrt()):
    registry.register(_backend)


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    container, dtype = dtypes.from_ort_type(node.type)
    return TensorSpec(node.name, dtype, shape, container)


def run_options() -> Any:
    """Run options for every call. Failures come back as exceptions, in infertool's words (ORT's own log only with
    --verbose). gpu_graph_id holds its default (0): ORT's Python wrapper looks it up on each IO-binding run, and a
    missing entry costs a raised and caught exception every call (70 µs on an H100)."""
    ort = require("onnxruntime", "ONNX Runtime backends")
    options = ort.RunOptions()
    options.log_severity_level = ort_log_severity()
    options.add_run_config_entry("gpu_graph_id", "0")
    return options


def session_options(options: OrtOptions, optimized_path: Path | None = None, profile_prefix: str | None = None) -> Any:
    ort = require("onnxruntime", "ONNX Runtime backends")
    ort.set_default_logger_severity(ort_log_severity())
    so = ort.SessionOptions()
    so.log_severity_level = ort_log_severity()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[options.graph_optimization])
    if options.intra_op_threads is not None:
        so.intra_op_num_threads = options.intra_op_threads
    if options.inter_op_threads is not None:
        so.inter_op_num_threads = options.inter_op_threads
    mode = options.execution_mode or ("parallel" if options.inter_op_threads is not None else "sequential")
    so.execution_mode = getattr(ort.ExecutionMode, EXECUTION_MODES[mode])
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def read_back(session: Any, provider: str) -> dict:
    """The settings the session reports it runs with (not the ones asked for)."""
    so = session.get_session_options()
    options = dict(session.get_provider_options().get(provider, {}))
    options.pop("user_compute_stream", None)  # an address in this process; has_user_compute_stream tells
    return {
        "provider_options": options,
        "session_options": {
            "intra_op_num_threads": so.intra_op_num_threads, "inter_op_num_threads": so.inter_op_num_threads,
            "execution_mode": so.execution_mode.name, "graph_optimization_level": so.graph_optimization_level.name,
        },
    }


def profile_events(path: Path) -> tuple[str, list[tuple[str, str, float]]]:
    """(clock, [(node, op type, ms)]) from ONNX Runtime's profiling JSON: GPU kernel times where the
    build records them (CUPTI), else each node's host-side time (on a GPU: its launch)."""
    events = json.loads(path.read_text())
    kernels = [e for e in events if e.get("cat") == "Kernel"]
    if kernels:
        return "device", [
            (e.get("args", {}).get("parent_name", e["name"]), e.get("args", {}).get("op_name", "kernel"), e["dur"] / 1e3) for e in kernels
        ]
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    return "host", [(e["name"].removesuffix("_kernel_time"), e.get("args", {}).get("op_name", "?"), e["dur"] / 1e3) for e in nodes]


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
        self._input_types: dict[str, str] = {}
        self._started_threads: int | None = None
        self._run_options: Any = None
        self._deadline = Deadline(None, lambda: None)
        self._calls = 0
        self._earlier_gpu_sessions = 0
        self._profile_dir: tempfile.TemporaryDirectory | None = None

    @property
    def io_binding(self) -> Any:
        """The session's IO binding once inputs are bound on the device (for bare-loop comparisons)."""
        return self._binding

    def prepare(self, optimized_path: Path | None = None) -> None:
        import psutil

        ort = require("onnxruntime", "ONNX Runtime backends")
        if self.backend.user_stream and is_available("cuda"):
            from infertool import cuda

            cuda.set_device(self.device)
            self.stream = cuda.Stream()
        chain = self.backend.provider_chain(replace(self.options, cuda_graph=self.cuda_graph), self.stream)
        prefix = None
        if self.options.profile:
            self._profile_dir = tempfile.TemporaryDirectory(prefix="infertool-profile-")
            prefix = os.path.join(self._profile_dir.name, "ort")
        threads = psutil.Process().num_threads()
        try:
            self.session = self.backend.create_session(ort, self.model, session_options(self.options.group(OrtOptions), optimized_path, prefix), chain)
            self._started_threads = psutil.Process().num_threads() - threads
        except Exception as exc:
            raise _session_error(self.backend.name, self.model, exc) from exc
        if self.backend.capabilities.on_gpu:
            self._earlier_gpu_sessions = next(_gpu_sessions)
        active = self.session.get_providers()
        if self.backend.provider not in active:
            raise BackendFailure(
                f"{self.backend.name}: {self.backend.provider} did not load (active: {', '.join(active)})",
                hint="check the CUDA / cuDNN / TensorRT libraries that onnxruntime-gpu needs (infertool doctor)",
            )
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self._names = [o.name for o in self.outputs]
        self._input_types = {i.name: i.dtype if i.is_tensor else "" for i in self.inputs}
        self._run_options = run_options()
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
            if any(dtypes.numpy_lacks(o.dtype) for o in self.outputs):
                return self._run_ortvalues(feeds)
            return self.session.run(self._names, {n: _feed(a, self._input_types[n]) for n, a in feeds.items()}, self._run_options)
        except InfertoolError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            self._deadline.call = 0

    def _run_ortvalues(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs of types numpy lacks come back only as OrtValues, and that call takes only OrtValues."""
        import numpy as np

        ort = require("onnxruntime")
        values = {}
        for spec in self.inputs:
            if not spec.is_tensor or spec.dtype == "string":
                lacking = next(o for o in self.outputs if dtypes.numpy_lacks(o.dtype))
                raise BackendFailure(
                    f"{self.backend.name}: ONNX Runtime's Python API cannot run this model: its {lacking.type_name} output "
                    f"'{lacking.name}' is readable only through OrtValues, which cannot carry its {spec.type_name} input '{spec.name}'",
                    hint="cast that output to float32 in the model, or run it from C/C++",
                )
            value = _feed(feeds[spec.name], spec.dtype)
            values[spec.name] = value if isinstance(value, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(np.asarray(value, order="C"))
        outputs = self.session.run_with_ort_values(self._names, values, self._run_options)
        return [_host_array(v, spec, self.backend.name) for v, spec in zip(outputs, self.outputs)]

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        import numpy as np

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
        # types numpy lacks stay host OrtValues of their ONNX type (ORT copies them over)
        self._bound_inputs = {
            n: _feed(a, self._input_types[n]) if dtypes.numpy_lacks(self._input_types[n]) else ort.OrtValue.ortvalue_from_numpy(np.asarray(a, order="C"), "cuda", device)
            for n, a in feeds.items()
        }
        for name, value in self._bound_inputs.items():
            binding.bind_ortvalue_input(name, value)
        if self.cuda_graph:
            lacking = [s.name for s in [*self.inputs, *self.outputs] if dtypes.numpy_lacks(s.dtype)]
            if lacking:
                raise InfertoolError(
                    f"{self.backend.name}: CUDA graphs need device buffers that infertool cannot allocate for {', '.join(lacking)} (a type numpy lacks)",
                    hint="drop --cuda-graph for this model",
                )
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
            for spec in self.outputs:  # types numpy lacks are read back from host memory
                binding.bind_output(spec.name, *(("cpu", 0) if dtypes.numpy_lacks(spec.dtype) else ("cuda", device)))
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
        return expired(self.backend.name, self._deadline.seconds, exc)

    def bound_outputs(self) -> dict[str, np.ndarray]:
        if self._binding is None:
            return self._bound_outputs
        values = self._bound_outputs_values or self._binding.get_outputs()
        return {spec.name: _host_array(value, spec, self.backend.name) for spec, value in zip(self.outputs, values)}

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

    def effective_threads(self) -> dict | None:
        """The thread counts ORT runs with, counted rather than assumed: the session starts a pool of
        n - 1 threads per n-thread pool (the calling thread is the n-th). Not told on GPU providers,
        which may start threads of their own, nor where ORT sized both pools itself."""
        if self._started_threads is None or self.backend.capabilities.on_gpu:
            return None
        ort = self.options.group(OrtOptions)
        parallel = ort.inter_op_threads is not None
        inter = ort.inter_op_threads if parallel else 1
        if not inter:
            return None
        return {"intra_op": self._started_threads + 1 - (inter - 1), "inter_op": inter, "counted": "threads the session started"}

    def info(self) -> RunnerInfo:
        found = read_back(self.session, self.backend.provider) if self.session else {}
        return RunnerInfo(settings={
            "providers": self.session.get_providers() if self.session else [], "device": self.device,
            # what the session reports (its provider options replace the requested ones)
            **self.options.group(OrtOptions).session(), "io_binding": self.device_resident, "cuda_graph": self.cuda_graph, **found,
            "tf32": found.get("provider_options", {}).get("use_tf32") == "1",  # the CUDA EP's fp32 MatMul / Conv on TF32 tensor cores
            "effective_threads": self.effective_threads(),
        }, warnings=(LATER_SESSION,) if self._earlier_gpu_sessions else ())

    def profile(self) -> tuple[str, list[tuple[str, str, float]]]:
        if self.session is None or self._profile_dir is None:
            return "host", []
        return profile_events(Path(self.session.end_profiling()))

    def close(self) -> None:
        if self._profile_dir is not None:
            self._profile_dir.cleanup()
            self._profile_dir = None
        self._binding = None
        self._bound_inputs = {}
        self._bound_outputs_values = []
        self.session = None
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _feed(array: Any, dtype: str) -> Any:
    """An input as ONNX Runtime takes it: arrays of types numpy lacks (bfloat16, float8, int4...)
    as OrtValues of their ONNX type, others as they are."""
    if not dtypes.numpy_lacks(dtype):  # before numpy's import: this is on the timed path
        return array
    import numpy as np

    if not isinstance(array, np.ndarray):
        return array
    ort = require("onnxruntime")
    # ORT takes the shape from the numpy array and the type's bytes (packed for 4-bit types) from its memory
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(dtypes.onnx_buffer(array), dtypes.BY_NAME[dtype].onnx)


def _host_array(value: Any, spec: TensorSpec, backend: str) -> Any:
    """An output OrtValue as numpy, typed as the model types it (ml_dtypes for what numpy lacks)."""
    if not value.has_value():
        return None
    if not value.is_tensor():
        raise BackendFailure(f"{backend}: ONNX Runtime's Python API cannot read the {spec.type_name} output '{spec.name}' of a model with outputs of types numpy lacks")
    name = dtypes.from_onnx(value.element_type())
    if not dtypes.numpy_lacks(name):
        return value.numpy()
    size = value.tensor_size_in_bytes()
    return dtypes.from_raw(ctypes.string_at(value.data_ptr(), size) if size else b"", name, tuple(value.shape()))


def _numpy_type(dtype: str) -> Any:
    return dtypes.numpy_dtype(dtype).type


# ONNX Runtime's words for an op it lacks: no kernel for these types / this opset, or no such op at all
NO_KERNEL = (
    re.compile(r"Could not find an implementation for (?P<op>[\w.]+)\((?P<version>-?\d+)\) node with name '(?P<node>[^']*)'"),
    re.compile(r"Failed to find kernel for (?P<op>[\w.]+)\((?P<version>-?\d+)\) \(node:'(?P<node>[^']*)'"),
)
NO_OP = (
    re.compile(r"(?:(?P<domain>[\w.]+):)?(?P<op>\w+)\((?P<version>-?\d+)\) is not a registered function/op"),
    re.compile(r"No Op registered for (?P<op>\w+) with domain_version of (?P<version>\d+)"),
)


def _model_opset(model: Path, domain: str) -> int | None:
    from infertool import onnx_io

    try:
        proto = onnx_io.load(model, load_external_data=False)
    except InfertoolError:
        return None
    return next((o.version for o in proto.opset_import if o.domain in ({domain} if domain else {"", "ai.onnx"})), None)


def _status(exc: Exception) -> tuple[str, str]:
    """ONNX Runtime's status name (INVALID_GRAPH...) and, where it names one, the failing node."""
    text = str(exc)
    status = re.search(r"\[ONNXRuntimeError\] : \d+ : (\w+)", text)
    return (status.group(1) if status else ""), node_named(exc)


def _session_error(backend: str, model: Path, exc: Exception) -> InfertoolError:
    """ONNX Runtime's session errors in infertool's words: a missing kernel or op, an unreadable file or graph."""
    text, (status, _) = str(exc), _status(exc)
    detail, name = first_line(exc), shorten(model)
    for pattern in NO_KERNEL:
        found = pattern.search(text)
        if found:
            node = f" (node '{shorten(found['node'], 40)}')" if found["node"] else ""
            opset = _model_opset(model, "") or found["version"]
            return BackendFailure(
                f"{backend}: ONNX Runtime has no kernel for op {found['op']} at opset {opset}{node} on this backend, for the types this model gives it",
                hint="try another backend (infertool doctor lists them), or re-export the model with types or an opset this backend supports", detail=detail,
            )
    for pattern in NO_OP:
        found = pattern.search(text)
        if found:
            domain = found.groupdict().get("domain") or ""
            opset = _model_opset(model, domain) or found["version"]
            return BackendFailure(
                f"{backend}: ONNX Runtime does not know op {found['op']}{f' of domain {domain}' if domain else ''} at opset {opset}: it has no kernel for it",
                hint="re-export the model without that op, or at an opset where ONNX Runtime implements it", detail=detail,
            )
    if status in ("INVALID_PROTOBUF", "NO_MODEL", "NO_SUCHFILE"):
        return InfertoolError(f"ONNX Runtime cannot read {name} as an ONNX model", hint="check the file; re-export it if it is corrupt", detail=detail)
    if status == "INVALID_GRAPH" or "Load model" in detail:
        return InfertoolError(f"ONNX Runtime rejects the graph of {name} as invalid", hint="check it with onnx.checker, then re-export the model", detail=detail)
    return BackendFailure(f"{backend}: ONNX Runtime could not create a session for {name}", hint="rerun with --verbose for ONNX Runtime's message", detail=detail)


def _runtime_error(backend: str, exc: Exception) -> BackendFailure:
    text = first_line(exc)
    status, where = _status(exc)
    if "out of memory" in text.lower() or "Failed to allocate" in text or "bad_alloc" in text:
        return BackendFailure(f"{backend}: out of memory{where}", hint="use a smaller --batch or --input-shape", detail=text)
    if status == "INVALID_ARGUMENT":
        return BackendFailure(f"{backend}: the inputs do not fit the model{where}", hint="check --input-shape, --batch and the input dtypes (rerun with --verbose)", detail=text)
    empty = EMPTY_RESHAPE.search(str(exc))
    if empty and "0" in empty["input"].split(",") and "-1" in empty["target"].split(","):
        node = where.removeprefix(" in ") if where and not where.endswith("''") else "a Reshape node"
        return InferenceFailed(
            f"{backend}: {node} reshapes an empty tensor (shape {{{empty['input']}}}) to {{{empty['target']}}}: the model's data-dependent "
            "part found nothing on these inputs, and ONNX Runtime cannot infer -1 from zero elements", hint=EMPTY_RESHAPE_HINT, detail=text,
        )
    return InferenceFailed(f"{backend}: inference failed{where}", hint="rerun with --verbose for ONNX Runtime's message", detail=text)


EMPTY_RESHAPE = re.compile(r"Input shape:\{(?P<input>[\d,]*)\}, requested shape:\{(?P<target>[-\d,]*)\}")
EMPTY_RESHAPE_HINT = (
    "infertool convert and quantize -p fp16/bf16 write a Reshape's sizes in where the graph fixes them: make the model with them; "
    "ONNX Runtime's own Reshape fusion may have written the -1 (--graph-opt disable runs the graph as written); "
    "else reshape with explicit sizes in the model's code (x.reshape(n, 4), not (n, -1))"
)
