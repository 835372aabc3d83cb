"""The precision stage: an fp32 ONNX graph to fp16 / bf16 (casts) or int8 / fp8 (Q/DQ), checked.

Pure ONNX -> ONNX: no runtime runs the result here. The quantize pipeline adds the accuracy
report; the engine build uses the graph as TensorRT's precision source.
"""

from __future__ import annotations

import difflib
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from infertool import onnx_io
from infertool.errors import InfertoolError, first_line
from infertool.files import check_output, write_bytes_atomic
from infertool.precision import floats, qdq
from infertool.precision.reshapes import explicit_note, explicit_sizes
from infertool.precision.settings import PrecisionSettings
from infertool.quiet import in_folder
from infertool.reporting import Reporter
from infertool.text import shorten
from infertool.vocabulary import QUANTIZE_PRECISIONS, QUANTIZE_TARGETS


@dataclass(frozen=True)
class TransformResult:
    graph: dict  # node counts of the converted graph
    calibration: dict | None  # method, batches, cache use (int8 / fp8)
    notes: tuple[str, ...] = ()


def check_request(graph_precision: str, settings: PrecisionSettings, calibrated: bool) -> None:
    """Refuse what cannot work, before any data is read."""
    if settings.precision not in QUANTIZE_PRECISIONS:
        raise InfertoolError(f"unknown precision '{settings.precision}'", hint=f"choose from {', '.join(QUANTIZE_PRECISIONS)}")
    if settings.target not in QUANTIZE_TARGETS:
        raise InfertoolError(f"unknown target '{settings.target}'", hint=f"choose from {', '.join(QUANTIZE_TARGETS)}")
    if graph_precision != "fp32":
        raise InfertoolError(f"the model is already {graph_precision}", hint="quantize its fp32 original")
    if settings.precision == "int8-dynamic" and settings.target == "tensorrt":
        raise InfertoolError(
            "TensorRT cannot run dynamically quantized graphs (DynamicQuantizeLinear, MatMulInteger)",
            hint="use --precision int8 with --calib-data for TensorRT, or --target ort for ONNX Runtime on the CPU",
        )
    if settings.precision == "fp8" and settings.calib_method != "minmax":
        raise InfertoolError("fp8 calibrates with onnxruntime's distribution method only", hint="drop --calib-method")
    if settings.calib_method not in qdq.CALIBRATION_METHODS:
        raise InfertoolError(f"unknown --calib-method '{settings.calib_method}'", hint=f"choose from {', '.join(qdq.CALIBRATION_METHODS)}")
    static = settings.precision in ("int8", "fp8")  # calibrated ranges
    cached = static and qdq.cache_hit(settings)
    if static and settings.calib_cache is not None and not cached:
        check_output(settings.calib_cache, force=True)  # written after calibrating: refuse an unwritable path first
    if static and not calibrated and not cached:
        raise InfertoolError(
            f"{settings.precision} needs calibration data",
            hint="give --calib-data PATH (npz, .pb dir, images), or --calib-data random for speed tests only",
        )


def check_names(model: onnx.ModelProto, settings: PrecisionSettings) -> None:
    """Every --exclude-nodes name is a node of the graph and every --exclude-op-types name an op
    type in it: a misspelled one would leave that node converted without a word."""
    for option, given, known in (
        ("--exclude-nodes", settings.exclude_nodes, [n.name for n in model.graph.node if n.name]),
        ("--exclude-op-types", settings.exclude_op_types, [n.op_type for n in model.graph.node]),
    ):
        missing = [name for name in given if name not in set(known)]
        if missing:
            near = difflib.get_close_matches(missing[0], list(dict.fromkeys(known)), n=3)
            raise InfertoolError(
                f"{option} names {len(missing)} that the graph lacks: {', '.join(repr(shorten(m, 60)) for m in missing[:3])}",
                hint=f"did you mean {', '.join(repr(n) for n in near)}?" if near else f"see the node names with a graph viewer (Netron); the graph has {len(set(known))}",
            )


def convert(
    source: Path, model: onnx.ModelProto, output: Path, settings: PrecisionSettings,
    batches: list[dict[str, np.ndarray]] | None, reporter: Reporter, timeout: float | None = None,
) -> TransformResult:
    """Write the `settings.precision` graph of `model` (read from `source`) to `output`, checked.

    `batches` are the calibration inputs (int8 / fp8), each inference on them stopped after
    `timeout` seconds; `output`'s folder takes scratch files, which are removed.
    """
    check_names(model, settings)
    if settings.precision in ("fp16", "bf16"):
        with reporter.task(f"converting to {settings.precision}"):
            ops = floats.block_list(settings.exclude_op_types, settings.block_fragile)
            to_float = floats.to_float16 if settings.precision == "fp16" else floats.to_bfloat16
            wide = floats.beyond_fp16(model) if settings.precision == "fp16" else {}
            result = to_float(model, settings.keep_io_types, ops, list(dict.fromkeys([*settings.exclude_nodes, *wide])))
            explicit = explicit_sizes(result)
            onnx_io.save(result, output)
        notes = [] if not wide else [
            f"kept {len(wide)} nodes in fp32, their weights beyond fp16's range (±65504): "
            + ", ".join(f"{name} ({op}, |w| up to {value:.3g})" for name, (op, value) in list(wide.items())[:4]) + (" …" if len(wide) > 4 else "")
        ]
        notes += explicit_note(explicit)
        transformed = TransformResult(_float_summary(result, settings.precision), None, tuple(notes))
    else:
        transformed = _quantize(source, model.ByteSize() >= onnx_io.EXTERNAL_DATA_THRESHOLD, output, settings, batches, reporter, timeout)
    _check_made(source, output, settings.precision)
    return transformed


def _check_made(source: Path, output: Path, precision: str) -> None:
    """onnx.checker on the graph written: where the model given passes it, a failure is infertool's
    own bug (exit 3, not a user error); where the model given fails it too, the fix is there."""
    try:
        onnx.checker.check_model(str(output))
    except Exception as exc:
        try:
            onnx.checker.check_model(str(source))
        except Exception as original:
            raise InfertoolError(
                f"the model given fails onnx.checker, and so does the {precision} model made from it",
                hint="fix or re-export the model (--verbose shows the checker's message)", detail=first_line(original),
            ) from exc
        raise RuntimeError(f"the {precision} model infertool made fails onnx.checker: {first_line(exc)}") from exc


def _quantize(
    source: Path, large: bool, output: Path, settings: PrecisionSettings,
    batches: list[dict[str, np.ndarray]] | None, reporter: Reporter, timeout: float | None,
) -> TransformResult:
    notes, before, source = [], set(output.parent.iterdir()), source.absolute()
    prepared, fresh_cache = output.with_name("prepared.tmp"), output.with_name("calibration-cache.tmp")
    settings = replace(settings, calib_cache=settings.calib_cache.absolute() if settings.calib_cache else None)
    with in_folder(output.parent):  # onnxruntime's scratch files land beside the output, in its staging folder
        if not qdq.preprocess(source, prepared):
            prepared = source
            notes.append("onnxruntime's quantization pre-processing (shape inference, graph optimizations) could not infer every shape; quantized the model as it is")
        calibration = None
        if settings.precision == "int8-dynamic":
            with reporter.task("quantizing int8 weights (dynamic)"):
                types = qdq.quantize_dynamic(prepared, output, settings, large)
                quantized = onnx_io.load(output)
                floats.topological_sort(quantized.graph)  # onnxruntime leaves If bodies unsorted
                onnx_io.save(quantized, output)
        else:
            types, cache_hit = qdq.static_types(settings), qdq.cache_hit(settings)
            method = "distribution" if settings.precision == "fp8" else settings.calib_method
            cache = settings.calib_cache if cache_hit else fresh_cache  # ranges reach onnxruntime's quantizer through a cache file (qdq._calibrate)
            with reporter.task(f"calibrating ({'cached ranges' if cache_hit else method})", total=None if batches is None else len(batches)) as advance:
                clipping = qdq.quantize_static(prepared, output, settings, batches, advance, large, cache, timeout)
            if cache == fresh_cache and settings.calib_cache:  # written with the command's other outputs, all or nothing
                write_bytes_atomic(settings.calib_cache, fresh_cache.read_bytes(), force=True)
            calibration = {
                "method": method, "batches": None if batches is None else len(batches),
                "cache": str(settings.calib_cache) if settings.calib_cache else None, "cache_hit": cache_hit, **clipping,
            }
            if clipping and not clipping["clipped_tensors"]:
                notes.append(f"entropy calibration clipped none of the {clipping['tensors']} tensors' ranges by 1 % or more: they are minmax's (no outliers found)")
    for leftover in set(output.parent.iterdir()) - before - {output, onnx_io.external_data_path(output), settings.calib_cache}:  # the cache is kept
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return TransformResult({**_qdq_summary(onnx_io.load(output), settings.target), "types": types}, calibration, tuple(notes))


def _float_summary(model: onnx.ModelProto, precision: str) -> dict:
    target = onnx.TensorProto.FLOAT16 if precision == "fp16" else onnx.TensorProto.BFLOAT16
    initializers = Counter(t.data_type for t in model.graph.initializer)
    summary = {
        "nodes": len(model.graph.node),
        "casts": sum(n.op_type == "Cast" for n in model.graph.node),
        f"{precision}_initializers": initializers.get(target, 0),
        "fp32_initializers": initializers.get(onnx.TensorProto.FLOAT, 0),
    }
    named = {t.name for t in model.graph.initializer}
    constants = Counter(t.data_type for name, t in onnx_io.weight_tensors(model.graph).items() if name not in named)
    if constants[target] or constants[onnx.TensorProto.FLOAT]:  # weights the exporter put in Constant nodes
        summary.update({f"{precision}_constant_weights": constants[target], "fp32_constant_weights": constants[onnx.TensorProto.FLOAT]})
    return summary


def _qdq_summary(model: onnx.ModelProto, target: str) -> dict:
    ops = Counter(n.op_type for n in model.graph.node)
    initializers = onnx_io.weight_tensors(model.graph)
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
