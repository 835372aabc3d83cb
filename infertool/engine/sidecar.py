"""The `.engine.json` beside every engine, and the checks made before deserializing one."""

from __future__ import annotations

import json
from pathlib import Path

from infertool.engine.tensorrt_api import FLAVOURS, TENSORRT, Flavour
from infertool.errors import InfertoolError, first_line

SCHEMA = "infertool.engine/1"
TURING = "7.5"  # TensorRT-RTX's default targets leave it out


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
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("tensorrt_version"), str) or not _names_gpu(data):
        raise InfertoolError(f"{path} is not an infertool engine sidecar", hint="rebuild the engine with infertool build-engine")
    return data


def _names_gpu(data: dict) -> bool:
    """The GPU the engine was built on; an ahead-of-time flavour (TensorRT-RTX) may build without one."""
    gpu, flavour = data.get("gpu"), FLAVOURS.get(data.get("flavour", TENSORRT.name))
    if gpu is None:
        return flavour is not None and flavour.ahead_of_time
    return isinstance(gpu, dict) and all(isinstance(gpu.get(k), str) for k in ("name", "compute_capability"))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isascii() and p.isdigit())


def check_compatible(engine_path: Path, sidecar: dict, trt_version: str, gpu: dict, flavour: Flavour = TENSORRT) -> list[str]:
    """Refuse an engine this TensorRT flavour, version or GPU cannot run, before deserialization can crash. Returns warnings."""
    warnings = []
    built, built_flavour = sidecar["tensorrt_version"], sidecar.get("flavour", TENSORRT.name)
    if built_flavour != flavour.name:
        other = FLAVOURS.get(built_flavour)
        raise InfertoolError(
            f"{engine_path} is a {built_flavour} {built} engine; {flavour.name} cannot load it",
            hint=f"run it with --backend {other.backend}" if other else "rebuild it with infertool build-engine",
        )
    if built != trt_version:
        same_major = _version_tuple(built)[:1] == _version_tuple(trt_version)[:1]
        newer = _version_tuple(trt_version) >= _version_tuple(built)
        if not (sidecar.get("version_compatible") and same_major and newer):
            raise InfertoolError(
                f"{engine_path} was built with {flavour.name} {built}; this is {flavour.name} {trt_version}",
                hint="rebuild it here with infertool build-engine" + ("" if flavour.ahead_of_time else " (or build with --version-compatible)"),
            )
        warnings.append(f"version-compatible engine from {flavour.name} {built} running on {trt_version}")
    if flavour.ahead_of_time:
        _check_targets(engine_path, sidecar, gpu, flavour)
        return warnings
    return warnings + _check_gpu(engine_path, sidecar, gpu)


def _check_targets(engine_path: Path, sidecar: dict, gpu: dict, flavour: Flavour) -> None:
    """An ahead-of-time engine runs on the compute capabilities it was built for."""
    capability = gpu["compute_capability"]
    unsupported = flavour.unsupported_gpu(gpu["name"], capability)
    if unsupported:
        raise InfertoolError(f"{engine_path} cannot run here: {unsupported}", hint=f"run it on a GPU {flavour.name} supports")
    targets = sidecar.get("compute_capabilities")
    if (targets and capability not in targets) or (not targets and capability == TURING):
        built_for = ", ".join(targets) if targets else flavour.default_targets
        raise InfertoolError(
            f"{engine_path} was built for compute capability {built_for}; this GPU ({gpu['name']}) has {capability}",
            hint=f"rebuild it with --compute-capability {capability} (or a list that includes it)",
        )


def _check_gpu(engine_path: Path, sidecar: dict, gpu: dict) -> list[str]:
    built_gpu = sidecar["gpu"]
    if built_gpu["compute_capability"] != gpu["compute_capability"]:
        portable = sidecar.get("hardware_compat") == "ampere+" and _version_tuple(gpu["compute_capability"]) >= (8, 0)
        if not portable:
            raise InfertoolError(
                f"{engine_path} was built for {built_gpu['name']} (sm {built_gpu['compute_capability']}); "
                f"this GPU is {gpu['name']} (sm {gpu['compute_capability']})",
                hint="rebuild it on this GPU, or build with --hardware-compat ampere+",
            )
        return [f"hardware-compatible engine from sm {built_gpu['compute_capability']} on sm {gpu['compute_capability']}"]
    if built_gpu["name"] != gpu["name"]:
        return [f"engine built on {built_gpu['name']}, running on {gpu['name']}: tactics may be slower than a rebuild"]
    return []


def check_unlabelled(engine_path: Path, flavour: Flavour) -> None:
    """An engine without a sidecar: refuse one whose header shows another flavour built it."""
    with engine_path.open("rb") as handle:
        head = handle.read(8)
    for other in FLAVOURS.values():
        if other != flavour and other.plan_magic and head.startswith(other.plan_magic):
            raise InfertoolError(
                f"{engine_path} is a {other.name} engine (its header says so); {flavour.name} cannot load it",
                hint=f"run it with --backend {other.backend}",
            )
