"""Graph repairs applied after onnxruntime's float16 converter, and the fp16 storage emulation."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertool.errors import InfertoolError
from infertool.precision.emulate import emulate
from infertool.precision.floats import block_list, drop_duplicate_producers, to_float16, topological_sort

from conftest import ort_run
from onnx_models import fp16_overflow, looped


def graph(nodes):
    return helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )


def test_sort_puts_producers_first():
    g = graph([helper.make_node("Relu", ["h"], ["y"]), helper.make_node("Neg", ["x"], ["h"])])
    topological_sort(g)
    assert [n.op_type for n in g.node] == ["Neg", "Relu"]
    onnx.checker.check_model(helper.make_model(g))


def test_identical_duplicate_casts_are_dropped():
    cast = helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16)
    back = helper.make_node("Cast", ["x16"], ["y"], to=TensorProto.FLOAT)
    g = graph([cast, helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16), back])
    drop_duplicate_producers(g)
    assert len(g.node) == 2
    onnx.checker.check_model(helper.make_model(g))
    clash = graph([cast, helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.BFLOAT16), back])
    with pytest.raises(RuntimeError, match="twice") as raised:  # infertool's own bug: exit 3, not a user error
        drop_duplicate_producers(clash)
    assert not isinstance(raised.value, InfertoolError)


def test_a_cycle_is_infertools_bug():
    g = graph([helper.make_node("Relu", ["h"], ["y"]), helper.make_node("Neg", ["y"], ["h"])])
    with pytest.raises(RuntimeError, match="cycle") as raised:
        topological_sort(g)
    assert not isinstance(raised.value, InfertoolError)


def test_fp16_casts_of_loop_and_scan_bodies_stay_in_their_bodies(tmp_path):
    """The Loop reads `w` and the Scan `scale` from the outer scope; Exp and ReduceMean inside them
    stay fp32, so their casts are made inside the bodies."""
    model = onnx.load(looped(tmp_path / "looped.onnx"))
    converted = to_float16(model, True, block_list([], True), [])
    onnx.checker.check_model(converted, full_check=True)
    assert [n.op_type for n in converted.graph.node if n.op_type != "Cast"] == ["ConstantOfShape", "Loop", "Scan"]
    onnx.save(converted, tmp_path / "looped.fp16.onnx")
    x = {"x": np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)}
    want, got = ort_run(tmp_path / "looped.onnx", x), ort_run(tmp_path / "looped.fp16.onnx", x)
    for name in ("y", "total"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-2, atol=1e-2)


def test_kept_nodes_read_each_other_in_fp32(tmp_path):
    """onnxruntime's converter casts a kept node's output to fp16 and back for a kept reader, which
    rounds (and overflows) it anyway; the round trip is dropped and the tensor keeps its name."""
    model = onnx.load(fp16_overflow(tmp_path / "m.onnx"))
    kept = to_float16(model, True, block_list([], True), ["amplify", "normalise"])
    onnx.checker.check_model(kept, full_check=True)
    nodes = {n.name: n for n in kept.graph.node}
    assert nodes["amplify"].output[0] == "big" and nodes["normalise"].input[0] == "big"
    everything = to_float16(model, True, block_list([], True), [n.name for n in model.graph.node])
    assert [n.op_type for n in everything.graph.node] == [n.op_type for n in model.graph.node]  # no cast left at all
    assert [n.output[0] for n in everything.graph.node] == [n.output[0] for n in model.graph.node]


def test_emulation_rounds_every_fp16_tensor_as_stored(tmp_path):
    gain = numpy_helper.from_array(np.array(3e4, np.float32), "gain")
    nodes = [helper.make_node("Mul", ["x", "gain"], ["a"], name="up"), helper.make_node("Div", ["a", "gain"], ["y"], name="down")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [gain])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    converted = to_float16(model, True, block_list([], True), [])
    emulated = emulate(converted)
    onnx.checker.check_model(emulated, full_check=True)
    assert {"a", "y"} <= {o for n in emulated.graph.node for o in n.output}  # the converted graph's names
    onnx.save(emulated, tmp_path / "e.onnx")
    x = np.array([3.0, 1.0001, 1e-6, -2.5], np.float32)
    got = ort_run(tmp_path / "e.onnx", {"x": x})["y"]
    g16 = np.float16(3e4).astype(np.float32)
    with np.errstate(over="ignore"):
        a = (x.astype(np.float16).astype(np.float32) * g16).astype(np.float16)
        expected = (a.astype(np.float32) / g16).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    assert np.isinf(got[0]) and got[1] != x[1]  # overflow and rounding, as fp16 storage has them
