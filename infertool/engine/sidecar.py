"""The `.engine.json` beside every engine, and the checks made before deserializing one."""

from __future__ import annotations

import json
from pathlib import Path

from infertool.errors import InfertoolError, first_line

SCHEMA = "infertool.engine/1"


def sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + ".json")


def read(engine_path: Path) -> dict | None:
    """The sidecar, or None when the engine has none (built by another tool)."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise InfertoolError(f"{path} is not readable JSON", hint="rebuild the engine with infertool build-engine", detail=first_line(exc)) from exc
    gpu = data.get("gpu") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("tensorrt_version"), str) \
            or not isinstance(gpu, dict) or not all(isinstance(gpu.get(k), str) for k in ("name", "compute_capability")):
        raise InfertoolError(f"{path} is not an infertool engine sidecar", hint="rebuild the engine with infertool build-engine")
    return data


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isascii() and p.isdigit())


def check_compatible(engine_path: Path, sidecar: dict, trt_version: str, gpu: dict) -> list[str]:
    """Refuse an engine this TensorRT or GPU cannot run, before deserialization can crash. Returns warnings."""
    warnings = []
    built = sidecar["tensorrt_version"]
    if built != trt_version:
        same_major = _version_tuple(built)[:1] == _version_tuple(trt_version)[:1]
        newer = _version_tuple(trt_version) >= _version_tuple(built)
        if not (sidecar.get("version_compatible") and same_major and newer):
            raise InfertoolError(
                f"{engine_path} was built with TensorRT {built}; this is TensorRT {trt_version}",
                hint="rebuild it here with infertool build-engine (or build with --version-compatible)",
            )
        warnings.append(f"version-compatible engine from TensorRT {built} running on {trt_version}")
    built_gpu = sidecar["gpu"]
    if built_gpu["compute_capability"] != gpu["compute_capability"]:
        portable = sidecar.get("hardware_compat") == "ampere+" and _version_tuple(gpu["compute_capability"]) >= (8, 0)
        if not portable:
            raise InfertoolError(
                f"{engine_path} was built for {built_gpu['name']} (sm {built_gpu['compute_capability']}); "
                f"this GPU is {gpu['name']} (sm {gpu['compute_capability']})",
                hint="rebuild it on this GPU, or build with --hardware-compat ampere+",
            )
        warnings.append(f"hardware-compatible engine from sm {built_gpu['compute_capability']} on sm {gpu['compute_capability']}")
    elif built_gpu["name"] != gpu["name"]:
        warnings.append(f"engine built on {built_gpu['name']}, running on {gpu['name']}: tactics may be slower than a rebuild")
    return warnings
