"""OpenVINO on the CPU (`openvino` from PyPI), whole in this one file: the backend, its runner, its own
options (threads, streams, performance hint, inference precision) and what `bench --tune` searches.

OpenVINO compiles a model for fixed input shapes where it can: a graph with dynamic dimensions is
reshaped to the shapes of the first inference and compiled then (bench times that first inference
apart), and again for other shapes. A graph with fixed shapes is compiled as it is, never reshaped.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from infertool import dtypes
from infertool.backends import registry
from infertool.backends.base import Backend, Capabilities, Choice, Dimension, Runner, RunnerInfo, RunnerOptions, option
from infertool.deadline import Deadline
from infertool.errors import BackendFailure, InfertoolError, first_line
from infertool.optional import distribution_version, is_available, require
from infertool.text import listing, shorten
from infertool.vocabulary import INT8_ORT, INT8_QDQ, TUNE_GRAPHS

if TYPE_CHECKING:
    import numpy as np

    from infertool.onnx_io import ModelInfo

INSTALL = "pip install 'infertool[openvino]'"
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
# --ov-precision -> OpenVINO's INFERENCE_PRECISION_HINT, and the precision a row is judged at
PRECISIONS = {"f32": ("f32", None), "bf16": ("bf16", "bf16"), "f16": ("f16", "fp16"), "auto": (None, None)}
CPU_CAN = {"bf16": "BF16", "f16": "FP16"}  # --ov-precision -> the CPU plugin's OPTIMIZATION_CAPABILITIES
READ_BACK = {"performance_hint": "PERFORMANCE_HINT", "num_streams": "NUM_STREAMS", "inference_num_threads": "INFERENCE_NUM_THREADS",
             "inference_precision": "INFERENCE_PRECISION_HINT", "enable_cpu_pinning": "ENABLE_CPU_PINNING"}


@dataclass(frozen=True)
class OpenVinoOptions:
    """The openvino backend's own options (bench --ov-*)."""

    key: ClassVar[str] = "openvino"
    title: ClassVar[str] = "openvino backend (OpenVINO on the CPU)"

    threads: int | None = option("--ov-threads", "OpenVINO inference threads (INFERENCE_NUM_THREADS) [default: OpenVINO's choice].", low=1, high=1024)
    streams: int | None = option(
        "--ov-streams", "OpenVINO CPU streams (NUM_STREAMS); more than 1 pays off only with requests at once (--concurrency) [default: the hint's].", low=1, high=1024,
    )
    hint: str = option("--ov-hint", "OpenVINO performance hint (PERFORMANCE_HINT).", "latency", choices=tuple(HINTS))
    precision: str = option(
        "--ov-precision", "What OpenVINO computes in (INFERENCE_PRECISION_HINT): f32 as the graph says, as ORT does; bf16 / f16 where the CPU has "
        "them (judged at that precision); auto: OpenVINO's own choice for this CPU (bf16 on CPUs with AVX-512 BF16 or AMX).", "f32", choices=tuple(PRECISIONS),
    )


def _config(group: OpenVinoOptions) -> dict[str, Any]:
    """compile_model's properties for these options."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": HINTS[group.hint]}
    precision = PRECISIONS[group.precision][0]
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    if group.threads is not None:
        config["INFERENCE_NUM_THREADS"] = group.threads
    if group.streams is not None:
        config["NUM_STREAMS"] = group.streams
    return config


def _plain(value: object) -> object:
    """A property as the JSON shows it: LATENCY for PerformanceMode.LATENCY, bf16 for <Type: 'bfloat16'>."""
    if isinstance(value, (bool, int, float)):
        return value
    text = getattr(value, "name", None) or str(value)
    found = re.fullmatch(r"<Type: '(\w+)'>", text)
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(found.group(1), found.group(1)) if found else text


def _with(**changes: object):
    return lambda options: options.with_group(replace(options.group(OpenVinoOptions), **changes))


class OpenVinoBackend(Backend):
    name = "openvino"
    description = "OpenVINO on the CPU"
    extra = "openvino"
    # its CPU plugin runs Q/DQ graphs on int8 kernels; fp16 / bf16 graphs it computes in f32 unless --ov-precision says otherwise
    capabilities = Capabilities(reduced_floats=False, precision_graphs=(INT8_QDQ, INT8_ORT))
    option_group = OpenVinoOptions
    gate_settings = ("performance_hint", "num_streams", "inference_num_threads", "inference_precision")

    def unavailable_reason(self) -> str | None:
        if not is_available("openvino"):
            return f"openvino is not installed ({INSTALL})"
        import openvino

        devices = openvino.Core().available_devices
        return None if "CPU" in devices else f"OpenVINO finds no CPU device here (devices: {', '.join(devices) or 'none'})"

    def check(self, model: ModelInfo, options: RunnerOptions) -> None:
        group = options.group(OpenVinoOptions)
        odd = [s for s in (*model.inputs, *model.outputs) if not s.is_tensor or s.dtype == "string" or dtypes.numpy_lacks(s.dtype)]
        if odd:
            raise InfertoolError(
                f"openvino: infertool feeds OpenVINO numpy tensors, and {listing([f'{s.name} ({s.type_name})' for s in odd])} is not one",
                hint="bench this model on the ort-* backends",
            )
        if group.precision in CPU_CAN and CPU_CAN[group.precision] not in _capabilities():
            raise InfertoolError(f"openvino: this CPU cannot compute in {group.precision}", hint="use --ov-precision f32 or auto")

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        import psutil

        cores = sorted({1, psutil.cpu_count(logical=False) or 1, psutil.cpu_count() or 1})
        dimensions = [
            Dimension("inference threads", tuple(Choice(f"{n} OpenVINO threads", _with(threads=n), {"inference_num_threads": n}) for n in cores)),
            Dimension("performance hint", tuple(Choice(f"hint {h}", _with(hint=h), {"performance_hint": HINTS[h]}) for h in HINTS)),
            Dimension("streams", tuple(Choice(f"{n} streams", _with(streams=n), {"num_streams": n}) for n in cores)),
        ]
        if model.precision == "fp32":  # what OpenVINO computes an fp32 graph in (the agreement check judges it), and int8 graphs it fuses
            reduced = [p for p, name in CPU_CAN.items() if name in _capabilities()]
            dimensions.append(Dimension("inference precision", tuple(Choice(f"compute in {p}", _with(precision=p), {"inference_precision": p}) for p in reduced)))
            dimensions.insert(0, Dimension("precision graph", tuple(Choice(f"{name} graph", graph=name) for name in TUNE_GRAPHS)))
        return tuple(d for d in dimensions if d.choices)

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return OpenVinoRunner(artifact, options)


def _capabilities() -> tuple[str, ...]:
    """What the CPU plugin can compute in (FP32, BF16, FP16, INT8...)."""
    ov = require("openvino", "the openvino backend")
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


_calls = itertools.count(1)


class OpenVinoRunner(Runner):
    def __init__(self, model: Path, options: RunnerOptions):
        super().__init__(model)
        self.options = options
        self.group = options.group(OpenVinoOptions)
        self.core: Any = None
        self._model: Any = None  # the graph as OpenVINO read it (reshaped per shape set)
        self._compiled: Any = None
        self._request: Any = None
        self._dynamic = False  # the graph has dynamic input dimensions: compiled per input shapes
        self._shapes: tuple | None = None  # the input shapes it is compiled for; None: the graph's own
        self._ports: list[Any] = []
        self._deadline = Deadline(None, lambda: None)

    def prepare(self) -> None:
        from infertool import onnx_io

        ov = require("openvino", "the openvino backend")
        proto = onnx_io.load(self.model, load_external_data=False)
        self.inputs, self.outputs = onnx_io.input_specs(proto), onnx_io.output_specs(proto)
        self.core = ov.Core()
        try:
            self._model = self.core.read_model(str(self.model))
        except Exception as exc:
            raise _failure(f"OpenVINO cannot read {shorten(self.model)}", exc) from exc
        self._dynamic = not all(isinstance(d, int) for s in self.inputs for d in s.shape)
        if not self._dynamic:
            self._compile(None)
        self._deadline = Deadline(self.options.timeout, self._cancel)

    def _cancel(self) -> None:
        if self._request is not None:
            self._request.cancel()

    def _compile(self, shapes: dict[str, tuple[int, ...]] | None) -> None:
        """Compile for these input shapes (None: the graph's own, all fixed)."""
        try:
            if shapes is not None:
                self._model.reshape({name: list(shape) for name, shape in shapes.items()})
            self._compiled = self.core.compile_model(self._model, "CPU", _config(self.group))
        except Exception as exc:
            raise _failure("OpenVINO cannot compile the model" + (f" for shapes {shapes}" if shapes else ""), exc) from exc
        self._request = self._compiled.create_infer_request()
        self._shapes = None if shapes is None else tuple(sorted(shapes.items()))
        names = [s.name for s in self.outputs]
        self._ports = [next((p for p in self._compiled.outputs if name in p.get_names()), self._compiled.outputs[i]) for i, name in enumerate(names)]

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        shapes = {name: tuple(array.shape) for name, array in feeds.items()}
        if self._dynamic and self._shapes != tuple(sorted(shapes.items())):
            self._compile(shapes)
        self._deadline.call = next(_calls)  # in flight: watched for --timeout
        try:
            results = self._request.infer(dict(feeds), share_inputs=True)
        except Exception as exc:
            raise self._run_failure(exc) from exc
        finally:
            self._deadline.call = 0
        return {spec.name: results[port] for spec, port in zip(self.outputs, self._ports)}

    def _run_failure(self, exc: Exception) -> InfertoolError:
        if self._deadline.expired:
            return InfertoolError(
                f"openvino: one inference ran past the --timeout of {self._deadline.seconds:g} s and was stopped",
                hint="a Loop whose trip count and condition never end it runs forever: fix the model, or raise --timeout if it is just slow",
                detail=first_line(exc),
            )
        return _failure("inference failed", exc, hint="check --input-shape, --batch and the input dtypes (rerun with --verbose for OpenVINO's message)")

    def info(self) -> RunnerInfo:
        if self._compiled is None and self._model is not None:  # asked before the first inference: compiled as the graph is, to read back
            self._compile(None)
        found = {key: _plain(self._compiled.get_property(name)) for key, name in READ_BACK.items()} if self._compiled is not None else {}
        computes = found.get("inference_precision")
        precision = next((judged for hint, judged in PRECISIONS.values() if hint == computes), None)
        return RunnerInfo(precision, {
            "openvino": distribution_version("openvino"), "device": "CPU", "requested": asdict(self.group), **found,
            "compiled_for": {name: list(shape) for name, shape in self._shapes} if self._shapes else {s.name: list(s.shape) for s in self.inputs},
        })

    def close(self) -> None:
        self._request = self._compiled = self._model = self.core = None


def _failure(what: str, exc: Exception, hint: str = "rerun with --verbose for OpenVINO's message") -> BackendFailure:
    """OpenVINO's errors in infertool's words: ops it cannot convert are named."""
    text = str(exc)
    ops = re.search(r"No conversion rule found for operations: ([^\n]+)", text) or re.search(r"OpenVINO does not support the following ONNX operations: ([^\n]+)", text)
    if ops:
        return BackendFailure(f"openvino: OpenVINO has no conversion for {shorten(ops.group(1).strip(), 120)}", hint="bench this model on the ort-* backends", detail=first_line(exc))
    return BackendFailure(f"openvino: {what}", hint=hint, detail=first_line(exc))


registry.register(OpenVinoBackend())
