"""fp16 / bf16 graphs through onnxruntime's float16 converter (bf16: its fp16 output, retyped)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from infertool.errors import InfertoolError, first_line
from infertool.optional import require
from infertool.quiet import quiet

# Numerically fragile ops kept in fp32 by default: the pieces of a decomposed Softmax or LayerNorm
# (reductions, Pow, Sqrt, Exp), where fp16 overflows or loses small terms. The fused Softmax and
# LayerNormalization ops are not listed: ONNX Runtime's and TensorRT's fp16 kernels accumulate them
# in fp32, and keeping them fp32 cost BERT-base about 30 % at batch 32-256 on the CUDA EP for no
# accuracy gain (benchmarks/README.md). --exclude-op-types adds them back.
FRAGILE_OPS = ("Pow", "Sqrt", "Reciprocal", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp", "Exp", "Log")
FP16_MAX = 65504.0


def beyond_fp16(model: onnx.ModelProto) -> dict[str, tuple[str, float]]:
    """Nodes with a float weight beyond fp16's range: node name -> (op type, largest |value|).
    Converted, the weight would be clamped to 65504 (a BatchNormalization variance of 1e7 in
    PaddleOCR's detector is), so these nodes are to stay fp32. Such weights held by Constant nodes
    become initializers (which the converter leaves fp32 when only kept nodes read them), and
    unnamed nodes among them are named after their first output, so they can be kept."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR}
    found: dict[str, tuple[str, float]] = {}
    moved = []
    for node in graph.node:
        for name in node.input:
            tensor = initializers[name] if name in initializers else constants[name].attribute[0].t if name in constants else None
            if tensor is None or tensor.data_type != TensorProto.FLOAT:
                continue
            values = np.abs(numpy_helper.to_array(tensor))
            largest = float(values[np.isfinite(values)].max(initial=0.0))
            if largest > FP16_MAX:
                node.name = node.name or f"{node.output[0]}_{node.op_type}"
                found[node.name] = (node.op_type, max(largest, found.get(node.name, ("", 0.0))[1]))
                if name in constants:
                    initializers[name] = numpy_helper.from_array(numpy_helper.to_array(tensor), name)
                    graph.initializer.append(initializers[name])
                    moved.append(constants.pop(name))
    for constant in moved:
        graph.node.remove(constant)
    return found


def block_list(extra_op_types: Iterable[str], fragile: bool) -> list[str]:
    """onnxruntime's ops without fp16 kernels, plus the fragile ones, plus the user's."""
    require("onnxruntime", "fp16/bf16 conversion")
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    ops = [*DEFAULT_OP_BLOCK_LIST, *(FRAGILE_OPS if fragile else ()), *extra_op_types]
    return list(dict.fromkeys(ops))


def bodies(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """A node's subgraphs: If branches, Loop and Scan bodies."""
    found: list[onnx.GraphProto] = []
    for attribute in node.attribute:
        found += [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
    return found


def _nested(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    """Every subgraph inside `graph`, at any depth."""
    return [inner for node in graph.node for body in bodies(node) for inner in [body, *_nested(body)]]


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope names a node's subgraphs (If / Loop / Scan bodies) read."""
    names: set[str] = set()
    for graph in bodies(node):
        inner = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
        for inner_node in graph.node:
            names |= {i for i in [*inner_node.input, *_subgraph_inputs(inner_node)] if i and i not in inner}
    return names


def relocate_casts(graph: onnx.GraphProto) -> None:
    """onnxruntime's converter appends every cast it adds to the main graph, those of If / Loop /
    Scan bodies too: each cast whose input a body defines moves into that body (with its value
    info), then casts reading moved ones follow them."""
    defined_in: dict[str, onnx.GraphProto] = {}
    for body in _nested(graph):
        for name in [*(i.name for i in body.input), *(t.name for t in body.initializer), *(o for n in body.node for o in n.output)]:
            defined_in[name] = body
    casts = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast"}
    moving: dict[str, onnx.GraphProto] = {}
    while ready := {out: defined_in[source] for out, source in casts.items() if out not in moving and source in defined_in}:
        moving.update(ready)
        defined_in.update(ready)
    kept = []
    for node in graph.node:
        if node.op_type == "Cast" and node.output[0] in moving:
            moving[node.output[0]].node.append(node)
        else:
            kept.append(node)
    infos = []
    for value in graph.value_info:  # the converter's value info of body tensors goes with them
        if value.name in defined_in:
            defined_in[value.name].value_info.append(value)
        else:
            infos.append(value)
    if moving:
        del graph.node[:]
        graph.node.extend(kept)
    del graph.value_info[:]
    graph.value_info.extend(infos)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after its producers (the converter appends its casts at the end).
    Kahn's algorithm, taking ready nodes in their original order."""
    import heapq

    produced_by = {o: index for index, node in enumerate(graph.node) for o in node.output}
    consumers: list[list[int]] = [[] for _ in graph.node]
    pending = []
    for index, node in enumerate(graph.node):
        producers = {produced_by[i] for i in [*node.input, *_subgraph_inputs(node)] if i in produced_by} - {index}
        pending.append(len(producers))
        for producer in producers:
            consumers[producer].append(index)
    ready = [i for i, count in enumerate(pending) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for consumer in consumers[index]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                heapq.heappush(ready, consumer)
    if len(order) != len(graph.node):
        raise RuntimeError("the converted graph has a cycle")  # infertool's bug: exit 3
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)
    for node in graph.node:  # If / Loop / Scan bodies get casts appended too
        for body in bodies(node):
            topological_sort(body)


def _outputs_from_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph outputs all come from nodes: the converter renames an output that is
    an initializer and leaves the cast it adds without a source."""
    initializers = {t.name for t in model.graph.initializer}
    passed = {o.name for o in model.graph.output} & initializers
    if not passed:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        if tensor.name in passed:
            tensor.name = f"{tensor.name}__value"
            copy.graph.node.append(onnx.helper.make_node("Identity", [tensor.name], [tensor.name.removesuffix("__value")]))
    return copy


def to_float16(model: onnx.ModelProto, keep_io_types: bool, op_block: list[str], node_block: list[str]) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = _outputs_from_nodes(model)

    try:
        with quiet(("onnxruntime.transformers.float16",)):
            converted = convert_float_to_float16(
                model, keep_io_types=keep_io_types, op_block_list=op_block, node_block_list=node_block,
                disable_shape_infer=model.ByteSize() > 2**31 - 2**24,
            )
    except Exception as exc:
        raise InfertoolError(
            "onnxruntime's fp16 converter failed on this model", hint="exclude the failing ops with --exclude-op-types (--verbose shows its message)",
            detail=first_line(exc),
        ) from exc
    drop_duplicate_producers(converted.graph)
    relocate_casts(converted.graph)
    drop_round_trips(converted.graph)
    topological_sort(converted.graph)
    return converted


def drop_round_trips(graph: onnx.GraphProto, outer_types: dict[str, int] | None = None) -> None:
    """The converter casts a kept (fp32) node's output to fp16 and back for each kept consumer, so
    a tensor between two fp32 nodes is still rounded, and overflows, in fp16. Kept consumers read
    the fp32 tensor instead; where no fp16 reader is left, the fp32 tensor takes back its name.
    Readers inside If / Loop / Scan bodies follow; each body is then repaired the same way."""
    types = dict(outer_types or {})
    types.update({v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info]})
    types.update({t.name: t.data_type for t in graph.initializer})
    rewired, renamed, dropped = _round_trips(graph, types)
    if dropped:
        kept = [n for index, n in enumerate(graph.node) if index not in dropped]
        outputs = {v.name for v in graph.output} - {v.name for v in graph.input}
        reads = {name: renamed.get(rewired.get(name, name), rewired.get(name, name)) for name in {*rewired, *renamed}}
        for node in kept:
            node.output[:] = [renamed.get(o, o) for o in node.output]
            _rename_reads(node, reads)
        infos = [v for v in graph.value_info if v.name not in renamed.values() and renamed.get(v.name) not in outputs]
        for value in infos:
            value.name = renamed.get(value.name, value.name)
        del graph.node[:]
        graph.node.extend(kept)
        del graph.value_info[:]
        graph.value_info.extend(infos)
    for node in graph.node:
        for body in bodies(node):
            drop_round_trips(body, types)


def _round_trips(graph: onnx.GraphProto, types: dict[str, int]) -> tuple[dict[str, str], dict[str, str], set[int]]:
    """The fp16 round trips of `graph`: fp32 copies to rewire to their originals, originals to rename
    after their dropped fp16 copies, and the positions of the casts to drop."""
    fixed = {v.name for v in [*graph.input, *graph.output]} | {t.name for t in graph.initializer}
    nodes = list(graph.node)
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in {*node.input, *_subgraph_inputs(node)}:
            readers.setdefault(name, []).append(index)
    rewired: dict[str, str] = {}  # an fp32 copy of a rounded tensor -> the fp32 original
    renamed: dict[str, str] = {}  # an fp32 original -> the name of its dropped fp16 copy
    dropped: set[int] = set()
    outputs = {v.name for v in graph.output} - {v.name for v in graph.input}
    own = {o for n in graph.node for o in n.output}
    for position, down in enumerate(nodes):
        if not _casts_to(down, TensorProto.FLOAT16) or types.get(down.input[0]) != TensorProto.FLOAT:
            continue
        source, rounded = down.input[0], down.output[0]
        for index in readers.get(rounded, []):
            up = nodes[index]
            if not _casts_to(up, TensorProto.FLOAT):
                continue
            if up.output[0] not in fixed:
                rewired[up.output[0]] = source
                dropped.add(index)
            elif up.output[0] in outputs and source in own - fixed and source not in renamed:
                renamed[source] = up.output[0]  # a graph output: its producer writes it directly
                dropped.add(index)
        if rounded not in fixed and all(index in dropped for index in readers.get(rounded, [])):
            dropped.add(position)
            if source in own - fixed:
                renamed.setdefault(source, rounded)
    return rewired, renamed, dropped


def _rename_reads(node: onnx.NodeProto, names: dict[str, str]) -> None:
    """Point a node's reads, and those of the bodies inside it, at the new names."""
    node.input[:] = [names.get(i, i) for i in node.input]
    for body in bodies(node):
        for inner in body.node:
            _rename_reads(inner, names)


def _casts_to(node: onnx.NodeProto, elem_type: int) -> bool:
    return node.op_type == "Cast" and any(a.name == "to" and a.i == elem_type for a in node.attribute)


def drop_duplicate_producers(graph: onnx.GraphProto) -> None:
    """Some onnxruntime versions emit the same Cast twice (one per consumer, same output name),
    which breaks SSA form; identical duplicates are dropped."""
    first: dict[str, onnx.NodeProto] = {}
    kept = []
    for node in graph.node:
        clash = next((first[o] for o in node.output if o in first), None)
        if clash is None:
            first.update(dict.fromkeys(node.output, node))
            kept.append(node)
            continue
        same = (clash.op_type, list(clash.input), list(clash.output), list(clash.attribute)) == (
            node.op_type, list(node.input), list(node.output), list(node.attribute))
        if not same:
            raise RuntimeError(f"the converted graph produces '{node.output[0]}' twice")  # infertool's bug: exit 3
    if len(kept) != len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)


def to_bfloat16(model: onnx.ModelProto, keep_io_types: bool, op_block: list[str], node_block: list[str]) -> onnx.ModelProto:
    """fp16 conversion decides what to convert; every fp16 type then becomes bf16, with the
    weights rounded from their fp32 originals (no fp16 clamping or double rounding)."""
    import ml_dtypes

    originals = {t.name: t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    converted = to_float16(model, keep_io_types, op_block, node_block)

    def retype(tensor: TensorProto) -> None:
        if tensor.data_type != TensorProto.FLOAT16:
            return
        source = originals.get(tensor.name)
        values = numpy_helper.to_array(source) if source is not None else numpy_helper.to_array(tensor).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(values.astype(ml_dtypes.bfloat16), tensor.name))

    def retype_graph(graph: onnx.GraphProto) -> None:
        for tensor in graph.initializer:
            retype(tensor)
        for value in [*graph.input, *graph.output, *graph.value_info]:
            if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
                value.type.tensor_type.elem_type = TensorProto.BFLOAT16
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                    attribute.i = TensorProto.BFLOAT16
                if attribute.type == onnx.AttributeProto.TENSOR:
                    retype(attribute.t)
                if attribute.type == onnx.AttributeProto.GRAPH:
                    retype_graph(attribute.g)

    retype_graph(converted.graph)
    return converted
