"""Reshapes that work on empty tensors: a Reshape whose target shape has -1, or is read at run time,
gets its sizes written in where the graph fixes them.

ONNX Runtime cannot infer -1 from a tensor of zero elements (a detector's boxes where nothing passed
the score threshold: {0,2,2} -> {0,-1}), and its Reshape fusion writes -1 for every size it cannot
trace to the Reshape's own input (`boxes.reshape(other.shape)`). Each size of the target becomes
0 (copy that dimension of the input: it is the input's own, or the same symbol where shape inference
proves it equal), the number shape inference proves it is, or -1 worked out from the input's static
dimensions. A target that is every size of one tensor y in order, Concat(Shape(y)[0], ...), becomes
Shape(y) (the same values, nothing for the fusion to turn into -1). Any other Reshape is left as it is."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

Dims = list  # a tensor's dimensions as shape inference found them: int, a symbol, or None


def explicit_sizes(model: onnx.ModelProto) -> int:
    """Give every top-level Reshape whose target the graph determines that target as a constant, in
    place; returns how many changed."""
    graph = model.graph
    try:
        dims = _dims(onnx.shape_inference.infer_shapes(model, data_prop=True).graph)
    except Exception:  # shape inference refuses the graph (or its 2 GiB): nothing is proven
        return 0
    producers = {o: n for n in graph.node for o in n.output}
    inputs = {i.name for i in graph.input}  # an initializer listed as an input too (IR < 4) is a default the caller may replace
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name not in inputs}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    replaced, shapes, taken = [], [], {*producers, *constants, *inputs, *(i.name for i in graph.initializer)}
    for node in graph.node:
        allowzero = next((a.i for a in node.attribute if a.name == "allowzero"), 0)
        if node.op_type != "Reshape" or allowzero or len(node.input) < 2:
            continue
        target = _target(node.input[1], node.input[0], producers, constants, dims)
        fixed = target is not None and _fixed(target, dims.get(node.input[0]))
        whole = None if fixed else _whole_shape(node.input[1], producers, constants, dims)
        if not (fixed or whole) or (node.input[1] in constants and -1 not in target):
            continue
        name = _unused_name(f"{node.name or node.output[0]}_explicit_shape", taken)
        if fixed:
            graph.initializer.append(numpy_helper.from_array(np.array(fixed, np.int64), name))
        else:  # Shape(y) itself: no Concat of sizes for ONNX Runtime's fusion to turn into -1
            shapes.append((node, onnx.helper.make_node("Shape", [whole], [name], name=name)))
        taken.add(name)
        replaced.append(node.input[1])
        node.input[1] = name
    for reshape, shape in shapes:
        graph.node.insert(list(graph.node).index(reshape), shape)
    _drop_unused(graph, replaced, inputs)
    return len(replaced)


def _whole_shape(name: str, producers: dict, constants: dict, dims: dict) -> str | None:
    """y where the target is Concat(Shape(y)[0], ..., Shape(y)[r-1]) of a tensor y of rank r: Shape(y)."""
    node = producers.get(name)
    if node is None or node.op_type != "Concat":
        return None
    parts = [_part(part, producers, constants, dims) for part in node.input]
    sources = {part[0][0] for part in parts if part and len(part) == 1}
    if len(sources) != 1 or None in sources or any(part is None or len(part) != 1 for part in parts):
        return None
    (source,) = sources
    indices = [part[0][1] for part in parts]
    return source if source in dims and indices == list(range(len(dims[source]))) else None


def explicit_note(count: int) -> list[str]:
    """What `explicit_sizes` did, as a note ([] where nothing)."""
    return [f"wrote the target shape of {count} Reshape node{'s' * (count != 1)} out (constants where the graph fixes it, else the "
            "Shape its sizes were read from), so an empty tensor (a detector's that finds nothing) reshapes on ONNX Runtime"] if count else []


def _dims(graph: onnx.GraphProto) -> dict[str, Dims]:
    found = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            found[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]
    found.update({i.name: list(i.dims) for i in graph.initializer})
    return found


def _target(name: str, data: str, producers: dict, constants: dict, dims: dict) -> list[int | None] | None:
    """The Reshape's target, size by size: 0 (a copy of the input's dimension at that position), a
    number, or None (unknown); None where its form is not one this reads."""
    if name in constants:
        return [int(v) for v in np.asarray(constants[name]).ravel()]
    node = producers.get(name)
    parts = list(node.input) if node is not None and node.op_type == "Concat" else [name]
    target: list[int | None] = []
    for part in parts:
        sizes = _part(part, producers, constants, dims)
        if sizes is None:
            return None
        at = len(target)
        target += [_size(dim, source, data, at + k, dims) for k, (source, dim) in enumerate(sizes)]
    return target


def _part(name: str, producers: dict, constants: dict, dims: dict) -> list[tuple[str | None, int | str | None]] | None:
    """(tensor, dimension) pairs a piece of a target reads: Shape(y), Shape(y)[i] (Gather, maybe
    Unsqueezed), or constants (tensor None)."""
    if name in constants:
        return [(None, int(v)) for v in np.asarray(constants[name]).ravel()]
    node = producers.get(name)
    if node is not None and node.op_type == "Unsqueeze":
        node = producers.get(node.input[0])
    if node is None or node.op_type not in ("Shape", "Gather"):
        return None
    if node.op_type == "Gather":
        shape, index = producers.get(node.input[0]), constants.get(node.input[1])
        if shape is None or shape.op_type != "Shape" or shape.attribute or index is None or index.size != 1 or (node.attribute and node.attribute[0].i):
            return None
        return [(shape.input[0], int(index.ravel()[0]))]
    return None if node.attribute or node.input[0] not in dims else [(node.input[0], i) for i in range(len(dims[node.input[0]]))]


def _size(dim: int | str | None, source: str | None, data: str, at: int, dims: dict) -> int | None:
    """One size of the target: a constant as it is; dimension `dim` of `source` read at run time as
    the number shape inference proves, or 0 where it is the input's own dimension at position `at`."""
    if source is None:
        return dim
    known, own = dims.get(source, []), dims.get(data, [])
    if not isinstance(dim, int) or not -len(known) <= dim < len(known):
        return None
    dim %= len(known)
    value = known[dim]
    if isinstance(value, int):
        return value
    if (source == data and dim == at) or (isinstance(value, str) and at < len(own) and own[at] == value):
        return 0
    return None


def _fixed(target: list[int | None], data: Dims | None) -> list[int] | None:
    """The target with no unknown size and no -1 (worked out from the input's static dimensions that
    no 0 copies), or None where the graph does not fix it."""
    if None in target or target.count(-1) > 1 or any(v < -1 for v in target):
        return None
    if -1 not in target:
        return target
    if data is None or any(v == 0 and k >= len(data) for k, v in enumerate(target)):
        return None
    rest = [d for k, d in enumerate(data) if not (k < len(target) and target[k] == 0)]
    given = math.prod(v for v in target if v > 0)
    if not all(isinstance(d, int) for d in rest) or not given or math.prod(rest) % given or not math.prod(rest):
        return None  # a -1 of size 0 cannot be written: a 0 in the target copies the input's dimension
    return [math.prod(rest) // given if v == -1 else v for v in target]


def _unused_name(base: str, taken: set[str]) -> str:
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    return name


def _drop_unused(graph: onnx.GraphProto, names: list[str], inputs: set[str]) -> None:
    """Remove the nodes (and initializers) that computed `names` where nothing else reads them, and theirs in
    turn; never a graph input (nor its initializer: the default a caller may replace)."""
    def read(g: onnx.GraphProto) -> list[str]:
        return [i for n in g.node for i in n.input] + [i for n in g.node for a in n.attribute
                                                        for s in ([a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs) for i in read(s)]
    readers = {}
    for name in [*read(graph), *(o.name for o in graph.output)]:
        readers[name] = readers.get(name, 0) + 1
    pending = list(names)
    while pending:
        name = pending.pop()
        if readers.get(name, 0) or name in inputs:
            continue
        initializer = next((i for i in graph.initializer if i.name == name), None)
        if initializer is not None:
            graph.initializer.remove(initializer)
        node = next((n for n in graph.node if name in n.output), None)
        if node is None or any(readers.get(o, 0) for o in node.output):
            continue
        graph.node.remove(node)
        for i in node.input:
            readers[i] -= 1
            pending.append(i)
