"""Framework baselines: the PyTorch model the ONNX came from (`--source`, as `convert` takes it), run
eagerly under torch.inference_mode (`torch`) or compiled by inductor (`torch-compile`).

Same inputs, statistics and agreement check as every other row. The model computes in the ONNX
graph's float precision (an fp16 graph: model.half()); on a GPU inputs and outputs can stay on the
device (bind / run_bound), channels_last is used where it helps, and a CUDA graph is optional.
Compilation happens on the first call per shape, timed apart (`compile_seconds`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from infertool.backends import registry
from infertool.backends.base import Backend, Capabilities, Choice, Dimension, RowFailed, Runner, RunnerInfo, RunnerOptions, option
from infertool.deadline import Interrupter, Stopped
from infertool.dtypes import numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.optional import install_hint, is_available, require
from infertool.quiet import quiet
from infertool.tensors import format_shape

if TYPE_CHECKING:
    import numpy as np

    from infertool.onnx_io import ModelInfo

COMPUTE_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
TUNED_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")  # bench --tune's (max-autotune: CUDA graphs and long searches both)
COMPILE_LOGGERS = ("torch._dynamo", "torch._inductor", "torch.fx")
_COMPILE_SECONDS: dict[tuple, float] = {}  # what torch.compile took in this process, per model, mode, type and shapes


@dataclass(frozen=True)
class SourceOptions:
    """The framework backends' own options (torch, torch-compile, keras, keras-xla): the model the ONNX came from."""

    key: ClassVar[str] = "source"
    title: ClassVar[str] = "torch / keras backends (the framework model the ONNX came from)"

    source: str | None = option(  # as `convert` takes it: file.py:factory, a .pt / .pt2 archive, a .keras file...
        "--source", "Framework backends (torch, torch-compile): the model the ONNX came from, as convert takes it (file.py:factory, .pt, .pt2).",
        metavar="SOURCE", file="source",
    )
    weights: Path | None = option("--weights", "State dict loaded into the --source factory's model.", file="in", readers=("torch", "torch-compile"))
    trust_model: bool = option("--trust-model", "Allow loading a --source that runs code from the model file (pickled modules).", False)
    compile_mode: str | None = option(
        "--compile-mode", "torch-compile: torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs) [default: torch's].",
        metavar="MODE", choices=COMPILE_MODES, readers=("torch-compile",),
    )
    channels_last: bool | None = option(  # None: where it helps (convolutions on 4-D inputs, on a GPU)
        "--channels-last/--no-channels-last", "torch backends: channels_last memory format [default: on a GPU, for convolutional models].",
        readers=("torch", "torch-compile"),
    )

    def to_dict(self) -> dict:
        return {
            "source": self.source, "weights": str(self.weights) if self.weights else None, "trust_model": self.trust_model,
            "compile_mode": self.compile_mode, "channels_last": self.channels_last,
        }


def _gpu() -> bool:
    if not is_available("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


class TorchBackend(Backend):
    name = "torch"
    description = "PyTorch eager, torch.inference_mode, on the --source model the ONNX came from (GPU where torch has CUDA)"
    extra = "torch"
    gate_settings = ("dtype", "channels_last", "compile_mode", "threads", "io_binding", "cuda_graph")
    option_group = SourceOptions
    compiled = False
    _loaded: dict = {}

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        gpu = _gpu()
        return Capabilities(on_gpu=gpu, device_resident=gpu, cuda_graphs=gpu)

    def unavailable_reason(self) -> str | None:
        return None if is_available("torch") else f"PyTorch is not installed ({install_hint('torch')})"

    def _require_source(self, source: SourceOptions) -> None:
        if not source.source:
            raise InfertoolError(
                f"backend {self.name} runs the PyTorch model the ONNX came from: give it with --source",
                hint="e.g. bench --source model.py:build [--weights weights.pt], as given to convert",
            )

    def load(self, source: SourceOptions) -> Any:
        """The source model (loaded once per source, handed out as copies) and forward()'s input names."""
        from infertool.exporters.base import ExportOptions
        from infertool.exporters.torch import load_source

        self._require_source(source)
        key = (source.source, source.weights, source.trust_model)
        if key not in self._loaded:
            torch = require("torch", "the torch backends")
            self._loaded[key] = load_source(source.source, ExportOptions(weights=source.weights, trust_model=source.trust_model), torch)
        return self._loaded[key]

    def check(self, model: ModelInfo, options: RunnerOptions) -> None:
        self._require_source(options.group(SourceOptions))
        if model.precision not in COMPUTE_DTYPES:
            raise InfertoolError(
                f"{model.path.name} is an {model.precision} graph; backend {self.name} runs its source in fp32, fp16 or bf16 only",
                hint="bench the fp32 or fp16 ONNX model against the framework baseline",
            )
        loaded = self.load(options.group(SourceOptions))
        onnx_names = [s.name for s in model.inputs]
        extra = [n for n in loaded.input_names[len(onnx_names):] if n in loaded.required]
        if loaded.input_names[: len(onnx_names)] != onnx_names or extra:
            raise InfertoolError(
                f"--source {options.group(SourceOptions).source} does not match {model.path.name}: its forward() takes "
                f"{', '.join(loaded.input_names) or 'no inputs'}, the ONNX model's inputs are {', '.join(onnx_names)}",
                hint="give the source the ONNX model was converted from",
            )

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        if self.compiled:  # each configuration compiles anew (set-up, timed apart): only the modes
            return (Dimension("compile mode", tuple(_mode(m) for m in TUNED_MODES if m != "reduce-overhead" or self.capabilities.cuda_graphs)),)
        layout = lambda on: Choice(  # noqa: E731
            "channels_last" if on else "contiguous (NCHW)",
            lambda o: _with_source(o, channels_last=on), {"channels_last": on},
        )
        dimensions = [Dimension("memory format", (layout(True), layout(False)))]
        if self.capabilities.cuda_graphs:
            graph = lambda on: Choice("CUDA graph" if on else "no CUDA graph", lambda o: _with(o, cuda_graph=on), {"cuda_graph": on})  # noqa: E731
            dimensions.insert(0, Dimension("CUDA graph", (graph(True), graph(False))))
        return tuple(dimensions)

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return TorchRunner(artifact, self, options)


class TorchCompileBackend(TorchBackend):
    name = "torch-compile"
    description = "torch.compile (inductor; --compile-mode) of the --source model; compile time reported apart (on the CPU inductor needs a C++ compiler)"
    compiled = True


def _mode(mode: str) -> Choice:
    """torch.compile in this mode; the defaults (no --compile-mode) already are 'default'."""
    return Choice(f"compile mode {mode}", lambda o: _with_source(o, compile_mode=mode), {"compile_mode": mode},
                  needs=lambda o: (o.group(SourceOptions).compile_mode or "default") != mode)


def _with(options: RunnerOptions, **changes: Any) -> RunnerOptions:
    return replace(options, **changes)


def _with_source(options: RunnerOptions, **changes: Any) -> RunnerOptions:
    return options.changed(SourceOptions, **changes)


for _backend in (TorchBackend(), TorchCompileBackend()):
    registry.register(_backend)


class TorchRunner(Runner):
    def __init__(self, model: Path, backend: TorchBackend, options: RunnerOptions):
        super().__init__(model)
        self.backend = backend
        self.options = options
        self.torch: Any = None
        self.module: Any = None  # what runs: the model, or its compiled form
        self.device: Any = None
        self.dtype: Any = None
        self.channels_last = False
        self.cuda_graph = False
        self.compile_seconds: dict[str, float] = {}  # per input shapes
        self.compile_reused: list[str] = []  # input shapes whose code this process had compiled before
        self._checked: set[tuple] = set()
        self._eager: Any = None
        self._graph: Any = None
        self._static_outputs: list[Any] = []
        self._bound_tensors: list[Any] = []
        self._interrupter = Interrupter(options.timeout)

    def prepare(self) -> None:
        from infertool import onnx_io

        torch = self.torch = require("torch", "the torch backends")
        proto = onnx_io.load(self.model, load_external_data=False)
        self.inputs, self.outputs = onnx_io.input_specs(proto), onnx_io.output_specs(proto)
        precision = onnx_io.graph_precision(proto)
        gpu = self.backend.capabilities.on_gpu
        self.device = torch.device(f"cuda:{self.options.device}" if gpu else "cpu")
        self.dtype = getattr(torch, COMPUTE_DTYPES.get(precision, "float32"))
        module = copy.deepcopy(self.backend.load(self.options.group(SourceOptions)).model)
        module = module.to(self.device).to(self.dtype) if hasattr(module, "to") else module
        wanted = self.options.group(SourceOptions).channels_last
        has_conv = any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
        four_d = any(len(s.shape) == 4 for s in self.inputs)
        self.channels_last = four_d and (wanted if wanted is not None else gpu and has_conv)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self._eager = module
        self.module = torch.compile(module, mode=self.options.group(SourceOptions).compile_mode, dynamic=False) if self.backend.compiled else module
        self.cuda_graph = gpu and self.options.cuda_graph and self.options.io_binding
        self.device_resident = gpu and self.options.io_binding

    @property
    def bound_inputs(self) -> list[Any]:
        """The device tensors `bind` staged (for bare-loop comparisons)."""
        return list(self._bound_tensors)

    def _tensors(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        from infertool.exporters.torch import _to_torch

        tensors = []
        for spec in self.inputs:
            tensor = _to_torch(feeds[spec.name], self.torch).to(self.device, non_blocking=True)
            if tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
                if self.channels_last and tensor.dim() == 4:
                    tensor = tensor.contiguous(memory_format=self.torch.channels_last)
            tensors.append(tensor)
        return tensors

    def _forward(self, tensors: list[Any]) -> list[Any]:
        """One call, stopped after --timeout; the first per shape checks the model against the ONNX and
        times compilation apart."""
        from infertool.exporters.torch import _flatten_outputs

        key = tuple(tuple(t.shape) for t in tensors)
        try:
            self._interrupter.start()
            try:
                with self.torch.inference_mode():
                    if key not in self._checked:
                        self._check(key, tensors)
                    return _flatten_outputs(self.module(*tensors), self.torch)[0]
            finally:
                self._interrupter.end()
        except Stopped:
            raise InfertoolError(
                f"{self.backend.name}: --source {self.options.group(SourceOptions).source} ran past the --timeout of {self.options.timeout:g} s in one call and was stopped",
                hint="a forward() that never returns runs forever: fix the model, or raise --timeout if it is just slow",
            ) from None

    def _check(self, key: tuple, tensors: list[Any]) -> None:
        from infertool.exporters.torch import _flatten_outputs

        shapes = ", ".join(f"{s.name} {format_shape(k)}" for s, k in zip(self.inputs, key))
        try:
            outputs = _flatten_outputs(self._eager(*tensors), self.torch)[0]
        except Exception as exc:
            raise InfertoolError(
                f"--source {self.options.group(SourceOptions).source} fails on the ONNX model's inputs ({shapes}): {first_line(exc)}",
                hint="give the source the ONNX model was converted from",
            ) from exc
        self._check_outputs(outputs)
        if self.backend.compiled:
            self._compile(key, shapes, tensors)
        self._checked.add(key)

    def _compile(self, key: tuple, shapes: str, tensors: list[Any]) -> None:
        """The first compiled call, timed apart. torch.compile keeps its code per process (same model code,
        mode and input types: a later runner's copy passes its guards): where it compiles nothing, the
        compile time is the earlier one's, and the shapes are said reused, never timed as 0 s."""
        from torch._dynamo.utils import counters

        graphs = counters["stats"]["unique_graphs"]
        started = time.perf_counter()
        self._interrupter.end()  # compiling is no inference: --timeout does not cover it
        try:
            with quiet(COMPILE_LOGGERS):
                self.module(*tensors)
        except Exception as exc:
            raise RowFailed(f"torch.compile failed on inputs {shapes}: {first_line(exc)}") from exc
        finally:
            self._interrupter.start()
        source = self.options.group(SourceOptions)
        compiled = (source.source, source.weights, source.compile_mode, str(self.dtype), str(self.device), self.channels_last, key)
        if counters["stats"]["unique_graphs"] > graphs:
            _COMPILE_SECONDS[compiled] = round(time.perf_counter() - started, 3)
        else:
            self.compile_reused.append(shapes)
        if compiled in _COMPILE_SECONDS:
            self.compile_seconds[shapes] = _COMPILE_SECONDS[compiled]

    def _check_outputs(self, outputs: list[Any]) -> None:
        source = self.options.group(SourceOptions).source
        if len(outputs) != len(self.outputs):
            raise InfertoolError(
                f"--source {source} returns {len(outputs)} output tensors, the ONNX model has {len(self.outputs)} "
                f"({', '.join(s.name for s in self.outputs)})", hint="give the source the ONNX model was converted from",
            )
        for spec, tensor in zip(self.outputs, outputs):
            got = tuple(tensor.shape)
            if len(got) != len(spec.shape) or any(isinstance(d, int) and d != g for d, g in zip(spec.shape, got)):
                raise InfertoolError(
                    f"--source {source}: output '{spec.name}' has shape {format_shape(got)}, the ONNX model's {format_shape(spec.shape)}",
                    hint="give the source the ONNX model was converted from",
                )

    def _numpy(self, tensors: list[Any]) -> dict[str, np.ndarray]:
        from infertool.exporters.torch import _to_numpy

        return {s.name: _to_numpy(t, self.torch).astype(numpy_dtype(s.dtype), copy=False) for s, t in zip(self.outputs, tensors)}

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.cuda_graph:
            self.bind(feeds)
            self.run_bound()
            return self.bound_outputs()
        return self._numpy(self._forward(self._tensors(feeds)))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        if not self.device_resident:
            self._bound = dict(feeds)
            return
        tensors = self._tensors(feeds)
        if self.cuda_graph and self._graph is not None:
            for static, new in zip(self._bound_tensors, tensors):
                static.copy_(new)
            return
        self._bound_tensors = tensors
        self._forward(tensors)  # check, compile and warm up outside any capture
        if self.cuda_graph:
            self._capture()
        self.torch.cuda.synchronize(self.device)

    def _capture(self) -> None:
        torch = self.torch
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):  # PyTorch's recipe: warm up on a side stream before capturing
                self.module(*self._bound_tensors)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.inference_mode():
            self._static_outputs = self._forward(self._bound_tensors)

    def run_bound(self) -> None:
        if not self.device_resident:
            self._bound_outputs = self.infer(self._bound)
            return
        if self._graph is not None:
            self._graph.replay()
        else:
            self._static_outputs = self._forward(self._bound_tensors)
        self.torch.cuda.synchronize(self.device)

    def bound_outputs(self) -> dict[str, np.ndarray]:
        return self._numpy(self._static_outputs) if self.device_resident else self._bound_outputs

    def device_times(self, iterations: int) -> dict[str, list[int]]:
        if not self.device_resident:
            return {}
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(iterations):
            start.record()
            if self._graph is not None:
                self._graph.replay()
            else:
                self._forward(self._bound_tensors)
            end.record()
            end.synchronize()
            times.append(int(start.elapsed_time(end) * 1e6))
        return {"compute": times}

    def memory(self) -> dict:
        if self.device is None or self.device.type != "cuda":
            return {}
        return {"torch_peak_allocated_bytes": int(self.torch.cuda.max_memory_allocated(self.device))}

    def info(self) -> RunnerInfo:
        torch = self.torch
        gpu = self.device is not None and self.device.type == "cuda"
        fp32 = self.dtype == torch.float32
        return RunnerInfo(settings={
            "torch": torch.__version__, "device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
            "inference_mode": True, "channels_last": self.channels_last, "cuda_graph": self.cuda_graph, "io_binding": self.device_resident,
            "threads": torch.get_num_threads(), "source": self.options.group(SourceOptions).to_dict(),
            "compiled": self.backend.compiled, "compile_mode": self.options.group(SourceOptions).compile_mode if self.backend.compiled else None,
            "compile_seconds": dict(self.compile_seconds) if self.backend.compiled else None,
            "compile_reused": list(self.compile_reused) if self.backend.compiled else None,
            # where TF32 may run: convolutions (cudnn.allow_tf32, on by default) or matmuls (off by default)
            "tf32": gpu and fp32 and bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32),
        })

    def close(self) -> None:
        self._graph = None
        self._static_outputs = self._bound_tensors = []
        self.module = self._eager = None
