"""Real Keras -> ONNX conversions through the CLI, checked in ONNX Runtime at a new batch size."""

import json
import os

import numpy as np
import pytest

from conftest import ROOT, cli, one_line_error, ort_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow
TESTS = {"PYTHONPATH": str(ROOT / "tests")}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Keras models saved in every supported format, with the live model to compare against."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("keras")
    sequential = keras.Sequential([keras.Input((8,), name="features"), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, name="scores")])
    sequential.save(folder / "seq.keras")
    sequential.save(folder / "seq.h5")
    a, b = keras.Input((5,), name="left"), keras.Input((7,), name="right")
    merged = keras.layers.Concatenate()([keras.layers.Dense(4)(a), b])
    functional = keras.Model([a, b], keras.layers.Dense(2, name="logits")(merged))
    functional.save(folder / "two.keras")
    tf.saved_model.save(functional, str(folder / "two_savedmodel"))
    x = keras.Input((4,), name="x")
    keras.Model(x, keras.layers.Lambda(lambda t: t * 3.0)(x)).save(folder / "lambda.keras")
    from keras_layers import Scale

    keras.Model(x, Scale(5.0)(x)).save(folder / "custom.keras")
    keras.Model(x, keras.layers.Dense(3, activation="gelu")(x)).save(folder / "gelu.keras")  # exact gelu: tf2onnx emits Erfc
    norm = keras.layers.Normalization()  # adapted: its mean and variance are state Keras 3 keeps as plain tensors
    norm.adapt(np.random.default_rng(0).normal(5.0, 3.0, (64, 8)).astype("float32"))
    normalized = keras.Model(features := keras.Input((8,), name="features"), keras.layers.Dense(3)(norm(features)))
    normalized.save(folder / "norm.keras")
    return folder, {"seq": sequential, "two": functional, "norm": normalized}


def convert(*args):
    result = cli("convert", *args, "--json", env=TESTS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sequential_keras_file(saved, tmp_path):
    folder, models = saved
    out = tmp_path / "seq.onnx"
    report = convert(folder / "seq.keras", "-o", out)
    assert report["exporter"] == "tf2onnx" and report["inputs"][0]["name"] == "features"
    assert report["inputs"][0]["shape"] == ["batch", 8] and report["outputs"][0]["shape"] == ["batch", 3]
    assert report["validation"]["passed"] and [b["batch"] for b in report["validation"]["batches"]] == [1, 3]
    x = np.random.default_rng(0).standard_normal((6, 8), dtype=np.float32)
    got = ort_run(out, {"features": x})
    np.testing.assert_allclose(next(iter(got.values())), models["seq"](x).numpy(), atol=1e-5)


def test_normalization_state_stays_constant(saved, tmp_path):
    folder, models = saved
    out = tmp_path / "norm.onnx"
    report = convert(folder / "norm.keras", "-o", out)
    assert [i["name"] for i in report["inputs"]] == ["features"]  # not its mean and variance too
    x = np.random.default_rng(1).normal(5.0, 3.0, (4, 8)).astype(np.float32)
    np.testing.assert_allclose(next(iter(ort_run(out, {"features": x}).values())), models["norm"](x).numpy(), atol=1e-5)


def test_functional_two_inputs(saved, tmp_path):
    folder, models = saved
    out = tmp_path / "two.onnx"
    report = convert(folder / "two.keras", "--input-shape", "left:2x5", "--input-shape", "right:2x7", "-o", out)
    assert [i["name"] for i in report["inputs"]] == ["left", "right"]
    assert [o["name"] for o in report["outputs"]] == ["logits"]
    left = np.ones((9, 5), np.float32)
    right = np.linspace(-1, 1, 63, dtype=np.float32).reshape(9, 7)
    np.testing.assert_allclose(ort_run(out, {"left": left, "right": right})["logits"], models["two"]([left, right]).numpy(), atol=1e-5)


def test_h5_file(saved, tmp_path):
    folder, models = saved
    out = tmp_path / "h5.onnx"
    report = convert(folder / "seq.h5", "-o", out, "--opset", "13")
    assert report["opset"] == 13
    x = np.full((4, 8), 0.5, np.float32)
    np.testing.assert_allclose(next(iter(ort_run(out, {"features": x}).values())), models["seq"](x).numpy(), atol=1e-5)


def test_savedmodel_directory(saved, tmp_path):
    folder, models = saved
    out = tmp_path / "sm.onnx"
    report = convert(folder / "two_savedmodel", "-o", out)
    assert report["validation"]["passed"]
    feeds = {i["name"]: np.ones((3, i["shape"][1]), np.float32) for i in report["inputs"]}
    assert all(i["shape"][0] == "batch" for i in report["inputs"])
    got = next(iter(ort_run(out, feeds).values()))
    left, right = (feeds[n] for n in sorted(feeds))
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, models["two"]([left, right]).numpy(), atol=1e-5)


def test_lambda_layer_needs_trust(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "lambda.onnx"
    refused = cli("convert", folder / "lambda.keras", "-o", out)
    assert refused.returncode == 2 and "--trust-model" in one_line_error(refused)
    assert not out.exists()
    convert(folder / "lambda.keras", "-o", out, "--trust-model")
    np.testing.assert_allclose(next(iter(ort_run(out, {"x": np.ones((2, 4), np.float32)}).values())), 3.0)


def test_custom_objects(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "custom.onnx"
    refused = cli("convert", folder / "custom.keras", "-o", out)
    assert refused.returncode == 2 and "--custom-objects" in one_line_error(refused)
    convert(folder / "custom.keras", "--custom-objects", "keras_layers", "-o", out)
    np.testing.assert_allclose(next(iter(ort_run(out, {"x": np.ones((3, 4), np.float32)}).values())), 5.0)


def test_opset_beyond_tf2onnx_is_refused(saved, tmp_path):
    folder, _ = saved
    result = cli("convert", folder / "seq.keras", "--opset", "21", "-o", tmp_path / "x.onnx")
    assert result.returncode == 2 and "opset 18 at most" in one_line_error(result)


def test_an_op_no_opset_defines_fails_even_unvalidated(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "gelu.onnx"
    result = cli("convert", folder / "gelu.keras", "--no-validate", "-o", out)
    assert result.returncode == 1
    line = one_line_error(result)
    assert "uses op Erfc, which ONNX (opset 17) does not define" in line and "approximate=True" in line
    assert not out.exists()
