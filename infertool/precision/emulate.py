"""fp16 / bf16 storage emulated in fp32, for runtimes that do not compute those types.

ONNX Runtime's CPU provider runs most fp16 ops in fp32 and drops the casts between them, so an
fp16 graph there is, in effect, an fp32 graph with rounded weights: an fp16 overflow never shows.
The emulation computes every op in fp32 and rounds each tensor the graph stores in fp16 or bf16
through a Cast pair (down and back up), which ONNX Runtime keeps because it loses precision. That
is what a GPU computes (fp16 storage, fp32 accumulation), overflow and underflow included. Every
tensor keeps its name, so the emulated graph's tensors match the converted graph's.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from infertool.precision.matching import tensor_types

REDUCED = (TensorProto.FLOAT16, TensorProto.BFLOAT16)
RAW, LOW, ROUNDED_INPUT = "__emulated_fp32", "__emulated_rounded", "__emulated_input"


def emulate(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The fp32 emulation of an fp16 / bf16 graph; None where it cannot be built (a reduced-precision
    tensor inside a subgraph, or one whose type shape inference cannot tell)."""
    types = tensor_types(model)
    graph = model.graph
    if _subgraphs_use_reduced(graph) or _untyped_outputs(graph, types):
        return None
    emulated = onnx.ModelProto()
    emulated.CopyFrom(model)
    graph = emulated.graph
    for tensor in graph.initializer:
        _widen_tensor(tensor)
    nodes = _round_inputs(graph, types)
    for node in graph.node:
        nodes += _widen_node(node, types)
    for value in [*graph.input, *graph.output]:
        if value.type.tensor_type.elem_type in REDUCED:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]
    del graph.node[:]
    graph.node.extend(nodes)
    return emulated


def _round_trip(raw: str, name: str, elem_type: int) -> list[onnx.NodeProto]:
    """`name` = `raw` rounded to `elem_type` and back to fp32."""
    return [
        onnx.helper.make_node("Cast", [raw], [name + LOW], to=elem_type, name=name + LOW),
        onnx.helper.make_node("Cast", [name + LOW], [name], to=TensorProto.FLOAT, name=name + RAW),
    ]


def _round_inputs(graph: onnx.GraphProto, types: dict[str, int]) -> list[onnx.NodeProto]:
    """Graph inputs of a reduced type (--no-keep-io-types) arrive in fp32 and are rounded first."""
    nodes = []
    for value in graph.input:
        elem_type = value.type.tensor_type.elem_type
        if elem_type in REDUCED:
            for node in graph.node:
                node.input[:] = [value.name + ROUNDED_INPUT if i == value.name else i for i in node.input]
            nodes += _round_trip(value.name, value.name + ROUNDED_INPUT, elem_type)
    return nodes


def _widen_node(node: onnx.NodeProto, types: dict[str, int]) -> list[onnx.NodeProto]:
    """The node computing in fp32, each reduced-precision output rounded as the graph stores it."""
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.TENSOR:
            _widen_tensor(attribute.t)
        elif attribute.name in ("to", "dtype") and attribute.i in REDUCED and node.op_type != "Cast":
            attribute.i = TensorProto.FLOAT
    if node.op_type == "Cast":
        target = next(a.i for a in node.attribute if a.name == "to")
        if target not in REDUCED:
            return [node]
        name = node.output[0]
        node.output[0] = name + LOW
        return [node, onnx.helper.make_node("Cast", [name + LOW], [name], to=TensorProto.FLOAT, name=name + RAW)]
    rounding = []
    if node.op_type not in ("Constant", "ConstantOfShape"):  # constants are exact in fp32
        for index, name in enumerate(node.output):
            if types.get(name) in REDUCED:
                node.output[index] = name + RAW
                rounding += _round_trip(name + RAW, name, types[name])
    return [node, *rounding]


def _widen_tensor(tensor: onnx.TensorProto) -> None:
    if tensor.data_type in REDUCED:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))


def _subgraphs_use_reduced(graph: onnx.GraphProto) -> bool:
    for node in graph.node:
        for attribute in node.attribute:
            for inner in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs):
                values = [*inner.input, *inner.output, *inner.value_info]
                if any(v.type.tensor_type.elem_type in REDUCED for v in values) or any(t.data_type in REDUCED for t in inner.initializer):
                    return True
                if _subgraphs_use_reduced(inner):
                    return True
    return False


def _untyped_outputs(graph: onnx.GraphProto, types: dict[str, int]) -> bool:
    """A node reading a reduced-precision tensor whose outputs shape inference could not type."""
    reduced = {name for name, elem_type in types.items() if elem_type in REDUCED}
    return any(set(n.input) & reduced and any(o and o not in types for o in n.output) for n in graph.node)
