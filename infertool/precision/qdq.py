"""int8 / fp8 quantization through onnxruntime: static Q/DQ with calibration, or dynamic int8."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from infertool.errors import InfertoolError, first_line
from infertool.optional import require
from infertool.precision.settings import PrecisionSettings
from infertool.quiet import quiet

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
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


def quantize_static(
    source: Path, output: Path, settings: PrecisionSettings, batches: list[dict[str, np.ndarray]] | None,
    advance: Callable[[int], None], large: bool,
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
        with quiet():
            ort_quantize_static(
                str(source), str(output), _reader(batches, advance) if batches is not None else None,
                quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types, per_channel=settings.per_channel,
                activation_type=activation, weight_type=QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QInt8,
                nodes_to_exclude=list(settings.exclude_nodes), calibrate_method=method,
                use_external_data_format=large,
                calibration_cache_path=str(settings.calib_cache) if settings.calib_cache else None,
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
        raise InfertoolError(f"{settings.precision} quantization failed: {first_line(exc)}", hint="see --debug for the trace") from exc


def quantize_dynamic(source: Path, output: Path, settings: PrecisionSettings, large: bool) -> None:
    """int8 weights with activations quantized at run time: CPU only, no calibration."""
    require("onnxruntime", "quantization")
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    try:
        with quiet():
            ort_quantize_dynamic(
                str(source), str(output), per_channel=settings.per_channel, weight_type=QuantType.QInt8,
                nodes_to_exclude=list(settings.exclude_nodes), use_external_data_format=large,
                op_types_to_quantize=[op for op in ("MatMul", "Gemm", "Attention", "LSTM", "GRU", "Conv") if op not in settings.exclude_op_types],
            )
    except Exception as exc:
        raise InfertoolError(f"dynamic int8 quantization failed: {first_line(exc)}") from exc


def preprocess(source: Path, output: Path) -> bool:
    """onnxruntime's recommended pre-pass (shape inference, basic graph optimizations); False if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    here = os.getcwd()
    try:  # where symbolic shape inference gives up, onnxruntime saves sym_shape_infer_temp.onnx in the working folder
        os.chdir(output.parent)
        with quiet():
            quant_pre_process(str(source.resolve()), str(output.resolve()), skip_symbolic_shape=False)
        return True
    except Exception:
        return False
    finally:
        os.chdir(here)
        for leftover in output.parent.glob("sym_shape_infer_temp*"):
            leftover.unlink()
