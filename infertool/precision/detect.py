"""What precision an ONNX graph computes in, read off its nodes and weights."""

from __future__ import annotations

from collections import Counter

import onnx

QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear"}
FLOAT8 = {onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ, onnx.TensorProto.FLOAT8E5M2, onnx.TensorProto.FLOAT8E5M2FNUZ}
FLOATS = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16", onnx.TensorProto.DOUBLE: "fp64"}


def graph_precision(model: onnx.ModelProto) -> str:
    """fp8 or int8 when the graph holds quantization ops; else the float type of most weight elements."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    if any(n.op_type in QUANTIZED_OPS for n in graph.node):
        for node in graph.node:
            if node.op_type == "QuantizeLinear" and len(node.input) > 2:
                zero_point = initializers.get(node.input[2])
                if zero_point is not None and zero_point.data_type in FLOAT8:
                    return "fp8"
        return "int8"
    weights: Counter[str] = Counter()
    for tensor in graph.initializer:
        if tensor.data_type in FLOATS:
            weights[FLOATS[tensor.data_type]] += max(1, _elements(tensor))
    return weights.most_common(1)[0][0] if weights else "fp32"


def _elements(tensor: onnx.TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count
