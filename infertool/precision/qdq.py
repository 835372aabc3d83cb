"""int8 / fp8 quantization through onnxruntime: static Q/DQ with calibration, or dynamic int8."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.optional import require
from infertool.precision.settings import PrecisionSettings
from infertool.quiet import quiet
from infertool.text import shorten

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CACHE_LIMIT = 256 * 2**20
SILENT = logging.CRITICAL + 1  # onnxruntime's quantization tools log tracebacks at ERROR
# where TensorRT fuses Q/DQ: the inputs of convolutions and matrix products
TENSORRT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _reader(batches: list[dict[str, np.ndarray]], advance: Callable[[int], None]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            if batch is not None:
                advance(1)
            return batch

    return Reader()


def cache_hit(settings: PrecisionSettings) -> bool:
    """Whether --calib-cache holds ranges to reuse. A file there that is no cache is refused
    unless it may be replaced (--force); a cache of another calibration method is refused."""
    path = settings.calib_cache
    if path is None or not os.path.lexists(path):
        return False
    data = None
    if path.exists():  # a dangling symlink is an entry that is no cache
        try:
            data = json.loads(read_bytes(path, "calibration cache", CACHE_LIMIT))
        except (ValueError, RecursionError):
            pass
    if not (isinstance(data, dict) and data.get("CLS") == "TensorsData" and isinstance(data.get("data"), dict)):
        if settings.replace_cache:
            return False
        raise InfertoolError(f"--calib-cache {shorten(path)} exists and is not a calibration cache", hint="pass --force to overwrite it, or give another path")
    method = data.get("calibration_method")
    found = (method.get("value", "") if isinstance(method, dict) else str(method)).rpartition(".")[2].lower()
    wanted = "distribution" if settings.precision == "fp8" else settings.calib_method
    if found != wanted:
        raise InfertoolError(f"--calib-cache {shorten(path)} holds {shorten(found, 20)} ranges, not {wanted}", hint=f"use --calib-method {shorten(found, 20)}, or give another cache path")
    return True


def quantize_static(
    source: Path, output: Path, settings: PrecisionSettings, batches: list[dict[str, np.ndarray]] | None,
    advance: Callable[[int], None], large: bool, cache: Path | None = None,
) -> None:
    require("onnxruntime", "quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    fp8 = settings.precision == "fp8"
    if settings.target == "tensorrt":
        op_types = list(TENSORRT_OPS)
        activation = QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QInt8
    else:
        op_types = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
        activation = QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QUInt8
    op_types = [op for op in op_types if op not in settings.exclude_op_types]
    method = CalibrationMethod.Distribution if fp8 else {
        "minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
    }[settings.calib_method]
    symmetric = settings.target == "tensorrt"  # TensorRT takes zero points of 0 only
    try:
        with quiet(level=SILENT, native_stderr=True):
            ort_quantize_static(
                str(source), str(output), _reader(batches, advance) if batches is not None else None,
                quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types, per_channel=settings.per_channel,
                activation_type=activation, weight_type=QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QInt8,
                nodes_to_exclude=list(settings.exclude_nodes), calibrate_method=method,
                use_external_data_format=large,
                calibration_cache_path=str(cache) if cache else None,
                extra_options={
                    "ActivationSymmetric": symmetric, "WeightSymmetric": True,
                    # TensorRT keeps biases in float; an int32 bias DequantizeLinear does not fuse there
                    "QuantizeBias": settings.target != "tensorrt",
                    "CalibPercentile": 99.999,
                    # Q/DQ on the inputs of weighted layers only, as TensorRT's placement guide asks
                    "OpTypesToExcludeOutputQuantization": op_types if settings.target == "tensorrt" else [],
                },
            )
    except Exception as exc:
        raise InfertoolError(
            f"onnxruntime's {settings.precision} quantizer failed on this model",
            hint="exclude the failing nodes or op types (--exclude-nodes, --exclude-op-types); --verbose shows its message",
            detail=first_line(exc),
        ) from exc


def quantize_dynamic(source: Path, output: Path, settings: PrecisionSettings, large: bool) -> None:
    """int8 weights with activations quantized at run time: CPU only, no calibration."""
    require("onnxruntime", "quantization")
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    try:
        with quiet(level=SILENT, native_stderr=True):
            ort_quantize_dynamic(
                str(source), str(output), per_channel=settings.per_channel, weight_type=QuantType.QInt8,
                nodes_to_exclude=list(settings.exclude_nodes), use_external_data_format=large,
                op_types_to_quantize=[op for op in ("MatMul", "Gemm", "Attention", "LSTM", "GRU", "Conv") if op not in settings.exclude_op_types],
            )
    except Exception as exc:
        raise InfertoolError(
            "onnxruntime's dynamic int8 quantizer failed on this model",
            hint="exclude the failing nodes or op types (--exclude-nodes, --exclude-op-types); --verbose shows its message",
            detail=first_line(exc),
        ) from exc


def preprocess(source: Path, output: Path) -> bool:
    """onnxruntime's recommended pre-pass (shape inference, basic graph optimizations); False if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:  # the transform runs this in the output's folder: scratch files such as sym_shape_infer_temp.onnx land there
        with quiet(level=SILENT, native_stderr=True):
            quant_pre_process(str(source), str(output), skip_symbolic_shape=False)
        return True
    except Exception:
        return False
