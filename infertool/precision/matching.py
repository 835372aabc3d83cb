"""The tensors of a converted graph that hold the values of its original's tensors, found by name
through the casts the fp16 converter adds and the Q/DQ pairs quantization adds; and graphs with
those tensors exposed as outputs, so any runtime returns them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx
from onnx import TensorProto

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
# ops that carry one tensor's value on under another name or type
CARRIERS = ("Cast", "QuantizeLinear", "DequantizeLinear")
GRAPH_INPUT = "(graph input)"


@dataclass(frozen=True)
class TensorMatch:
    name: str  # the reference's tensor
    node: str  # the reference node producing it ("" when unnamed)
    op: str
    inputs: tuple[str, ...]  # that node's inputs
    candidate: str  # the candidate tensor its readers see: a DequantizeLinear output where quantized
    produced: str  # the candidate tensor as its producer wrote it, before Q/DQ
    candidate_op: str  # the candidate's op producing it, looking through casts and Q/DQ

    @property
    def quantized(self) -> bool:
        return self.candidate != self.produced

    def to_dict(self) -> dict:
        return {"tensor": self.name, "node": self.node, "op": self.op, "candidate": self.candidate, "produced": self.produced}


@dataclass(frozen=True)
class Matching:
    tensors: tuple[TensorMatch, ...]  # topological order
    unmatched: tuple[str, ...]  # reference float tensors the candidate has no tensor for

    @property
    def same_ops(self) -> int:
        return sum(m.op == m.candidate_op for m in self.tensors)


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor in the main graph that shape inference (or the file) types."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # a graph over 2 GB or an op unknown to onnx: use the types the file has
        inferred = model
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info] if v.type.HasField("tensor_type")}
    types.update({t.name: t.data_type for t in graph.initializer})
    return {name: elem_type for name, elem_type in types.items() if elem_type}


def match(reference: onnx.ModelProto, candidate: onnx.ModelProto) -> Matching:
    """Every float tensor a reference node produces (Constant nodes aside), with its candidate counterpart."""
    types = tensor_types(reference)
    producers = {o: n for n in candidate.graph.node for o in n.output if o}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in candidate.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    found, unmatched = [], []
    for node in reference.graph.node:
        if node.op_type == "Constant":
            continue
        for name in node.output:
            if not name or types.get(name) not in FLOAT_TYPES:
                continue
            if name not in producers:
                unmatched.append(name)
                continue
            produced, seen = _versions(name, producers, readers)
            found.append(TensorMatch(name, node.name, node.op_type, tuple(i for i in node.input if i), seen, produced, _origin_op(produced, producers)))
    return Matching(tuple(found), tuple(unmatched))


def _versions(name: str, producers: dict, readers: dict) -> tuple[str, str]:
    """(as produced, as read): a quantized tensor is read through QuantizeLinear -> DequantizeLinear;
    quantization may have renamed the produced tensor and given the DequantizeLinear output its name."""
    producer = producers[name]
    if producer.op_type == "DequantizeLinear":
        quantizer = producers.get(producer.input[0])
        if quantizer is not None and quantizer.op_type == "QuantizeLinear":
            return quantizer.input[0], name
    for quantizer in readers.get(name, []):
        if quantizer.op_type == "QuantizeLinear" and quantizer.input[0] == name:
            dequantizer = next((n for n in readers.get(quantizer.output[0], []) if n.op_type == "DequantizeLinear"), None)
            if dequantizer is not None:
                return name, dequantizer.output[0]
    return name, name


def _origin_op(name: str, producers: dict) -> str:
    seen = set()
    while name in producers and name not in seen:
        seen.add(name)
        node = producers[name]
        if node.op_type not in CARRIERS:
            return node.op_type
        name = node.input[0]
    return GRAPH_INPUT


def expose(model: onnx.ModelProto, names: Iterable[str]) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """A copy of `model` with `names` also graph outputs; and the names whose type is unknown,
    which cannot be declared and are left out."""
    types = tensor_types(model)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    untyped = []
    for name in dict.fromkeys(names):
        if name in present:
            continue
        if name not in types:
            untyped.append(name)
            continue
        exposed.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
        present.add(name)
    return exposed, tuple(untyped)


def quantized_nodes(candidate: onnx.ModelProto) -> list[str]:
    """Named nodes that read a DequantizeLinear output: what quantization excluded nodes would leave in float."""
    dequantized = {n.output[0] for n in candidate.graph.node if n.op_type == "DequantizeLinear"}
    return [n.name for n in candidate.graph.node if n.name and n.op_type not in CARRIERS and dequantized & set(n.input)]


def reduced_nodes(candidate: onnx.ModelProto) -> list[str]:
    """Named nodes that write an fp16 or bf16 tensor (casts aside): what keeping in fp32 would change."""
    types = tensor_types(candidate)
    reduced = (TensorProto.FLOAT16, TensorProto.BFLOAT16)
    return [n.name for n in candidate.graph.node if n.name and n.op_type != "Cast" and any(types.get(o) in reduced for o in n.output)]
