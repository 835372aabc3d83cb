"""The openvino backend, with REAL OpenVINO on the CPU: one file under infertool/backends/ that shows
up in doctor, run and bench (agreement, latency, throughput, its own options, its --tune space)."""

import json
import re

import numpy as np
import pytest

from conftest import ROOT, ort_run, run_main
from onnx_models import image_classifier, mlp

pytest.importorskip("openvino")

QUICK = ["--warmup", "2", "--iterations", "10", "--duration", "0"]


def bench(*args) -> dict:
    result = run_main("bench", *args, *QUICK, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_nothing_outside_its_file_names_openvino():
    naming = [
        str(path.relative_to(ROOT)) for path in sorted((ROOT / "infertool").rglob("*.py"))
        if path.name != "openvino.py" and re.search("openvino", path.read_text(), re.IGNORECASE)
    ]
    assert naming == []


def test_doctor_lists_it():
    result = run_main("doctor", "--json")
    listed = {b["name"]: b for b in json.loads(result.stdout)["backends"]}
    assert listed["openvino"]["ok"] and listed["openvino"]["extra"] == "openvino"


def test_run_gives_the_reference_outputs(tmp_path):
    model = image_classifier(tmp_path / "cls.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run_main("run", model, "-b", "openvino", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert result.returncode == 0, result.stderr
    expected = ort_run(model, {"image": x})
    with np.load(tmp_path / "y.npz") as saved:
        for name, value in expected.items():
            np.testing.assert_allclose(saved[name], value, rtol=1e-4, atol=1e-5)


def test_bench_rows_agree_and_are_timed_at_each_batch(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    report = bench(model, "-b", "ort-cpu", "-b", "openvino", "--batch", "1,3")
    rows = [r for r in report["rows"] if r["backend"] == "openvino"]
    assert [r["batch"] for r in rows] == [1, 3]
    for row in rows:
        assert row["agreement"]["passed"] and row["precision"] == "fp32" and row["latency_mode"] == "end_to_end"
        assert row["latency_ms"]["count"] >= 10 and row["latency_ms"]["median"] > 0
        assert row["throughput"]["samples_per_s"] == pytest.approx(row["throughput"]["inferences_per_s"] * row["batch"], rel=1e-6)
        settings = row["settings"]
        assert settings["performance_hint"] == "LATENCY" and settings["inference_precision"] == "f32"  # read back from OpenVINO
        assert settings["compiled_for"] == {"x": [row["batch"], 16]} and settings["openvino"]


def test_its_own_options_reach_openvino_and_are_read_back(tmp_path):
    model = image_classifier(tmp_path / "cls.onnx")
    report = bench(model, "-b", "openvino", "--ov-threads", "1", "--ov-streams", "1", "--ov-hint", "throughput")
    settings = report["rows"][0]["settings"]
    assert settings["inference_num_threads"] == 1 and settings["num_streams"] == 1 and settings["performance_hint"] == "THROUGHPUT"
    assert report["settings"]["backend_options"] == {"openvino": {"threads": 1, "streams": 1, "hint": "throughput", "precision": "f32"}}


def test_a_reduced_inference_precision_is_judged_at_that_precision(tmp_path):
    from infertool.backends.openvino import _capabilities

    if "BF16" not in _capabilities():
        pytest.skip("this CPU has no bf16")
    row = bench(image_classifier(tmp_path / "cls.onnx"), "-b", "openvino", "--ov-precision", "bf16")["rows"][0]
    assert row["settings"]["inference_precision"] == "bf16" and row["precision"] == "bf16"
    assert row["agreement"]["precision"] == "bf16" and row["agreement"]["passed"]


def test_the_gate_holds_rows_of_other_openvino_settings_apart(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = run_main("bench", model, "-b", "openvino", *QUICK, "--json", tmp_path / "base.json")
    assert result.returncode == 0, result.stderr
    gated = bench(model, "-b", "openvino", "--ov-hint", "throughput", "--baseline", tmp_path / "base.json")["gate"]
    assert gated["rows"][0]["status"] == "not compared" and "performance_hint" in gated["rows"][0]["reason"]


def test_tune_searches_its_space(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERTOOL_CACHE_DIR", str(tmp_path / "cache"))  # where its precision graphs go
    model = mlp(tmp_path / "m.onnx")
    result = run_main("bench", model, "-b", "openvino", "--tune", "--tune-budget", "3s", "--iterations", "5", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr
    tune = json.loads(result.stdout)["rows"][0]["tune"]
    tried = {t["changes"][-1]: t for t in tune["tried"]}
    assert {"defaults", "1 OpenVINO threads", "hint throughput"} <= set(tried)
    assert tried["hint throughput"]["settings_read_back"]["performance_hint"] == "THROUGHPUT"
    assert "hint latency" not in tried  # the defaults read back LATENCY already
    command = tried["hint throughput"]["command"]  # its command line gives the backend's own option
    assert "infertool bench" in command and "--backend openvino" in command and "--ov-hint throughput" in command
    assert tune["alone_error"] is None
