"""Several models in one bench (fp32 / fp16 / int8 of one model), and what every result records so
that it can travel: time, host, version and commit, the threads ORT ran with, raw samples."""

import json
import math
import re
import socket
import subprocess

import pytest

from infertool import __version__

from conftest import ROOT, cli, one_line_error
from onnx_models import mlp, two_inputs

FAST = ["--warmup", "2", "--iterations", "20", "--duration", "0"]


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """mlp in fp32, and its fp16 and int8 versions made by `quantize`."""
    folder = tmp_path_factory.mktemp("versions")
    fp32 = mlp(folder / "fp32.onnx")
    for precision, extra in (("fp16", []), ("int8", ["--calib-data", "random"])):
        done = cli("quantize", fp32, "-p", precision, "-o", folder / f"{precision}.onnx", "--quiet", *extra)
        assert done.returncode == 0, done.stderr
    return folder


def bench(*args):
    result = cli("bench", *args, *FAST, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_three_precisions_in_one_table(versions):
    paths = [versions / f"{p}.onnx" for p in ("fp32", "fp16", "int8")]
    report = bench(*paths, "--batch", "1,4", "--save-samples")
    assert [m["label"] for m in report["models"]] == ["fp32", "fp16", "int8"]
    assert [m["precision"] for m in report["models"]] == ["fp32", "fp16", "int8"]
    assert report["model"]["path"] == str(paths[0])  # the first model stays where one-model readers look
    keys = [(r["model"], r["precision"], r["batch"]) for r in report["rows"]]
    assert keys == [(m, m, b) for m in ("fp32", "fp16", "int8") for b in (1, 4)]
    rows = {(r["model"], r["batch"]): r for r in report["rows"]}
    for (label, batch), row in rows.items():
        base = rows[("fp32", batch)]["latency_ms"]["median"]  # speedup against the first model at the same batch
        assert row["speedup"] == pytest.approx(base / row["latency_ms"]["median"], rel=1e-3)
        # accuracy against the first model, with the tolerance of the row's precision
        assert row["agreement"]["reference"] == "ort-cpu on fp32.onnx" and row["agreement"]["precision"] == label
        assert row["agreement"]["passed"]
        samples = row["samples_ns"]["end_to_end"]
        assert len(samples) == row["latency_ms"]["count"] and all(isinstance(s, int) and s > 0 for s in samples)
        assert sorted(samples)[math.ceil(len(samples) / 2) - 1] / 1e6 == pytest.approx(row["latency_ms"]["median"], abs=1e-6)  # nearest rank
    assert rows[("fp32", 1)]["agreement"]["outputs"][0]["cosine"] == pytest.approx(1.0)
    assert 0.99 < rows[("int8", 1)]["agreement"]["outputs"][0]["cosine"] < 1.0


def test_table_labels_baseline_row_and_reference(versions, tmp_path):
    paths = [versions / f"{p}.onnx" for p in ("fp32", "fp16", "int8")]
    result = cli(
        "bench", *paths, *FAST, "--label", "full,half", "--label", "quarter", "--baseline-row", "quarter", "--reference", paths[0],
        "--markdown", tmp_path / "b.md", "--csv", tmp_path / "b.csv", "--json", tmp_path / "b.json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["full", "half", "quarter"]
    assert report["rows"][2]["speedup"] == 1.0  # the baseline row
    assert report["settings"]["labels"] == ["full", "half", "quarter"] and report["settings"]["baseline_row"] == "quarter"
    for label in ("full", "half", "quarter"):
        assert re.search(rf"^{label}\s+[0-9.]+\s", result.stdout, re.M), result.stdout  # the table is keyed by model
        assert f"| {label} | ort-cpu |" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "b.csv").read_text().splitlines()[0].endswith(",model_label")
    assert [line.rsplit(",", 1)[1] for line in (tmp_path / "b.csv").read_text().splitlines()[1:]] == ["full", "half", "quarter"]


def test_one_model_keeps_its_table(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    result = cli("bench", model, *FAST)
    assert result.returncode == 0, result.stderr
    assert "models" not in result.stdout and not re.search(r"^ *model\s", result.stdout, re.M)


def test_results_travel(tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    report = bench(model, "--threads", "1")
    env = report["env"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", env["timestamp_utc"])
    assert env["hostname"] == socket.gethostname() and env["infertool_version"] == __version__
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert env["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    row = report["rows"][0]
    assert row["model"] == "mlp" and row["samples_ns"] is None and row["gpu_telemetry"] is None
    assert row["settings"]["effective_threads"]["intra_op"] == 1
    # ORT's own choice is counted, not assumed: the threads its pool started, plus the caller's
    two = bench(model, "--threads", "2", "--inter-op-threads", "2")["rows"][0]["settings"]["effective_threads"]
    assert (two["intra_op"], two["inter_op"]) == (2, 2)
    default = bench(model)["rows"][0]["settings"]["effective_threads"]
    assert default["intra_op"] >= 1 and default["inter_op"] == 1


def test_other_results_carry_the_record_too(versions, tmp_path):
    result = cli("quantize", versions / "fp32.onnx", "-p", "fp16", "-o", tmp_path / "h.onnx", "--json")
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["env"]
    assert env["hostname"] == socket.gethostname() and env["timestamp_utc"] and env["infertool_version"] == __version__


BAD = {
    "label count": (["--label", "a"], "1 --label for 2 models"),
    "label twice": (["--label", "a,a"], "two models share the label 'a'"),
    "unknown baseline row": (["--baseline-row", "nope"], "--baseline-row 'nope' names no model or backend"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_comparisons(case, versions, tmp_path):
    args, message = BAD[case]
    result = cli("bench", versions / "fp32.onnx", versions / "fp16.onnx", *FAST, *args, "--json", tmp_path / "out.json")
    assert result.returncode == 2 and message in one_line_error(result)
    assert not (tmp_path / "out.json").exists()


def test_models_with_other_inputs_are_refused(versions, tmp_path):
    other = two_inputs(tmp_path / "two.onnx")
    result = cli("bench", versions / "fp32.onnx", other, *FAST)
    assert result.returncode == 2 and "two takes inputs ids, scale, fp32 takes x" in one_line_error(result)
    same_name = mlp(tmp_path / "fp32.onnx")  # two files named fp32: labels take the folder
    report = bench(versions / "fp32.onnx", same_name)
    assert [m["label"] for m in report["models"]] == [f"{versions.name}/fp32", f"{tmp_path.name}/fp32"]
