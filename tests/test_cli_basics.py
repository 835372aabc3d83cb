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


# what no --help may import: run and bench build their flags from the backend registry, which imports every backend
HELP_HEAVY = (*HEAVY, "tensorrt_rtx", "openvino", "onnx", "ml_dtypes", "numpy", "rich.progress")
COMMANDS = ("run", "bench", "sweep", "optimize", "debug", "debug layers", "debug precision", "quantize", "convert", "build-engine", "report", "doctor")


def test_every_command_help_imports_no_ml_framework():
    """Each command's --help in turn, in one fresh process: the first to import a heavy package is named."""
    code = (
        "import sys\nfrom infertool.cli.app import main\n"
        f"for command in {COMMANDS!r}:\n"
        "    try:\n        main([*command.split(), '--help'])\n    except SystemExit:\n        pass\n"
        f"    print(f'HEAVY {{command}}=' + ','.join(m for m in {HELP_HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    loaded = dict(line.removeprefix("HEAVY ").split("=") for line in result.stdout.splitlines() if line.startswith("HEAVY "))
    assert loaded == dict.fromkeys(COMMANDS, ""), loaded
    assert result.stdout.count("Usage: infertool ") == len(COMMANDS)


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
