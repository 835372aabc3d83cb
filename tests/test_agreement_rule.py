"""The one rule every verdict on outputs uses (agreement.Rule): each sample judged apart, tolerances
that follow the output's magnitude, zero and NaN/Inf outputs failing, arg-max for class scores."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertool.agreement import Rule, compare, judge, paired_rows

from conftest import cli, one_line_error


def test_one_broken_sample_fails_though_the_pooled_cosine_is_high(rng):
    ref = rng.standard_normal((32, 10))
    ref[24:] *= 0.002  # quiet samples
    got = ref.copy()
    got[24:] = 0.0  # what int8 makes of them
    pooled = float(np.dot(ref.ravel(), got.ravel()) / np.linalg.norm(ref) / np.linalg.norm(got))
    assert pooled > 0.9999  # one cosine over the batch would call this fine
    found = compare("y", ref, got, Rule.of("int8"), samples=32)
    assert not found.passed and found.failing == tuple(range(24, 32)) and found.samples == 32
    assert found.cosine == 0.0 and found.worst in range(24, 32)
    assert judge({"y": ref}, {"y": got}, Rule.of("int8"), 32).summary().startswith("8 of 32 samples fail")


def test_tolerance_follows_the_magnitude(rng):
    small = rng.standard_normal((4, 1000)) * 1e-3  # an untrained classifier's logits: all under fp16's old atol 0.01
    unrelated = rng.standard_normal((4, 1000)) * 1e-3
    found = compare("logits", small, unrelated, Rule.of("fp16"), samples=4)
    assert not found.passed and abs(found.cosine) < 0.2
    huge = rng.standard_normal((2, 100)) * 1e9  # logits near 1e9 (Inception-v3, MobileOne)
    assert compare("logits", huge, huge * (1 + 1e-7), Rule.of("fp32"), samples=2).passed
    boxes = rng.uniform(0, 800, (3, 100, 4))  # boxes in pixels
    assert compare("boxes", boxes, boxes + 1e-3, Rule.of("fp32"), samples=3).passed


@pytest.mark.parametrize("broken", [np.nan, np.inf, 0.0])
def test_nan_inf_and_zero_outputs_fail(rng, broken):
    ref = rng.standard_normal((2, 8))
    got = ref.copy()
    got[1] = broken
    found = compare("y", ref, got, Rule.of("fp16", min_cosine=-1.0), samples=2)  # even a cosine floor that passes anything
    assert not found.passed and found.failing == (1,)
    assert found.nonfinite == (0 if broken == 0.0 else 8)


def test_probabilities_are_judged_by_arg_max(rng):
    logits = rng.standard_normal((50, 20, 30))  # a CTC head: 20 time steps, 30 symbols
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    noisy = probs * rng.uniform(0.9, 1.1, probs.shape)
    found = compare("probs", probs, noisy / noisy.sum(-1, keepdims=True), Rule.of("int8"), samples=50)
    assert found.kind == "classes" and "arg-max" in found.rule
    flipped = probs.copy()
    flipped[3, 7] = flipped[3, 7][::-1]  # one time step of one sample reads another symbol
    found = compare("probs", probs, flipped, Rule.of("int8"), samples=50)
    assert 3 in found.failing and not found.passed  # 49 of 50 is under the default 99 %
    assert compare("probs", probs, flipped, Rule.of("int8", min_share=0.95), samples=50).passed
    values = compare("probs", probs, flipped, Rule.of("int8", kind="values"), samples=50)
    assert values.kind == "values"


def test_outputs_without_a_batch_axis_are_one_sample(rng):
    ref = rng.standard_normal((7, 3))  # e.g. NonMaxSuppression's selected indices: no batch axis
    found = compare("selected", ref, ref, Rule.of("fp32"), samples=2)
    assert found.samples == 1 and found.passed


def _quiet_cnn(path):
    """A CNN without biases: its outputs scale with its input, so quiet inputs give quiet outputs."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 10)).astype(np.float32) * 0.3, "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "w2"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "quiet_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_quantize_fails_on_the_quiet_samples_a_pooled_cosine_hides(tmp_path):
    model = _quiet_cnn(tmp_path / "cnn.onnx")
    data = np.random.default_rng(1).standard_normal((32, 3, 16, 16)).astype(np.float32) + 0.5
    data[24:] *= 0.002
    np.savez(tmp_path / "calib.npz", x=data)
    out = tmp_path / "cnn.int8.onnx"
    failed = cli("quantize", model, "-p", "int8", "--calib-data", tmp_path / "calib.npz", "--eval-data", tmp_path / "calib.npz",
                 "-o", out, "--json", tmp_path / "q.json")
    assert failed.returncode == 1, failed.stderr
    assert "8 of 32 samples fail" in one_line_error(failed) and not out.exists()
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["gates"]["agreement"]["failing"] == 8 and report["accuracy"]["failing"] == list(range(24, 32))


def _overflows_fp16(path):
    """x[batch,16] -> MatMul by weights of 30000 -> y: sums far past fp16's 65504."""
    weights = numpy_helper.from_array(np.full((16, 4), 30000.0, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "overflow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_build_engine_gates_its_precision_stage_like_quantize(tmp_path):
    model = _overflows_fp16(tmp_path / "overflow.onnx")
    quantized = cli("quantize", model, "-p", "fp16", "-o", tmp_path / "q.onnx")
    assert quantized.returncode == 1 and not (tmp_path / "q.onnx").exists()
    engine = tmp_path / "m.engine"
    args = ("build-engine", model, "-o", engine, "--backend", "trt-rtx", "-p", "fp16", "--compute-capability", "8.6", "--batch", "4")
    refused = cli(*args)
    assert refused.returncode == 1 and "fails its accuracy gate" in one_line_error(refused)
    assert not engine.exists() and not list(tmp_path.glob("m.engine*"))
    kept = cli(*args, "--no-gate", "--json")
    assert kept.returncode == 0, kept.stderr
    accuracy = json.loads(kept.stdout)["precision_stage"]["accuracy"]
    assert accuracy["passed"] is False and accuracy["outputs"][0]["nonfinite"] > 0 and engine.exists()


def _detections(rng, rows=300):
    scores = np.sort(rng.uniform(0.05, 1.0, rows))[::-1].astype(np.float32)
    return [rng.uniform(0, 320, (rows, 4)).astype(np.float32), scores, rng.integers(0, 91, rows)]


def test_rows_tied_within_rounding_are_paired_across_the_group(rng):
    """RetinaNet's rows 187/188: scores 0.7197244 vs 0.7197242, same label, boxes in the other order."""
    ref = _detections(rng)
    ref[1][188], ref[2][188] = ref[1][187] - 2e-7, ref[2][187]
    got = [a.copy() for a in ref]
    for array in got:
        array[[187, 188]] = array[[188, 187]]
    rule = Rule("fp32", 1e-4, 1e-3, None, kind="values")
    assert not compare("boxes", ref[0], got[0], rule).passed
    order = paired_rows(ref, got, rule)
    assert order is not None and list(np.flatnonzero(order != np.arange(300))) == [187, 188]
    assert all(compare("o", r, g[order], rule).passed for r, g in zip(ref, got))


def test_rows_that_truly_differ_are_not_paired(rng):
    rule = Rule("fp32", 1e-4, 1e-3, None, kind="values")
    ref = _detections(rng)
    got = [a.copy() for a in ref]
    for array in got:
        array[[10, 11]] = array[[11, 10]]
    wrong_box, wrong_label = [a.copy() for a in got], [a.copy() for a in got]
    wrong_box[0][10, 2] += 1.0  # a box that matches no row
    wrong_label[2][11] += 1  # the boxes and scores pair, the labels do not
    assert paired_rows(ref, wrong_box, rule) is None and paired_rows(ref, wrong_label, rule) is None
    assert paired_rows(ref, [got[0][:-1], got[1][:-1], got[2][:-1]], rule) is None  # another number of rows
    reversed_rows = [a[::-1].copy() for a in ref]  # every row has its partner, but the scores were not tied: a wrong order
    assert paired_rows(ref, reversed_rows, rule) is None
    assert paired_rows([np.zeros((0, 4))], [np.zeros((0, 4))], rule).size == 0


def test_pairing_refuses_beyond_its_budget(rng):
    """Masks (N, 1, H, W): pairing every row with every other would cost N² × H × W; refused, not slow."""
    ref = rng.standard_normal((400, 1, 64, 64)).astype(np.float32)
    assert paired_rows([ref], [ref[::-1].copy()], Rule.of("fp32")) is None
    tied = np.full(4, 0.5, np.float32)  # four rows with the same score, in either order
    assert paired_rows([ref[:4], tied], [ref[:4][::-1].copy(), tied], Rule.of("fp32")) is not None
