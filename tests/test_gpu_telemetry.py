"""GPU clocks, temperature and power before and after each row, through a FAKE pynvml
(tests/fakes/nvml) and the fake TensorRT on the CPU: no GPU here, so nothing is measured; the
plumbing is, and every NVML name the code and the fake use is checked against nvidia-ml-py."""

import ast
import json
import re
import subprocess
import sys
import zipfile

import pytest
from test_tensorrt_surface import bindings, present  # noqa: F401 (the fixture)

from infertool.measure.gpu_telemetry import clock_drop

from conftest import ROOT, cli
from onnx_models import mlp

FAKES = ROOT / "tests" / "fakes"
NVML_WHEEL = "nvidia-ml-py==13.615.71"
CACHE = ROOT / ".cache" / "bindings" / NVML_WHEEL.replace("==", "-")


def fake_gpu(**env):
    return {"PYTHONPATH": f"{FAKES}:{FAKES / 'nvml'}", "FAKE_TENSORRT_VERSION": "10.16.1.11", **env}


def test_a_clock_drop_during_a_row_is_recorded_and_warned(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    env = fake_gpu(FAKE_NVML_SM_CLOCKS="1980,1410", INFERTOOL_CACHE_DIR=str(tmp_path / "cache"))
    result = cli("bench", model, "-b", "trt", "-b", "ort-cpu", "--iterations", "5", "--duration", "0", "--warmup", "1", "--json", env=env)
    assert result.returncode == 0, result.stderr
    trt, cpu = json.loads(result.stdout)["rows"]
    telemetry = trt["gpu_telemetry"]
    assert telemetry["nvml_index"] == 0 and telemetry["note"] is None
    assert telemetry["before"]["sm_clock_mhz"] == 1980 and telemetry["after"]["sm_clock_mhz"] == 1410
    assert telemetry["before"]["memory_clock_mhz"] == 2619 and telemetry["after"]["power_w"] == 350.0
    assert telemetry["after"]["slowdowns"] == ["software thermal slowdown"] and telemetry["before"]["slowdowns"] == []
    assert any("GPU clocks dropped during the row (SM clock 1980 -> 1410 MHz" in w for w in trt["warnings"])
    assert "GPU clocks dropped" in result.stderr
    assert cpu["gpu_telemetry"] is None  # a CPU row has no GPU to read


def test_steady_clocks_warn_nothing_and_nvml_finds_the_cuda_device_by_pci(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    env = fake_gpu(FAKE_NVML_GPUS="3", INFERTOOL_CACHE_DIR=str(tmp_path / "cache"))
    result = cli("bench", model, "-b", "trt", "--iterations", "5", "--duration", "0", "--warmup", "1", "--json", env=env)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["rows"][0]
    assert row["gpu_telemetry"]["nvml_index"] == 0  # the fake CUDA device sits at PCI 0:1:0, NVML's GPU 0 of 3
    assert row["gpu_telemetry"]["before"]["sm_clock_mhz"] == row["gpu_telemetry"]["after"]["sm_clock_mhz"] == 1980
    assert not any("clocks dropped" in w for w in row["warnings"])


def test_clock_drop_rule():
    reading = {"sm_clock_mhz": 1980, "memory_clock_mhz": 2619, "temperature_c": 60, "slowdowns": []}
    assert clock_drop({"before": reading, "after": {**reading, "sm_clock_mhz": 1900}}) is None  # within 5 %
    warning = clock_drop({"before": reading, "after": {**reading, "memory_clock_mhz": 1200, "slowdowns": ["power cap"]}})
    assert "memory clock 2619 -> 1200 MHz; power cap" in warning
    assert clock_drop({"before": None, "after": reading}) is None


@pytest.fixture(scope="module")
def real_nvml_names() -> set[str]:
    """Top-level names of the real nvidia-ml-py (pure Python, read without importing it)."""
    if not list(CACHE.glob("*.whl")):
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", NVML_WHEEL, "-d", str(CACHE)], check=True, capture_output=True, timeout=600)
    with zipfile.ZipFile(next(CACHE.glob("*.whl"))) as wheel:
        tree = ast.parse(wheel.read("pynvml.py"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_fake_and_code_use_only_real_nvml_names(real_nvml_names):
    assert {"nvmlInit", "nvmlDeviceGetClockInfo", "NVML_CLOCK_SM"} <= real_nvml_names
    assert "nvmlDeviceGetNoSuchThing" not in real_nvml_names  # the check can fail
    fake = ast.parse((FAKES / "nvml" / "pynvml.py").read_text())
    defined = {n.name for n in fake.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}
    defined |= {t.id for n in fake.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name) and not t.id.startswith("_")}
    assert sorted(defined - real_nvml_names) == []
    used = set()
    for path in (ROOT / "infertool" / "measure" / "gpu_telemetry.py", ROOT / "infertool" / "environment.py"):
        used |= set(re.findall(r"\b(?:nvml|pynvml)\.(\w+)", path.read_text()))
        used |= set(re.findall(r'"(nvml[A-Z]\w+)"', path.read_text()))
    assert {"nvmlDeviceGetPciInfo", "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"} <= used
    assert sorted(used - real_nvml_names) == []


def test_cuda_pci_fields_are_real(bindings):  # noqa: F811 (the fixture imported above)
    """The PCI address NVML is matched on comes from cudaDeviceProp fields the fake runtime also defines."""
    used = set(re.findall(r"props\.(pci\w+)", (ROOT / "infertool" / "cuda.py").read_text()))
    assert used == {"pciDomainID", "pciBusID", "pciDeviceID"}
    assert all(present(name, bindings["cudart"]) for name in used)
    assert used <= set(re.findall(r"^    (pci\w+):", (FAKES / "cuda" / "bindings" / "runtime.py").read_text(), re.M))
