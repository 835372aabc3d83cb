"""FLOPs and bytes per inference, counted from the ONNX graph at the row's input shapes.

Counted: Conv, ConvTranspose, MatMul, Gemm (and their quantized and com.microsoft fused forms),
each as multiply-accumulates x 2. A MatMul whose two inputs are both activations (not weights) is
attention-like (Q·Kᵀ, scores·V) and reported apart. Element-wise work is not counted, as is
customary (published figures, e.g. ResNet-50's ~4.1 GMAC per 224x224 image, count the same way).
Bytes are the compulsory traffic: the weights once, the graph's inputs and outputs: a lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from infertool import onnx_io
from infertool.dtypes import from_onnx, numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.optional import is_available
from infertool.quiet import quiet

CONV = {"Conv", "QLinearConv", "ConvInteger", "FusedConv", "NhwcConv"}
MATMUL = {"MatMul", "QLinearMatMul", "MatMulInteger", "FusedMatMul", "MatMulIntegerToFloat"}
GEMM = {"Gemm", "FusedGemm"}
# heavy ops this counter does not model: their presence makes the count a lower bound
NOT_COUNTED = {"Einsum", "Attention", "MultiHeadAttention", "GroupQueryAttention", "LSTM", "GRU", "RNN", "QAttention"}
# nodes through which a weight stays a weight (a dequantized, cast or reshaped initializer)
WEIGHT_PASSTHROUGH = {"DequantizeLinear", "Cast", "Transpose", "Reshape", "Identity", "Unsqueeze", "Squeeze", "Flatten"}
# which input holds the data and the weight, per op: quantized forms carry scales between them
OPERANDS = {"QLinearConv": (0, 3), "QLinearMatMul": (0, 3)}


@dataclass(frozen=True)
class Count:
    """Work of one inference: multiply-accumulates by kind, and the bytes that must move."""

    macs: Mapping[str, int] = field(default_factory=dict)  # conv, matmul, attention
    weight_bytes: int = 0
    io_bytes: int = 0
    uncounted: tuple[str, ...] = ()  # heavy nodes whose work is missing (unknown shapes or op)

    @property
    def flops(self) -> int:
        return 2 * sum(self.macs.values())

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.io_bytes

    def to_dict(self) -> dict:
        return {
            "flops": self.flops, "macs": sum(self.macs.values()), "macs_by_kind": dict(self.macs),
            "bytes": self.bytes, "weight_bytes": self.weight_bytes, "io_bytes": self.io_bytes,
            "arithmetic_intensity": round(self.flops / self.bytes, 3) if self.bytes else None,
            "uncounted_nodes": list(self.uncounted),
        }


def _dims(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims) if all(d.HasField("dim_value") for d in dims) else None


def _concrete(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy whose inputs have the row's shapes, shapes inferred from there on."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.value_info[:]  # symbolic shapes from the export would shadow the concrete ones
    for value in copy.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name]):
                dim.Clear()
                dim.dim_value = size
    try:
        return onnx.shape_inference.infer_shapes(copy, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise InfertoolError(f"shape inference failed at shapes {dict(shapes)}: {first_line(exc)}") from exc


def _weights(graph: onnx.GraphProto) -> set[str]:
    """Names that carry weights: initializers, constants, and what passes them through unchanged."""
    names = set(onnx_io.weight_tensors(graph)) | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    for node in graph.node:
        if node.op_type in WEIGHT_PASSTHROUGH and node.input and node.input[0] in names:
            names.update(node.output)
    return names


def _matmul_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """numpy.matmul semantics: 1-D operands are promoted, batch dimensions broadcast."""
    a2, b2 = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    batch = [max(x, y) for x, y in zip(reversed(a2[:-2]), reversed(b2[:-2]))]
    longer = a2[:-2] if len(a2) > len(b2) else b2[:-2]
    batch += list(reversed(longer[: abs(len(a2) - len(b2))]))
    return math.prod(batch) * a2[-2] * a2[-1] * b2[-1]


def _node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int | None:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    data, weight = OPERANDS.get(node.op_type, (0, 1))
    x, w = shapes.get(node.input[data]), shapes.get(node.input[weight]) if len(node.input) > weight else None
    y = shapes.get(node.output[0])
    if x is None or w is None or (y is None and node.op_type != "Gemm"):
        return None
    if node.op_type in CONV:  # w: (Cout, Cin/group, k...), y: (N, Cout, spatial...)
        return math.prod(y) * math.prod(w[1:])
    if node.op_type == "ConvTranspose":  # w: (Cin, Cout/group, k...), x: (N, Cin, spatial...)
        return math.prod(x) * math.prod(w[1:])
    if node.op_type in GEMM:
        m, k = (x[1], x[0]) if attrs.get("transA") else x
        n = w[0] if attrs.get("transB") else w[1]
        return m * k * n
    if node.op_type == "FusedMatMul":
        x = (*x[:-2], x[-1], x[-2]) if attrs.get("transA") and len(x) > 1 else x
        w = (*w[:-2], w[-1], w[-2]) if attrs.get("transB") and len(w) > 1 else w
    return _matmul_macs(x, w)


def _kind(node: onnx.NodeProto, weights: set[str]) -> str | None:
    if node.op_type in CONV or node.op_type == "ConvTranspose":
        return "conv"
    if node.op_type in GEMM:
        return "matmul"
    if node.op_type in MATMUL:
        weight = OPERANDS.get(node.op_type, (0, 1))[1]
        operands = [node.input[0], node.input[weight] if len(node.input) > weight else ""]
        return "matmul" if any(name in weights for name in operands) else "attention"
    return None


def _tensor_bytes(shape: tuple[int, ...] | None, elem_type: int) -> int:
    if shape is None:
        return 0
    name = from_onnx(elem_type)
    size = numpy_dtype(name).itemsize if not name.startswith("onnx:") and name != "string" else 4
    return math.prod(shape) * size


def _known(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    known = {v.name: _dims(v) for v in [*graph.input, *graph.value_info, *graph.output]}
    known.update({name: tuple(t.dims) for name, t in onnx_io.weight_tensors(graph).items()})
    return {k: v for k, v in known.items() if v is not None}


def _symbolic(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """ONNX Runtime's symbolic shape inference, which follows shapes through Shape/Gather/Reshape chains
    (a transformer's attention) where ONNX's own stops; None where it is not installed or fails."""
    if not is_available("onnxruntime"):
        return None
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        with quiet():
            return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:
        return None


def count(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> Count:
    """The work of one inference of `model` (read without external data) at these input shapes."""
    inferred = _concrete(model, shapes)
    graph = inferred.graph
    known, weights = _known(graph), _weights(graph)
    if any(_kind(n, weights) and _node_macs(n, known) is None for n in graph.node):
        deeper = _symbolic(inferred)
        if deeper is not None:
            graph, known = deeper.graph, _known(deeper.graph)
    macs: dict[str, int] = {}
    uncounted = []
    for node in graph.node:
        kind = _kind(node, weights)
        if kind is None:
            if node.op_type in NOT_COUNTED:
                uncounted.append(node.name or node.op_type)
            continue
        work = _node_macs(node, known)
        if work is None:
            uncounted.append(node.name or node.op_type)
        else:
            macs[kind] = macs.get(kind, 0) + work
    weight_bytes = sum(_tensor_bytes(tuple(t.dims), t.data_type) for t in onnx_io.weight_tensors(graph).values())
    io_bytes = sum(_tensor_bytes(known.get(v.name), v.type.tensor_type.elem_type) for v in [*graph.input, *graph.output] if v.name not in weights)
    return Count(macs, weight_bytes, io_bytes, tuple(uncounted))


_CACHE: dict[tuple[str, tuple], Count] = {}


def count_file(path: Path, sha256: str, shapes: Mapping[str, tuple[int, ...]]) -> Count:
    """`count` for a model file, remembered per file contents and shapes (bench counts each row)."""
    key = (sha256, tuple(sorted((n, tuple(s)) for n, s in shapes.items())))
    if key not in _CACHE:
        _CACHE[key] = count(onnx_io.load(path, load_external_data=False), shapes)
    return _CACHE[key]
