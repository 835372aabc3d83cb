"""`debug layers` and `debug precision` on planted faults, through the real command line and real
ONNX Runtime sessions: an fp16 overflow, an int8-crushed outlier channel calibrated on real photos
(scikit-image's sample images), a fault only some samples show, and graphs that do not correspond."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from infertool.cli.parse import names
from infertool.errors import InfertoolError

from conftest import ROOT, cli, one_line_error
from onnx_models import fp16_overflow, int8_outlier, mlp

pytestmark = pytest.mark.slow


def cli_json(*args):
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp16")
    model = fp16_overflow(folder / "planted.onnx")
    report, _ = cli_json("quantize", model, "-p", "fp16", "-o", folder / "planted.fp16.onnx", "--no-gate")
    assert not report["accuracy"]["outputs"][0]["passed"]  # fp16 breaks it (NaN), and says so
    return model, folder / "planted.fp16.onnx"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """scikit-image's sample photos (its data folder also holds files that are not images)."""
    skimage_data = Path(pytest.importorskip("skimage").__file__).parent / "data"
    folder = tmp_path_factory.mktemp("photos")
    for png in sorted(skimage_data.glob("*.png")):
        shutil.copy(png, folder)
    assert len(list(folder.iterdir())) >= 16
    return folder


def test_layers_flag_the_fp16_overflow_first(planted, tmp_path):
    model, fp16 = planted
    report, _ = cli_json("debug", "layers", model, fp16, "--markdown", tmp_path / "layers.md")
    assert report["first_divergence"]["node"] == "amplify" and report["first_divergence"]["tensor"] == "big"
    rows = {r["tensor"]: r for r in report["rows"]}
    assert [r["tensor"] for r in report["rows"]] == ["h", "r", "big", "norm", "y"]  # topological
    assert {"fp16-overflow", "nan/inf", "growth"} <= set(rows["big"]["flags"]) and rows["big"]["reference_absmax"] > 65504
    assert not rows["h"]["diverged"] and rows["h"]["cosine"] > 0.9999 and not rows["h"]["flags"]
    assert report["outputs"][0]["diverged"] and report["samples"] == 8
    assert any("emulated" in n or "rounds every tensor" in n for n in report["notes"])  # ort-cpu runs fp16 in fp32: said
    assert "| big ◀ first divergence |" in (tmp_path / "layers.md").read_text()  # the row marked (cells are escaped text)
    shown = cli("debug", "layers", model, fp16)
    assert shown.returncode == 0 and "first divergence: tensor 'big' from node amplify (Mul)" in " ".join(shown.stdout.split())


def test_precision_keeps_the_fp16_overflow_and_quantize_then_passes(planted, tmp_path):
    model, _ = planted
    keep = tmp_path / "keep.txt"
    report, stderr = cli_json("debug", "precision", model, "-p", "fp16", "-o", keep)
    assert "amplify" in report["keep"] and len(report["keep"]) <= 3
    assert report["first_divergence"]["node"] == "amplify" and report["ranking"][0] in ("amplify", "normalise")
    assert not report["steps"][0]["passed"] and report["steps"][-1]["passed"] is not None
    assert "step 0 (convert all)" in stderr and "passes" in stderr  # each step printed
    assert report["cost"]["kept_nodes"] == len(report["keep"]) and report["cost"]["casts_added"] >= 0
    assert names([f"@{keep}"]) == tuple(report["keep"])
    fixed, _ = cli_json("quantize", model, "-p", "fp16", "--exclude-nodes", f"@{keep}", "-o", tmp_path / "fixed.onnx")
    assert all(o["passed"] for o in fixed["accuracy"]["outputs"]) and fixed["passed"]
    _runs_verbatim(report["command"], model, keep)
    kept = {n.name: n for n in onnx.load(tmp_path / "fixed.onnx").graph.node}
    assert kept["amplify"].output[0] == "big"  # computed in fp32 and read in fp32: no fp16 round trip between kept nodes


def test_int8_outlier_channel_found_and_fixed_with_real_photos(photos, tmp_path):
    model = int8_outlier(tmp_path / "outlier.onnx")
    broken, _ = cli_json("quantize", model, "-p", "int8", "--calib-data", photos, "-o", tmp_path / "int8.onnx", "--no-gate")
    assert broken["accuracy"]["min_cosine"] < 0.9 and broken["calibration"]["samples"] >= 16
    layers, _ = cli_json("debug", "layers", model, tmp_path / "int8.onnx", "--inputs", photos)
    rows = {r["tensor"]: r for r in layers["rows"]}
    assert layers["first_divergence"]["tensor"] == "act" and "q/dq" in rows["act"]["flags"]  # crushed where conv2 reads it
    assert rows["c1"]["cosine"] > 0.999 and rows["c2"]["diverged"] and "growth" in rows["c2"]["flags"]
    keep = tmp_path / "keep.txt"
    report, stderr = cli_json("debug", "precision", model, "-p", "int8", "--calib-data", photos, "-o", keep)
    assert report["keep"] == ["conv2"] and report["cost"]["dequantize_removed"] > 0
    assert report["ranking"][0] == "conv2" and "ranked 3 nodes by their own effect" in " ".join(stderr.split())  # each node quantized alone
    assert f"--calib-data {photos}" in report["command"]
    _runs_verbatim(report["command"], model, keep)


def _runs_verbatim(command: str, model: Path, keep: Path) -> None:
    """debug precision's "next:" command, run as printed: the conversion it verified passes quantize's gate."""
    argv = shlex.split(command)
    assert argv[:3] == ["infertool", "quantize", str(model)] and f"--exclude-nodes=@{keep}" in argv
    done = cli(*argv[1:])
    assert done.returncode == 0, done.stderr
    assert Path(argv[argv.index("-o") + 1]).is_file()


def test_a_fault_only_later_samples_show_is_found(planted, tmp_path):
    model, fp16 = planted
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 16)).astype(np.float32)
    x[0] *= 0.01  # the first sample stays inside fp16's range
    np.savez(tmp_path / "samples.npz", x=x)
    np.savez(tmp_path / "first.npz", x=x[:1])
    first, _ = cli_json("debug", "layers", model, fp16, "--inputs", tmp_path / "first.npz")
    assert first["first_divergence"] is None and first["samples"] == 1
    report, _ = cli_json("debug", "layers", model, fp16, "--inputs", tmp_path / "samples.npz")
    assert report["samples"] == 6 and report["first_divergence"]["node"] == "amplify"
    assert report["rows"][2]["worst_sample"] != 0
    search, _ = cli_json("debug", "precision", model, "-p", "fp16", "--eval-data", tmp_path / "samples.npz", "-o", tmp_path / "keep.txt")
    assert "amplify" in search["keep"] and search["samples"] == 6
    assert f"--eval-data {tmp_path / 'samples.npz'}" in search["command"]
    _runs_verbatim(search["command"], model, tmp_path / "keep.txt")


def renamed(model: Path, path: Path) -> Path:
    """The same model with every intermediate tensor renamed."""
    proto = onnx.load(model)
    outputs = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        node.input[:] = [f"{i}_other" if i in ("h", "r", "big", "norm") else i for i in node.input]
        node.output[:] = [o if o in outputs else f"{o}_other" for o in node.output]
    onnx.save(proto, path)
    return path


def test_graphs_that_do_not_correspond_are_one_line_errors(planted, tmp_path):
    model, fp16 = planted
    cases = {
        "a different model with the same names": (mlp(tmp_path / "other.onnx", hidden=24), "have other shapes: the graphs do not correspond"),
        "no tensor matched": (renamed(model, tmp_path / "renamed.onnx"), "no intermediate tensor of the reference has a counterpart"),
        "other inputs": (int8_outlier(tmp_path / "image.onnx"), "takes inputs image, the reference x: not the same model"),
    }
    for case, (candidate, message) in cases.items():
        result = cli("debug", "layers", model, candidate)
        assert result.returncode == 2 and message in one_line_error(result), case
    alone = cli("debug", "layers", model)
    assert alone.returncode == 2 and "nothing to compare" in one_line_error(alone)
    as_model = cli("debug", "precision", model, "-p", "fp16", "-o", tmp_path / "keep.onnx")
    assert as_model.returncode == 2 and "a list of node names, not a model" in one_line_error(as_model)
    (tmp_path / "keep.txt").write_text("amplify\n")
    exists = cli("debug", "precision", model, "-p", "fp16", "-o", tmp_path / "keep.txt")
    assert exists.returncode == 2 and "already exists" in one_line_error(exists)
    missing = cli("quantize", model, "-p", "fp16", "--exclude-nodes", f"@{tmp_path / 'none.txt'}", "-o", tmp_path / "q.onnx")
    assert missing.returncode == 2 and "cannot read the name list" in one_line_error(missing) and not (tmp_path / "q.onnx").exists()


def test_name_lists_read_files(tmp_path):
    (tmp_path / "keep.txt").write_text("# nodes to keep\nconv1\n\n  conv2  \n")
    assert names(["a,b", f"@{tmp_path / 'keep.txt'}", "a"]) == ("a", "b", "conv1", "conv2")
    with pytest.raises(InfertoolError, match="needs a file name"):
        names(["@"])


def test_debug_help_imports_no_ml_framework():
    for command in (["debug", "--help"], ["debug", "layers", "--help"], ["debug", "precision", "--help"]):
        code = (
            f"import sys\nfrom infertool.cli.app import main\ntry:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'tensorflow', 'onnxruntime', 'tensorrt', 'tensorrt_rtx') if m in sys.modules))"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert "Usage" in result.stdout and result.stdout.rstrip().endswith("HEAVY="), (command, result.stdout[-300:])
