"""Input sources: npz, npy, .pb test-data dirs (round trip), images, and their errors."""

import numpy as np
import pytest
from PIL import Image

from infertool import onnx_io
from infertool.errors import InfertoolError
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.generated import IntRanges
from infertool.inputs.images import PRESETS, ImagePreprocess
from infertool.inputs.tensor_files import read_pb_dir, write_pb_dir

from onnx_models import image_classifier, mlp, two_inputs


def specs(path):
    return onnx_io.input_specs(onnx_io.load(path))


def test_pb_round_trip(tmp_path):
    tensors = {"ids": np.arange(12, dtype=np.int64).reshape(3, 4), "scale": np.full((3, 1), 0.5, np.float32)}
    write_pb_dir(tensors, tmp_path / "test_data_set_0", prefix="input")
    back = read_pb_dir(tmp_path / "test_data_set_0", ["ids", "scale"], prefix="input")
    assert list(back) == ["ids", "scale"]
    for name in tensors:
        np.testing.assert_array_equal(back[name], tensors[name])
        assert back[name].dtype == tensors[name].dtype
    # the model-zoo layout: a folder of test_data_set_N dirs
    model = two_inputs(tmp_path / "two.onnx")
    feeds = FeedSource(specs(model), InputOptions(path=tmp_path)).feeds(None)
    np.testing.assert_array_equal(feeds["ids"], tensors["ids"])


def test_npz_checks_names_dtypes_and_shapes(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    good = {"ids": np.zeros((2, 5), np.int64), "scale": np.ones((2, 1), np.float32)}
    np.savez(tmp_path / "good.npz", **good)
    feeds = FeedSource(specs(model), InputOptions(path=tmp_path / "good.npz")).feeds(6)
    assert feeds["ids"].shape == (6, 5) and feeds["scale"].shape == (6, 1)  # repeated to the batch
    cases = {
        "names.npz": ({"idz": good["ids"], "scale": good["scale"]}, "unknown input name 'idz'"),
        "missing.npz": ({"ids": good["ids"]}, "lacks input scale"),
        "dtype.npz": ({"ids": good["ids"].astype(np.int32), "scale": good["scale"]}, "is int32, the model wants int64"),
        "shape.npz": ({"ids": good["ids"], "scale": np.ones((2, 3), np.float32)}, "has shape 2x3, the model wants batchx1"),
        "empty.npz": ({"ids": good["ids"][:0], "scale": good["scale"][:0]}, "input 'ids' in .* holds no samples"),  # a dynamic batch of 0
    }
    for file, (arrays, message) in cases.items():
        np.savez(tmp_path / file, **arrays)
        with pytest.raises(InfertoolError, match=message):
            FeedSource(specs(model), InputOptions(path=tmp_path / file))


def test_npy_for_single_input(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    np.save(tmp_path / "x.npy", np.ones((3, 16), np.float32))
    assert FeedSource(specs(model), InputOptions(path=tmp_path / "x.npy")).feeds(None)["x"].shape == (3, 16)
    with pytest.raises(InfertoolError, match="one array"):
        FeedSource(specs(two_inputs(tmp_path / "two.onnx")), InputOptions(path=tmp_path / "x.npy"))


def test_generated_inputs_need_dynamic_dims(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    with pytest.raises(InfertoolError, match="dynamic dimension 'seq'"):
        FeedSource(specs(model), InputOptions()).feeds(1)
    feeds = FeedSource(specs(model), InputOptions(shapes={"ids": (1, 9)}, int_range=IntRanges((0, 50)))).feeds(4)
    assert feeds["ids"].shape == (4, 9) and feeds["scale"].shape == (4, 1) and feeds["ids"].max() < 50


def test_image_preprocessing(tmp_path):
    model = image_classifier(tmp_path / "img.onnx")
    pixels = np.zeros((10, 12, 3), np.uint8)
    pixels[..., 0] = 255  # pure red
    Image.fromarray(pixels).save(tmp_path / "red.png")
    (tmp_path / "folder").mkdir()
    for i in range(3):
        Image.fromarray(pixels).save(tmp_path / "folder" / f"{i}.png")
    feeds = FeedSource(specs(model), InputOptions(path=tmp_path / "red.png", preprocess=PRESETS["unit"])).feeds(None)
    image = feeds["image"]
    # unit preset: no resize, center crop to the model's 8x8, x/255
    assert image.shape == (1, 3, 8, 8) and image.dtype == np.float32
    assert np.allclose(image[0, 0], 1.0) and np.allclose(image[0, 1:], 0.0)
    imagenet = FeedSource(specs(model), InputOptions(path=tmp_path / "red.png")).feeds(None)["image"]
    assert np.allclose(imagenet[0, 0], (1 - 0.485) / 0.229, atol=1e-4)
    assert np.allclose(imagenet[0, 2], (0 - 0.406) / 0.225, atol=1e-4)
    bgr = FeedSource(specs(model), InputOptions(path=tmp_path / "red.png", preprocess=ImagePreprocess(resize=None, crop=None, scale=1 / 255, mean=(0, 0, 0), std=(1, 1, 1), bgr=True))).feeds(None)["image"]
    assert np.allclose(bgr[0, 2], 1.0) and np.allclose(bgr[0, 0], 0.0)
    batch = FeedSource(specs(model), InputOptions(path=tmp_path / "folder")).feeds(None)["image"]
    assert batch.shape == (3, 3, 8, 8)


def test_unreadable_image(tmp_path):
    model = image_classifier(tmp_path / "img.onnx")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InfertoolError, match="cannot read image"):
        FeedSource(specs(model), InputOptions(path=tmp_path / "broken.jpg"))
