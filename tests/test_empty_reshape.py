"""A Reshape with -1 of an empty tensor (a detector's tail where nothing passed the score threshold):
ONNX Runtime cannot infer -1 from zero elements. Where the graph fixes the sizes, infertool writes them
in (precision/reshapes.py, in convert and quantize's fp16 graph); where it does not, the failure names
the cause, and quantize refuses a model that fails on inputs the original runs on."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertool.precision.reshapes import explicit_sizes

from conftest import cli, one_line_error

THRESHOLD = numpy_helper.from_array(np.array(0.5, np.float32), "threshold")


def _model(nodes: list, inputs: list, output: str, shape: list, initializers: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tail", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def kept_boxes(target: str) -> onnx.ModelProto:
    """corners[n,2,2] where score[n] > 0.5, as boxes[k,4]: the target [0,-1] ('constant'), or read from
    another tensor of the same rows, Shape(boxes)[0] and [1] ('shape', torchvision's clip_boxes_to_image;
    'width': corners[n,w,2], whose width no shape inference knows)."""
    nodes = [helper.make_node("Greater", ["score", "threshold"], ["keep"]),
             helper.make_node("Compress", ["corners", "keep"], ["kept"], axis=0)]
    initializers = [THRESHOLD]
    if target == "constant":
        initializers.append(numpy_helper.from_array(np.array([0, -1], np.int64), "target"))
    else:
        nodes += [helper.make_node("Flatten", ["kept"], ["rows"]) if target == "width" else  # rows[k,4]: the same k, by shape inference
                  helper.make_node("Reshape", ["kept", "flat"], ["rows"]),
                  helper.make_node("Shape", ["rows"], ["rows_shape"]),
                  *[helper.make_node("Gather", ["rows_shape", f"i{i}"], [f"d{i}"]) for i in (0, 1)],
                  *[helper.make_node("Unsqueeze", [f"d{i}", "axis0"], [f"u{i}"]) for i in (0, 1)],
                  helper.make_node("Concat", ["u0", "u1"], ["target"], axis=0)]
        initializers += [numpy_helper.from_array(np.array([0, 4], np.int64), "flat"), numpy_helper.from_array(np.array([0], np.int64), "axis0"),
                         *[numpy_helper.from_array(np.array(i, np.int64), f"i{i}") for i in (0, 1)]]
    nodes += [helper.make_node("Relu", ["kept"], ["clipped"]), helper.make_node("Reshape", ["clipped", "target"], ["boxes"], name="clip")]
    corners = ["n", "w" if target == "width" else 2, 2]
    inputs = [helper.make_tensor_value_info("corners", TensorProto.FLOAT, corners), helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])]
    return _model(nodes, inputs, "boxes", ["k", None], initializers)


def _run(model: onnx.ModelProto, score: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    corners = np.arange(score.size * 4, dtype=np.float32).reshape(-1, 2, 2)
    return session.run(None, {"corners": corners, "score": score})[0]


@pytest.mark.parametrize("target", ["constant", "shape"])
def test_explicit_sizes_make_an_empty_reshape_run_on_onnx_runtime(target):
    model = kept_boxes(target)
    nothing, some = np.zeros(6, np.float32), np.array([0.9, 0.1, 0.7, 0.2, 0.6, 0.0], np.float32)
    before = _run(model, some)
    if target == "constant":  # the shape case fails only where ONNX Runtime's fusion writes the -1 itself
        with pytest.raises(Exception, match=r"requested shape:\{0,-1\}"):
            _run(model, nothing)
    assert explicit_sizes(model) == 1
    onnx.checker.check_model(model, full_check=True)
    reshape = next(n for n in model.graph.node if n.output == ["boxes"])
    assert numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == reshape.input[1])).tolist() == [0, 4]
    assert _run(model, nothing).shape == (0, 4)
    np.testing.assert_array_equal(_run(model, some), before)
    if target == "shape":  # what only computed the target is gone
        assert not {"Gather", "Unsqueeze", "Concat"} & {n.op_type for n in model.graph.node}


def test_a_minus_one_the_graph_does_not_fix_is_left_alone():
    """[-1, 2] of kept[k,2,2]: -1 is 2k, which only the data says."""
    model = kept_boxes("constant")
    next(i for i in model.graph.initializer if i.name == "target").CopyFrom(numpy_helper.from_array(np.array([-1, 2], np.int64), "target"))
    assert explicit_sizes(model) == 0


def empties_in_fp16(path):
    """x[a,n], the columns kept where 1.0001 - 1.0 > 0: all of them in fp32, none in fp16 (1.0001 rounds
    to 1), then reshaped to [-1, 0] (a copy of the kept columns): -1 is a, which only the data says."""
    nodes = [helper.make_node("Sub", ["one_and_a_bit", "one"], ["bit"]),
             helper.make_node("Gather", ["x", "first"], ["row"], axis=0),
             helper.make_node("Mul", ["row", "zero"], ["nothing"]),
             helper.make_node("Add", ["nothing", "bit"], ["margin"]),
             helper.make_node("Greater", ["margin", "zero"], ["keep"]),
             helper.make_node("Compress", ["x", "keep"], ["kept"], axis=1),
             helper.make_node("Reshape", ["kept", "target"], ["y"], name="flatten")]
    initializers = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("one_and_a_bit", 1.0001), ("one", 1.0), ("zero", 0.0))]
    initializers += [numpy_helper.from_array(np.array(0, np.int64), "first"), numpy_helper.from_array(np.array([-1, 0], np.int64), "target")]
    onnx.save(_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", "n"])], "y", ["a", "k"], initializers), path)
    return path


def test_run_names_an_empty_tensor_reshaped_with_minus_one(tmp_path):
    model = kept_boxes("constant")
    next(i for i in model.graph.initializer if i.name == "threshold").CopyFrom(numpy_helper.from_array(np.array(100.0, np.float32), "threshold"))
    onnx.save(model, tmp_path / "m.onnx")
    result = cli("run", tmp_path / "m.onnx", "--input-shape", "corners:6x2x2", "--input-shape", "score:6")
    assert result.returncode == 2
    assert one_line_error(result).startswith(
        "error: ort-cpu: Reshape node 'clip' reshapes an empty tensor (shape {0,2,2}) to {0,-1}: the model's data-dependent part found nothing"
    ), result.stderr
    assert "--graph-opt disable" in result.stderr


def test_quantize_refuses_a_model_that_fails_where_the_original_runs(tmp_path):
    model = empties_in_fp16(tmp_path / "m.onnx")
    out = tmp_path / "m.fp16.onnx"
    result = cli("quantize", model, "-p", "fp16", "-o", out, "--input-shape", "x:2x8")
    error = one_line_error(result)
    assert result.returncode == 1 and not out.exists(), result.stderr
    assert error.startswith("error: the fp16 model fails where the original runs: ort-cpu: Reshape node 'flatten' reshapes an empty tensor (shape {")
    assert ",0}) to {-1,0}: " in error and "cannot infer -1 from zero elements; nothing was written (hint: " in error
    kept = cli("quantize", model, "-p", "fp16", "-o", out, "--input-shape", "x:2x8", "--no-gate")
    assert kept.returncode == 0 and out.exists() and "was kept anyway (--no-gate)" in kept.stdout + kept.stderr


def test_a_target_read_whole_from_another_tensor_becomes_its_shape():
    """Concat(Shape(rows)[0], Shape(rows)[1]) of rows[k,w] (w unknown): ONNX Runtime's Reshape fusion
    turns it into {0,-1}, which fails where k is 0; Shape(rows) is the same target, with nothing to fuse."""
    model = kept_boxes("width")
    some = np.array([0.9, 0.1, 0.7, 0.2, 0.6, 0.0], np.float32)
    before = _run(model, some)
    assert explicit_sizes(model) == 1  # (RetinaNet's fp16 graph failed so on ONNX Runtime 1.32; this small one it does not fuse)
    onnx.checker.check_model(model, full_check=True)
    target = next(n for n in model.graph.node if n.output == [next(n for n in model.graph.node if n.name == "clip").input[1]])
    assert target.op_type == "Shape" and target.input == ["rows"] and "Concat" not in {n.op_type for n in model.graph.node}
    assert _run(model, np.zeros(6, np.float32)).shape == (0, 4)
    np.testing.assert_array_equal(_run(model, some), before)


@pytest.mark.parametrize("ir", [3, 7])
def test_a_target_that_is_also_a_graph_input_is_left_to_the_caller(ir):
    """An initializer listed among the inputs (every one below IR 4, by choice after) is a default the caller
    may replace: not a constant to write in, and never removed (it left a required input with no value)."""
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Reshape", ["y", "s"], ["z"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]), helper.make_tensor_value_info("s", TensorProto.INT64, [2])]
    graph = helper.make_graph(nodes, "old", inputs, [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array([2, -1], np.int64), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = ir
    before = model.SerializeToString()
    assert explicit_sizes(model) == 0
    assert model.SerializeToString() == before
    x = np.ones((2, 3, 4), np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": x})[0].shape == (2, 12)
    if ir >= 4:  # ONNX Runtime lets a caller replace it from IR 4 on
        assert session.run(None, {"x": x, "s": np.array([4, -1], np.int64)})[0].shape == (4, 6)


def test_a_minus_one_of_size_zero_is_not_written_as_a_copy():
    """x[0,4] to [2,-1] is (2, 0); written out, [2, 0] would copy the input's 4 and fail."""
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 4])], "y", [2, 0],
                   [numpy_helper.from_array(np.array([2, -1], np.int64), "target")])
    assert explicit_sizes(model) == 0
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": np.zeros((0, 4), np.float32)})[0]
    assert got.shape == (2, 0)
