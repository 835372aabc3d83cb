"""int8 that means what it says: entropy calibration that clips outliers, evaluation on samples
the calibration did not see, and int8 defaults chosen per op and target."""

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, cli
from onnx_models import mlp


def _input_scale(path) -> float:
    """The scale of the QuantizeLinear that quantizes the graph input x."""
    model = onnx.load(path)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    return float(weights[node.input[1]])


@pytest.fixture
def outliers(tmp_path):
    """N(0, 1) inputs with five values of 100.0 among them."""
    data = np.random.default_rng(0).standard_normal((40, 16), dtype=np.float32)
    data[[3, 11, 19, 27, 33], [0, 5, 9, 2, 14]] = 100.0
    np.savez(tmp_path / "calib.npz", x=data)
    return mlp(tmp_path / "mlp.onnx"), tmp_path / "calib.npz"


@pytest.mark.parametrize("target", ["tensorrt", "ort"])
def test_entropy_calibration_clips_outliers_that_minmax_keeps(outliers, tmp_path, target):
    model, calib = outliers
    scales = {}
    for method in ("minmax", "entropy"):
        out = tmp_path / f"{method}.onnx"
        done = cli("quantize", model, "-p", "int8", "--target", target, "--calib-data", calib, "--calib-method", method, "-o", out, "--no-gate", "--json")
        assert done.returncode == 0, done.stderr
        scales[method] = _input_scale(out)
        calibration = json.loads(done.stdout)["calibration"]
    levels = 127 if target == "tensorrt" else 255
    assert scales["minmax"] >= 100 / levels * 0.99  # minmax stretches its range to the outliers
    assert scales["entropy"] < 20 / levels  # entropy clips them
    assert calibration["method"] == "entropy" and 0 < calibration["clipped_tensors"] <= calibration["tensors"]


def test_entropy_without_outliers_says_its_ranges_are_minmax(tmp_path):
    """x @ I on uniform inputs: no tensor has a tail to clip."""
    eye = numpy_helper.from_array(np.eye(16, dtype=np.float32), "eye")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "eye"], ["y"])], "identity", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])], [eye],
    )
    model = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).uniform(-1, 1, (40, 16)).astype(np.float32))
    done = cli("quantize", model, "-p", "int8", "--calib-data", tmp_path / "calib.npz", "--calib-method", "entropy", "-o", tmp_path / "q.onnx", "--no-gate", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["calibration"]["clipped_tensors"] == 0
    assert any("they are minmax's" in note for note in result["notes"])


def test_calibrated_int8_is_evaluated_on_held_out_samples(outliers, tmp_path):
    model, calib = outliers
    done = cli("quantize", model, "-p", "int8", "--calib-data", calib, "-o", tmp_path / "q.onnx", "--no-gate", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["accuracy"]["samples"] == 8 and result["calibration"]["samples"] == 32 and result["calibration"]["held_out"] == 8
    assert "held out of calibration" in result["accuracy"]["data"] and result["settings"]["holdout"] is True
    shown = cli("quantize", model, "-p", "int8", "--calib-data", calib, "-o", tmp_path / "q.onnx", "--no-gate", "--force")
    assert "calib.npz (every 5th sample, held out of calibration) judged" in " ".join(shown.stdout.split())
    same = json.loads(cli("quantize", model, "-p", "int8", "--calib-data", calib, "-o", tmp_path / "q.onnx", "--no-gate", "--force", "--no-holdout", "--json").stdout)
    assert same["accuracy"]["samples"] == 40 and same["calibration"]["held_out"] == 0
    assert any("an optimistic verdict" in note for note in same["notes"])


def test_silero_vad_int8_dynamic_finds_the_speech(tmp_path):
    """silero-VAD streamed through its int8-dynamic graph. With int8 Conv weights (ConvInteger's
    int8 path) it never said "speech" (43.5 % of frames, what all-silence scores); with uint8 ones,
    as onnxruntime's guidance has it, it finds the speech."""
    sys.path.insert(0, str(ROOT / "examples"))  # the example imports its common.py
    spec = importlib.util.spec_from_file_location("speech_example", ROOT / "examples" / "speech" / "run.py")
    speech = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speech)
    model = importlib.metadata.files("silero-vad")
    model = next(Path(f.locate()) for f in model if f.name == "silero_vad_16k_op15.onnx")
    wave = speech.waveform()
    chunk = speech.evaluation_chunk(wave, tmp_path, model)
    out = tmp_path / "vad.int8.onnx"
    done = cli("quantize", model, "-p", "int8-dynamic", "--target", "ort", "--eval-data", chunk, "-o", out, "--no-gate", "--json")
    assert done.returncode == 0, done.stderr
    assert "Conv weights uint8" in json.loads(done.stdout)["graph"]["types"]
    truth = json.loads((ROOT / "examples" / "speech" / "speech.json").read_text())
    probabilities, _ = speech.stream(out, "ort-cpu", wave)
    precision, recall, accuracy = speech.frame_scores(speech.segments(probabilities), truth["speech"], len(wave) / speech.RATE)
    assert recall >= 0.8 and accuracy >= 0.8, (precision, recall, accuracy)


def test_ctc_criterion_judges_the_decoded_text():
    """A recogniser's step-wise arg-max may move (blank a step earlier) while the text stays; a
    changed character fails."""
    from infertool.agreement import Rule, compare

    def scores(steps: list[int]) -> np.ndarray:
        out = np.full((len(steps), 4), 0.01, np.float32)
        out[np.arange(len(steps)), steps] = 0.97
        return out

    ref = np.stack([scores([0, 1, 1, 0, 2]), scores([0, 3, 0, 0, 2])])
    shifted = np.stack([scores([1, 1, 0, 0, 2]), scores([0, 3, 3, 0, 2])])  # the same text: "12", "32"
    changed = np.stack([scores([0, 1, 1, 0, 3]), scores([0, 3, 0, 0, 2])])  # "13" for "12"
    rule = Rule.of("int8", kind="ctc")
    assert compare("probs", ref, shifted, rule).passed and not compare("probs", ref, shifted, Rule.of("int8", kind="classes")).passed
    judged = compare("probs", ref, changed, rule)
    assert not judged.passed and judged.failing == (0,) and "decoded CTC text agrees" in judged.rule


def test_a_calibration_cache_beside_the_output_is_kept_and_reused(tmp_path, monkeypatch):
    """debug precision converts every step into the folder that holds its calibration cache: the cache
    is no scratch file, so the later steps read the ranges and do not calibrate again."""
    from infertool.precision import qdq, transform
    from infertool.precision.settings import PrecisionSettings
    from infertool.reporting import SilentReporter

    model_path = mlp(tmp_path / "m.onnx")
    model = onnx.load(model_path)
    settings = PrecisionSettings("int8", calib_cache=tmp_path / "ranges.calib")
    batches = [{"x": np.random.default_rng(i).standard_normal((4, 16)).astype(np.float32)} for i in range(2)]
    calibrated = []
    monkeypatch.setattr(qdq, "_calibrate", lambda *a, real=qdq._calibrate: calibrated.append(1) or real(*a))
    for step in range(2):
        transform.convert(model_path, model, tmp_path / f"step{step}.onnx", settings, batches, SilentReporter())
        assert settings.calib_cache.exists()
    assert len(calibrated) == 1
