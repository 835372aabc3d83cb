"""Reading and writing ONNX files: friendly errors, IO specs, external data past 2 GB, and
`ModelInfo`, the description of a model that a command reads once and hands down."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from infertool import dtypes
from infertool.errors import InfertoolError, first_line
from infertool.files import check_input, file_sha256
from infertool.tensors import TensorSpec
from infertool.text import shorten
from infertool.vocabulary import INT8_DYNAMIC, INT8_ORT, INT8_QDQ

# protobuf cannot serialize a message of 2 GiB or more; stay clear of it
EXTERNAL_DATA_THRESHOLD = 1_800_000_000

QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear"}
DYNAMIC_INT8_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}
FLOAT8 = {onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ, onnx.TensorProto.FLOAT8E5M2, onnx.TensorProto.FLOAT8E5M2FNUZ}
PROTOBUF_LIMIT = 2**31  # bytes of one protobuf message: what an .onnx file can hold
FLOATS = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16", onnx.TensorProto.DOUBLE: "fp64"}


def load(path: Path, load_external_data: bool = True) -> onnx.ModelProto:
    check_input(path, "model file", PROTOBUF_LIMIT, hint="an ONNX file holds at most 2 GiB: larger models keep their weights in external data")
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, onnx.onnx_cpp2py_export.checker.ValidationError, OSError, ValueError, RecursionError) as exc:
        raise InfertoolError(
            f"{shorten(path)} is not a readable ONNX model (damaged, truncated, or its external data is missing)",
            hint="re-export it, or check that its external data file sits beside it", detail=first_line(exc),
        ) from exc
    if not model.HasField("graph"):
        raise InfertoolError(f"{shorten(path)} is not an ONNX model: it holds no graph", hint="give the .onnx file the exporter wrote")
    if not _text_names(model.graph):
        raise InfertoolError(f"{shorten(path)} has names that are not UTF-8 text", hint="re-export the model with text names")
    return model


def _text_names(graph: onnx.GraphProto) -> bool:
    """Whether every name is text: protobuf hands a name that is not UTF-8 back as bytes, which
    would fail deep inside a command instead of here."""
    names = [value.name for value in [*graph.input, *graph.output, *graph.initializer]]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
        subgraphs = [g for a in node.attribute for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs)]
        if not all(_text_names(g) for g in subgraphs):
            return False
    return all(isinstance(name, str) for name in names)


def opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


CONTAINERS = {"sequence_type": "sequence", "optional_type": "optional", "map_type": "map"}


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    """The tensor type at the core of the value's type, and the containers around it."""
    kind, container = value.type, []
    while kind.WhichOneof("value") in CONTAINERS:
        field = kind.WhichOneof("value")
        container.append(CONTAINERS[field])
        kind = kind.map_type.value_type if field == "map_type" else getattr(kind, field).elem_type
    tensor = kind.tensor_type if kind.HasField("tensor_type") else kind.sparse_tensor_type
    dims = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value != -1:
            dims.append(dim.dim_value)  # another negative size is kept, and refused where a tensor gets that shape
        else:
            dims.append(dim.dim_param or None)  # -1 (what Paddle exports write) is unknown, as ONNX Runtime reads it
    return TensorSpec(value.name, dtypes.from_onnx(tensor.elem_type), tuple(dims), tuple(container), tensor.HasField("shape"))


def input_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    initializers = {i.name for i in model.graph.initializer}
    return [_spec(v) for v in model.graph.input if v.name not in initializers]


def output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [_spec(v) for v in model.graph.output]


def data_dependent_axes(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> list[tuple[str, int]]:
    """(output, axis) for every output axis no input dimension names: sized by the data (a detector's
    boxes), or by the inputs' sizes in a way the exporter did not name (batch x seq rows)."""
    labels = {d for spec in inputs for d in spec.shape if isinstance(d, str) and d}
    return [(o.name, axis) for o in outputs for axis, d in enumerate(o.shape)
            if not isinstance(d, int) and not any(re.search(rf"\b{re.escape(label)}\b", d or "") for label in labels)]


def weight_tensors(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """The graph's weights by name, wherever it keeps them: initializers and `Constant` nodes
    (paddle2onnx and many TensorFlow exports hold every weight in Constant nodes)."""
    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = node.attribute[0].t
    return found


def elements(tensor: onnx.TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count


def graph_precision(model: onnx.ModelProto) -> str:
    """fp8 or int8 when the graph holds quantization ops; else the float type of most weight elements."""
    graph = model.graph
    weights = weight_tensors(graph)
    if any(n.op_type in QUANTIZED_OPS for n in graph.node):
        for node in graph.node:
            if node.op_type == "QuantizeLinear" and len(node.input) > 2:
                zero_point = weights.get(node.input[2])
                if zero_point is not None and zero_point.data_type in FLOAT8:
                    return "fp8"
        return "int8"
    floats: Counter[str] = Counter()
    for tensor in weights.values():
        if tensor.data_type in FLOATS:
            floats[FLOATS[tensor.data_type]] += max(1, elements(tensor))
    return floats.most_common(1)[0][0] if floats else "fp32"


def precision_label(model: onnx.ModelProto, precision: str) -> str:
    """The precision as tables show it, telling int8 graphs apart: int8-dyn (dynamic quantization),
    int8-qdq (Q/DQ with int8 zero points of 0 only: TensorRT's explicit quantization), int8-ort
    (uint8 or non-zero zero points, QLinear ops: onnxruntime's CPU layout)."""
    if precision != "int8":
        return precision
    graph = model.graph
    ops = {n.op_type for n in graph.node}
    if ops & DYNAMIC_INT8_OPS:
        return INT8_DYNAMIC
    if ops & {"QLinearConv", "QLinearMatMul"}:
        return INT8_ORT
    constants = weight_tensors(graph)
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            zero_point = constants.get(node.input[2]) if len(node.input) > 2 else None  # none: uint8
            if zero_point is None or zero_point.data_type != onnx.TensorProto.INT8 or numpy_helper.to_array(zero_point).any():
                return INT8_ORT
    return INT8_QDQ


def rename_dims(model: onnx.ModelProto, names: dict[tuple[str, int], str]) -> None:
    """Set `dim_param` of (tensor name, axis) pairs among the graph's inputs and outputs."""
    for value in [*model.graph.input, *model.graph.output]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            label = names.get((value.name, axis))
            if label is not None:
                dim.dim_param = label


def external_data_path(path: Path) -> Path:
    return path.with_name(path.name + ".data")


def file_bytes(path: Path) -> int:
    """The model's size on disk, its external data included."""
    data = external_data_path(path)
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def save(model: onnx.ModelProto, path: Path) -> bool:
    """Write `model` to `path`; past ~1.8 GB of weights they go to `<name>.data` beside it.

    Returns whether external data was used.
    """
    weights = sum(t.ByteSize() for t in model.graph.initializer)
    external = weights >= EXTERNAL_DATA_THRESHOLD
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
            location=external_data_path(path).name, size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))
    return external


@dataclass(frozen=True)
class ModelInfo:
    """An ONNX model as every layer needs it: read, hashed and typed once per command."""

    path: Path
    sha256: str
    bytes: int
    precision: str
    opset: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    label: str = ""  # the precision as tables show it (int8-qdq, int8-ort, int8-dyn); else the precision

    @property
    def dynamic_inputs(self) -> frozenset[str]:
        return frozenset(s.name for s in self.inputs if s.dynamic_axes)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path), "sha256": self.sha256, "bytes": self.bytes, "precision": self.precision,
            "precision_label": self.label or self.precision, "opset": self.opset, "inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs],
        }


def describe(path: Path, model: onnx.ModelProto | None = None) -> ModelInfo:
    """The model's description; pass `model` when the caller has loaded it already."""
    proto = model if model is not None else load(path, load_external_data=False)
    precision = graph_precision(proto)
    return ModelInfo(
        path, file_sha256(path), file_bytes(path), precision, opset(proto),
        tuple(input_specs(proto)), tuple(output_specs(proto)), precision_label(proto, precision),
    )
