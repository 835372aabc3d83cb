"""The trt-rtx backend: REAL TensorRT-RTX engine builds on this CPU-only machine (TensorRT-RTX builds
ahead of time, without a GPU), and the runner's flow (deserialize, runtime configuration, execute)
through the FAKE tensorrt_rtx (tests/fakes), since running an engine needs an RTX / Ampere+ GPU.
"""

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import tensorrt_rtx
from onnx import TensorProto, helper, numpy_helper

from infertool import onnx_io
from infertool.cli.parse import compute_capabilities
from infertool.engine.build import BuildOptions, build_engine
from infertool.engine.cache import engine_for
from infertool.engine.profiles import ShapeProfile
from infertool.engine.tensorrt_api import TENSORRT_RTX
from infertool.errors import InfertoolError
from infertool.reporting import SilentReporter

from conftest import ROOT, cli, one_line_error, ort_run
from onnx_models import image_classifier, mlp

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
FAKES = str(ROOT / "tests" / "fakes")
RTX_GPU = {"PYTHONPATH": FAKES, "FAKE_CUDA_COMPUTE_CAPABILITY": "8.9"}  # the fake tensorrt_rtx on a fake Ada GPU
HOPPER = {"PYTHONPATH": FAKES, "FAKE_CUDA_COMPUTE_CAPABILITY": "9.0"}
DYNAMIC_BATCH = ("--min-shapes", "x:1x16", "--opt-shapes", "x:4x16", "--max-shapes", "x:8x16")


def build(model, out, *args, env=None):
    result = cli("build-engine", model, "-o", out, "--backend", "trt-rtx", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fails(model, out, *args, env=None) -> str:
    result = cli("build-engine", model, "-o", out, "--backend", "trt-rtx", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in Path(out).parent.iterdir() if "engine" in p.name) == []
    return one_line_error(result)


# ---------------------------------------------------------------- real TensorRT-RTX builds (no GPU)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_real_build_with_a_dynamic_batch(tmp_path, precision):
    model = mlp(tmp_path / "m.onnx")
    calibration = ["--calib-data", "random"] if precision == "int8" else []
    report = build(model, tmp_path / "m.engine", "-p", precision, *DYNAMIC_BATCH, "--compute-capability", "sm86,8.9,12.0", *calibration)
    sidecar = json.loads((tmp_path / "m.engine.json").read_text())
    assert sidecar == report["sidecar"]
    assert sidecar["flavour"] == "TensorRT-RTX" and sidecar["tensorrt_version"] == tensorrt_rtx.__version__ == "1.7.1.116"
    assert "fakes" not in sidecar["tensorrt_module"] and sidecar["gpu"] is None and sidecar["device_memory_bytes"] is None
    assert sidecar["compute_capabilities"] == ["8.6", "8.9", "12.0"]
    assert sidecar["profiles"] == [{"x": {"min": [1, 16], "opt": [4, 16], "max": [8, 16]}}]
    assert sidecar["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 16]}]
    engine = (tmp_path / "m.engine").read_bytes()
    assert sidecar["engine_bytes"] == len(engine) and engine.startswith(b"vtrt")  # TensorRT-RTX's plan tag
    assert sidecar["plan"]["strongly_typed"] and sidecar["plan"]["builder_flags"] == []
    assert sidecar["plan"]["transform"] == (None if precision == "fp32" else precision)
    assert sidecar["layer_precisions"][precision] > 0  # read from the real builder's layer report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "m.onnx"]


def test_an_engine_built_without_a_gpu_reads_back_and_reports(tmp_path):
    """The sidecar of a CPU-only build names no GPU: reading it back and reporting its build must work."""
    from infertool.engine import sidecar

    model = mlp(tmp_path / "m.onnx")
    (tmp_path / "build.json").write_text(json.dumps(build(model, tmp_path / "m.engine")))
    assert sidecar.read(tmp_path / "m.engine")["gpu"] is None
    result = cli("report", tmp_path / "build.json", "-o", tmp_path / "report.md")
    assert result.returncode == 0, result.stderr
    assert "built without a GPU" in (tmp_path / "report.md").read_text()
    with pytest.raises(InfertoolError, match="not an infertool engine sidecar"):  # a TensorRT engine always names its GPU
        data = json.loads((tmp_path / "m.engine.json").read_text())
        (tmp_path / "m.engine.json").write_text(json.dumps({**data, "flavour": "TensorRT"}))
        sidecar.read(tmp_path / "m.engine")


def test_real_build_of_onnx_resnet50_for_default_targets(tmp_path):
    """A model we did not write: ResNet-50 from onnx's backend test data, for TensorRT-RTX's own default targets."""
    report = build(LIGHT / "light_resnet50.onnx", tmp_path / "r.engine", "-q")
    sidecar = report["sidecar"]
    assert sidecar["compute_capabilities"] is None and sidecar["layer_precisions"]["fp32"] > 50
    assert sidecar["inputs"][0]["shape"] == [1, 3, 224, 224] and sidecar["engine_bytes"] > 1_000_000


def test_engine_cache_reuses_a_real_build(tmp_path):
    model = onnx_io.describe(image_classifier(tmp_path / "c.onnx"))
    profile = ShapeProfile({"image": ((1, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 8))})
    options = BuildOptions(profiles=(profile,), flavour=TENSORRT_RTX, compute_capabilities=("8.9",))
    notes = []

    class Notes(SilentReporter):
        def note(self, message: str) -> None:
            notes.append(message)

    first = engine_for(model, options, tmp_path / "engines", Notes())
    built = first.stat().st_mtime_ns
    assert engine_for(model, options, tmp_path / "engines", Notes()) == first and first.stat().st_mtime_ns == built
    assert notes == [f"reusing the cached engine {first}"]
    other = engine_for(model, BuildOptions(profiles=(profile,), flavour=TENSORRT_RTX, compute_capabilities=("8.6",)), tmp_path / "engines", Notes())
    assert other != first and json.loads(Path(str(other) + ".json").read_text())["compute_capabilities"] == ["8.6"]
    assert not list((tmp_path / "engines").glob("timing*"))  # TensorRT-RTX has no timing cache


def _nonzero(path: Path) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu0"), helper.make_node("NonZero", ["r"], ["y"], name="find_nonzero")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])], [helper.make_tensor_value_info("y", TensorProto.INT64, [2, None])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def _nms(path: Path) -> Path:
    limits = [numpy_helper.from_array(np.array([10], np.int64), "max_out"), numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
              numpy_helper.from_array(np.array([0.1], np.float32), "score")]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score"], ["selected"], name="nms_node")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4]), helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 8])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])], limits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_real_unsupported_ops_name_the_node(tmp_path):
    parsed = fails(_nonzero(tmp_path / "nz.onnx"), tmp_path / "nz.engine")
    assert "ONNX parser rejected nz.onnx: find_nonzero (NonZero): " in parsed and "plugin" in parsed
    built = fails(_nms(tmp_path / "nms.onnx"), tmp_path / "nms.engine", "--compute-capability", "8.9")
    assert "TensorRT-RTX has no kernel for node 'nms_node' (NonMaxSuppression)" in built
    for line in (parsed, built):
        assert "on the host, or in ONNX Runtime" in line


def test_real_refusal_of_an_unnamed_node_names_its_op(tmp_path):
    """TensorRT names an unnamed node's layer `node_of_<output>`: the error maps it back to the ONNX op."""
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"])  # no name, no limits: no finite output size
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 10, 4]), helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 10])],
        [helper.make_tensor_value_info("sel", TensorProto.INT64, [None, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "nms.onnx")
    line = fails(tmp_path / "nms.onnx", tmp_path / "nms.engine", "--compute-capability", "8.6")
    assert "could not build the unnamed NonMaxSuppression node making 'sel'" in line and "op unknown" not in line


def test_real_fused_fp16_layer_counts_as_fp16(tmp_path):
    """Cast -> Mul -> Cast fuses into one layer with fp32 inputs and outputs and fp16 weights: it computes in fp16."""
    weight = numpy_helper.from_array(np.full((1, 16), 0.5, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"], name="scale")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "mul.onnx")
    report = build(tmp_path / "mul.onnx", tmp_path / "mul.engine", "-p", "fp16", "--compute-capability", "8.6", "--batch", "4")
    assert report["sidecar"]["layer_precisions"].get("fp16") and (tmp_path / "mul.engine").exists()
    assert any("fused 3 ONNX nodes into 1 layer" in note and "scale" in note for note in report["notes"])


def test_real_builder_errors_are_one_line(tmp_path):
    """The real builder's own checks, reached past the CLI's (which catch these first)."""
    model = onnx_io.describe(mlp(tmp_path / "m.onnx"))
    bad = {"min > max": ShapeProfile({"x": ((8, 16), (4, 16), (1, 16))}), "not an input": ShapeProfile({"x": ((1, 16), (4, 16), (8, 16)), "nope": ((1,), (1,), (1,))})}
    messages = {}
    for case, profile in bad.items():
        with pytest.raises(InfertoolError) as caught:
            build_engine(model, tmp_path / "m.engine", BuildOptions(profiles=(profile,), flavour=TENSORRT_RTX), SilentReporter())
        messages[case] = caught.value.one_line()
        assert "\n" not in messages[case] and not (tmp_path / "m.engine").exists()
    assert "refused optimization profile 0: Invalid optimization profiles for input tensors x, please ensure that the optimization profiles satisfy MIN<=OPT<=MAX." in messages["min > max"]
    assert "profile 0 names 'nope', which the parsed network has no input of (inputs: x)" in messages["not an input"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_target_choices(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    assert "fp8 needs compute capability 8.9 or later, and the targets include 8.6" in fails(model, tmp_path / "m.engine", "-p", "fp8", "--calib-data", "random", "--compute-capability", "8.6,8.9")
    assert "the defaults" in fails(model, tmp_path / "m.engine", "-p", "fp8", "--calib-data", "random")
    line = fails(model, tmp_path / "m.engine", "--compute-capability", "9.0")
    assert "cannot build for compute capability 9.0" in line and "7.5, 8.0, 8.6, 8.9, 12.0, 12.1" in line
    assert "--compute-capability current needs a GPU here" in fails(model, tmp_path / "m.engine", "--compute-capability", "current")
    assert "malformed --compute-capability 'ampere'" in fails(model, tmp_path / "m.engine", "--compute-capability", "ampere")
    assert "TensorRT-RTX engine runs on its own" in fails(model, tmp_path / "m.engine", "--hardware-compat", "ampere+")
    trt = cli("build-engine", model, "-o", tmp_path / "m.engine", "--compute-capability", "8.6", env={"PYTHONPATH": FAKES})
    assert trt.returncode == 2 and "--compute-capability is for TensorRT-RTX" in one_line_error(trt)
    assert compute_capabilities("sm86, SM_89,12.0,8.6") == ("8.6", "8.9", "12.0") and compute_capabilities("current") == ("current",)


def test_doctor_without_a_gpu(tmp_path):
    result = cli("doctor", "--json", env={"PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    backends = {b["name"]: b for b in report["backends"]}
    assert not backends["trt-rtx"]["ok"] and backends["trt-rtx"]["extra"] == "trt-rtx"
    assert any(c["name"] == "tensorrt-rtx" and c["version"] == "1.7.1.116" for c in report["components"])
    plugin = backends["ort-trt-rtx"]
    assert not plugin["ok"] and "pip install 'infertool[ort-trt-rtx]'" in plugin["reason"]


# ---------------------------------------------------------------- the runner, through the FAKE tensorrt_rtx


def test_run_an_rtx_engine(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "m.engine", *DYNAMIC_BATCH, "--compute-capability", "8.6,8.9", env=RTX_GPU)
    x = np.random.default_rng(3).standard_normal((5, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["run", tmp_path / "m.engine", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--runtime-cache", tmp_path / "jit.cache", "--json"]
    result = cli(*args, env=RTX_GPU)  # no --backend: the sidecar says TensorRT-RTX built it
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "trt-rtx" and set(report["startup_ms"]) == {"load_ms", "first_inference_ms"}
    with np.load(tmp_path / "y.npz") as saved:
        np.testing.assert_allclose(saved["y"], ort_run(model, {"x": x})["y"], rtol=1e-6)
    assert (tmp_path / "jit.cache").read_bytes() == b"fake runtime cache 1.7.1.116"
    elsewhere = cli("run", tmp_path / "m.engine", env={**RTX_GPU, "FAKE_CUDA_COMPUTE_CAPABILITY": "12.0"})
    assert elsewhere.returncode == 2
    assert "was built for compute capability 8.6, 8.9; this GPU (Fake GPU (host memory)) has 12.0" in one_line_error(elsewhere)


def test_flavours_refuse_each_others_engines(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "rtx.engine", "--batch", "2", env=RTX_GPU)
    trt_built = cli("build-engine", model, "-o", tmp_path / "trt.engine", "--batch", "2", env=RTX_GPU)
    assert trt_built.returncode == 0, trt_built.stderr
    refused = cli("run", tmp_path / "rtx.engine", "--backend", "trt", env=RTX_GPU)
    assert refused.returncode == 2
    assert "rtx.engine is a TensorRT-RTX 1.7.1.116 engine; TensorRT cannot load it (hint: run it with --backend trt-rtx)" in one_line_error(refused)
    reverse = cli("run", tmp_path / "trt.engine", "--backend", "trt-rtx", env=RTX_GPU)
    assert reverse.returncode == 2 and "is a TensorRT 10.16.1.11 engine; TensorRT-RTX cannot load it (hint: run it with --backend trt)" in one_line_error(reverse)
    (tmp_path / "rtx.engine.json").unlink()  # no sidecar: the engine's own header tells
    unlabelled = cli("run", tmp_path / "rtx.engine", "--backend", "trt", env=RTX_GPU)
    assert unlabelled.returncode == 2 and "is a TensorRT-RTX engine (its header says so)" in one_line_error(unlabelled)


def test_bench_trt_rtx_with_runtime_cache_and_cuda_graphs(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    args = ["bench", model, "-b", "ort-cpu", "-b", "trt-rtx", "--batch", "1,4", "--iterations", "5", "--duration", "0", "--warmup", "2",
            "--engine-cache", tmp_path / "engines", "--runtime-cache", tmp_path / "jit.cache", "--cuda-graph", "--json"]
    runs = []
    for _ in range(2):
        result = cli(*args, env=RTX_GPU)
        assert result.returncode == 0, result.stderr
        runs.append([r for r in json.loads(result.stdout)["rows"] if r["backend"] == "trt-rtx"])
    assert "reusing the cached engine" in result.stderr
    for row in runs[0]:
        settings = row["settings"]
        assert settings["flavour"] == "TensorRT-RTX" and "fakes" in settings["tensorrt_module"]
        assert settings["cuda_graph_strategy"] == "WHOLE_GRAPH_CAPTURE" and settings["compute_capabilities"] == ["8.9"]
        assert settings["jit_context_ms"] >= 0 and set(row["startup_ms"]) == {"load_ms", "first_inference_ms"}
        assert row["latency_mode"] == "device_resident" and row["agreement"]["passed"]
    assert [r["settings"]["runtime_cache_loaded"] for r in runs[0]] == [False, True]  # the first row wrote it
    assert all(r["settings"]["runtime_cache_loaded"] for r in runs[1])
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 2


def test_unsupported_gpu_is_named(tmp_path):
    doctor = cli("doctor", "--json", env=HOPPER)
    backends = {b["name"]: b for b in json.loads(doctor.stdout)["backends"]}
    reason = backends["trt-rtx"]["reason"]
    assert "compute capability 9.0" in reason and "7.5, 8.0, 8.6, 8.9, 12.0 and later" in reason and backends["trt"]["ok"]
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "m.engine", "--batch", "2", env=HOPPER)  # building needs no supported GPU
    result = cli("run", tmp_path / "m.engine", env=HOPPER)
    assert result.returncode == 2 and "backend trt-rtx is unavailable: Fake GPU (host memory) has compute capability 9.0" in one_line_error(result)


def test_missing_library_names_the_extra(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    hidden = tmp_path / "hidden"
    (hidden / "tensorrt_rtx").mkdir(parents=True)
    (hidden / "tensorrt_rtx" / "__init__.py").write_text("raise ImportError('No module named tensorrt_rtx')\n")
    result = cli("build-engine", model, "-o", tmp_path / "m.engine", "-b", "trt-rtx", env={"PYTHONPATH": os.pathsep.join([str(hidden), FAKES])})
    assert result.returncode == 2 and "TensorRT-RTX is not installed" in one_line_error(result) and "pip install 'infertool[trt-rtx]'" in one_line_error(result)
