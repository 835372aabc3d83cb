"""Verdicts that must never read better than the numbers: the quantize gate, top-k probabilities,
top-1/top-5 agreement on ties, the regression gate's row matching, and calibration that works with
any number of samples."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from infertool.agreement import Rule, compare

from conftest import cli, one_line_error, ort_run
from onnx_models import image_classifier, mlp, two_inputs

FAST = ["--warmup", "1", "--iterations", "5", "--duration", "0"]
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


# ---------------------------------------------------------------- quantize: the precision's tolerance gates


@pytest.fixture
def outlier_calibration(tmp_path):
    """An MLP calibrated on data with one huge outlier: int8 steps of ~8 round every ordinary input to 0."""
    model = mlp(tmp_path / "mlp.onnx")
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((16, 16), dtype=np.float32)
    calib[0, 0] = 1000.0
    np.savez(tmp_path / "calib.npz", x=calib)
    np.savez(tmp_path / "eval.npz", x=rng.standard_normal((8, 16), dtype=np.float32))
    return model, ["--calib-data", tmp_path / "calib.npz", "--eval-data", tmp_path / "eval.npz"]


def test_quantize_outside_tolerance_fails_and_writes_nothing(outlier_calibration, tmp_path):
    model, data = outlier_calibration
    out = tmp_path / "q.onnx"
    failed = cli("quantize", model, "-p", "int8", *data, "-o", out, "--json", tmp_path / "report.json")
    assert failed.returncode == 1, failed.stderr
    assert "accuracy gate failed: 8 of 8 samples fail" in one_line_error(failed) and not out.exists()
    assert "cosine >= 0.99 on every sample" in failed.stdout and "FAIL" in failed.stdout  # the rule applied, in the table
    report = json.loads((tmp_path / "report.json").read_text())
    gate = report["gates"]["agreement"]
    assert (gate["passed"], gate["failing"], gate["samples"], gate["value"]) == (False, 8, 8, report["accuracy"]["min_cosine"])
    assert gate["rule"]["min_cosine"] == 0.99 and report["accuracy"]["outputs"][0]["min_cosine"] == 0.99  # and in the JSON
    assert report["accuracy"]["top1"] < 0.5  # an output of zeros does not agree by ties
    kept = cli("quantize", model, "-p", "int8", *data, "-o", out, "--no-gate", "--json")
    assert kept.returncode == 0, kept.stderr
    assert out.exists() and json.loads(kept.stdout)["gates"] == {}
    assert any("--no-gate" in note for note in json.loads(kept.stdout)["notes"])


def test_bench_agreement_table_shows_the_cosine_floor(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    reference = mlp(tmp_path / "same_weights.onnx")  # another file: the check against it is shown
    result = cli("bench", model, *FAST, "--reference", reference)
    assert result.returncode == 0, result.stderr
    assert "fp32: |err| <= 0.0001*max|ref| + 0.001*|ref| or cosine >= 0.99999 on every sample" in " ".join(result.stdout.split())


# ---------------------------------------------------------------- calibration with any sample count


@pytest.mark.parametrize("method", ["entropy", "percentile", "fp8"])
def test_histogram_calibration_takes_any_sample_count(method, tmp_path):
    model = mlp(tmp_path / "mlp.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).standard_normal((26, 16), dtype=np.float32))
    precision = ["-p", "fp8"] if method == "fp8" else ["-p", "int8", "--calib-method", method]
    result = cli("quantize", model, *precision, "--calib-data", tmp_path / "calib.npz", "-o", tmp_path / "q.onnx", "--no-gate", "--no-holdout", "--json")
    assert result.returncode == 0, result.stderr
    calibration = json.loads(result.stdout)["calibration"]
    assert calibration["samples"] == 26 and calibration["batches"] == 13  # 13 batches of 2: equal sizes
    assert (tmp_path / "q.onnx").exists()


# ---------------------------------------------------------------- run --top-k: probabilities as they are


def test_top_k_takes_probabilities_as_they_are(tmp_path):
    model = image_classifier(tmp_path / "probs.onnx", classes=4, softmax=True)
    image = np.zeros((1, 3, 8, 8), np.float32)
    image[0, 2] = 1.0
    np.save(tmp_path / "x.npy", image)
    probs = ort_run(model, {"image": image})["probs"][0]
    top = lambda *extra: json.loads(cli("run", model, "--inputs", tmp_path / "x.npy", "--top-k", "2", *extra, "--json").stdout)["top_k"]  # noqa: E731
    auto = top()
    assert [e["probability"] for e in auto["rows"][0]] == pytest.approx([probs[3], probs[2]], rel=1e-6)
    assert auto["scores"] == "probabilities"
    softmax = top("--scores", "softmax")
    assert softmax["scores"] == "softmax" and softmax["rows"][0][0]["probability"] < probs[3]
    assert top("--scores", "raw")["rows"][0][0]["probability"] is None
    assert top("--scores", "sigmoid")["rows"][0][0]["probability"] == pytest.approx(1 / (1 + np.exp(-probs[3])))
    logits = image_classifier(tmp_path / "logits.onnx", classes=4)
    assert json.loads(cli("run", logits, "--inputs", tmp_path / "x.npy", "--top-k", "1", "--json").stdout)["top_k"]["scores"] == "softmax"
    bad = cli("run", model, "--top-k", "1", "--scores", "probit")
    assert bad.returncode == 2 and "unknown --scores 'probit'" in bad.stderr


# ---------------------------------------------------------------- top-1 / top-5 agreement on ties


def test_top5_never_below_top1_when_scores_tie(tmp_path):
    tied = np.full((3, 1000), 0.001, np.float32)
    agreement = compare("prob", tied, tied.copy(), Rule.of("fp32"), samples=3)
    assert (agreement.top1, agreement.top5) == (1.0, 1.0)
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 10))
    got = np.round(ref + rng.normal(0, 0.3, ref.shape), 1)  # rounding makes ties
    agreement = compare("logits", ref, got, Rule.of("fp32"), samples=50)
    assert agreement.top5 >= agreement.top1
    # the ONNX suite's light models: weights that make every class score the same
    bench = cli("bench", LIGHT / "light_bvlc_alexnet.onnx", *FAST, "--json")
    assert bench.returncode == 0, bench.stderr
    output = json.loads(bench.stdout)["rows"][0]["agreement"]["outputs"][0]
    assert output["top1"] == 1.0 and output["top5"] == 1.0


# ---------------------------------------------------------------- the regression gate compares like with like


@pytest.fixture
def baseline(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    result = cli("bench", model, "--input-shape", "ids:1x32", "--int-range", "0:50", *FAST, "--json", tmp_path / "base.json")
    assert result.returncode == 0, result.stderr
    return model, tmp_path / "base.json"


def _faster(path: Path, factor: float = 100.0, cv: float | None = None) -> Path:
    data = json.loads(path.read_text())
    for row in data["rows"]:
        for stats in (row["latency_ms"], row["timings_ms"]["end_to_end"]):  # one measurement, two copies in the file
            stats["median"] /= factor
            if cv is not None:
                stats["cv"] = cv
    faster = path.with_name(f"faster_{factor}_{cv}.json")
    faster.write_text(json.dumps(data))
    return faster


def test_gate_compares_only_rows_measured_alike(baseline):
    model, base = baseline
    other_shape = cli("bench", model, "--input-shape", "ids:1x128", "--int-range", "0:50", *FAST, "--baseline", _faster(base), "--json")
    assert other_shape.returncode == 0, other_shape.stderr
    gate = json.loads(other_shape.stdout)["gate"]
    assert gate["passed"] and gate["compared"] == 0
    assert gate["rows"][0]["status"] == "not compared" and "input shapes ids 1x32" in gate["rows"][0]["reason"]
    assert any("gate proved nothing" in note for note in gate["notes"])
    threads = cli("bench", model, "--input-shape", "ids:1x32", "--int-range", "0:50", "--threads", "1", *FAST, "--baseline", _faster(base), "--json")
    assert json.loads(threads.stdout)["gate"]["rows"][0]["reason"].startswith("intra_op_threads None in the baseline, 1 now")
    same = cli("bench", model, "--input-shape", "ids:1x32", "--int-range", "0:50", *FAST, "--baseline", _faster(base))
    assert same.returncode == 1 and "REGRESSED" in same.stdout


def test_gate_leaves_noisy_rows_out_when_asked(baseline):
    model, base = baseline
    noisy = _faster(base, cv=9.0)  # 5 samples never have a CV above sqrt(5), so this run stays under the limit
    args = ["bench", model, "--input-shape", "ids:1x32", "--int-range", "0:50", *FAST, "--baseline", noisy]
    left_out = cli(*args, "--max-cv", "300%", "--json")
    assert left_out.returncode == 0, left_out.stderr
    row = json.loads(left_out.stdout)["gate"]["rows"][0]
    assert row["status"] == "left out" and "CV 900.0% in the baseline > --max-cv 300.0%" in row["reason"]
    assert cli(*args).returncode == 1


def test_max_regression_needs_its_percent_sign(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = cli("bench", model, "--baseline", tmp_path / "b.json", "--max-regression", "0.1")
    assert result.returncode == 2
    assert "--max-regression 0.1 is ambiguous" in one_line_error(result) and "10% if you mean a fraction, 0.1% if a percentage" in result.stderr


def test_top_k_says_when_it_softmaxes_scores_that_look_like_sigmoids(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Sigmoid", ["x"], ["p"])], "multilabel",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])], [onnx.helper.make_tensor_value_info("p", onnx.TensorProto.FLOAT, [1, 3])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    report = json.loads(cli("run", tmp_path / "m.onnx", "--top-k", "2", "--json").stdout)
    assert report["top_k"]["scores"] == "softmax" and any("sigmoid outputs?" in note for note in report["notes"])
