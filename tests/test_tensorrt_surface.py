"""Every TensorRT, TensorRT-RTX (and cuda-python) name infertool touches, checked against the real bindings.

The bindings wheels hold the real compiled modules (`tensorrt_bindings/tensorrt.so`, the cuda
runtime bindings); TensorRT's libraries are not needed to read the names out of them. A TensorRT
name counts as present when it ends one of the module's NUL-terminated strings (linkers merge a
string into the tail of a longer one, so `Logger` lives inside `ILogger`). The strings cannot tell
which class a member belongs to, so the version-specific BuilderFlag members are also modelled in
the fake (absent on 11.x), which the flow tests run against.

TensorRT-RTX is installed (the `trt-rtx` extra), so its names are checked exactly, member by class,
on the real module: the code shared with TensorRT 10/11, the TensorRT-RTX-only code, the fake
tensorrt_rtx, and every member a build-load-run flow through that fake touched.
"""

import json
import re
import subprocess
import sys
import zipfile

import pytest

from infertool.engine.tensorrt_api import WEAK_TYPING_FLAGS

from conftest import ROOT

CACHE = ROOT / ".cache" / "bindings"
WHEELS = {
    "10": ("tensorrt-cu12-bindings==10.16.1.11", "tensorrt_bindings/tensorrt.so"),
    "11": ("tensorrt-cu13-bindings==11.4.0.106", "tensorrt_bindings/tensorrt.so"),
    "cudart": ("cuda-bindings==13.3.1", "cuda/bindings/runtime."),
}
FAKES = ROOT / "tests" / "fakes"
RTX_SOURCES = [ROOT / "infertool" / "engine" / "rtx.py", ROOT / "infertool" / "backends" / "tensorrt_rtx.py"]  # TensorRT-RTX only
TRT_SOURCES = [*(p for p in sorted((ROOT / "infertool" / "engine").glob("*.py")) if p not in RTX_SOURCES), ROOT / "infertool" / "backends" / "tensorrt.py"]
# receivers of TensorRT objects in those sources, and the TensorRT class each stands for
TRT_OBJECTS = ("builder", "config", "network", "parser", "engine", "context", "runtime", "optimization_profile", "error", "inspector")
RECEIVERS = {
    "builder": "Builder", "config": "IBuilderConfig", "network": "INetworkDefinition", "parser": "OnnxParser", "engine": "ICudaEngine",
    "context": "IExecutionContext", "runtime": "Runtime", "optimization_profile": "IOptimizationProfile", "error": "ParserError",
    "inspector": "EngineInspector", "runtime_config": "IRuntimeConfig", "runtime_cache": "IRuntimeCache",
}


def _strings(data: bytes) -> set[str]:
    found = set()
    for piece in data.split(b"\x00"):
        match = re.search(rb"[\x20-\x7e]+$", piece)
        if match:
            found.add(match.group().decode())
    return found


@pytest.fixture(scope="session")
def bindings() -> dict[str, set[str]]:
    """Names from the real modules, per version; wheels are downloaded once into .cache/."""
    names = {}
    for key, (requirement, member) in WHEELS.items():
        folder = CACHE / requirement.replace("==", "-")
        if not list(folder.glob("*.whl")):
            folder.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", requirement, "-d", str(folder)],
                check=True, capture_output=True, timeout=600,
            )
        with zipfile.ZipFile(next(folder.glob("*.whl"))) as wheel:
            module = next(n for n in wheel.namelist() if n.startswith(member) and n.endswith(".so"))
            data = wheel.read(module)
        # pybind11 (TensorRT) keeps names as NUL-terminated strings; Cython 3 (cuda-python) packs
        # them into one table, so there any identifier-shaped token counts
        names[key] = _strings(data) if key != "cudart" else {t.decode() for t in re.findall(rb"[A-Za-z_]\w{2,}", data)}
    return names


def present(name: str, names: set[str]) -> bool:
    return any(s == name or s.endswith(name) for s in names)


def test_bindings_tell_versions_apart(bindings):
    """The check can fail: names 11.x removed are found in 10.x and not in 11.x."""
    for removed in ("EXPLICIT_BATCH", "int8_calibrator", "platform_has_fast_fp16", "OBEY_PRECISION_CONSTRAINTS", "FP16"):
        assert present(removed, bindings["10"]) and not present(removed, bindings["11"]), removed
    assert not present("no_such_tensorrt_api", bindings["10"])


def _code_names(sources=TRT_SOURCES) -> set[str]:
    """`trt.X.Y` chains and methods called on TensorRT objects, from the TensorRT code paths."""
    names: set[str] = set()
    for path in sources:
        text = path.read_text()
        for chain in re.findall(r"\btrt\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", text):
            names.update(chain.split("."))
        for member in re.findall(rf"(?<![\w.])(?:self\.)?(?:{'|'.join(TRT_OBJECTS)})\.([a-z_]\w*)", text):
            names.add(member)
    return names


def test_code_names_exist_in_both_versions(bindings):
    names = _code_names()
    assert {"execute_async_v3", "set_tensor_address", "build_serialized_network", "parse_from_file", "device_memory_size_v2"} <= names
    weak = set(WEAK_TYPING_FLAGS.values())
    for name in sorted(names - weak):
        assert present(name, bindings["10"]), f"{name} is not in TensorRT 10.x"
        assert present(name, bindings["11"]), f"{name} is not in TensorRT 11.x"


def test_weak_typing_flags_are_10x_only(bindings):
    """The 10.x builder-flag path uses names that exist there; 11.x dropped FP16 and INT8."""
    for flag in WEAK_TYPING_FLAGS.values():
        assert present(flag, bindings["10"]), flag
    assert not present("FP16", bindings["11"])
    assert not present("int8_calibrator", bindings["11"])


def _fake_definitions(version: str, module: str = "tensorrt") -> set[str]:
    script = (
        f"import enum, inspect, json, {module} as t\n"
        "names = set()\n"
        "for name, obj in vars(t).items():\n"
        "    if name.startswith('_') or name in ('ACCESSED', 'MAJOR') or inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):\n"
        "        continue\n"
        "    if inspect.isfunction(obj) and obj.__module__ != t.__name__:\n"
        "        continue\n"
        "    names.add(name)\n"
        "    if inspect.isclass(obj) and issubclass(obj, enum.Enum):\n"
        "        names.update(obj.__members__)\n"
        "    elif inspect.isclass(obj) and obj.__module__ == t.__name__ and not issubclass(obj, bytes):\n"
        "        names.update(k for k in vars(obj) if not k.startswith('_'))\n"
        "        names.update(k for k, v in vars(obj).items() if inspect.isclass(v) and issubclass(v, enum.Enum) for k in v.__members__)\n"
        "print(json.dumps(sorted(names)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(FAKES), "FAKE_TENSORRT_VERSION": version, "PATH": ""})
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
def test_fake_defines_only_real_names(bindings, version):
    major = version.split(".")[0]
    defined = _fake_definitions(version)
    assert {"Builder", "OnnxParser", "IExecutionContext", "execute_async_v3"} <= defined
    missing = sorted(n for n in defined if not present(n, bindings[major]))
    assert not missing, f"the fake defines names TensorRT {version} lacks: {missing}"
    if major == "11":
        assert "FP16" not in defined  # BuilderFlag.FP16 is gone; DataType says HALF


def test_fake_cuda_runtime_names_are_real(bindings):
    source = (FAKES / "cuda" / "bindings" / "runtime.py").read_text()
    defined = set(re.findall(r"^def (cuda\w+)", source, re.M)) | set(re.findall(r"^(cuda\w+) =", source, re.M))
    defined |= set(re.findall(r"^class (cuda\w+)", source, re.M)) | set(re.findall(r"^    (cuda\w+) = \d", source, re.M))
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaGraphLaunch", "cudaMemcpyHostToDevice"} <= defined
    missing = sorted(n for n in defined if not present(n, bindings["cudart"]))
    assert not missing, f"the fake cuda runtime defines names cuda-python lacks: {missing}"
    used = set(re.findall(r"cudart\.(cuda\w+)|runtime\(\)\.(cuda\w+)", (ROOT / "infertool" / "cuda.py").read_text()))
    used = {a or b for a, b in used}
    assert used and not sorted(n for n in used if not present(n, bindings["cudart"]))


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
def test_names_touched_in_a_flow_are_real(bindings, version, tmp_path):
    """Build, save, load and run through the fake, then check every member the code touched."""
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
import numpy as np, tensorrt
from onnx_models import mlp
from infertool import onnx_io
from infertool.backends.tensorrt import TrtRunner
from infertool.engine.build import BuildOptions, build_engine
from infertool.engine.profiles import resolve_profiles
from infertool.reporting import SilentReporter
model = onnx_io.describe(mlp(Path({str(tmp_path)!r}) / 'm.onnx'))
profiles = tuple(resolve_profiles(list(model.inputs), [], {{}}, 4, []))
build_engine(model, Path({str(tmp_path)!r}) / 'm.engine', BuildOptions(precision='fp16', profiles=profiles, timing_cache=Path({str(tmp_path)!r}) / 'tc', workspace=1 << 28, opt_level=3), SilentReporter())
with TrtRunner(Path({str(tmp_path)!r}) / 'm.engine', cuda_graph=True) as runner:
    runner.infer({{'x': np.ones((4, 16), np.float32)}})
    runner.bind({{'x': np.ones((4, 16), np.float32)}}); runner.run_bound(); runner.device_times(2)
print(json.dumps(sorted(tensorrt.ACCESSED)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": f"{FAKES}:{ROOT}", "FAKE_TENSORRT_VERSION": version, "PATH": ""})
    assert result.returncode == 0, result.stderr
    touched = {name.split(".")[1] for name in json.loads(result.stdout.splitlines()[-1])}
    assert {"set_input_shape", "execute_async_v3", "build_serialized_network"} <= touched
    missing = sorted(n for n in touched if not present(n, bindings[version.split(".")[0]]))
    assert not missing, f"the flow touched names TensorRT {version} lacks: {missing}"


# ---------------------------------------------------------------- TensorRT-RTX, on the real module

RTX_ENV = {"PYTHONPATH": f"{FAKES}:{ROOT}", "FAKE_CUDA_COMPUTE_CAPABILITY": "8.9", "PATH": ""}


@pytest.fixture(scope="session")
def rtx():
    import tensorrt_rtx  # the real one: the trt-rtx extra installs it (make test)

    assert "fakes" not in tensorrt_rtx.__file__
    return tensorrt_rtx


def _has(module, owner: str | None, name: str) -> bool:
    return hasattr(getattr(module, owner), name) if owner else hasattr(module, name)


def _code_members(sources) -> set[tuple[str | None, str]]:
    """(class, member) for calls on TensorRT objects, (None, X) and (X, Y) for `trt.X.Y` chains."""
    found: set[tuple[str | None, str]] = set()
    for path in sources:
        text = path.read_text()
        for chain in re.findall(r"\btrt\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)", text):
            owner, _, member = chain.rpartition(".")
            found.add((owner or None, member))
        pattern = rf"(?<![\w.])(?:self\.)?({'|'.join(RECEIVERS)})\.([a-z_]\w*)"
        found.update((RECEIVERS[receiver], member) for receiver, member in re.findall(pattern, text))
    return found


def test_rtx_tells_itself_apart(rtx):
    """The exact check can fail: TensorRT-RTX has no precision flags, and targets TensorRT 10 lacks."""
    assert not _has(rtx, "BuilderFlag", "FP16") and not _has(rtx, "IBuilderConfig", "int8_calibrator")
    assert _has(rtx, "IBuilderConfig", "set_compute_capability") and _has(rtx, "ICudaEngine", "create_runtime_config")
    assert not _has(rtx, "ComputeCapability", "SM90") and not _has(rtx, "ComputeCapability", "SM100")


def test_code_names_exist_in_tensorrt_rtx(rtx, bindings):
    """The code TensorRT-RTX shares with TensorRT 10/11, and its own, name only real members;
    its own code names nothing TensorRT 10 has not got (it must stay out of the shared path)."""
    from infertool.engine.tensorrt_api import TENSORRT_RTX

    shared, own = _code_members(TRT_SOURCES), _code_members(RTX_SOURCES)
    assert ("IBuilderConfig", "num_compute_capabilities") in own and ("IRuntimeConfig", "create_runtime_cache") in own
    weak = set(WEAK_TYPING_FLAGS.values())
    missing = sorted(f"{o}.{n}" if o else n for o, n in shared | own if n not in weak and not _has(rtx, o, n))
    assert not missing, f"TensorRT-RTX 1.7 has no {missing}"
    assert all(_has(rtx, "ComputeCapability", "SM" + t.replace(".", "")) for t in TENSORRT_RTX.targets)
    assert not present("set_compute_capability", bindings["10"])


def test_fake_rtx_defines_only_real_members(rtx):
    defined = _fake_definitions("1.7.1.116", "tensorrt_rtx")
    script = (
        "import enum, inspect, json, tensorrt_rtx as t\n"
        "print(json.dumps({n: sorted(k for k in (o.__members__ if issubclass(o, enum.Enum) else vars(o)) if not k.startswith('_'))"
        " for n, o in vars(t).items() if inspect.isclass(o) and o.__module__ == 'tensorrt_rtx' and not n.startswith('_')}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=RTX_ENV)
    assert result.returncode == 0, result.stderr
    members = json.loads(result.stdout)
    assert {"IRuntimeConfig", "IRuntimeCache", "ComputeCapability", "CudaGraphStrategy"} <= set(members) and "FP16" not in defined
    missing = sorted(f"{c}.{m}" for c, names in members.items() for m in [None, *names] if not _has(rtx, c if m else None, m or c))
    assert not missing, f"the fake tensorrt_rtx defines what TensorRT-RTX 1.7 lacks: {missing}"


def test_names_touched_in_an_rtx_flow_are_real(rtx, tmp_path):
    """Build, save, load (runtime config, runtime cache, CUDA-graph strategy) and run through the fake,
    then check every Class.member the code touched on the real module."""
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
import numpy as np, tensorrt_rtx
from onnx_models import mlp
from infertool import onnx_io
from infertool.backends.tensorrt_rtx import RtxRunner
from infertool.engine.build import BuildOptions, build_engine
from infertool.engine.profiles import resolve_profiles
from infertool.engine.tensorrt_api import TENSORRT_RTX
from infertool.reporting import SilentReporter
folder = Path({str(tmp_path)!r})
model = onnx_io.describe(mlp(folder / 'm.onnx'))
profiles = tuple(resolve_profiles(list(model.inputs), [], {{}}, 4, []))
options = BuildOptions(precision='fp16', profiles=profiles, workspace=1 << 28, opt_level=3, flavour=TENSORRT_RTX, compute_capabilities=('8.6', '8.9'))
build_engine(model, folder / 'm.engine', options, SilentReporter())
for _ in range(2):
    with RtxRunner(folder / 'm.engine', cuda_graph=True, runtime_cache=folder / 'jit.cache') as runner:
        runner.infer({{'x': np.ones((4, 16), np.float32)}})
        runner.bind({{'x': np.ones((4, 16), np.float32)}}); runner.run_bound(); runner.device_times(2)
print(json.dumps([runner.cache_loaded, sorted(tensorrt_rtx.ACCESSED)]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=RTX_ENV)
    assert result.returncode == 0, result.stderr
    cache_loaded, accessed = json.loads(result.stdout.splitlines()[-1])
    assert cache_loaded is True
    touched = {tuple(name.split(".", 1)) for name in accessed}
    assert {("IBuilderConfig", "set_compute_capability"), ("IRuntimeConfig", "set_runtime_cache"), ("IRuntimeCache", "deserialize"),
            ("ICudaEngine", "create_runtime_config"), ("IExecutionContext", "execute_async_v3")} <= touched
    missing = sorted(f"{c}.{m}" for c, m in touched if not _has(rtx, c, m))
    assert not missing, f"the flow touched what TensorRT-RTX 1.7 lacks: {missing}"


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
def test_names_touched_reading_debug_tensors_are_real(bindings, version, tmp_path):
    """debug layers' TensorRT path: debug tensors marked both ways, built, run, read back through the listener."""
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
import numpy as np, tensorrt
from onnx_models import fp16_overflow
from infertool import onnx_io
from infertool.backends.tensorrt import TrtRunner
from infertool.engine.build import BuildOptions, build_engine
from infertool.engine.profiles import ShapeProfile
from infertool.reporting import SilentReporter
folder = Path({str(tmp_path)!r})
model = onnx_io.describe(fp16_overflow(folder / 'm.onnx'))
for keep in (False, True):
    options = BuildOptions(profiles=(ShapeProfile({{'x': ((2, 16), (2, 16), (2, 16))}}),), debug_tensors=('h', 'big'), keep_fusions=keep)
    build_engine(model, folder / f'{{keep}}.engine', options, SilentReporter())
    with TrtRunner(folder / f'{{keep}}.engine') as runner:
        runner.infer({{'x': np.ones((2, 16), np.float32)}})
        assert runner.intermediates(), keep
print(json.dumps(sorted(tensorrt.ACCESSED)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": f"{FAKES}:{ROOT}", "FAKE_TENSORRT_VERSION": version, "PATH": ""})
    assert result.returncode == 0, result.stderr
    touched = {name.split(".")[1] for name in json.loads(result.stdout.splitlines()[-1])}
    assert {"mark_debug", "mark_unfused_tensors_as_debug_tensors", "set_debug_listener", "unfused_tensors_debug_state", "get_layer"} <= touched
    missing = sorted(n for n in touched if not present(n, bindings[version.split(".")[0]]))
    assert not missing, f"the debug flow touched names TensorRT {version} lacks: {missing}"
