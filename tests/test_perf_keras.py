"""The Keras framework baselines (keras: predict_on_batch, keras-xla: XLA-compiled) against ONNX Runtime."""

import json
import os

import pytest

from conftest import cli, one_line_error

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

pytestmark = pytest.mark.slow
FAST = ["--warmup", "2", "--iterations", "10", "--duration", "0"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small convolutional Keras model (NHWC), and another with two inputs, each converted as a user would."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("keras")
    image = keras.Input((8, 8, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(image))
    keras.Model(image, keras.layers.Dense(3, name="scores")(features)).save(folder / "conv.keras")
    left, right = keras.Input((5,), name="left"), keras.Input((7,), name="right")
    merged = keras.layers.Concatenate()([keras.layers.Dense(4)(left), right])
    keras.Model([left, right], keras.layers.Dense(2, name="logits")(merged)).save(folder / "two.keras")
    for name in ("conv", "two"):
        result = cli("convert", folder / f"{name}.keras", "-o", folder / f"{name}.onnx", "--quiet")
        assert result.returncode == 0, result.stderr
    return folder


def test_keras_and_xla_agree_with_ort(models):
    result = cli("bench", models / "conv.onnx", "-b", "ort-cpu", "-b", "keras", "-b", "keras-xla", "--source", models / "conv.keras",
                     "--batch", "2", *FAST, "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["backend"]: r for r in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"ort-cpu", "keras", "keras-xla"}
    for row in rows.values():
        assert row["agreement"]["passed"] and row["agreement"]["outputs"][0]["cosine"] > 0.99999
    assert rows["keras"]["settings"]["keras_call"] == "predict_on_batch"
    assert rows["keras-xla"]["settings"]["compile_seconds"]["image 2x8x8x3"] > 0


def test_a_keras_source_of_another_model_is_one_line(models):
    result = cli("bench", models / "two.onnx", "-b", "keras", "--source", models / "conv.keras", *FAST)
    assert result.returncode == 2
    assert "does not match two.onnx: its inputs are image, the ONNX model's left, right" in one_line_error(result)
