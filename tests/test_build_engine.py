"""build-engine and the TensorRT runner, driven through the FAKE tensorrt (tests/fakes) on the CPU.

The fake proves the flow (options, profiles, precision plans, sidecars, buffers, timings plumbing);
it measures nothing about TensorRT. Without the fake, the real "not installed" behaviour is checked.
"""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from infertool.cli.parse import profiles as parse_profiles
from infertool.cli.parse import size as parse_size
from infertool.engine import plan as precision_plan
from infertool.engine.sidecar import check_compatible
from infertool.errors import InfertoolError

from conftest import ROOT, cli, one_line_error, ort_run
from onnx_models import mlp, two_inputs

FAKES = str(ROOT / "tests" / "fakes")
TRT10 = {"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "10.16.1.11"}
TRT11 = {"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "11.4.0.106"}


def build(model, out, *args, env=TRT10):
    result = cli("build-engine", model, "-o", out, *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- plain units


def test_precision_plans():
    notes = []
    assert precision_plan.plan("fp16", "fp32", 10, False, notes).flags == ("FP16",)
    eleven = precision_plan.plan("fp16", "fp32", 11, False, notes)
    assert eleven.transform == "fp16" and eleven.flags == () and eleven.strongly_typed
    assert precision_plan.plan("int8", "fp32", 10, True, notes).transform == "int8"
    carried = precision_plan.plan("best", "int8", 10, False, notes)
    assert carried.strongly_typed and carried.transform is None and carried.expect == ("int8",)
    assert precision_plan.plan("best", "fp32", 11, False, notes).transform == "fp16" and notes
    with pytest.raises(InfertoolError, match="needs Q/DQ"):
        precision_plan.plan("int8", "fp32", 11, False, notes)
    with pytest.raises(InfertoolError, match="already fp16"):
        precision_plan.plan("int8", "fp16", 11, True, notes)


def test_layer_precisions_read_both_inspector_formats():
    ten = {"Layers": [{"Name": "a", "Outputs": [{"Name": "t", "Format/Datatype": "Row major linear FP16 format (kLINEAR)"}]},
                      {"Name": "b", "Outputs": [{"Name": "u", "Format/Datatype": "Channel major Int8 format (kCHW4)"}]}]}
    eleven = {"Layers": [{"Name": "a", "Inputs": [{"Name": "t", "DataType": "Half", "Format": "kLINEAR"}], "Outputs": [{"Name": "u", "DataType": "Float"}]}]}
    assert precision_plan.layer_precisions(ten) == {"fp16": 1, "int8": 1}
    assert precision_plan.layer_precisions(eleven) == {"fp16": 1, "fp32": 1}
    assert precision_plan.layer_precisions({"Layers": ["conv1", "relu1"]}) is None  # built without detailed verbosity


def test_profile_parsing():
    (profile,) = parse_profiles(["x:1x3,m:1x5"], ["x:4x3,m:4x5"], ["x:8x3,m:8x5"])
    assert profile == {"x": ((1, 3), (4, 3), (8, 3)), "m": ((1, 5), (4, 5), (8, 5))}
    assert len(parse_profiles(["x:1x3", "x:16x3"], ["x:4x3", "x:32x3"], ["x:8x3", "x:64x3"])) == 2
    with pytest.raises(InfertoolError, match="min <= opt <= max"):
        parse_profiles(["x:8x3"], ["x:4x3"], ["x:16x3"])
    with pytest.raises(InfertoolError, match="got 1 --min-shapes, 0 --opt-shapes"):
        parse_profiles(["x:1x3"], [], [])
    assert parse_size("4096") == 4096 * 2**20 and parse_size("2G") == 2 * 2**30 and parse_size("512MiB") == 512 * 2**20


def test_sidecar_compatibility():
    sidecar = {"tensorrt_version": "10.16.1.11", "gpu": {"name": "NVIDIA H100", "compute_capability": "9.0"}}
    gpu = {"name": "NVIDIA H100", "compute_capability": "9.0"}
    assert check_compatible("e", sidecar, "10.16.1.11", gpu) == []
    with pytest.raises(InfertoolError, match="built with TensorRT 10.16.1.11; this is TensorRT 11.4.0.106"):
        check_compatible("e", sidecar, "11.4.0.106", gpu)
    assert check_compatible("e", {**sidecar, "version_compatible": True}, "10.17.0.1", gpu)
    with pytest.raises(InfertoolError, match="sm 9.0"):
        check_compatible("e", sidecar, "10.16.1.11", {"name": "A100", "compute_capability": "8.0"})
    assert check_compatible("e", {**sidecar, "hardware_compat": "ampere+"}, "10.16.1.11", {"name": "A100", "compute_capability": "8.0"})
    assert "slower" in check_compatible("e", sidecar, "10.16.1.11", {"name": "NVIDIA H100 NVL", "compute_capability": "9.0"})[0]


# ---------------------------------------------------------------- TensorRT not installed


def test_not_installed_build_engine_names_the_extra(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = cli("build-engine", model, "-o", tmp_path / "m.engine")
    assert result.returncode == 2 and "pip install 'infertool[trt]'" in one_line_error(result)
    assert not (tmp_path / "m.engine").exists()


def test_not_installed_bench_lists_trt_unavailable(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = cli("bench", model, "--backend", "trt")
    assert result.returncode == 2
    assert "backend trt is unavailable: TensorRT is not installed (pip install 'infertool[trt]')" in one_line_error(result)


# ---------------------------------------------------------------- fake-driven flows


def test_build_fp16_on_10x_uses_builder_flags(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    report = build(model, engine, "-p", "fp16", "--batch", "8", "--workspace", "1G", "--opt-level", "4", "--timing-cache", tmp_path / "tc")
    sidecar = json.loads((tmp_path / "m.engine.json").read_text())
    assert sidecar == report["sidecar"]
    assert sidecar["tensorrt_version"] == "10.16.1.11" and "fakes" in sidecar["tensorrt_module"]
    assert sidecar["plan"]["builder_flags"] == ["FP16"] and sidecar["plan"]["transform"] is None
    assert sidecar["layer_precisions"]["fp16"] > 0
    assert sidecar["profiles"] == [{"x": {"min": [1, 16], "opt": [8, 16], "max": [8, 16]}}]
    assert sidecar["onnx"]["sha256"] == report["sidecar"]["onnx"]["sha256"] and sidecar["engine_bytes"] == engine.stat().st_size
    assert sidecar["gpu"]["compute_capability"] and sidecar["device_memory_bytes"] > 0 and sidecar["build_seconds"] >= 0
    assert sidecar["options"]["workspace_bytes"] == 2**30 and sidecar["options"]["builder_optimization_level"] == 4
    assert any("had no profile" in n for n in report["notes"])
    assert (tmp_path / "tc").is_file() and report["timing_cache_loaded"] is False
    again = build(model, engine, "-p", "fp16", "--batch", "8", "--timing-cache", tmp_path / "tc", "--force")
    assert again["timing_cache_loaded"] is True


def test_build_fp16_on_11x_writes_precision_into_the_graph(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    report = build(model, tmp_path / "m.engine", "-p", "fp16", env=TRT11)
    plan = report["sidecar"]["plan"]
    assert plan == {"requested": "fp16", "transform": "fp16", "builder_flags": [], "strongly_typed": True, "expect_layer_precisions": ["fp16"]}
    assert report["sidecar"]["built_onnx_sha256"] != report["sidecar"]["onnx"]["sha256"]
    assert report["precision_stage"]["accuracy"]["min_cosine"] > 0.999
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "m.onnx"]


def test_int8_needs_calibration_on_11x(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    refused = cli("build-engine", model, "-o", tmp_path / "m.engine", "-p", "int8", env=TRT11)
    assert refused.returncode == 2 and "--calib-data" in one_line_error(refused)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((32, 16), dtype=np.float32))
    report = build(model, tmp_path / "m.engine", "-p", "int8", "--calib-data", tmp_path / "calib.npz", env=TRT11)
    assert report["sidecar"]["plan"]["transform"] == "int8" and report["sidecar"]["layer_precisions"]["int8"] > 0


def test_missing_precision_in_the_engine_fails_the_build(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = cli("build-engine", model, "-o", tmp_path / "m.engine", "-p", "fp16", env={**TRT10, "FAKE_TENSORRT_DECLINE": "fp16"})
    assert result.returncode == 1 and "has no fp16 layer" in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_parser_errors_name_the_node(tmp_path):
    node = helper.make_node("FakeUnsupportedOp", ["x"], ["y"], name="mystery_node")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "bad.onnx")
    result = cli("build-engine", tmp_path / "bad.onnx", "-o", tmp_path / "bad.engine", env=TRT10)
    assert result.returncode == 2
    assert "mystery_node (FakeUnsupportedOp): No importer registered" in one_line_error(result)
    assert not (tmp_path / "bad.engine").exists()


def test_profiles_are_checked_against_the_model(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    bad = cli("build-engine", model, "-o", tmp_path / "e.engine", "--min-shapes", "idz:1x4", "--opt-shapes", "idz:2x4", "--max-shapes", "idz:4x4", env=TRT10)
    assert bad.returncode == 2 and "unknown input name 'idz'" in one_line_error(bad) and "ids, scale" in one_line_error(bad)
    unsized = cli("build-engine", model, "-o", tmp_path / "e.engine", env=TRT10)
    assert unsized.returncode == 2 and "dynamic dimension 'seq'" in one_line_error(unsized)
    report = build(model, tmp_path / "e.engine", "--min-shapes", "ids:1x4,scale:1x1", "--opt-shapes", "ids:2x8,scale:2x1",
                   "--max-shapes", "ids:4x16,scale:4x1", "--min-shapes", "ids:8x4,scale:8x1", "--opt-shapes", "ids:16x8,scale:16x1",
                   "--max-shapes", "ids:32x16,scale:32x1")
    assert len(report["sidecar"]["profiles"]) == 2
    assert report["sidecar"]["profiles"][0]["ids"] == {"min": [1, 4], "opt": [2, 8], "max": [4, 16]}


def test_existing_engine_needs_force(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    (tmp_path / "m.engine").write_text("keep")
    result = cli("build-engine", model, "-o", tmp_path / "m.engine", env=TRT10)
    assert result.returncode == 2 and "--force" in one_line_error(result)
    assert (tmp_path / "m.engine").read_text() == "keep"


@pytest.mark.parametrize("env", [TRT10, TRT11], ids=["trt10", "trt11"])
def test_run_an_engine(tmp_path, env):
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "m.engine", "--min-shapes", "x:1x16", "--opt-shapes", "x:4x16", "--max-shapes", "x:8x16", env=env)
    x = np.random.default_rng(3).standard_normal((5, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", tmp_path / "m.engine", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npz", env=env)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "y.npz") as saved:
        np.testing.assert_allclose(saved["y"], ort_run(model, {"x": x})["y"], rtol=1e-6)
    outside = cli("run", tmp_path / "m.engine", "--batch", "9", env=env)
    assert outside.returncode == 2 and "outside the engine's profile (min 1x16, opt 4x16, max 8x16)" in one_line_error(outside)


def test_incompatible_engine_is_refused_before_loading(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "m.engine")
    result = cli("run", tmp_path / "m.engine", env=TRT11)
    assert result.returncode == 2 and "was built with TensorRT 10.16.1.11; this is TensorRT 11.4.0.106" in one_line_error(result)
    sidecar_file = tmp_path / "m.engine.json"
    sidecar = json.loads(sidecar_file.read_text())
    sidecar["gpu"]["compute_capability"] = "8.6"
    sidecar_file.write_text(json.dumps(sidecar))
    result = cli("run", tmp_path / "m.engine", env=TRT10)
    assert result.returncode == 2 and "sm 8.6" in one_line_error(result) and "--hardware-compat" in one_line_error(result)


def test_bench_trt_next_to_ort_with_engine_cache(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    args = ["bench", model, "--backend", "ort-cpu", "--backend", "trt", "--batch", "1,4", "--iterations", "10", "--duration", "0",
            "--engine-cache", tmp_path / "engines", "--cuda-graph", "--json"]
    first = cli(*args, env=TRT10)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    trt_rows = [r for r in report["rows"] if r["backend"] == "trt"]
    assert [r["batch"] for r in trt_rows] == [1, 4]
    for row in trt_rows:
        assert row["latency_mode"] == "device_resident"
        assert {"end_to_end", "device_resident", "gpu_h2d", "gpu_compute", "gpu_d2h"} <= set(row["timings_ms"])
        assert row["memory"]["engine_bytes"] > 0 and row["memory"]["device_memory_bytes"] > 0
        assert row["agreement"]["passed"] and row["settings"]["cuda_graph"] is True
        assert "fakes" in row["settings"]["tensorrt_module"]
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 2
    second = cli(*args, env=TRT10)
    assert second.returncode == 0 and "reusing the cached engine" in second.stderr


def test_bench_with_a_prebuilt_engine(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    build(model, tmp_path / "m.engine", "--batch", "2")
    result = cli("bench", model, "--backend", "trt", "--engine", tmp_path / "m.engine", "--batch", "2", "--iterations", "5", "--duration", "0", "--json", env=TRT10)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"][0]["settings"]["engine"] == str(tmp_path / "m.engine")
    refused = cli("bench", tmp_path / "m.engine", "--backend", "trt", env=TRT10)
    assert refused.returncode == 2 and "--engine" in one_line_error(refused)
