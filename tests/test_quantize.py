"""`quantize`: fp16 / bf16 / int8 / fp8 as ONNX transforms, checked in real ONNX Runtime sessions."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from conftest import MODELS, cli, one_line_error, ort_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cnn(cnn_onnx, tmp_path_factory):
    folder = tmp_path_factory.mktemp("quant")
    rng = np.random.default_rng(0)
    np.savez(folder / "calib.npz", image=rng.standard_normal((64, 3, 16, 16), dtype=np.float32))
    return cnn_onnx, folder / "calib.npz"


def quantize(*args):
    result = cli("quantize", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_int8_qdq_for_tensorrt(cnn, tmp_path):
    model, calib = cnn
    out = tmp_path / "cnn.int8.onnx"
    report = quantize(model, "-p", "int8", "--calib-data", calib, "-o", out)
    quantized = onnx.load(out)
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") >= ops.count("QuantizeLinear")
    initializers = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    zero_points = [initializers[n.input[2]] for n in quantized.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2]
    assert zero_points and all(np.all(z == 0) for z in zero_points)
    # Q/DQ only feeds what TensorRT fuses: every DequantizeLinear output goes to Conv / Gemm / MatMul
    consumers = {i: n.op_type for n in quantized.graph.node for i in n.input}
    dq_outputs = [n.output[0] for n in quantized.graph.node if n.op_type == "DequantizeLinear"]
    assert {consumers[o] for o in dq_outputs} <= {"Conv", "Gemm", "MatMul"}
    # per-channel weights by default: Conv weight scales have one entry per output channel
    assert any(np.asarray(initializers[n.input[1]]).size > 1 for n in quantized.graph.node if n.op_type == "DequantizeLinear")
    assert report["graph"]["nonzero_zero_points"] == 0
    assert report["calibration"]["samples"] == 52 and report["calibration"]["held_out"] == 12 and report["calibration"]["method"] == "minmax"
    accuracy = report["accuracy"]
    assert accuracy["min_cosine"] >= 0.99 and accuracy["top1"] is not None
    x = np.random.default_rng(5).standard_normal((3, 3, 16, 16), dtype=np.float32)
    got, ref = ort_run(out, {"image": x})["output"], ort_run(model, {"image": x})["output"]
    assert np.dot(got.ravel(), ref.ravel()) / np.linalg.norm(got) / np.linalg.norm(ref) >= 0.99


def test_fp16_keeps_io_fp32(cnn, tmp_path):
    model, _ = cnn
    out = tmp_path / "cnn.fp16.onnx"
    report = quantize(model, "-p", "fp16", "-o", out)
    converted = onnx.load(out)
    onnx.checker.check_model(converted, full_check=True)
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in [*converted.graph.input, *converted.graph.output])
    kinds = {t.name: t.data_type for t in converted.graph.initializer}
    for node in converted.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            assert all(kinds[i] == TensorProto.FLOAT16 for i in node.input if i in kinds and kinds[i] in (TensorProto.FLOAT, TensorProto.FLOAT16)), node.name
    assert report["graph"]["fp16_initializers"] > 0
    assert report["accuracy"]["min_cosine"] > 0.999
    no_io = tmp_path / "io16.onnx"
    quantize(model, "-p", "fp16", "--no-keep-io-types", "-o", no_io)
    assert onnx.load(no_io).graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16


def test_fp16_of_a_torchscript_if(tmp_path):
    """Scripted control flow exports as an If whose branches read outer-scope tensors and hold ops
    kept fp32 (ReduceSum, Pow): the casts of the branches belong inside them."""
    model, fp16 = tmp_path / "gated.onnx", tmp_path / "gated.fp16.onnx"
    converted = cli("convert", f"{MODELS}:gated", "--input-shape", "2x16", "--exporter", "torchscript", "-o", model)
    assert converted.returncode == 0, converted.stderr
    assert "If" in {n.op_type for n in onnx.load(model).graph.node}
    report = quantize(model, "-p", "fp16", "-o", fp16)
    assert report["accuracy"]["min_cosine"] > 0.999
    onnx.checker.check_model(onnx.load(fp16), full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 16), dtype=np.float32)
    for sign in (1.0, -1.0):  # the first Linear's output is mostly one sign or the other: both branches run
        feeds = {"x": sign * 50 * np.abs(x)}
        want, got = ort_run(model, feeds)["output"], ort_run(fp16, feeds)["output"]
        assert np.allclose(got, want, rtol=1e-2, atol=1e-2 * np.abs(want).max()), (sign, got, want)


def test_bf16_is_typed_and_evaluated_by_emulation_on_the_cpu(cnn, tmp_path):
    model, _ = cnn
    out = tmp_path / "cnn.bf16.onnx"
    report = quantize(model, "-p", "bf16", "-o", out)
    converted = onnx.load(out)
    onnx.checker.check_model(converted)
    weights = [t for t in converted.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.BFLOAT16, TensorProto.FLOAT16)]
    assert weights and all(t.data_type == TensorProto.BFLOAT16 for t in weights)
    original = {t.name: numpy_helper.to_array(t) for t in onnx.load(model).graph.initializer}
    name = next(t.name for t in weights if t.name in original)
    rounded = numpy_helper.to_array(next(t for t in weights if t.name == name)).astype(np.float32)
    np.testing.assert_allclose(rounded, original[name], rtol=2**-8)
    # ORT's CPU provider has no bf16 Conv: the bf16 storage is emulated in fp32, and said so
    accuracy = report["accuracy"]
    assert not accuracy["unavailable"] and "rounds every tensor the model stores in bf16" in accuracy["emulation"]
    assert 0.995 < accuracy["min_cosine"] < 1.0


def test_fp8_qdq(cnn, tmp_path):
    model, calib = cnn
    out = tmp_path / "cnn.fp8.onnx"
    report = quantize(model, "-p", "fp8", "--calib-data", calib, "--calib-samples", "16", "-o", out)
    assert report["calibration"]["method"] == "distribution" and report["calibration"]["samples"] == 16
    quantized = onnx.load(out)
    zero_point_types = {t.data_type for t in quantized.graph.initializer if t.name.endswith("zero_point")}
    assert zero_point_types == {TensorProto.FLOAT8E4M3FN}
    assert report["accuracy"]["min_cosine"] > 0.9


def test_calibration_cache_is_reused(cnn, tmp_path):
    model, calib = cnn
    cache = tmp_path / "ranges.json"
    first = quantize(model, "-p", "int8", "--calib-data", calib, "--calib-cache", cache, "-o", tmp_path / "a.onnx")
    assert cache.is_file() and first["calibration"]["cache_hit"] is False
    second = quantize(model, "-p", "int8", "--calib-cache", cache, "-o", tmp_path / "b.onnx", "--eval-data", calib)
    assert second["calibration"]["cache_hit"] is True
    assert onnx.load(tmp_path / "a.onnx").graph == onnx.load(tmp_path / "b.onnx").graph


def test_dynamic_int8_for_ort_only(cnn, tmp_path):
    model, _ = cnn
    refused = cli("quantize", model, "-p", "int8-dynamic", "-o", tmp_path / "d.onnx")
    assert refused.returncode == 2 and "TensorRT cannot run dynamically quantized" in one_line_error(refused)
    report = quantize(model, "-p", "int8-dynamic", "--target", "ort", "-o", tmp_path / "d.onnx")
    assert report["graph"]["dynamic_quantize_linear"] > 0


def test_accuracy_gate(cnn, tmp_path):
    model, calib = cnn
    out = tmp_path / "gated.onnx"
    failed = cli("quantize", model, "-p", "int8", "--calib-data", calib, "--min-cosine", "1.01", "-o", out, "--json")
    assert failed.returncode == 1 and "accuracy gate failed" in one_line_error(failed)
    gate = json.loads(failed.stdout)["gates"]["agreement"]
    assert gate["passed"] is False and gate["rule"]["min_cosine"] == 1.01
    assert not out.exists()
    passed = quantize(model, "-p", "int8", "--calib-data", calib, "--min-cosine", "0.9", "--min-top1", "0.5", "-o", out)
    assert passed["passed"] and out.exists()


def test_excluded_nodes_stay_float(cnn, tmp_path):
    model, calib = cnn
    gemm = next(n.name for n in onnx.load(model).graph.node if n.op_type == "Gemm")
    out = tmp_path / "partial.onnx"
    quantize(model, "-p", "int8", "--calib-data", calib, "--exclude-nodes", gemm, "-o", out)
    quantized = onnx.load(out)
    producers = {o: n.op_type for n in quantized.graph.node for o in n.output}
    node = next(n for n in quantized.graph.node if n.name == gemm)
    assert producers.get(node.input[0]) != "DequantizeLinear"


def test_bad_calibration_data(cnn, tmp_path):
    model, _ = cnn
    np.savez(tmp_path / "names.npz", pixels=np.zeros((4, 3, 16, 16), np.float32))
    np.savez(tmp_path / "dtype.npz", image=np.zeros((4, 3, 16, 16), np.float64))
    np.savez(tmp_path / "shape.npz", image=np.zeros((4, 3, 8, 8), np.float32))
    np.savez(tmp_path / "few.npz", image=np.zeros((4, 3, 16, 16), np.float32))
    cases = [
        (["--calib-data", tmp_path / "names.npz"], "unknown input name 'pixels'"),
        (["--calib-data", tmp_path / "dtype.npz"], "is float64, the model wants float32"),
        (["--calib-data", tmp_path / "shape.npz"], "has shape 4x3x8x8"),
        (["--calib-data", tmp_path / "few.npz", "--calib-samples", "100"], "has 4 samples, fewer than the 100"),
        ([], "int8 needs calibration data"),
    ]
    out = tmp_path / "q.onnx"
    for args, message in cases:
        result = cli("quantize", model, "-p", "int8", *args, "-o", out)
        assert result.returncode == 2, result.stderr
        assert message in one_line_error(result)
        assert not out.exists()


def test_already_quantized_is_refused(cnn, tmp_path):
    model, calib = cnn
    first = tmp_path / "once.onnx"
    quantize(model, "-p", "int8", "--calib-data", calib, "-o", first)
    again = cli("quantize", first, "-p", "int8", "--calib-data", calib, "-o", tmp_path / "twice.onnx")
    assert again.returncode == 2 and "already int8" in one_line_error(again)
    assert not (tmp_path / "twice.onnx").exists()


def test_generated_evaluation_inputs_follow_input_shape(tmp_path):
    from onnx_models import two_inputs

    model = two_inputs(tmp_path / "two.onnx")
    report = quantize(model, "-p", "fp16", "--input-shape", "ids:1x7", "--int-range", "0:50", "--eval-samples", "4", "-o", tmp_path / "two16.onnx")
    assert report["accuracy"]["samples"] == 4 and report["accuracy"]["min_cosine"] > 0.999
    unsized = cli("quantize", model, "-p", "fp16", "-o", tmp_path / "x.onnx")
    assert unsized.returncode == 2 and "dynamic dimension 'seq'" in one_line_error(unsized)


def test_a_model_the_gpu_evaluator_rejects_is_not_told_to_try_the_gpu(tmp_path, monkeypatch):
    """The way out 'try --eval-backend ort-cuda on a GPU' is for CPU evaluators; on a GPU backend it
    would send the user where they already are (optimize's bf16 ResNet-50 on the H100 said so)."""
    from types import SimpleNamespace

    from infertool.agreement import Rule
    from infertool.errors import InfertoolError
    from infertool.pipelines import accuracy
    from infertool.reporting import SilentReporter

    def outputs(path, backend, batches, advance, timeout=None):
        if path.name == "converted.onnx":
            raise InfertoolError(f"ONNX Runtime rejects the graph of {path} as invalid")
        return {"y": np.zeros((1, 2), np.float32)}

    monkeypatch.setattr(accuracy, "_outputs", outputs)
    monkeypatch.setattr(accuracy, "emulated", lambda converted, precision, backend, folder: (converted, ""))
    samples = {"x": np.zeros((1, 2), np.float32)}
    for on_gpu, hinted in ((True, False), (False, True)):
        monkeypatch.setattr(accuracy.registry, "require", lambda name, on_gpu=on_gpu: SimpleNamespace(capabilities=SimpleNamespace(on_gpu=on_gpu)))
        report = accuracy.evaluate(tmp_path / "model.onnx", tmp_path / "converted.onnx", tmp_path / "shown.onnx", [], samples, "random",
                                   Rule.of("bf16"), "some-backend", SilentReporter())
        assert "rejects the graph of" in report.unavailable and str(tmp_path / "shown.onnx") in report.unavailable
        assert ("try --eval-backend ort-cuda" in report.unavailable) == hinted
