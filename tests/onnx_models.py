"""Small ONNX models built directly with onnx.helper (no framework needed)."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def mlp(path: Path, batch="batch", hidden: int = 32, seed: int = 0) -> Path:
    """x[batch,16] -> MatMul -> Relu -> MatMul -> y[batch,10]."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((16, hidden), dtype=np.float32) * 0.3, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 10), dtype=np.float32) * 0.3, "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], [w1, w2],
    )
    return _save(graph, path)


def two_inputs(path: Path) -> Path:
    """ids[batch,seq] int64 and scale[batch,1] float -> mean embedding * scale -> out[batch,8]."""
    table = numpy_helper.from_array(np.arange(400, dtype=np.float32).reshape(50, 8) / 100, "table")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("ReduceMean", ["emb"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]), helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 8])], [table],
    )
    return _save(graph, path)


def image_classifier(path: Path, classes: int = 4, softmax: bool = False) -> Path:
    """image[batch,3,8,8] -> per-channel mean -> linear -> logits[batch,classes] (or their softmax, `probs`)."""
    weights = numpy_helper.from_array(np.arange(3 * classes, dtype=np.float32).reshape(3, classes) / 10, "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes, "image_classifier", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("probs" if softmax else "logits", TensorProto.FLOAT, ["batch", classes])], [weights],
    )
    return _save(graph, path)


def big_weights(path: Path, megabytes: int = 64) -> Path:
    """y = x + sum(w): ~megabytes of weights ORT must keep in memory."""
    count = megabytes * 2**20 // 4
    w = numpy_helper.from_array(np.ones((count,), dtype=np.float32), "w")
    nodes = [helper.make_node("ReduceSum", ["w"], ["s"], keepdims=1), helper.make_node("Add", ["x", "s"], ["y"])]
    graph = helper.make_graph(
        nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], [w],
    )
    return _save(graph, path)


def fp16_overflow(path: Path, gain: float = 3e4) -> Path:
    """x[batch,16] -> project -> relu -> amplify (x gain: values ~1e5, past fp16's 65504) ->
    normalise (LayerNormalization, back to O(1)) -> head -> y[batch,10]. Fine in fp32, NaN in fp16."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) * 0.3, "w1"),
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.ones(32, np.float32), "ln_scale"), numpy_helper.from_array(np.zeros(32, np.float32), "ln_bias"),
        numpy_helper.from_array(rng.standard_normal((32, 10)).astype(np.float32) * 0.3, "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="project"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "gain"], ["big"], name="amplify"),
        helper.make_node("LayerNormalization", ["big", "ln_scale", "ln_bias"], ["norm"], name="normalise", axis=-1),
        helper.make_node("MatMul", ["norm", "w2"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "fp16_overflow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits,
    )
    return _save(graph, path)


def int8_outlier(path: Path, gain: float = 200.0) -> Path:
    """image[batch,3,64,64] -> conv1 -> relu1 -> boost (channel 0 x gain: an outlier channel) ->
    conv2 (reads the other channels) -> relu2 -> pool -> flatten -> head -> logits[batch,10].
    Per-tensor int8 of conv2's input spends its range on the outlier and crushes the rest."""
    rng = np.random.default_rng(0)
    w2 = rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2
    w2[:, 0] *= 0.005
    gains = np.ones((1, 8, 1, 1), np.float32)
    gains[0, 0] = gain
    arrays = {"w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "b1": np.zeros(8, np.float32), "gain": gains,
              "w2": w2, "b2": np.zeros(8, np.float32), "w3": rng.standard_normal((8, 10)).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["a1"], name="relu1"),
        helper.make_node("Mul", ["a1", "gain"], ["act"], name="boost"),
        helper.make_node("Conv", ["act", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["a2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["a2"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "w3"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "int8_outlier", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )
    return _save(graph, path)
def _model(path: Path, nodes, inputs, outputs, opset: int = 21, initializers=()) -> Path:
    model = helper.make_model(helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers)), opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def typed(path: Path, elem_type: int) -> Path:
    """Both ways through one ONNX type: `x` float -> Cast -> `as_type`, and `t` (that type) -> Cast -> `as_float`."""
    nodes = [helper.make_node("Cast", ["x"], ["as_type"], to=elem_type), helper.make_node("Cast", ["t"], ["as_float"], to=TensorProto.FLOAT)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]), helper.make_tensor_value_info("t", elem_type, ["batch", 4])]
    outputs = [helper.make_tensor_value_info("as_type", elem_type, ["batch", 4]), helper.make_tensor_value_info("as_float", TensorProto.FLOAT, ["batch", 4])]
    return _model(path, nodes, inputs, outputs, opset=23)


def strings(path: Path) -> Path:
    """words string[batch,2] -> StringConcat with itself -> doubled; and a string output named `file`."""
    nodes = [helper.make_node("StringConcat", ["words", "words"], ["doubled"]), helper.make_node("Identity", ["words"], ["file"])]
    inputs = [helper.make_tensor_value_info("words", TensorProto.STRING, ["batch", 2])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.STRING, ["batch", 2]) for n in ("doubled", "file")]
    return _model(path, nodes, inputs, outputs, opset=20)


def containers(path: Path) -> Path:
    """A sequence in (`items`, joined), a sequence out (`parts`), an optional in and out (`maybe`)."""
    item = helper.make_tensor_type_proto(TensorProto.FLOAT, ["n", 3])
    maybe = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    nodes = [
        helper.make_node("ConcatFromSequence", ["items"], ["joined"], axis=0),
        helper.make_node("SplitToSequence", ["joined"], ["parts"], axis=0),
        helper.make_node("Identity", ["maybe"], ["maybe_out"]),
        helper.make_node("OptionalHasElement", ["maybe"], ["has"]),
    ]
    inputs = [helper.make_value_info("items", helper.make_sequence_type_proto(item)), helper.make_value_info("maybe", maybe)]
    outputs = [
        helper.make_tensor_value_info("joined", TensorProto.FLOAT, [None, 3]), helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, None),
        helper.make_value_info("maybe_out", maybe), helper.make_tensor_value_info("has", TensorProto.BOOL, []),
    ]
    return _model(path, nodes, inputs, outputs, opset=18)


def constant(path: Path, names=("allow_pickle", "file")) -> Path:
    """No inputs; outputs with the names given (np.savez's keywords by default)."""
    nodes = [helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [2], [i, i + 0.5])) for i, name in enumerate(names)]
    return _model(path, nodes, [], [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in names])


def looped(path: Path) -> Path:
    """x[batch,8] -> Loop (3 steps: h = Tanh(h @ w) + Exp(-h²) mean, `w` read from the outer
    scope) -> Scan over the batch (running sum of Exp(row) · scale, `scale` from the outer scope)
    -> y[batch,8] and total[8]. Exp and ReduceMean stay fp32 in fp16 conversion, inside the bodies."""
    rng = np.random.default_rng(0)
    outer = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32) * 0.4, "w"),
             numpy_helper.from_array(np.full(8, 0.5, np.float32), "scale"),
             numpy_helper.from_array(np.array(3, np.int64), "steps"), numpy_helper.from_array(np.array(True), "go")]
    step = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "w"], ["hw"]), helper.make_node("Tanh", ["hw"], ["t"]),
         helper.make_node("Mul", ["h_in", "h_in"], ["sq"]), helper.make_node("Neg", ["sq"], ["neg"]), helper.make_node("Exp", ["neg"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["m"], keepdims=1), helper.make_node("Add", ["t", "m"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "step", [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("h_in", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("h_out", TensorProto.FLOAT, ["batch", 8])],
    )
    accumulate = helper.make_graph(
        [helper.make_node("Exp", ["row"], ["er"]), helper.make_node("Mul", ["er", "scale"], ["scaled"]),
         helper.make_node("Add", ["sum_in", "scaled"], ["sum_out"]), helper.make_node("Identity", ["sum_out"], ["row_out"])],
        "accumulate", [helper.make_tensor_value_info("sum_in", TensorProto.FLOAT, [8]), helper.make_tensor_value_info("row", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("sum_out", TensorProto.FLOAT, [8]), helper.make_tensor_value_info("row_out", TensorProto.FLOAT, [8])],
    )
    nodes = [
        helper.make_node("Loop", ["steps", "go", "x"], ["h"], body=step),
        helper.make_node("ConstantOfShape", ["eight"], ["zero"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("Scan", ["zero", "h"], ["total", "y"], body=accumulate, num_scan_inputs=1),
    ]
    graph = helper.make_graph(
        nodes, "looped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8]), helper.make_tensor_value_info("total", TensorProto.FLOAT, [8])],
        [*outer, numpy_helper.from_array(np.array([8], np.int64), "eight")],
    )
    return _save(graph, path)
