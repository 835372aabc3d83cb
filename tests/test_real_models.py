"""Real-weight models shipped in pip packages (PaddleOCR via rapidocr-onnxruntime, silero-VAD; the
Makefile installs both with --no-deps), the presets for them, the bugs they showed, and the three
examples in their --quick form."""

import importlib
import importlib.metadata
import json
import runpy
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from infertool import onnx_io
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.images import PRESETS

from conftest import ROOT, cli, ort_run


def shipped(package: str, name: str):
    return next(f.locate() for f in importlib.metadata.files(package) if f.name == name)


def test_paddle_negative_batch_is_dynamic_and_cls_preset_pads_right(tmp_path):
    model = shipped("rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx")
    spec = onnx_io.describe(model).inputs[0]
    assert spec.shape[0] is None and spec.shape[1] == 3  # the file says -1
    Image.new("RGB", (40, 20), (255, 255, 255)).save(tmp_path / "crop.png")
    image = FeedSource([spec], InputOptions(path=tmp_path / "crop.png", preprocess=PRESETS["paddleocr-cls"])).feeds(8)["x"]
    assert image.shape == (8, 3, 48, 192)
    np.testing.assert_allclose(image[0, :, :, :96], 1.0)  # 40x20 -> 96x48, white -> (1 - 0.5) / 0.5
    np.testing.assert_array_equal(image[0, :, :, 96:], 0.0)  # right padding, zero after normalizing
    scores = ort_run(model, {"x": image})["save_infer_model/scale_0.tmp_1"]
    assert scores.shape == (8, 2)


def test_paddleocr_preset_rounds_sides_to_32_in_bgr(tmp_path):
    pixels = np.zeros((50, 70, 3), np.uint8)
    pixels[..., 2] = 255  # blue
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    spec = onnx_io.describe(shipped("rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx")).inputs[0]
    image = FeedSource([spec], InputOptions(path=tmp_path / "scene.png", preprocess=PRESETS["paddleocr"])).feeds(None)["x"]
    assert image.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(image[0, 0], 1.0)  # BGR: blue first
    np.testing.assert_allclose(image[0, 2], -1.0)


def _batchnorm_beyond_fp16(path, as_constant: bool):
    """Conv -> BatchNormalization whose variance (1e7) fp16 cannot hold, as PaddleOCR's detector has."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 300, "w")
    params = {"scale": np.ones(4), "bias": np.zeros(4), "mean": rng.standard_normal(4) * 100, "var": np.full(4, 1e7)}
    tensors = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"])]
    if as_constant:  # Paddle exports keep BN parameters in unnamed Constant nodes
        nodes = [helper.make_node("Constant", [], [t.name], value=t) for t in tensors] + nodes
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight] + ([] if as_constant else tensors))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_fp16_keeps_nodes_whose_weights_fp16_cannot_hold_in_fp32(tmp_path):
    for as_constant in (True, False):
        model = _batchnorm_beyond_fp16(tmp_path / f"bn{as_constant}.onnx", as_constant)
        done = cli("quantize", model, "-p", "fp16", "-o", tmp_path / f"bn{as_constant}.fp16.onnx", "--json", "--force")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["accuracy"]["min_cosine"] > 0.9999, report["accuracy"]  # clamped to 65504 it was ~0.5
        assert any("beyond fp16's range" in note for note in report["notes"])


def test_silero_vad_quantizes_with_a_scalar_input_and_a_state(tmp_path):
    """The sample-rate input is a scalar and the state is [2, batch, 128]: neither is cut as a batch."""
    model = shipped("silero-vad", "silero_vad_16k_op15.onnx")
    np.savez(tmp_path / "chunk.npz", input=np.random.default_rng(0).normal(0, 0.1, (1, 576)).astype(np.float32),
             state=np.zeros((2, 1, 128), np.float32), sr=np.array(16000, np.int64))
    done = cli("quantize", model, "-p", "fp16", "-o", tmp_path / "vad.fp16.onnx", "--eval-data", tmp_path / "chunk.npz", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"]["min_cosine"] > 0.999
    bench = cli("bench", tmp_path / "vad.fp16.onnx", "--inputs", tmp_path / "chunk.npz", "--reference", model, "--iterations", "3", "--duration", "0")
    assert bench.returncode == 0, bench.stderr


def _in_this_process(command: list, **options) -> subprocess.CompletedProcess:
    """examples/common.py's `python -m infertool ...` runs, through conftest.cli."""
    assert command[1:3] == ["-m", "infertool"], command
    return cli(*command[3:], cwd=options.get("cwd"))


@pytest.mark.parametrize("example", ["classification", "detection", "speech"])
def test_example_quick(tmp_path, example, monkeypatch):
    """Each example end to end on ort-cpu, reduced: the results table is written with every precision.
    The example's own code runs as its script; the infertool commands it runs, in this process."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    common = importlib.import_module("common")
    monkeypatch.setattr(common, "subprocess", SimpleNamespace(run=_in_this_process))
    monkeypatch.setattr(sys, "argv", ["run.py", "--quick", "--out", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / example / "run.py"), run_name="__main__")
    results = (tmp_path / "results.md").read_text()
    for precision in ("fp32", "fp16", "int8"):
        assert f"| {precision}" in results, results
    assert "## Not run" not in results, results
    if example == "detection":
        with Image.open(tmp_path / "boxes.png") as picture:
            assert picture.size == (1280, 960)
        assert "| ort-cpu | in the graph |" in results
        assert "| trt-rtx | cannot build |" not in results or "NonMaxSuppression" in results  # its real refusal, not a feed's shape


def test_int8_leaves_nothing_in_the_working_folder(tmp_path):
    """onnxruntime's symbolic shape inference gives up on the recogniser and saves
    sym_shape_infer_temp.onnx (10 MB) in the working folder; quantize must not leave it there."""
    model = shipped("rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx")
    done = cli("quantize", model, "-p", "int8", "-o", tmp_path / "out" / "rec.int8.onnx", "--calib-data", "random", "--calib-samples", "2",
                   "--input-shape", "x:1x3x48x320", "--eval-samples", "1", "--no-gate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["out", "out/rec.int8.onnx"]
