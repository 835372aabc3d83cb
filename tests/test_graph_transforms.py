"""Graph repairs applied after onnxruntime's float16 converter."""

import onnx
import pytest
from onnx import TensorProto, helper

from infertool.errors import InfertoolError
from infertool.precision.floats import drop_duplicate_producers, topological_sort


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
    with pytest.raises(InfertoolError, match="twice"):
        drop_duplicate_producers(clash)
