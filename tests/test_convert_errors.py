"""Bad input: one line naming the problem, the right exit code, no output file left behind."""

import pytest

from conftest import MODELS, cli, one_line_error

CASES = {
    "missing file": (["does/not/exist.pt"], 2, "not found"),
    "unknown format": (["{tmp}/model.xyz"], 2, "unknown model format"),
    "factory raises": ([f"{MODELS}:broken", "--input-shape", "1x3"], 2, "weights are missing"),
    "factory returns non-module": ([f"{MODELS}:not_a_module", "--input-shape", "1x3"], 2, "not a torch.nn.Module"),
    "factory missing": ([f"{MODELS}:nope", "--input-shape", "1x3"], 2, "'nope' is not a callable"),
    "malformed shape": ([f"{MODELS}:cnn", "--input-shape", "image:1x3xbig"], 2, "malformed --input-shape"),
    "unknown input name": ([f"{MODELS}:cnn", "--input-shape", "img:1x3x8x8"], 2, "unknown input name 'img'"),
    "missing shape": ([f"{MODELS}:cnn"], 2, "missing --input-shape for image"),
    "wrong shape": ([f"{MODELS}:cnn", "--input-shape", "1x5x8x8"], 2, "the model failed on inputs"),
    "parity mismatch": ([f"{MODELS}:drifting", "--input-shape", "2x3"], 1, "disagrees with the pytorch model"),
    "already onnx": (["{tmp}/model.onnx"], 2, "already ONNX"),
    "bad dynamic axis": ([f"{MODELS}:cnn", "--input-shape", "1x3x8x8", "--dynamic-axis", "image:9:h"], 2, "has rank 4"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path):
    args, code, message = CASES[case]
    (tmp_path / "model.xyz").write_text("?")
    out = tmp_path / "out" / "model.onnx"
    result = cli("convert", *[a.format(tmp=tmp_path) if isinstance(a, str) else a for a in args], "-o", out)
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)
    assert not out.exists() and not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.xyz"]


def test_parity_failure_still_reports(tmp_path):
    result = cli("convert", f"{MODELS}:drifting", "--input-shape", "2x3", "-o", tmp_path / "d.onnx", "--json")
    assert result.returncode == 1
    import json

    report = json.loads(result.stdout)
    assert report["validation"]["passed"] is False and report["output"]["path"] == ""


def test_debug_shows_the_traceback(tmp_path):
    result = cli("convert", f"{MODELS}:broken", "--input-shape", "1x3", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr
