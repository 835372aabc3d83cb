"""int8 / fp8 quantization through onnxruntime: static Q/DQ with calibration, or dynamic int8."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from infertool.deadline import Deadline, expired
from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.optional import require
from infertool.precision import floats
from infertool.precision.settings import PrecisionSettings
from infertool.quiet import quiet
from infertool.text import shorten

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CALIB_PERCENTILE = 99.999  # the percentile calibrator's share of |x| kept
ENTROPY_BINS = 2048  # histogram bins over [-max|x|, max|x|], as TensorRT's entropy calibrator
QUANTIZED_BINS = 128  # the levels of one sign of int8: the narrowest range a threshold may clip to is 128 bins
CLIPPED = 0.99  # a range counts as clipped where entropy's threshold is below 99 % of max |x|
CACHE_LIMIT = 256 * 2**20
SILENT = logging.CRITICAL + 1  # onnxruntime's quantization tools log tracebacks at ERROR
# where TensorRT fuses Q/DQ: the inputs of convolutions and matrix products
# int8-dynamic's weight type per op, as onnxruntime's guidance for x86: ConvInteger with uint8
# weights (with int8 weights silero-VAD's convolutions lose the speech: cosine 0.2), the matrix
# products (MatMulInteger, DynamicQuantizeLSTM, ...) with int8 weights
DYNAMIC_WEIGHTS = {"Conv": "QUInt8", "MatMul": "QInt8", "Gemm": "QInt8", "Attention": "QInt8", "LSTM": "QInt8", "GRU": "QInt8"}
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
    advance: Callable[[int], None], large: bool, cache: Path, timeout: float | None = None,
) -> dict:
    """Calibrate into `cache` (or read it where it exists) and write the Q/DQ graph; returns what the
    calibration did (entropy: how many tensors' ranges it clipped). Each calibration inference runs
    under `timeout` seconds."""
    require("onnxruntime", "quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    fp8 = settings.precision == "fp8"
    op_types = quantized_op_types(settings)
    activation = QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QInt8 if settings.target == "tensorrt" else QuantType.QUInt8
    method = CalibrationMethod.Distribution if fp8 else {
        "minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
    }[settings.calib_method]
    symmetric = settings.target == "tensorrt"  # TensorRT takes zero points of 0 only
    try:
        with quiet(level=SILENT, native_stderr=True):
            found = {} if cache.exists() else _calibrate(source, op_types, method, batches, advance, large, cache, timeout)
            ort_quantize_static(
                str(source), str(output), None,
                quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types, per_channel=settings.per_channel,
                activation_type=activation, weight_type=QuantType.QFLOAT8E4M3FN if fp8 else QuantType.QInt8,
                nodes_to_exclude=list(settings.exclude_nodes), calibrate_method=method,
                use_external_data_format=large,
                calibration_cache_path=str(cache),
                extra_options={
                    "ActivationSymmetric": symmetric, "WeightSymmetric": True,
                    # TensorRT keeps biases in float; an int32 bias DequantizeLinear does not fuse there
                    "QuantizeBias": settings.target != "tensorrt",
                    # Q/DQ on the inputs of weighted layers only, as TensorRT's placement guide asks
                    "OpTypesToExcludeOutputQuantization": op_types if settings.target == "tensorrt" else [],
                },
            )
    except InfertoolError:
        raise
    except Exception as exc:
        raise InfertoolError(
            f"onnxruntime's {settings.precision} quantizer failed on this model",
            hint="exclude the failing nodes or op types (--exclude-nodes, --exclude-op-types); --verbose shows its message",
            detail=first_line(exc),
        ) from exc
    return found


def static_types(settings: PrecisionSettings) -> str:
    """The types quantize_static chooses, in words."""
    if settings.precision == "fp8":
        return "weights and activations float8 e4m3fn"
    scales = "per-channel" if settings.per_channel else "per-tensor"
    if settings.target == "tensorrt":
        return f"weights int8 symmetric {scales}; activations int8 symmetric (zero point 0, as TensorRT requires)"
    return f"weights int8 symmetric {scales}; activations uint8 asymmetric (onnxruntime's CPU default, U8S8)"


def quantized_op_types(settings: PrecisionSettings) -> list[str]:
    """The op types the static quantizer (int8 / fp8) quantizes for the settings' target."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    op_types = list(TENSORRT_OPS) if settings.target == "tensorrt" else sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    return [op for op in op_types if op not in settings.exclude_op_types]


class _Deadlined:
    """onnxruntime's calibration session, each of its runs stopped after `seconds` (deadline.py)."""

    def __init__(self, session, seconds: float | None):
        import onnxruntime as ort

        self._session, self._options, self._calls = session, ort.RunOptions(), 0
        self._deadline = Deadline(seconds, functools.partial(setattr, self._options, "terminate", True))

    def run(self, names, feeds, run_options=None):
        self._calls += 1
        self._deadline.call = self._calls
        try:
            return self._session.run(names, feeds, self._options)
        except Exception as exc:
            if self._deadline.expired:
                raise expired("onnxruntime's calibration", self._deadline.seconds, exc) from exc
            raise
        finally:
            self._deadline.call = 0

    def __getattr__(self, name: str):
        return getattr(self._session, name)


def _calibrate(source: Path, op_types: list[str], method, batches, advance, large: bool, cache: Path, timeout: float | None) -> dict:
    """The ranges `method` finds, written to `cache` for onnxruntime's quantizer to read; collected
    here, not inside its quantize_static, so that every inference runs under the deadline."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    entropy = method == CalibrationMethod.Entropy
    calibrator = create_calibrator(
        source, op_types, augmented_model_path=str(cache.with_name("augmented.tmp.onnx")), calibrate_method=method,
        use_external_data_format=large, extra_options={"num_bins": ENTROPY_BINS} if entropy else {"percentile": CALIB_PERCENTILE},
    )
    calibrator.infer_session = _Deadlined(calibrator.infer_session, timeout)
    calibrator.collect_data(_reader(batches, advance))
    ranges, found = _entropy_ranges(calibrator.collector.histogram_dict) if entropy else (calibrator.compute_data(), {})
    save_tensors_data(ranges, cache)
    return found


def _entropy_ranges(histograms: dict):
    """Entropy ranges from onnxruntime's histograms, and how many it clipped. onnxruntime's own
    entropy calibrator histograms each tensor in 128 bins and searches thresholds of at least 128
    bins: its only candidate is the whole range, so its ranges equal minmax's. Here onnxruntime
    collects the histograms (ENTROPY_BINS) and each threshold is chosen by KL divergence, as
    TensorRT's entropy calibrator does."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    ranges, clipped = {}, 0
    for name, (hist, _, low, high, threshold) in histograms.items():
        limit = entropy_threshold(hist, float(threshold))
        lowest, highest = max(float(low), -limit), min(float(high), limit)
        clipped += limit < CLIPPED * max(-float(low), float(high))
        ranges[name] = TensorData(lowest=np.array(lowest, np.float32), highest=np.array(highest, np.float32))
    return TensorsData(CalibrationMethod.Entropy, ranges), {"tensors": len(ranges), "clipped_tensors": clipped}


def entropy_threshold(hist: np.ndarray, threshold: float) -> float:
    """The |x| beyond which values are clipped: the candidate whose quantized distribution (into
    QUANTIZED_BINS levels) is nearest the original in KL divergence, outliers folded into its last
    bin. `hist` spans [-threshold, threshold] in an even number of bins."""
    half = len(hist) // 2
    folded = hist[half:].astype(np.float64) + hist[:half][::-1]
    merge = -(-half // (ENTROPY_BINS // 2))  # histograms widened by later batches: back to ENTROPY_BINS / 2
    folded = np.add.reduceat(folded, np.arange(0, half, merge))
    if folded.sum() == 0 or len(folded) <= QUANTIZED_BINS:
        return threshold
    best, chosen = np.inf, len(folded)
    for size in range(QUANTIZED_BINS, len(folded) + 1):
        p = folded[:size].copy()
        p[-1] += folded[size:].sum()
        edges = np.arange(QUANTIZED_BINS) * size // QUANTIZED_BINS
        present = folded[:size] > 0
        levels = np.add.reduceat(folded[:size], edges) / np.maximum(np.add.reduceat(present, edges), 1)
        q = np.repeat(levels, np.diff(np.append(edges, size))) * present
        divergence = _kl(p, q)
        if divergence < best:
            best, chosen = divergence, size
    return threshold * min(chosen * merge, half) / half


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two histograms, q's empty bins where p has mass smoothed as onnxruntime does."""
    p, q = p / p.sum(), q / max(q.sum(), 1e-300)
    q = np.where((q == 0) & (p > 0), 1e-4, q)
    mass = p > 0
    return float(np.sum(p[mass] * np.log(p[mass] / q[mass])))


def quantize_dynamic(source: Path, output: Path, settings: PrecisionSettings, large: bool) -> str:
    """int8 weights with activations quantized at run time: CPU only, no calibration. One pass per
    weight type (DYNAMIC_WEIGHTS); returns the types chosen, in words."""
    require("onnxruntime", "quantization")
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    present = _op_types(source)
    chosen = {op: kind for op, kind in DYNAMIC_WEIGHTS.items() if op in present and op not in settings.exclude_op_types}
    groups = {kind: [op for op, k in chosen.items() if k == kind] for kind in dict.fromkeys(chosen.values())}
    done = source
    try:
        with quiet(level=SILENT, native_stderr=True):
            for index, (kind, ops) in enumerate(groups.items()):
                target = output if index == len(groups) - 1 else output.with_name(f"dynamic{index}.tmp.onnx")
                ort_quantize_dynamic(
                    str(done), str(target), per_channel=settings.per_channel, weight_type=getattr(QuantType, kind),
                    nodes_to_exclude=list(settings.exclude_nodes), use_external_data_format=large, op_types_to_quantize=ops,
                )
                done = target
    except Exception as exc:
        raise InfertoolError(
            "onnxruntime's dynamic int8 quantizer failed on this model",
            hint="exclude the failing nodes or op types (--exclude-nodes, --exclude-op-types); --verbose shows its message",
            detail=first_line(exc),
        ) from exc
    if done == source:  # nothing to quantize: the graph as it is
        shutil.copyfile(source, output)
    scales = "per-channel" if settings.per_channel else "per-tensor"
    return "; ".join(f"{', '.join(ops)} weights {kind[1:].lower()} {scales}" for kind, ops in groups.items()) + "; activations uint8 per inference"


def _op_types(path: Path) -> set[str]:
    """Every op type of the graph, If / Loop / Scan bodies included."""
    found, graphs = set(), [onnx.load(str(path), load_external_data=False).graph]
    while graphs:
        graph = graphs.pop()
        found |= {node.op_type for node in graph.node}
        graphs += [body for node in graph.node for body in floats.bodies(node)]
    return found


def preprocess(source: Path, output: Path) -> bool:
    """onnxruntime's recommended pre-pass (shape inference, basic graph optimizations); False if it
    fails: its symbolic shape inference gives up on dims it cannot follow (a text recogniser's width
    through Reshape / Transpose), and without it the pass writes graphs the quantizer then breaks."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:  # the transform runs this in the output's folder: scratch files such as sym_shape_infer_temp.onnx land there
        with quiet(level=SILENT, native_stderr=True):
            quant_pre_process(str(source), str(output), skip_symbolic_shape=False)
        return True
    except Exception:
        return False
