"""What convert's validation must catch: a dynamic axis the model's code fixes (at a second size of
every dynamic axis, not only the batch), and a parity check that proves nothing."""

import json

import pytest

from conftest import MODELS, cli, one_line_error

pytestmark = pytest.mark.slow
FIXED = [f"{MODELS}:fixed_length", "--input-shape", "input_ids:1x16", "--dtype", "int64", "--dynamic-axis", "input_ids:1:seq"]


def test_an_axis_the_code_fixes_is_a_failed_check(tmp_path):
    out = tmp_path / "fixed.onnx"
    result = cli("convert", *FIXED, "-o", out)  # dynamo specializes seq; TorchScript would bake 16 in
    assert result.returncode == 1, result.stderr
    line = one_line_error(result)
    assert "axis 'seq' (input 'input_ids' axis 1) is not dynamic: the model's code fixes it at 16" in line
    assert "--dynamic-axis input_ids:1:seq" in line and not out.exists() and list(tmp_path.iterdir()) == []


def test_validation_tries_another_size_of_every_dynamic_axis(tmp_path):
    traced = cli("convert", *FIXED, "--exporter", "torchscript", "-o", tmp_path / "ts.onnx")
    assert traced.returncode == 1, traced.stderr
    assert "the model's code fixes it at 16 (the pytorch model fails at 18" in traced.stderr
    baked = cli("convert", f"{MODELS}:length_scaled", "--input-shape", "x:2x5x3", "--dynamic-axis", "x:1:seq", "--exporter", "torchscript",
                "-o", tmp_path / "baked.onnx")
    assert baked.returncode == 1, baked.stderr
    assert "disagrees with the pytorch model at seq 7 (the example has 5)" in baked.stderr
    assert not list(tmp_path.glob("*.onnx"))
    tagger = cli(
        "convert", f"{MODELS}:tagger", "--input-shape", "input_ids:2x7", "--input-shape", "mask:2x7", "--dtype", "input_ids:int64",
        "--dynamic-axis", "input_ids:1:seq", "--dynamic-axis", "mask:1:seq", "--int-range", "0:50", "-o", tmp_path / "tagger.onnx", "--json",
    )
    assert tagger.returncode == 0, tagger.stderr
    checks = json.loads(tagger.stdout)["validation"]["batches"]
    assert [c["varied"] for c in checks] == [None, {"axis": "batch", "from": 2, "to": 4}, {"axis": "seq", "from": 7, "to": 9}]
    assert checks[2]["input_shapes"] == {"input_ids": [2, 9], "mask": [2, 9]}
    assert json.loads(tagger.stdout)["validation"]["warnings"] == []  # its outputs follow its inputs


def test_parity_of_outputs_that_ignore_the_inputs_is_flagged(tmp_path):
    result = cli("convert", f"{MODELS}:untrained", "--input-shape", "4x6", "-o", tmp_path / "u.onnx", "--json")
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)["validation"]["warnings"]
    assert len(warnings) == 1 and "output 'output' comes out the same for different inputs" in warnings[0]
    assert "proved nothing" in warnings[0]


@pytest.mark.parametrize("factory", ["huge_logits", "pixel_boxes"])
def test_fp32_rounding_at_large_magnitudes_is_not_a_disagreement(factory, tmp_path):
    """Logits near 1e9 (Inception-v3, MobileOne with random weights) and boxes in pixels whose edge
    corners are differences of values near 1000 (RetinaNet): cosine 1.000000, ONNX Runtime's
    kernels against torch's, where element-wise allclose(1e-4, 1e-3) failed on a value near 0: the
    tolerance follows the output's magnitude (agreement.Rule)."""
    result = cli("convert", f"{MODELS}:{factory}", "--input-shape", "2x3x32x32", "-o", tmp_path / "m.onnx")
    assert result.returncode == 0, result.stderr


def test_a_disagreement_at_the_example_batch_blames_no_baked_batch(tmp_path):
    """The example batch fails too, so the export did not bake the batch in; and the hint never
    names the exporter that ran."""
    for exporter, other in (("auto", "--exporter torchscript"), ("torchscript", "--exporter dynamo")):
        result = cli("convert", f"{MODELS}:noisy", "--input-shape", "2x3", "--exporter", exporter, "-o", tmp_path / "d.onnx")
        line = one_line_error(result)
        assert result.returncode == 1 and "disagrees with the pytorch model:" in line, line
        assert "baked" not in line and line.endswith(f"loosen --atol/--rtol if the difference is expected, or try {other})"), line
