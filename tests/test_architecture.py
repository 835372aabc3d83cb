"""The architecture's promises: backends are plug-ins, functions stay short, and the TensorRT 11
precision stage takes the user's shapes (the bug the old import cycle hid)."""

import ast
import json
import subprocess

import numpy as np

from conftest import ROOT, cli, ort_run
from onnx_models import mlp, two_inputs

TESTS = ROOT / "tests"
FAKES = str(TESTS / "fakes")
LONG_FUNCTION = 60


def toy_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The real CLI with the toy backend registered from the test, no other file touched."""
    return cli(*args, cwd=cwd, imports=("toy_backend",))


def test_a_backend_is_one_file(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    doctor = toy_cli("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    listed = {b["name"]: b for b in json.loads(doctor.stdout)["backends"]}
    assert listed["onnx-reference"]["ok"] and listed["ort-cpu"]["ok"]
    bench = toy_cli("bench", model, "-b", "ort-cpu", "-b", "onnx-reference", "--batch", "1,3", "--iterations", "5", "--duration", "0", "--json")
    assert bench.returncode == 0, bench.stderr
    rows = json.loads(bench.stdout)["rows"]
    assert [(r["backend"], r["batch"]) for r in rows] == [("ort-cpu", 1), ("ort-cpu", 3), ("onnx-reference", 1), ("onnx-reference", 3)]
    assert all(r["agreement"]["passed"] for r in rows)
    x = np.random.default_rng(0).standard_normal((2, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    run = toy_cli("run", model, "-b", "onnx-reference", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "y.npz") as saved:
        np.testing.assert_allclose(saved["y"], ort_run(model, {"x": x})["y"], rtol=1e-5)


def test_installed_packages_add_backends_through_entry_points(tmp_path):
    info = tmp_path / "toy_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infertool.backends]\nonnx-reference = toy_backend\n")
    result = cli("doctor", "--json", env={"PYTHONPATH": f"{tmp_path}:{TESTS}"})
    assert result.returncode == 0, result.stderr
    assert "onnx-reference" in [b["name"] for b in json.loads(result.stdout)["backends"]]


def test_a_broken_plug_in_is_contained(tmp_path):
    info = tmp_path / "bad_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infertool.backends]\nbroken = no_such_module_here\n")
    result = cli("doctor", env={"PYTHONPATH": str(tmp_path)})  # the other backends still work: the plug-in is one unavailable line
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "plug-in raised ModuleNotFoundError" in next(line for line in result.stdout.splitlines() if line.startswith("broken "))


def test_functions_stay_short():
    long = []
    for path in sorted((ROOT / "infertool").rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            too_long = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > LONG_FUNCTION
            if too_long and "# long:" not in lines[node.lineno - 1]:  # a comment on the def line says why
                long.append(f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_trt11_fp16_takes_the_given_shapes_for_a_dynamic_non_batch_axis(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    result = cli(
        "build-engine", model, "-o", tmp_path / "two.engine", "-p", "fp16", "--input-shape", "ids:1x16", "--input-shape", "scale:1x1",
        "--int-range", "0:50", "--json",
        env={"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "11.4.0.106"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sidecar"]["plan"]["transform"] == "fp16"
    assert report["sidecar"]["profiles"] == [{"ids": {"min": [1, 16], "opt": [1, 16], "max": [1, 16]}, "scale": {"min": [1, 1], "opt": [1, 1], "max": [1, 1]}}]
    assert report["precision_stage"]["accuracy"]["samples"] == 8 and report["precision_stage"]["accuracy"]["min_cosine"] > 0.999
    # inputs the original model cannot take (token ids past its table): the check says so; the build stands
    again = cli(
        "build-engine", model, "-o", tmp_path / "two.engine", "-p", "fp16", "--input-shape", "ids:1x16", "--input-shape", "scale:1x1",
        "--force", "--json", env={"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "11.4.0.106"},
    )
    assert again.returncode == 0, again.stderr
    assert "Gather" in json.loads(again.stdout)["precision_stage"]["accuracy"]["unavailable"]
