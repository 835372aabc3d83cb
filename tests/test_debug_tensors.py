"""TensorRT debug tensors behind `debug layers`.

The build side runs for real on TensorRT-RTX, which builds engines on a machine without a GPU:
marking tensors, marking unfused tensors, building, and mapping engine layers back to ONNX nodes
from the builder's own layer report. Running an engine needs a GPU, so the run side (listener,
context calls, the report) goes through the FAKE tensorrt, whose names are checked against the
real bindings here and in test_tensorrt_surface.py (which also runs this flow and checks every name it touched).
"""

import ctypes
import json
import re

import numpy as np
import pytest

from infertool.engine import debug_tensors

from conftest import ROOT, cli
from onnx_models import fp16_overflow

FAKES = str(ROOT / "tests" / "fakes")


@pytest.fixture(scope="module")
def rtx():
    return pytest.importorskip("tensorrt_rtx")


def rtx_network(trt, model):
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

        def log(self, severity, msg):
            self.messages.append(msg)

    logger = Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(model))
    return logger, builder, network, parser


def rtx_build(trt, logger, builder, network):
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 16), (4, 16), (8, 16))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None, logger.messages[-3:]
    return bytes(serialized)


def test_rtx_marks_each_tensor_and_builds(rtx, tmp_path):
    logger, builder, network, _parser = rtx_network(rtx, fp16_overflow(tmp_path / "m.onnx"))
    marked = debug_tensors.mark(network, ["h", "big", "not_in_the_network"], keep_fusions=False)
    assert marked.tensors == ("h", "big") and marked.missing == ("not_in_the_network",) and not marked.unfused
    tensors = debug_tensors.network_tensors(network)
    assert set(tensors) >= {"h", "r", "big", "norm", "y"}
    assert network.is_debug_tensor(tensors["big"]) and not network.is_debug_tensor(tensors["r"])
    assert rtx_build(rtx, logger, builder, network)


def test_rtx_marks_unfused_tensors_without_touching_fusion_and_maps_layers_to_onnx_nodes(rtx, tmp_path):
    logger, builder, network, _parser = rtx_network(rtx, fp16_overflow(tmp_path / "m.onnx"))
    marked = debug_tensors.mark(network, ["h", "big"], keep_fusions=True)
    assert marked.unfused and marked.tensors == ()
    rtx_build(rtx, logger, builder, network)
    # the builder reports its layers (one a line, TensorRT's ONELINE layer information) with the ONNX nodes they came from
    report = next(m for m in logger.messages if m.startswith("Layers:"))
    found = []
    for line in report.splitlines():
        name = re.match(r"Name: (.*?), LayerType:", line)
        if name:
            found.append(debug_tensors.onnx_nodes({"Name": name.group(1), "Metadata": line.rsplit("Metadata: ", 1)[1]}))
    assert {"project", "relu", "amplify", "normalise", "head"} <= {n for nodes in found for n in nodes}
    assert ["project", "relu"] in found  # a fused layer names both of its nodes


def test_rtx_listener_copies_host_tensors_from_ints_and_capsules(rtx):
    capture = debug_tensors.listener(rtx)
    assert isinstance(capture, rtx.IDebugListener)
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    capture.process_debug_tensor(value.ctypes.data, rtx.TensorLocation.HOST, rtx.DataType.FLOAT, rtx.Dims([2, 3]), "t", 0)
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype, new_capsule.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    half = value.astype(np.float16)
    capture.process_debug_tensor(new_capsule(half.ctypes.data, None, None), rtx.TensorLocation.HOST, rtx.DataType.HALF, rtx.Dims([2, 3]), "u", 0)
    np.testing.assert_array_equal(capture.tensors["t"], value)
    assert capture.tensors["u"].dtype == np.float16 and np.array_equal(capture.tensors["u"], half)


def test_rtx_has_every_name_the_debug_code_uses(rtx):
    classes = {
        "INetworkDefinition": {"num_layers", "get_layer", "mark_debug", "is_debug_tensor", debug_tensors.UNFUSED},
        "ILayer": {"num_outputs", "get_output"}, "ITensor": {"name"}, "IDebugListener": {"process_debug_tensor"},
        "IExecutionContext": {"set_debug_listener", "set_all_tensors_debug_state", "unfused_tensors_debug_state"},
        "TensorLocation": {"HOST", "DEVICE"},
    }
    for cls, members in classes.items():
        assert members <= set(dir(getattr(rtx, cls))), cls


def test_layer_names_map_back_to_onnx_nodes():
    assert debug_tensors.onnx_nodes({"Name": "x", "Metadata": "[ONNX Layer: /conv/Conv]\x1f[ONNX Layer: /relu/Relu]"}) == ["/conv/Conv", "/relu/Relu"]
    assert debug_tensors.onnx_nodes({"Name": "conv1 + relu1"}) == ["conv1", "relu1"]  # no metadata: TensorRT's fused layer name
    assert debug_tensors.onnx_nodes({"Name": "{ForeignNode[w2...node_of_y]}"}) == ["w2", "node_of_y"]
    layers = debug_tensors.layers({"Layers": [{"Name": "a + b", "Outputs": [{"Name": "a_b_out"}]}, "not a layer"]})
    assert layers == [{"name": "a + b", "onnx_nodes": ["a", "b"], "outputs": ["a_b_out"]}]
    node_outputs = {"a": ["ta"], "b": ["tb"]}
    assert debug_tensors.onnx_tensors(["a_b_out", "ta", "unknown"], layers, node_outputs) == {"a_b_out": "tb", "ta": "ta"}


@pytest.mark.parametrize("keep_fusions", ["--keep-fusions", "--no-keep-fusions"])
def test_debug_layers_reads_fake_tensorrt_debug_tensors(tmp_path, keep_fusions):
    model = fp16_overflow(tmp_path / "m.onnx")
    env = {"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "10.16.1.11", "INFERTOOL_CACHE_DIR": str(tmp_path / "cache")}
    result = cli("debug", "layers", model, "-b", "ort-cpu", "--candidate-backend", "trt", keep_fusions, "--samples", "3", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["tensor"] for r in report["rows"]] == ["h", "r", "big", "norm", "y"] and report["first_divergence"] is None
    assert ("unfused" if keep_fusions == "--keep-fusions" else "marked") in report["read_as"]
    assert all(r["samples"] == 3 and r["cosine"] > 0.99999 for r in report["rows"])
    engines = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "engines").glob("*.engine.json")]
    debug = next(e for e in engines if e["debug_tensors"])
    assert debug["layers"][2] == {"name": "amplify", "onnx_nodes": ["amplify"], "outputs": ["amplify_out"]}
