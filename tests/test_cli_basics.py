import json
import subprocess
import sys

from infertool.cli.app import normalize_argv

from conftest import ROOT, cli, run_cli

HEAVY = ("torch", "tensorflow", "keras", "onnxruntime", "tensorrt", "tf2onnx")


def test_help_imports_no_ml_framework():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['infertool', '--help']\n"
        "try:\n    runpy.run_module('infertool', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stdout.rstrip().endswith("HEAVY=")


def test_every_command_help_imports_no_ml_framework():
    for command in ("convert", "doctor"):
        code = (
            "import sys\nfrom infertool.cli.app import main\n"
            f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert result.stdout.rstrip().endswith("HEAVY="), (command, result.stdout[-300:])


def test_version():
    result = run_cli("--version")  # `python -m infertool` itself, in a process of its own
    assert result.returncode == 0 and result.stdout.startswith("infertool ")


def test_doctor_json_lists_components_with_install_hints():
    result = cli("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "infertool.doctor/1"
    by_name = {c["name"]: c for c in report["components"]}
    assert by_name["onnx"]["version"]
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]
    # TensorRT cannot be installed here: it must show as missing, naming the extra
    assert by_name["tensorrt"]["version"] is None
    assert "infertool[trt]" in by_name["tensorrt"]["hint"]


def test_doctor_table():
    result = cli("doctor")
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout and "infertool[trt]" in result.stdout


def test_json_flag_takes_an_optional_path():
    assert normalize_argv(["bench", "m.onnx", "--json"]) == (["bench", "m.onnx", "--json", "-"], False)
    assert normalize_argv(["bench", "--json", "m.onnx"]) == (["bench", "--json", "-", "m.onnx"], False)
    assert normalize_argv(["bench", "--json", "out.json", "m.onnx", "--debug"]) == (["bench", "--json", "out.json", "m.onnx"], True)


def test_unknown_command_is_a_usage_error():
    result = cli("frobnicate")
    assert result.returncode == 2
