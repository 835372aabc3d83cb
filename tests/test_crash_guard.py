"""A runtime that kills its process on a model is one line naming the runtime, the stage and a way
out (exit 2), never a dead infertool: run loads and infers in a fresh process, and quantize opens the
model it wrote for real, in a fresh process, before calling it done (issue 24)."""

from conftest import one_line_error, run_cli
from onnx_models import mlp


def test_run_survives_a_runtime_that_dies_at_the_first_inference(tmp_path, crash_plugin):
    model = mlp(tmp_path / "m.onnx")
    result = run_cli("run", model, "-b", "crash", env=crash_plugin)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert "crash died (inference) running m.onnx: killed by SIGKILL" in line and "try another backend" in line


def test_run_in_process_when_asked(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = run_cli("run", model, "--no-isolate", "--json")
    assert result.returncode == 0, result.stderr


def test_quantize_refuses_a_model_its_runtime_dies_opening(tmp_path, crash_plugin):
    model, out = mlp(tmp_path / "m.onnx"), tmp_path / "m.fp16.onnx"
    result = run_cli("quantize", model, "-p", "fp16", "--eval-backend", "crash-fp16", "-o", out, env=crash_plugin)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert "crash-fp16 died (loading m.fp16.onnx) opening the fp16 model quantize wrote: killed by SIGSEGV" in line
    assert "was not written" in line and "--no-gate keeps the file" in line and not out.exists()
    kept = run_cli("quantize", model, "-p", "fp16", "--eval-backend", "crash-fp16", "-o", out, "--no-gate", env=crash_plugin)
    assert kept.returncode == 0 and out.is_file() and "was kept anyway (--no-gate)" in " ".join((kept.stdout + kept.stderr).split()), kept.stderr
