"""`bench` and `run` through the CLI, on real ONNX Runtime sessions."""

import csv
import json

import numpy as np
import pytest

from conftest import cli, one_line_error, ort_run
from onnx_models import big_weights, image_classifier, mlp, two_inputs

FAST = ["--warmup", "2", "--iterations", "20", "--duration", "0"]


def bench(*args, env=None):
    result = cli("bench", *args, *FAST, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_environment_block_asks_git_and_package_metadata_once_a_process(monkeypatch):
    """Every result's env block: the source commit and package versions are read once (a process
    running many commands, as the suite and sweep's workers do, spent most of a small run on them)."""
    import importlib.metadata
    import subprocess

    from infertool import environment

    first = environment.fingerprint()
    asked = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: asked.append(a) or pytest.fail("git asked again"))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: asked.append(name) or pytest.fail("metadata read again"))
    again = environment.fingerprint()
    assert not asked
    assert {k: again[k] for k in ("git_commit", "git_dirty", "packages")} == {k: first[k] for k in ("git_commit", "git_dirty", "packages")}


def test_bench_json_schema(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    report = bench(model, "--batch", "1,4")
    assert report["schema"] == "infertool.bench/1"
    assert set(report) >= {"env", "model", "settings", "rows", "warnings", "gate"}
    assert report["model"]["sha256"] and report["model"]["bytes"] == model.stat().st_size
    assert report["model"]["precision"] == "fp32"
    assert report["settings"]["percentile_method"] == "nearest-rank"
    assert report["env"]["packages"]["onnxruntime"] and report["env"]["cpu"]
    assert [(r["backend"], r["batch"]) for r in report["rows"]] == [("ort-cpu", 1), ("ort-cpu", 4)]
    for row in report["rows"]:
        lat = row["latency_ms"]
        assert set(lat) == {"min", "mean", "median", "p90", "p95", "p99", "max", "std", "cv", "count"}
        assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["count"] >= 20 and row["latency_mode"] == "end_to_end"
        assert row["throughput"]["samples_per_s"] == pytest.approx(row["throughput"]["inferences_per_s"] * row["batch"], rel=1e-6)
        assert row["memory"]["model_file_bytes"] == model.stat().st_size
        assert row["agreement"]["passed"] and row["agreement"]["outputs"][0]["cosine"] == pytest.approx(1.0)
        assert row["input_shapes"] == {"x": [row["batch"], 16]}
        assert row["settings"]["providers"] == ["CPUExecutionProvider"]
    assert report["rows"][0]["speedup"] == 1.0


def test_host_memory_of_a_big_model_is_measured(tmp_path):
    model = big_weights(tmp_path / "big.onnx", megabytes=64)
    row = bench(model)["rows"][0]
    assert row["memory"]["host_rss_increase_bytes"] > 50 * 2**20


def test_csv_markdown_and_step_summary(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    result = cli(
        "bench", model, "--batch", "1,2", *FAST, "--csv", tmp_path / "b.csv", "--markdown", tmp_path / "b.md",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == 0, result.stderr
    assert "median ms" in result.stdout and "ort-cpu" in result.stdout
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert [r["batch"] for r in rows] == ["1", "2"] and float(rows[0]["median_ms"]) > 0
    table = (tmp_path / "b.md").read_text()
    assert "| ort-cpu | 1 |" in table
    assert summary.read_text().startswith("# earlier step\n") and "| ort-cpu | 2 |" in summary.read_text()


def test_regression_gate(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    baseline = tmp_path / "baseline.json"
    result = cli("bench", model, *FAST, "--json", baseline)
    assert result.returncode == 0, result.stderr
    data = json.loads(baseline.read_text())
    generous = json.loads(json.dumps(data))
    for row in generous["rows"]:
        row["latency_ms"]["median"] = row["timings_ms"]["end_to_end"]["median"] = row["latency_ms"]["median"] * 100
    (tmp_path / "slow_baseline.json").write_text(json.dumps(generous))
    passed = cli("bench", model, *FAST, "--baseline", tmp_path / "slow_baseline.json", "--json")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["gate"]["passed"] is True
    half_edited = json.loads(json.dumps(data))
    half_edited["rows"][0]["timings_ms"]["end_to_end"]["median"] /= 100  # one copy of the number edited: not a file bench wrote
    (tmp_path / "half.json").write_text(json.dumps(half_edited))
    damaged = cli("bench", model, *FAST, "--baseline", tmp_path / "half.json")
    assert damaged.returncode == 2 and "latency_ms disagrees with timings_ms.end_to_end" in one_line_error(damaged)
    for row in data["rows"]:
        row["latency_ms"]["median"] = row["timings_ms"]["end_to_end"]["median"] = row["latency_ms"]["median"] / 100  # the baseline claims 100x faster
    baseline.write_text(json.dumps(data))
    failed = cli("bench", model, *FAST, "--baseline", baseline, "--max-regression", "10%", "--json")
    assert failed.returncode == 1
    gate = json.loads(failed.stdout)["gate"]
    assert gate["passed"] is False and gate["rows"][0]["regressed"] and gate["rows"][0]["change"] > 10
    assert "performance regression" in one_line_error(failed)


def test_reference_mismatch_fails(tmp_path):
    model = mlp(tmp_path / "a.onnx", seed=0)
    other = mlp(tmp_path / "b.onnx", seed=1)
    result = cli("bench", model, *FAST, "--reference", other)
    assert result.returncode == 1
    assert "outputs disagree with the reference" in one_line_error(result)
    assert "FAIL" in result.stdout


def test_two_inputs_with_shapes_and_int_range(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    report = bench(model, "--input-shape", "ids:1x12", "--int-range", "0:50", "--batch", "3")
    assert report["rows"][0]["input_shapes"] == {"ids": [3, 12], "scale": [3, 1]}


def test_save_optimized_model(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    optimized = tmp_path / "opt.onnx"
    bench(model, "--save-optimized", optimized)
    assert optimized.stat().st_size > 1000
    x = np.ones((2, 16), np.float32)
    np.testing.assert_allclose(ort_run(optimized, {"x": x})["y"], ort_run(model, {"x": x})["y"], rtol=1e-6)


BAD = {
    "unknown input": (["--input-shape", "nope:1x16"], "unknown input name 'nope'"),
    "unavailable backend": (["--backend", "ort-cuda"], "backend ort-cuda is unavailable"),
    "unknown backend": (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
    "batch zero": (["--batch", "0"], "not a batch size >= 1"),
    "malformed warmup": (["--warmup", "lots"], "malformed --warmup"),
    "bad ort option": (["--ort-option", "novalue"], "malformed --ort-option"),
    "missing baseline": (["--baseline", "nope.json"], "baseline nope.json not found"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bench_bad_input(case, tmp_path):
    args, message = BAD[case]
    model = mlp(tmp_path / "mlp.onnx")
    result = cli("bench", model, *FAST, *args, "--json", tmp_path / "out.json")
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result)
    assert not (tmp_path / "out.json").exists()


def test_static_batch_cannot_sweep(tmp_path):
    model = mlp(tmp_path / "static.onnx", batch=1)
    result = cli("bench", model, "--batch", "8")
    assert result.returncode == 2 and "fixed batch of 1" in one_line_error(result)


def test_corrupt_model(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 10)
    result = cli("bench", tmp_path / "bad.onnx")
    assert result.returncode == 2 and "not a readable ONNX model" in one_line_error(result)


def test_npz_with_wrong_names_lists_the_real_ones(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    np.savez(tmp_path / "in.npz", tokens=np.zeros((1, 3), np.int64), scale=np.ones((1, 1), np.float32))
    result = cli("bench", model, "--inputs", tmp_path / "in.npz")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "unknown input name 'tokens'" in line and "ids, scale" in line


def test_existing_report_needs_force(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    (tmp_path / "r.csv").write_text("keep")
    result = cli("bench", model, *FAST, "--csv", tmp_path / "r.csv")
    assert result.returncode == 2 and "--force" in one_line_error(result)
    assert (tmp_path / "r.csv").read_text() == "keep"


def test_run_saves_outputs_npz_and_pb(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    feeds = {"ids": np.array([[1, 2, 3], [4, 5, 6]], np.int64), "scale": np.array([[1.0], [2.0]], np.float32)}
    np.savez(tmp_path / "in.npz", **feeds)
    result = cli("run", model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outputs"][0]["name"] == "out" and report["outputs"][0]["shape"] == [2, 8]
    assert report["outputs"][0]["nan"] == 0
    expected = ort_run(model, feeds)["out"]
    with np.load(tmp_path / "out.npz") as saved:
        np.testing.assert_array_equal(saved["out"], expected)
    # the .pb layout in and out
    from infertool.inputs.tensor_files import read_pb_dir, write_pb_dir

    write_pb_dir(feeds, tmp_path / "test_data_set_0", prefix="input")
    result = cli("run", model, "--inputs", tmp_path / "test_data_set_0", "-o", tmp_path / "outs")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read_pb_dir(tmp_path / "outs", ["out"], prefix="output")["out"], expected)


def test_run_top_k_with_labels(tmp_path):
    model = image_classifier(tmp_path / "img.onnx", classes=4)
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\nfish\n")
    image = np.zeros((1, 3, 8, 8), np.float32)
    image[0, 2] = 1.0  # logits = w[2] = [0.8, 0.9, 1.0, 1.1]: fish first
    np.save(tmp_path / "x.npy", image)
    result = cli("run", model, "--inputs", tmp_path / "x.npy", "--top-k", "2", "--labels", tmp_path / "labels.txt", "--json")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["top_k"]["rows"][0]
    assert [entry["label"] for entry in top] == ["fish", "bird"]
    (tmp_path / "short.txt").write_text("cat\ndog\n")
    bad = cli("run", model, "--inputs", tmp_path / "x.npy", "--top-k", "2", "--labels", tmp_path / "short.txt")
    assert bad.returncode == 2 and "2 labels" in one_line_error(bad)
