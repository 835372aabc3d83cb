"""One model description for every command: weights wherever the graph keeps them (initializers or
Constant nodes, as paddle2onnx writes them) count for its precision, bytes and FLOPs."""

import importlib.metadata
import json

import onnx

from infertool import onnx_io
from infertool.measure.flops import count

from conftest import cli

FAST = ["--warmup", "1", "--iterations", "3", "--duration", "0"]


def _orientation_classifier():
    """PaddleOCR's real text-orientation classifier: every weight in a Constant node."""
    return next(f.locate() for f in importlib.metadata.files("rapidocr-onnxruntime") if f.name == "ch_ppocr_mobile_v2.0_cls_infer.onnx")


def test_constant_node_weights_are_weights(tmp_path):
    model = _orientation_classifier()
    proto = onnx.load(str(model))
    assert not proto.graph.initializer and len(onnx_io.weight_tensors(proto.graph)) > 100
    assert count(proto, {"x": (1, 3, 48, 192)}).weight_bytes > 500_000  # about 0.57 MB of fp32 weights
    fp16 = tmp_path / "cls.fp16.onnx"
    quantized = cli("quantize", model, "-p", "fp16", "-o", fp16, "--input-shape", "1x3x48x192", "--json")
    assert quantized.returncode == 0, quantized.stderr
    graph = json.loads(quantized.stdout)["graph"]
    assert graph["fp16_constant_weights"] > 100 and graph["fp32_constant_weights"] < graph["fp16_constant_weights"]
    assert onnx_io.describe(fp16).precision == "fp16"
    # bench judges the fp16 graph by fp16's rule, as quantize did: it does not call it fp32 and fail it
    bench = cli("bench", fp16, "--reference", model, "--input-shape", "1x3x48x192", *FAST, "--json")
    assert bench.returncode == 0, bench.stderr
    row = json.loads(bench.stdout)["rows"][0]
    assert row["precision"] == "fp16" and row["agreement"]["precision"] == "fp16" and row["agreement"]["passed"]
