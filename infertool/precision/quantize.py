"""`quantize`: an fp32 ONNX model to fp16 / bf16 / int8 / fp8, with an accuracy report and gates."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from infertool import onnx_model, runners
from infertool.compare import compare, tolerance
from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.files import file_sha256, staged_output
from infertool.inputs import FeedSource, InputOptions, split_batches
from infertool.precision import floats, qdq
from infertool.precision.detect import graph_precision
from infertool.reporting import Reporter
from infertool.results import AccuracyReport, ModelFile, QuantizeResult
from infertool.runners import RunnerOptions
from infertool.specs import numpy_dtype

PRECISIONS = ("fp16", "bf16", "int8", "fp8", "int8-dynamic")
TARGETS = ("tensorrt", "ort")
CALIBRATION_BATCH = 8
RANDOM_SAMPLES = 32
FEW_SAMPLES = 16


@dataclass(frozen=True)
class QuantizeOptions:
    precision: str
    output: Path
    target: str = "tensorrt"
    keep_io_types: bool = True
    block_fragile: bool = True
    exclude_op_types: tuple[str, ...] = ()
    exclude_nodes: tuple[str, ...] = ()
    calib: InputOptions | None = None  # None: no calibration data given
    calib_method: str = "minmax"
    calib_samples: int | None = None
    calib_cache: Path | None = None
    per_channel: bool = True
    eval: InputOptions | None = None  # None: the calibration set, else generated inputs
    generated: InputOptions = field(default_factory=InputOptions)  # shapes, seed, int range for generated inputs
    eval_samples: int = 8
    eval_backend: str = "ort-cpu"
    min_cosine: float | None = None
    min_top1: float | None = None
    force: bool = False

    def to_dict(self) -> dict:
        return {
            "precision": self.precision, "target": self.target, "keep_io_types": self.keep_io_types,
            "block_fragile": self.block_fragile, "exclude_op_types": list(self.exclude_op_types),
            "exclude_nodes": list(self.exclude_nodes), "calibration_method": self.calib_method,
            "calibration_samples": self.calib_samples, "per_channel": self.per_channel,
            "calibration_cache": str(self.calib_cache) if self.calib_cache else None,
            "eval_backend": self.eval_backend, "min_cosine": self.min_cosine, "min_top1": self.min_top1,
        }


def _check_request(model: onnx.ModelProto, options: QuantizeOptions) -> None:
    if options.precision not in PRECISIONS:
        raise InfertoolError(f"unknown precision '{options.precision}'", hint=f"choose from {', '.join(PRECISIONS)}")
    if options.target not in TARGETS:
        raise InfertoolError(f"unknown target '{options.target}'", hint=f"choose from {', '.join(TARGETS)}")
    current = graph_precision(model)
    if current != "fp32":
        raise InfertoolError(f"the model is already {current}", hint="quantize its fp32 original")
    if options.precision == "int8-dynamic" and options.target == "tensorrt":
        raise InfertoolError(
            "TensorRT cannot run dynamically quantized graphs (DynamicQuantizeLinear, MatMulInteger)",
            hint="use --precision int8 with --calib-data for TensorRT, or --target ort for ONNX Runtime on the CPU",
        )
    if options.precision == "fp8" and options.calib_method != "minmax":
        raise InfertoolError("fp8 calibrates with onnxruntime's distribution method only", hint="drop --calib-method")
    if options.calib_method not in qdq.CALIBRATION_METHODS:
        raise InfertoolError(f"unknown --calib-method '{options.calib_method}'", hint=f"choose from {', '.join(qdq.CALIBRATION_METHODS)}")
    if options.precision in ("int8", "fp8") and options.calib is None:
        cached = options.calib_cache is not None and options.calib_cache.is_file()
        if not cached:
            raise InfertoolError(
                f"{options.precision} needs calibration data",
                hint="give --calib-data PATH (npz, .pb dir, images), or --calib-data random for speed tests only",
            )


def _samples(source: FeedSource, options: InputOptions, wanted: int | None, what: str) -> dict[str, np.ndarray]:
    """Stacked samples from a file, or `wanted` generated ones."""
    if options.path is None:
        return source.feeds(wanted or RANDOM_SAMPLES)
    feeds = source.feeds(None)
    available = min(a.shape[0] for a in feeds.values())
    if wanted is not None and available < wanted:
        raise InfertoolError(f"{what} has {available} samples, fewer than the {wanted} asked for", hint=f"give more data or lower --calib-samples to {available}")
    return {n: a[: wanted or available] for n, a in feeds.items()}


def quantize(model_path: Path, options: QuantizeOptions, reporter: Reporter) -> QuantizeResult:
    started = time.perf_counter()
    model = onnx_model.load(model_path)
    _check_request(model, options)
    specs = onnx_model.input_specs(model)
    notes: list[str] = []
    calibration = None
    calib_samples = None
    if options.calib is not None:
        calib_samples = _samples(FeedSource(specs, options.calib), options.calib, options.calib_samples, "the calibration data")
        count = min(a.shape[0] for a in calib_samples.values())
        if options.calib.path is None:
            notes.append("calibrated on generated random data: fine for speed tests, meaningless for accuracy")
        elif count < FEW_SAMPLES and options.precision in ("int8", "fp8"):
            notes.append(f"only {count} calibration samples; a few hundred representative ones calibrate better")
    large = model.ByteSize() >= onnx_model.EXTERNAL_DATA_THRESHOLD
    graph: dict = {}
    with staged_output(options.output, options.force) as staging:
        converted = staging / options.output.name
        if options.precision in ("fp16", "bf16"):
            with reporter.task(f"converting to {options.precision}"):
                ops = floats.block_list(options.exclude_op_types, options.block_fragile)
                convert = floats.to_float16 if options.precision == "fp16" else floats.to_bfloat16
                result = convert(model, options.keep_io_types, ops, list(options.exclude_nodes))
                onnx_model.save(result, converted)
            graph = _float_summary(result, options.precision)
        else:
            del model
            settings = qdq.QdqSettings(
                options.precision.removesuffix("-dynamic"), options.target, options.calib_method, options.per_channel,
                options.exclude_op_types, options.exclude_nodes, options.calib_cache,
            )
            prepared = staging / "prepared.tmp"
            if qdq.preprocess(model_path, prepared):
                source = prepared
            else:
                source = model_path
                notes.append("onnxruntime's quantization pre-processing failed; quantized the model as it is")
            if options.precision == "int8-dynamic":
                with reporter.task("quantizing int8 weights (dynamic)"):
                    qdq.quantize_dynamic(source, converted, settings, large)
            else:
                batches = split_batches(calib_samples, specs, CALIBRATION_BATCH) if calib_samples is not None else None
                cache_hit = options.calib_cache is not None and options.calib_cache.is_file()
                with reporter.task(f"calibrating ({'cached ranges' if cache_hit else settings.method if options.precision == 'int8' else 'distribution'})", total=None if batches is None else len(batches)) as advance:
                    qdq.quantize_static(source, converted, settings, batches, advance, large)
                calibration = {
                    "method": "distribution" if options.precision == "fp8" else settings.method,
                    "samples": None if calib_samples is None else min(a.shape[0] for a in calib_samples.values()),
                    "data": str(options.calib.path) if options.calib and options.calib.path else "random" if options.calib else None,
                    "cache": str(options.calib_cache) if options.calib_cache else None, "cache_hit": cache_hit,
                }
            for leftover in staging.glob("prepared.tmp*"):
                leftover.unlink()
            graph = _qdq_summary(onnx_model.load(converted), options.target)
        try:
            onnx.checker.check_model(str(converted))
        except Exception as exc:
            raise InfertoolError(f"the {options.precision} model fails onnx.checker: {first_line(exc)}", hint="report this model") from exc
        accuracy = _accuracy(model_path, converted, specs, options, calib_samples, reporter)
        gates = _gates(accuracy, options)
        result = QuantizeResult(
            source=ModelFile(str(model_path), file_sha256(model_path), model_path.stat().st_size),
            output=ModelFile(str(options.output), file_sha256(converted), converted.stat().st_size, onnx_model.external_data_path(converted).exists()),
            precision=options.precision, settings=options.to_dict(), graph=graph, calibration=calibration,
            accuracy=accuracy, gates=gates, seconds=time.perf_counter() - started, notes=tuple(notes),
        )
        if not result.passed:
            failed = [f"{name} {g['value']} < {g['min']}" if g["value"] is not None else f"{name}: not evaluated" for name, g in gates.items() if not g["passed"]]
            raise CheckFailed(
                f"accuracy gate failed ({'; '.join(failed)}); {options.output} was not written",
                hint="exclude sensitive layers (--exclude-nodes / --exclude-op-types), calibrate on more data, or use a wider precision",
                result=result,
            )
    return result


def _float_summary(model: onnx.ModelProto, precision: str) -> dict:
    target = onnx.TensorProto.FLOAT16 if precision == "fp16" else onnx.TensorProto.BFLOAT16
    kinds = Counter(t.data_type for t in model.graph.initializer)
    return {
        "nodes": len(model.graph.node),
        "casts": sum(n.op_type == "Cast" for n in model.graph.node),
        f"{precision}_initializers": kinds.get(target, 0),
        "fp32_initializers": kinds.get(onnx.TensorProto.FLOAT, 0),
    }


def _qdq_summary(model: onnx.ModelProto, target: str) -> dict:
    ops = Counter(n.op_type for n in model.graph.node)
    initializers = {t.name: t for t in model.graph.initializer}
    nonzero = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 and node.input[2] in initializers:
            nonzero += int(np.any(onnx.numpy_helper.to_array(initializers[node.input[2]]).astype(np.float32) != 0))
    if target == "tensorrt" and nonzero:
        raise InfertoolError(f"{nonzero} Q/DQ nodes have non-zero zero points, which TensorRT rejects", hint="report this; use --target ort meanwhile")
    quantized = sorted({n.op_type for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear", "Cast")} & set(qdq.TENSORRT_OPS))
    return {
        "nodes": len(model.graph.node), "quantize_linear": ops.get("QuantizeLinear", 0),
        "dequantize_linear": ops.get("DequantizeLinear", 0), "nonzero_zero_points": nonzero,
        "quantized_op_types": quantized, "dynamic_quantize_linear": ops.get("DynamicQuantizeLinear", 0),
    }


def _accuracy(
    original: Path, converted: Path, specs: list, options: QuantizeOptions,
    calib_samples: dict[str, np.ndarray] | None, reporter: Reporter,
) -> AccuracyReport:
    if options.eval is not None:
        generated = options.eval.path is None
        samples = _samples(FeedSource(specs, options.eval), options.eval, options.eval_samples if generated else None, "the evaluation data")
        data = f"{options.eval_samples} generated samples" if generated else str(options.eval.path)
    elif calib_samples is not None:
        samples, data = calib_samples, "the calibration set"
    else:
        samples = FeedSource(specs, options.generated).feeds(options.eval_samples)
        data = f"{options.eval_samples} generated samples (seed {options.generated.seed})"
    count = min(a.shape[0] for a in samples.values())
    batches = split_batches(samples, specs, CALIBRATION_BATCH)
    runners.require_available(options.eval_backend)
    collected: list[dict[str, list[np.ndarray]]] = [{}, {}]
    with reporter.task(f"evaluating on {options.eval_backend} ({data})", total=2 * len(batches)) as advance:
        for index, path in enumerate((original, converted)):
            try:
                with runners.open_runner(options.eval_backend, path, RunnerOptions()) as runner:
                    dtypes = {s.name: numpy_dtype(s.dtype) for s in runner.inputs}  # fp16 IO without --keep-io-types
                    for batch in batches:
                        for name, value in runner.infer({n: a.astype(dtypes[n], copy=False) for n, a in batch.items()}).items():
                            collected[index].setdefault(name, []).append(value)
                        advance(1)
            except InfertoolError as exc:
                if index == 0:
                    raise
                reason = exc.message.replace(str(converted), str(options.output))
                return AccuracyReport(options.eval_backend, data, count, unavailable=f"{reason} (try --eval-backend ort-cuda on a GPU)")
            except Exception as exc:
                return AccuracyReport(options.eval_backend, data, count, unavailable=first_line(exc))
    atol, rtol, cosine = tolerance(options.precision.removesuffix("-dynamic"))
    reference, candidate = ({n: np.concatenate(v) for n, v in c.items()} for c in collected)
    outputs = tuple(compare(n, reference[n], candidate[n].astype(reference[n].dtype), atol, rtol, cosine) for n in reference)
    return AccuracyReport(options.eval_backend, data, count, outputs)


def _gates(accuracy: AccuracyReport, options: QuantizeOptions) -> dict:
    gates = {}
    for name, minimum, value in (("min_cosine", options.min_cosine, accuracy.min_cosine), ("min_top1", options.min_top1, accuracy.top1)):
        if minimum is not None:
            gates[name] = {"min": minimum, "value": value, "passed": value is not None and value >= minimum}
    return gates
