"""Every ONNX type through `run` and `bench`: types numpy lacks (bfloat16, float8, int4) fed and read
as ONNX Runtime's OrtValues, strings, sequences, optionals, models without inputs; outputs saved in
their own ONNX type, and .npz files that read back whatever the output names."""

import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from infertool.inputs.tensor_files import write_pb_dir

from conftest import cli, one_line_error
from onnx_models import constant, containers, strings, typed

FAST = ["--iterations", "3", "--duration", "0", "--warmup", "1"]
# ONNX type -> (ml_dtypes type, exactly representable sample values)
LACKING = {
    "BFLOAT16": (ml_dtypes.bfloat16, [-2.5, 0.0, 1.5, 3.0]),
    "FLOAT8E4M3FN": (ml_dtypes.float8_e4m3fn, [-1.5, 0.0, 0.25, 2.0]),
    "FLOAT8E4M3FNUZ": (ml_dtypes.float8_e4m3fnuz, [-1.5, 0.0, 0.25, 2.0]),
    "FLOAT8E5M2": (ml_dtypes.float8_e5m2, [-1.5, 0.0, 0.25, 2.0]),
    "FLOAT8E5M2FNUZ": (ml_dtypes.float8_e5m2fnuz, [-1.5, 0.0, 0.25, 2.0]),
    "INT4": (ml_dtypes.int4, [-8, -1, 0, 7]),
    "UINT4": (ml_dtypes.uint4, [0, 1, 9, 15]),
}


def read_pb(path, kind=TensorProto):
    proto = kind()
    proto.ParseFromString(path.read_bytes())
    return proto


@pytest.mark.parametrize("name", list(LACKING))
def test_types_numpy_lacks_run_with_their_own_type(name, tmp_path):
    kind, values = LACKING[name]
    model = typed(tmp_path / "m.onnx", getattr(TensorProto, name))
    x = np.array([values, values[::-1]], np.float32)
    t = x.astype(kind)
    write_pb_dir({"x": x, "t": t}, tmp_path / "in", prefix="input")
    result = cli("run", model, "--inputs", tmp_path / "in", "-o", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    summary = {o["name"]: o for o in json.loads(result.stdout)["outputs"]}
    # the ONNX type by name and real values, not uint8 bit patterns
    assert summary["as_type"]["dtype"] == name.lower()
    assert summary["as_type"]["min"] == min(values) and summary["as_type"]["max"] == max(values)
    saved = read_pb(tmp_path / "out" / "output_0.pb")
    assert saved.data_type == getattr(TensorProto, name)
    assert numpy_helper.to_array(saved).dtype == np.dtype(kind)
    np.testing.assert_array_equal(numpy_helper.to_array(saved).astype(np.float32), x)
    np.testing.assert_array_equal(numpy_helper.to_array(read_pb(tmp_path / "out" / "output_1.pb")), x)
    bench = cli("bench", model, "--batch", "2", *FAST, "--json")
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["rows"][0]["agreement"]["passed"]


def test_float8_output_is_saved_and_summarised_as_float8(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN)], "cast",
        [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [1, 4])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "fp8.onnx"))
    x = np.array([[0.5, -1.0, 2.0, 448.0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", tmp_path / "fp8.onnx", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)["outputs"][0]
    assert output["dtype"] == "float8e4m3fn" and (output["min"], output["max"]) == (-1.0, 448.0)
    saved = read_pb(tmp_path / "out" / "output_0.pb")
    assert saved.data_type == TensorProto.FLOAT8E4M3FN
    np.testing.assert_array_equal(numpy_helper.to_array(saved).astype(np.float32), x)
    as_npz = cli("run", tmp_path / "fp8.onnx", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "out.npz", "--json")
    assert any("float8e4m3fn" in note and ".npz" in note for note in json.loads(as_npz.stdout)["notes"])
    with np.load(tmp_path / "out.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["y"], x)  # widened to float32, the values kept


def test_strings_in_and_out_read_back(tmp_path):
    model = strings(tmp_path / "s.onnx")
    words = np.array([["ab", "c"], ["é", ""]], dtype=object)
    np.savez(tmp_path / "in.npz", words=words.astype(str))  # text as numpy saves it: no pickle
    result = cli("run", model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--json")
    assert result.returncode == 0, result.stderr
    assert {o["dtype"] for o in json.loads(result.stdout)["outputs"]} == {"string"}
    with np.load(tmp_path / "out.npz", allow_pickle=False) as saved:
        assert saved["doubled"].tolist() == [["abab", "cc"], ["éé", ""]]
        assert saved["file"].tolist() == words.tolist()  # an output named like np.savez's first parameter
        np.savez(tmp_path / "again.npz", words=saved["file"])
    again = cli("run", model, "--inputs", tmp_path / "again.npz", "-o", tmp_path / "again_out", "--json")
    assert again.returncode == 0, again.stderr
    assert numpy_helper.to_array(read_pb(tmp_path / "again_out" / "output_0.pb")).tolist() == [["abab", "cc"], ["éé", ""]]
    assert cli("bench", model, "--batch", "2", *FAST).returncode == 0


def test_output_names_that_are_savez_keywords(tmp_path):
    model = constant(tmp_path / "c.onnx")
    result = cli("run", model, "-o", tmp_path / "out.npz")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == ["allow_pickle", "file"]
        np.testing.assert_array_equal(saved["file"], [1.0, 1.5])
    bench = cli("bench", model, *FAST, "--json")  # no inputs at all
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["rows"][0]["input_shapes"] == {}


def test_sequences_and_optionals(tmp_path):
    model = containers(tmp_path / "c.onnx")
    result = cli("run", model, "--input-shape", "items:2x3", "-o", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    summary = {o["name"]: o for o in json.loads(result.stdout)["outputs"]}
    assert summary["parts"]["dtype"] == "sequence(float32)" and summary["parts"]["elements"] == 2
    joined = numpy_helper.to_array(read_pb(tmp_path / "out" / "output_0.pb"))
    parts = numpy_helper.to_list(read_pb(tmp_path / "out" / "output_1.pb", onnx.SequenceProto))
    np.testing.assert_array_equal(np.concatenate(parts), joined)
    assert numpy_helper.to_optional(read_pb(tmp_path / "out" / "output_2.pb", onnx.OptionalProto)).shape == (2,)
    # the saved folder reads back as inputs of the same types
    (tmp_path / "again").mkdir()
    write_pb_dir({"items": parts, "maybe": None}, tmp_path / "again", prefix="input", specs=_specs(model))
    again = cli("run", model, "--inputs", tmp_path / "again", "--json")
    assert again.returncode == 0, again.stderr
    assert {o["name"]: o["present"] for o in json.loads(again.stdout)["outputs"]}["maybe_out"] is False
    assert cli("bench", model, "--input-shape", "items:2x3", *FAST).returncode == 0
    refused = cli("run", model, "--input-shape", "items:2x3", "-o", tmp_path / "out.npz")
    assert refused.returncode == 2 and "sequence(float32), which .npz cannot hold" in one_line_error(refused)
    assert not (tmp_path / "out.npz").exists()


def _specs(model):
    from infertool import onnx_io

    return onnx_io.input_specs(onnx_io.load(model))


def _one_node(path, op, elem_type, opset):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node(op, ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", elem_type, [2])], [onnx.helper.make_tensor_value_info("y", elem_type, [2])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


def test_missing_kernels_and_ops_are_named(tmp_path):
    no_kernel = cli("run", _one_node(tmp_path / "int4.onnx", "Identity", TensorProto.INT4, 21))
    assert no_kernel.returncode == 2
    assert "ONNX Runtime has no kernel for op Identity at opset 21 on this backend" in one_line_error(no_kernel)
    no_op = cli("run", _one_node(tmp_path / "erfc.onnx", "Erfc", TensorProto.FLOAT, 17))
    assert no_op.returncode == 2
    line = one_line_error(no_op)
    assert "ONNX Runtime does not know op Erfc at opset 17" in line and "corrupt" not in line


def test_what_onnxruntime_python_cannot_take_is_one_line(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["words"], ["same"]), onnx.helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], "g",
        [onnx.helper.make_tensor_value_info("words", TensorProto.STRING, [2]), onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("same", TensorProto.STRING, [2]), onnx.helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [2])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "m.onnx"))
    result = cli("run", tmp_path / "m.onnx")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ONNX Runtime's Python API cannot run this model: its bfloat16 output 'y'" in result.stderr
