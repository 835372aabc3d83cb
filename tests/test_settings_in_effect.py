"""A setting the user asked for is in effect, or the command says why not (exit 2): never a
misspelled name or an ignored shape passing in silence."""

import json

import numpy as np
import onnx
import pytest

from conftest import cli, one_line_error
from onnx_models import mlp, two_inputs


def test_misspelled_exclude_names_are_refused_with_near_names(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    proto = onnx.load(str(model))
    for index, node in enumerate(proto.graph.node):
        node.name = f"layer_{index}_{node.op_type.lower()}"
    onnx.save(proto, str(model))
    out = tmp_path / "m.fp16.onnx"
    typo = cli("quantize", model, "-p", "fp16", "-o", out, "--exclude-nodes", "layer_0_matmull")
    assert typo.returncode == 2 and "'layer_0_matmul'" in one_line_error(typo) and not out.exists()
    op = cli("quantize", model, "-p", "fp16", "-o", out, "--exclude-op-types", "Matmul")
    assert op.returncode == 2 and "'MatMul'" in one_line_error(op)
    assert cli("quantize", model, "-p", "fp16", "-o", out, "--exclude-nodes", "layer_0_matmul", "--exclude-op-types", "Relu").returncode == 0


def test_an_input_shape_that_the_input_file_contradicts_is_refused(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    np.savez(tmp_path / "x.npz", x=np.ones((4, 16), np.float32))
    refused = cli("run", model, "--inputs", tmp_path / "x.npz", "--input-shape", "x:4x32")
    assert refused.returncode == 2 and "disagrees with x 4x16" in one_line_error(refused)
    assert cli("run", model, "--inputs", tmp_path / "x.npz", "--input-shape", "x:4x16").returncode == 0


def test_generated_integer_inputs_follow_their_names_and_are_named(tmp_path):
    from infertool.inputs.feeds import FeedSource, InputOptions
    from infertool.tensors import TensorSpec

    specs = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq")), TensorSpec("sr", "int64", ())]
    feeds = FeedSource(specs, InputOptions(shapes={"input_ids": (2, 8)})).feeds(2)
    assert (feeds["attention_mask"] == 1).all() and feeds["sr"] == 16000 and feeds["input_ids"].max() < 100
    fed = InputOptions().describe({s.name: s.dtype for s in specs})
    assert fed == {"input_ids": "int64 uniform 0..99", "attention_mask": "int64 1 (a mask: ones)", "sr": "int64 16000 (a sample rate)"}
    model = two_inputs(tmp_path / "two.onnx")
    run = cli("run", model, "--input-shape", "ids:1x4", "--input-shape", "scale:1x1", "--int-range", "ids:3:7", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["fed"]["ids"] == "int64 uniform 3..6 (--int-range)"


def test_inputs_sharing_an_axis_at_different_sizes_name_the_clash():
    from infertool.errors import InfertoolError
    from infertool.tensors import TensorSpec, resolve_shapes

    specs = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq"))]
    with pytest.raises(InfertoolError, match="input_ids and attention_mask share the axis 'seq' but were given 32 and 64"):
        resolve_shapes(specs, {"input_ids": (1, 32), "attention_mask": (1, 64)})


def test_fifos_are_refused_wherever_inputs_are_read(tmp_path):
    """A named pipe would block the command forever: every input path is checked to be a regular file."""
    import os

    model = mlp(tmp_path / "m.onnx")
    for name in ("labels.csv", "a.wav", "x.npz"):
        os.mkfifo(tmp_path / name)
    np.savez(tmp_path / "real.npz", x=np.ones((2, 16), np.float32))
    for args in (("run", model, "--inputs", tmp_path / "a.wav"), ("run", model, "--inputs", tmp_path / "x.npz"),
                 ("bench", model, "--inputs", tmp_path / "real.npz", "--labels-csv", tmp_path / "labels.csv", "--iterations", "2", "--duration", "0")):
        result = cli(*args)
        assert result.returncode == 2 and "not a regular file" in one_line_error(result), result.stderr
